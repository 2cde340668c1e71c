/**
 * Per-volume I/O counters for /metrics: operations, bytes and a latency
 * histogram of the media commands, taken at the SCSI device of a served
 * target (a wrapper around its execute(); the SCSI layer knows nothing of
 * it). Cumulative since the node started; survives the target being
 * removed and added again (failover, move).
 */
import type { VolumeIoCounters } from '../control';
import type { ScsiDevicePort } from '../../target/iscsi';

/** Histogram upper bounds in seconds (Prometheus-style, cumulative counts). */
export const LATENCY_BOUNDS_S: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** SBC opcodes counted as reads and as writes (others are not counted). */
const MEDIA_OPCODES: ReadonlyMap<number, 'read' | 'write'> = new Map([
  [0x08, 'read'], // READ (6)
  [0x28, 'read'], // READ (10)
  [0xa8, 'read'], // READ (12)
  [0x88, 'read'], // READ (16)
  [0x0a, 'write'], // WRITE (6)
  [0x2a, 'write'], // WRITE (10)
  [0xaa, 'write'], // WRITE (12)
  [0x8a, 'write'], // WRITE (16)
  [0x89, 'write'], // COMPARE AND WRITE
  [0x41, 'write'], // WRITE SAME (10)
  [0x93, 'write'], // WRITE SAME (16)
]);

class VolumeIo {
  readOps = 0;
  writeOps = 0;
  readBytes = 0;
  writeBytes = 0;
  readonly buckets = new Array<number>(LATENCY_BOUNDS_S.length).fill(0);
  sum = 0;
  count = 0;

  note(kind: 'read' | 'write', bytes: number, seconds: number): void {
    if (kind === 'read') {
      this.readOps++;
      this.readBytes += bytes;
    } else {
      this.writeOps++;
      this.writeBytes += bytes;
    }
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < LATENCY_BOUNDS_S.length; i++) {
      if (seconds <= LATENCY_BOUNDS_S[i]!) {
        this.buckets[i]!++;
        break;
      }
    }
  }
}

export class IoMetrics {
  private readonly volumes = new Map<string, VolumeIo>();

  /** `device` with its media commands counted under `volume`. */
  meter<D extends ScsiDevicePort>(volume: string, device: D): D {
    const io = this.volumes.get(volume) ?? new VolumeIo();
    this.volumes.set(volume, io);
    const execute = device.execute.bind(device);
    // Not async: one promise reaction per media command, not an async frame.
    const metered = (cmd: Parameters<ScsiDevicePort['execute']>[0]): ReturnType<ScsiDevicePort['execute']> => {
      const kind = MEDIA_OPCODES.get(cmd.cdb[0] ?? -1);
      if (!kind) return execute(cmd);
      const started = performance.now();
      return execute(cmd).then((res) => {
        let bytes = 0;
        if (kind === 'read') bytes = res.dataIn?.length ?? 0;
        else for (const b of cmd.dataOut ?? []) bytes += b.length;
        io.note(kind, bytes, (performance.now() - started) / 1000);
        return res;
      });
    };
    // Everything but execute() goes to the device itself (its methods keep
    // their `this`). Each method is bound once, not at every access: the
    // iSCSI layer reaches the device on every command.
    const bound = new Map<PropertyKey, { fn: unknown; bound: unknown }>();
    return new Proxy(device, {
      get(target, prop) {
        if (prop === 'execute') return metered;
        const value: unknown = Reflect.get(target, prop, target);
        if (typeof value !== 'function') return value;
        const hit = bound.get(prop);
        if (hit && hit.fn === value) return hit.bound;
        const b = (value as (...a: unknown[]) => unknown).bind(target);
        bound.set(prop, { fn: value, bound: b });
        return b;
      },
    });
  }

  forget(volume: string): void {
    this.volumes.delete(volume);
  }

  snapshot(): VolumeIoCounters[] {
    return [...this.volumes].map(([volume, io]) => {
      let acc = 0;
      const counts = io.buckets.map((c) => (acc += c));
      return {
        volume,
        readOps: io.readOps,
        writeOps: io.writeOps,
        readBytes: io.readBytes,
        writeBytes: io.writeBytes,
        latency: { bounds: LATENCY_BOUNDS_S, counts, sum: io.sum, count: io.count },
      };
    });
  }
}
