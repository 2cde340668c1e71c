import { describe, expect, it } from 'vitest';
import { SseDecoder } from '../../../src/cli/client';
import { bytes, duration, keyValues, percent, printable, startProgress, table, timestamp } from '../../../src/cli/output';
import { parseAlias } from '../../../src/cli/commands/rg';
import { Capture } from './harness';

describe('table', () => {
  it('table_aligns_columns_and_right_aligns_numbers', () => {
    const text = table(
      [
        { n: 'a', v: 1 },
        { n: 'longer-name', v: 12345 },
      ],
      [
        { header: 'NAME', value: (r) => r.n },
        { header: 'N', value: (r) => String(r.v), align: 'right' },
        { header: 'LAST', value: () => '' },
      ],
    );
    expect(text).toBe('NAME             N  LAST\na                1\nlonger-name  12345\n');
  });

  it('table_cells_cannot_drive_the_terminal', () => {
    expect(printable('vol\u001b[2J\u0007x\u009b')).toBe('vol?[2J?x?');
    expect(table([{ n: 'a\u001b]0;pwned\u0007' }], [{ header: 'N', value: (r) => r.n }])).toBe('N\na?]0;pwned?\n');
  });

  it('key_values_align_and_continue', () => {
    expect(keyValues([['Name', 'vol1'], ['Alias IPs', 'a'], ['', 'b']])).toBe('Name:       vol1\nAlias IPs:  a\n            b\n');
  });
});

describe('humanize', () => {
  it('bytes_use_binary_units_with_three_digits', () => {
    expect([0, 512, 1024, 1536, 10 * 1024 ** 3, 1.5 * 1024 ** 3, 123.4 * 1024 ** 2, 1024 ** 4].map(bytes)).toEqual([
      '0 B',
      '512 B',
      '1 KiB',
      '1.5 KiB',
      '10 GiB',
      '1.5 GiB',
      '123 MiB',
      '1 TiB',
    ]);
    expect(bytes(-5)).toBe('-5');
  });

  it('percent_duration_timestamp', () => {
    expect([0, 0.4237, 1, 1.5, -1].map(percent)).toEqual(['0.0%', '42.4%', '100.0%', '100.0%', '0.0%']);
    expect([1234, 75_000, 3_720_000].map(duration)).toEqual(['1.2 s', '1m15s', '1h02m']);
    expect(timestamp('2026-11-22T05:39:05.123Z')).toBe('2026-11-22 05:39:05Z');
    expect(timestamp(null)).toBe('-');
    expect(timestamp('yesterday')).toBe('yesterday');
  });
});

describe('progress', () => {
  it('progress_off_a_terminal_prints_a_line_per_ten_percent_step', () => {
    const out = new Capture(false);
    const p = startProgress(out, 'verify vol1');
    for (let i = 0; i <= 100; i++) p.update(i / 100);
    p.update(1, 'done');
    p.finish('verify vol1: done');
    p.finish('again');
    const lines = out.text.trimEnd().split('\n');
    expect(lines).toHaveLength(13);
    expect(lines[0]).toBe('verify vol1: 0.0%');
    expect(lines[1]).toBe('verify vol1: 10.0%');
    expect(lines[10]).toBe('verify vol1: 100.0%');
    expect(lines[11]).toBe('verify vol1: 100.0% done');
    expect(lines[12]).toBe('verify vol1: done');
  });

  it('progress_on_a_terminal_draws_a_cli_progress_bar_and_clears_it', () => {
    const out = new Capture(true, 80);
    const p = startProgress(out, 'resync vol2');
    p.update(0.5, '2 MiB to go');
    p.finish('vol2: in-sync');
    expect(out.text).toMatch(/resync vol2 \[\u2588{15}\u2591{15}\] 50% 2 MiB to go/);
    expect(out.text).toContain('\u001b[2K'); // the bar's line cleared when done
    expect(out.text).not.toContain('\u001b[?25l'); // the cursor is never hidden (Ctrl-C would leave it so)
    expect(out.text.endsWith('vol2: in-sync\n')).toBe(true);
  });
});

describe('sse decoder', () => {
  const stream = ': twinsan events\n\nid: 1\nevent: move\ndata: {"seq":1}\n\nid: 2\r\nevent: failover\r\ndata: {"seq":2,\r\ndata: "x":1}\r\n\r\ndata:no-space\n\n';
  const expected = [
    { event: 'move', data: '{"seq":1}', id: '1' },
    { event: 'failover', data: '{"seq":2,\n"x":1}', id: '2' },
    { event: 'message', data: 'no-space', id: '2' },
  ];

  it('sse_decodes_whole_stream', () => {
    expect(new SseDecoder().push(stream)).toEqual(expected);
  });

  it('sse_decodes_the_same_split_at_every_boundary', () => {
    for (let i = 0; i <= stream.length; i++) {
      const d = new SseDecoder();
      expect([...d.push(stream.slice(0, i)), ...d.push(stream.slice(i))], `split at ${i}`).toEqual(expected);
    }
  });

  it('sse_refuses_an_endless_line', () => {
    const d = new SseDecoder();
    expect(() => d.push(`data: ${'x'.repeat(1024 * 1024 + 1)}`)).toThrow(/longer than/);
  });
});

describe('alias parsing', () => {
  it('alias_accepts_v4_and_v6', () => {
    expect(parseAlias('198.18.0.50/24@eth1')).toEqual({ address: '198.18.0.50', prefix: 24, interface: 'eth1' });
    expect(parseAlias('2001:db8::1/64@br-front')).toEqual({ address: '2001:db8::1', prefix: 64, interface: 'br-front' });
  });
});
