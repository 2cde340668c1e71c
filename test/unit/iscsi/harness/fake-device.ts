/**
 * A ScsiDevicePort for end-to-end tests of the iSCSI layer.
 *
 * Commands go to a real ScsiTargetDevice with one LogicalUnit over a
 * MemoryBackingStore (so written data can be read back from the store),
 * unless a scripted answer is registered for the CDB's opcode. Every command,
 * task management call and lost nexus is recorded. `hold()` parks commands
 * before they reach the device until `release()`, to keep tasks in flight.
 */
import pino, { Logger } from 'pino';
import { MemoryBackingStore } from '../../../../src/block';
import { IscsiServer, IscsiServerOptions } from '../../../../src/target/iscsi/server';
import { IscsiTarget, ScsiDevicePort } from '../../../../src/target/iscsi/target-port';
import {
  ItNexus,
  LogicalUnit,
  ScsiCommand,
  ScsiResponse,
  ScsiTargetDevice,
  TaskManagementFunction,
} from '../../../../src/target/scsi';
import { LoginOptions, TestInitiator } from './initiator';

export interface RecordedCommand {
  readonly lun: number;
  readonly opcode: number;
  readonly cdb: Buffer;
  readonly edtl: number;
  readonly dataOut: Buffer | null;
  readonly nexusKey: string;
  /** Set once the device answered. */
  finished: boolean;
}

export interface RecordedTmf {
  readonly fn: TaskManagementFunction;
  readonly lun: number;
}

export const BLOCK = 512;

export class FakeDevice implements ScsiDevicePort {
  readonly store: MemoryBackingStore;
  readonly inner: ScsiTargetDevice;
  readonly commands: RecordedCommand[] = [];
  readonly tmfs: RecordedTmf[] = [];
  readonly lostNexuses: string[] = [];
  /** Commands parked by hold(), in arrival order. */
  private held: Array<() => void> = [];
  private holding = false;
  private readonly scripts = new Map<number, (cmd: ScsiCommand) => ScsiResponse | Promise<ScsiResponse>>();
  private readonly watchers: Array<() => void> = [];

  constructor(options: { blocks?: number; luns?: number[] } = {}) {
    this.store = new MemoryBackingStore((options.blocks ?? 2048) * BLOCK);
    const luns = new Map<number, LogicalUnit>();
    for (const lun of options.luns ?? [0]) {
      const store = lun === (options.luns ?? [0])[0] ? this.store : new MemoryBackingStore((options.blocks ?? 2048) * BLOCK);
      luns.set(lun, new LogicalUnit({ store, blockSize: BLOCK, identity: { volumeId: `00000000-0000-4000-8000-${String(lun).padStart(12, '0')}` } }));
    }
    this.inner = new ScsiTargetDevice({ name: 'iqn.2026-01.test.twinsan:fake', luns });
  }

  /** Answer commands with this opcode from `fn` instead of the real device. */
  script(opcode: number, fn: (cmd: ScsiCommand) => ScsiResponse | Promise<ScsiResponse>): void {
    this.scripts.set(opcode, fn);
  }

  /** Park every command that arrives from now on. */
  hold(): void {
    this.holding = true;
  }

  /** Let the parked commands (the first `n`, or all) go on; stop holding when all are released. */
  release(n?: number): void {
    const go = n === undefined ? this.held.splice(0) : this.held.splice(0, n);
    if (n === undefined) this.holding = false;
    for (const g of go) g();
  }

  get heldCount(): number {
    return this.held.length;
  }

  get finishedCount(): number {
    return this.commands.filter((c) => c.finished).length;
  }

  /** Resolves once `count` commands have reached the device (held or not). */
  async waitForCommands(count: number, timeoutMs = 2000): Promise<void> {
    await this.waitFor(() => this.commands.length >= count, timeoutMs, `${count} commands`);
  }

  /** Resolves once `count` commands are parked by hold(). */
  async waitForHeld(count: number, timeoutMs = 2000): Promise<void> {
    await this.waitFor(() => this.held.length >= count, timeoutMs, `${count} held commands`);
  }

