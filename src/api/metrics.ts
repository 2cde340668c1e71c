/**
 * Prometheus metrics for GET /metrics. The control port keeps cumulative
 * counters; each scrape takes one snapshot (so every series of a scrape
 * is consistent) and the collectors below publish it. Latency arrives as
 * a finished histogram (bounds and cumulative counts), so it is published
 * through a Histogram whose get() answers the snapshot's buckets.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricsSnapshot, PairControl } from '../resource-groups';

/** Every series this module publishes (besides prom-client's default process metrics), for docs and tests. */
export const METRIC_NAMES = {
  ops: 'twinsan_volume_ops_total',
  bytes: 'twinsan_volume_bytes_total',
  latency: 'twinsan_volume_latency_seconds',
  sessions: 'twinsan_sessions',
  mirrorLag: 'twinsan_mirror_out_of_sync_bytes',
  resyncProgress: 'twinsan_mirror_resync_progress',
  failovers: 'twinsan_failovers_total',
  moves: 'twinsan_moves_total',
} as const;

type LatencyLabel = 'volume' | 'le';

/** A histogram whose values are the latest snapshot's, not observed here. */
const LATENCY_CONFIG = { name: METRIC_NAMES.latency, help: 'Latency of completed SCSI commands per volume', labelNames: ['volume' as const], registers: [] };

class SnapshotHistogram extends Histogram<LatencyLabel> {
  /** An empty twin that supplies the metric's name, help, type and aggregator (asking super would recurse into our override). */
  private readonly template = new Histogram<LatencyLabel>(LATENCY_CONFIG);

  constructor(private readonly latest: () => MetricsSnapshot) {
    super(LATENCY_CONFIG);
  }

  override async get(): ReturnType<Histogram<LatencyLabel>['get']> {
    return this.fromSnapshot();
  }

  /**
   * The registry's text exposition calls getForPromString() (untyped in
   * prom-client's declarations) in preference to get(); answer the same.
   */
  readonly getForPromString = (): ReturnType<Histogram<LatencyLabel>['get']> => this.fromSnapshot();

  private async fromSnapshot(): ReturnType<Histogram<LatencyLabel>['get']> {
    const base = await this.template.get();
    const values: typeof base.values = [];
    for (const v of this.latest().volumes) {
      const { bounds, counts, sum, count } = v.latency;
      bounds.forEach((bound, i) => {
        values.push({ metricName: `${METRIC_NAMES.latency}_bucket`, labels: { volume: v.volume, le: bound }, value: counts[i] ?? count });
      });
      values.push({ metricName: `${METRIC_NAMES.latency}_bucket`, labels: { volume: v.volume, le: '+Inf' }, value: count });
      values.push({ metricName: `${METRIC_NAMES.latency}_sum`, labels: { volume: v.volume }, value: sum });
      values.push({ metricName: `${METRIC_NAMES.latency}_count`, labels: { volume: v.volume }, value: count });
    }
    return { ...base, values };
  }
}

export class ApiMetrics {
  readonly registry = new Registry();
  private snapshot: MetricsSnapshot = { volumes: [], sessions: 0, mirror: [], failovers: 0, moves: 0 };

  constructor(
    private readonly control: PairControl,
    nodeId: string,
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node: nodeId });
    collectDefaultMetrics({ register: this.registry });
    const latest = () => this.snapshot;

    new Counter({
      name: METRIC_NAMES.ops, help: 'SCSI read and write commands completed per volume', labelNames: ['volume', 'op'], registers,
      collect() {
        this.reset();
        for (const v of latest().volumes) {
          this.inc({ volume: v.volume, op: 'read' }, v.readOps);
          this.inc({ volume: v.volume, op: 'write' }, v.writeOps);
        }
      },
    });
    new Counter({
      name: METRIC_NAMES.bytes, help: 'Bytes read and written per volume', labelNames: ['volume', 'op'], registers,
      collect() {
        this.reset();
        for (const v of latest().volumes) {
          this.inc({ volume: v.volume, op: 'read' }, v.readBytes);
          this.inc({ volume: v.volume, op: 'write' }, v.writeBytes);
        }
      },
    });
    this.registry.registerMetric(new SnapshotHistogram(latest));
    new Gauge({
      name: METRIC_NAMES.sessions, help: 'iSCSI sessions logged in to this node', registers,
      collect() {
        this.set(latest().sessions);
      },
    });
    new Gauge({
      name: METRIC_NAMES.mirrorLag, help: 'Bytes of a volume not yet on the peer (mirror lag)', labelNames: ['volume'], registers,
      collect() {
        this.reset();
        for (const m of latest().mirror) this.set({ volume: m.volume }, m.outOfSyncBytes);
      },
    });
    new Gauge({
      name: METRIC_NAMES.resyncProgress, help: 'Resync progress 0..1 of volumes being resynced (absent when not resyncing)', labelNames: ['volume'], registers,
      collect() {
        this.reset();
        for (const m of latest().mirror) if (m.resyncProgress !== null) this.set({ volume: m.volume }, m.resyncProgress);
      },
    });
    new Counter({
      name: METRIC_NAMES.failovers, help: 'Resource group takeovers after the peer failed', registers,
      collect() {
        this.reset();
        this.inc(latest().failovers);
      },
    });
    new Counter({
      name: METRIC_NAMES.moves, help: 'Planned resource group moves (switchover, failback, evacuation)', registers,
      collect() {
        this.reset();
        this.inc(latest().moves);
      },
    });
  }

  /** The exposition text of one scrape. */
  async scrape(): Promise<string> {
    this.snapshot = this.control.metrics();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
