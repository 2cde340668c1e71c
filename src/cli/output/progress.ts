/**
 * Progress of a long action (resync, verify, evacuation): a redrawn bar
 * (cli-progress) on a terminal, plain lines otherwise, so a log file or a
 * pipe gets one line per 10% step instead of a stream of escape codes.
 */
import { Presets, SingleBar } from 'cli-progress';
import type { OutStream } from './io';
import { percent } from './humanize';
import { printable } from './table';

export interface Progress {
  /** fraction: 0..1; detail: a short state ("moving rg1"). */
  update(fraction: number, detail?: string): void;
  /** Take the bar away and print a last line. Safe to call more than once. */
  finish(line: string): void;
}

/** Plain mode prints at each crossing of this step. */
const PLAIN_STEP = 0.1;
/** The bar counts in tenths of a percent. */
const BAR_TOTAL = 1000;

export function startProgress(stream: OutStream, title: string): Progress {
  return stream.isTTY === true ? new BarProgress(stream, printable(title)) : new PlainProgress(stream, printable(title));
}

class BarProgress implements Progress {
  private readonly bar: SingleBar;
  private finished = false;

  constructor(
    private readonly stream: OutStream,
    title: string,
  ) {
    this.bar = new SingleBar(
      {
        // cli-progress writes to it with write() and readline cursor calls, which need only write().
        stream: stream as NodeJS.WritableStream,
        format: `${title} [{bar}] {percentage}% {detail}`,
        barsize: 30,
        // A hidden cursor would stay hidden if Ctrl-C ends the process mid-bar.
        hideCursor: false,
        clearOnComplete: true,
        fps: 10,
      },
      Presets.shades_classic,
    );
    this.bar.start(BAR_TOTAL, 0, { detail: '' });
  }

  update(fraction: number, detail = ''): void {
    if (this.finished) return;
    this.bar.update(Math.round(clamp(fraction) * BAR_TOTAL), { detail: printable(detail) });
  }

  finish(line: string): void {
    if (this.finished) return;
    this.finished = true;
    this.bar.stop();
    this.stream.write(`${printable(line)}\n`);
  }
}

class PlainProgress implements Progress {
  private lastStep = -1;
  private lastDetail: string | null = null;
  private finished = false;

  constructor(
    private readonly stream: OutStream,
    private readonly title: string,
  ) {}

  update(fraction: number, detail = ''): void {
    if (this.finished) return;
    const f = clamp(fraction);
    const step = Math.floor(f / PLAIN_STEP + 1e-9);
    if (step === this.lastStep && detail === this.lastDetail) return;
    this.lastStep = step;
    this.lastDetail = detail;
    this.stream.write(`${this.title}: ${percent(f)}${detail ? ` ${printable(detail)}` : ''}\n`);
  }

  finish(line: string): void {
    if (this.finished) return;
    this.finished = true;
    this.stream.write(`${printable(line)}\n`);
  }
}

function clamp(f: number): number {
  return Number.isFinite(f) ? Math.min(1, Math.max(0, f)) : 0;
}