  private async waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`device did not see ${what} within ${timeoutMs} ms (saw ${this.commands.length})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 20);
        this.watchers.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  private notify(): void {
    for (const w of this.watchers.splice(0)) w();
  }

  async execute(cmd: ScsiCommand): Promise<ScsiResponse> {
    const record: RecordedCommand = {
      lun: cmd.lun,
      opcode: cmd.cdb[0]!,
      cdb: Buffer.from(cmd.cdb),
      edtl: cmd.expectedDataTransferLength,
      dataOut: cmd.dataOut ? Buffer.concat(cmd.dataOut as Buffer[]) : null,
      nexusKey: cmd.nexus.key,
      finished: false,
    };
    this.commands.push(record);
    if (this.holding) {
      const parked = new Promise<void>((r) => this.held.push(r));
      this.notify();
      await parked;
    } else {
      this.notify();
    }
    try {
      const script = this.scripts.get(record.opcode);
      return await (script ? script(cmd) : this.inner.execute(cmd));
    } finally {
      record.finished = true;
      this.notify();
    }
  }

  taskManagement(fn: TaskManagementFunction, nexus: ItNexus, lun: number): string {
    this.tmfs.push({ fn, lun });
    return this.inner.taskManagement(fn, nexus, lun);
  }

  nexusLost(nexus: ItNexus): void {
    this.lostNexuses.push(nexus.key);
    this.inner.nexusLost(nexus);
  }

  dataOutLength(cmd: { nexus: ItNexus; lun: number; cdb: Buffer }): number {
    return this.inner.dataOutLength(cmd);
  }

  isMoving(lun: number): boolean {
    return this.inner.isMoving(lun);
  }

  luns(): number[] {
    return this.inner.luns();
  }

  /** Bytes of LUN 0's store. */
  async readStore(offset: number, length: number): Promise<Buffer> {
    return this.store.read(offset, length);
  }
}

/* ---------------- a served target for tests ---------------- */

export const TARGET = 'iqn.2026-01.test.twinsan:disk0';

export interface TestTarget {
  readonly server: IscsiServer;
  readonly port: number;
  readonly device: FakeDevice;
  /** Connect an initiator (closed by stop()). */
  connect(): Promise<TestInitiator>;
  /** Connect and log in to TARGET (or as given); throws unless the login succeeds. */
  loggedIn(login?: LoginOptions): Promise<TestInitiator>;
  /** Close every initiator and the server. */
  stop(): Promise<void>;
}

export interface TestTargetOptions {
  readonly server?: Partial<Omit<IscsiServerOptions, 'log'>>;
  readonly target?: Partial<Omit<IscsiTarget, 'device'>>;
  /** More targets to serve (each with its own FakeDevice). */
  readonly extraTargets?: ReadonlyArray<Partial<Omit<IscsiTarget, 'device'>> & { name: string }>;
  readonly device?: ConstructorParameters<typeof FakeDevice>[0];
}

/** pino, silent unless TWINSAN_TEST_LOG names a level. */
export function testLogger(): Logger {
  return pino({ level: process.env['TWINSAN_TEST_LOG'] ?? 'silent' });
}

export async function startTestTarget(options: TestTargetOptions = {}): Promise<TestTarget> {
  const device = new FakeDevice(options.device);
  const server = new IscsiServer({
    log: testLogger(),
    ...options.server,
    // Pings are off unless a test asks for them: they would interleave with what it reads.
    timers: { loginTimeoutMs: 5000, nopInIntervalMs: 0, nopInTimeoutMs: 5000, ...options.server?.timers },
  });
  server.addTarget({ name: TARGET, device, allowedInitiators: null, ...options.target });
  for (const extra of options.extraTargets ?? []) server.addTarget({ device: new FakeDevice(), allowedInitiators: null, ...extra });
  const port = await server.listen('127.0.0.1', 0);
  const clients: TestInitiator[] = [];
  const connectOne = async (): Promise<TestInitiator> => {
    const c = await TestInitiator.connect(port);
    clients.push(c);
    return c;
  };
  return {
    server,
    port,
    device,
    connect: connectOne,
    async loggedIn(login: LoginOptions = {}): Promise<TestInitiator> {
      const c = await connectOne();
      const out = await c.login({ targetName: TARGET, ...login });
      if (out.status[0] !== 0) throw new Error(`login failed with status ${out.status.join('/')}`);
      return c;
    },
    async stop(): Promise<void> {
      device.release();
      for (const c of clients) c.destroy();
      await Promise.race([server.close(), new Promise((r) => setTimeout(r, 3000))]);
    },
  };
}
