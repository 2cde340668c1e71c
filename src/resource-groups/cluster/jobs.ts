/**
 * Long-running actions (verify, evacuate, failback, move) as jobs the CLI
 * polls for progress. A job runs a function that reports progress; its
 * result or error is recorded. Finished jobs beyond `keepFinished` drop off,
 * oldest first, so the table stays bounded.
 */
import { randomUUID } from 'node:crypto';
import { ControlError, type JobInfo, type JobKind } from '../control';

export const DEFAULT_KEEP_FINISHED = 100;

export interface JobContext {
  /** 0..1 */
  progress(fraction: number): void;
}

export class JobTable {
  private readonly jobs = new Map<string, JobInfo>();

  constructor(
    private readonly keepFinished = DEFAULT_KEEP_FINISHED,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Starts `run` as a job and returns it (running). `done` is called with the final record. */
  start(kind: JobKind, subject: string, run: (ctx: JobContext) => Promise<Readonly<Record<string, unknown>> | null>, done?: (job: JobInfo) => void): JobInfo {
    const id = randomUUID();
    const job: JobInfo = { id, kind, subject, state: 'running', progress: 0, startedAt: this.now().toISOString(), finishedAt: null, error: null, result: null };
    this.jobs.set(id, job);
    const update = (patch: Partial<JobInfo>): JobInfo => {
      const next = { ...this.jobs.get(id)!, ...patch };
      this.jobs.set(id, next);
      return next;
    };
    const ctx: JobContext = {
      progress: (f) => {
        if (this.jobs.get(id)?.state === 'running' && Number.isFinite(f)) update({ progress: Math.min(1, Math.max(0, f)) });
      },
    };
    void Promise.resolve()
      .then(() => run(ctx))
      .then(
        (result) => update({ state: 'done', progress: 1, finishedAt: this.now().toISOString(), result }),
        (err: unknown) => update({ state: 'failed', finishedAt: this.now().toISOString(), error: err instanceof Error ? err.message : String(err) }),
      )
      .then((final) => {
        this.trim();
        done?.(final);
      });
    return job;
  }

  list(): JobInfo[] {
    return [...this.jobs.values()];
  }

  get(id: string): JobInfo {
    const j = this.jobs.get(id);
    if (!j) throw new ControlError('not-found', `no job ${JSON.stringify(id)}`);
    return j;
  }

  private trim(): void {
    const finished = [...this.jobs.values()].filter((j) => j.state !== 'running');
    for (const j of finished.slice(0, Math.max(0, finished.length - this.keepFinished))) this.jobs.delete(j.id);
  }
}
