/** GET /metrics: Prometheus text from control.metrics() plus process metrics, behind the token. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { METRIC_NAMES } from '../../../src/api';
import { harness, type Harness } from './harness';

let h: Harness;
beforeEach(async () => {
  h = await harness();
});
afterEach(async () => {
  await h.close();
});

async function scrape(): Promise<string> {
  const res = await h.app.inject({ method: 'GET', url: '/metrics', headers: h.auth });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.body;
}

/** The value of the one sample line `series` (exact name and labels as printed). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('/metrics', () => {
  it('needs the token', async () => {
    expect((await h.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
  });

  it('publishes per-volume I/O, latency histogram, sessions, mirror lag, resync progress, failovers and moves', async () => {
    const text = await scrape();
    expect(sample(text, 'twinsan_volume_ops_total{volume="vol1",op="read",node="node-a"}')).toBe(10);
    expect(sample(text, 'twinsan_volume_ops_total{volume="vol1",op="write",node="node-a"}')).toBe(20);
    expect(sample(text, 'twinsan_volume_bytes_total{volume="vol1",op="write",node="node-a"}')).toBe(81920);
    expect(sample(text, 'twinsan_volume_latency_seconds_bucket{volume="vol1",le="0.001",node="node-a"}')).toBe(5);
    expect(sample(text, 'twinsan_volume_latency_seconds_bucket{volume="vol1",le="0.1",node="node-a"}')).toBe(30);
    expect(sample(text, 'twinsan_volume_latency_seconds_bucket{volume="vol1",le="+Inf",node="node-a"}')).toBe(30);
    expect(sample(text, 'twinsan_volume_latency_seconds_sum{volume="vol1",node="node-a"}')).toBe(0.12);
    expect(sample(text, 'twinsan_volume_latency_seconds_count{volume="vol1",node="node-a"}')).toBe(30);
    expect(text).toContain('# TYPE twinsan_volume_latency_seconds histogram');
    expect(sample(text, 'twinsan_sessions{node="node-a"}')).toBe(1);
    expect(sample(text, 'twinsan_mirror_out_of_sync_bytes{volume="vol2",node="node-a"}')).toBe(1048576);
    expect(sample(text, 'twinsan_mirror_resync_progress{volume="vol2",node="node-a"}')).toBe(0.25);
    expect(sample(text, 'twinsan_mirror_resync_progress{volume="vol1",node="node-a"}')).toBeUndefined();
    expect(sample(text, 'twinsan_failovers_total{node="node-a"}')).toBe(2);
    expect(sample(text, 'twinsan_moves_total{node="node-a"}')).toBe(3);
    for (const name of Object.values(METRIC_NAMES)) expect(text).toContain(`# HELP ${name} `);
    expect(text).toMatch(/^process_cpu_user_seconds_total\{node="node-a"\} /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes\{node="node-a"\} /m);
  });

  it('each scrape takes one fresh snapshot; a volume gone from it is gone from the series', async () => {
    await scrape();
    h.control.metricsSnapshot = { ...h.control.metricsSnapshot, volumes: [], failovers: 5 };
    const before = h.control.callsTo('metrics').length;
    const text = await scrape();
    expect(h.control.callsTo('metrics').length).toBe(before + 1);
    expect(text).not.toContain('volume="vol1",op=');
    expect(sample(text, 'twinsan_failovers_total{node="node-a"}')).toBe(5);
  });
});
