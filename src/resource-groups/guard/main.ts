/**
 * Entry of the node guard process (protocol.ts): `node main.js IFACE...`,
 * messages on stdin. Spawned by the node (NodeGuard), in its network
 * namespace. When the pipe ends without "release" the node is gone: remove
 * its alias IPs first (nothing may answer for them once the peer takes
 * them), then release its lease terms, then tell the peer.
 */
import { IpRoute2, runGuard } from '../../alias-ip';
import { RedisWitness } from '../witness';
import { releaseLeases, sendDeathNotice } from './duties';
import { NODE_GUARD_OPS, NodeGuardState, WitnessAddress, parseNodeGuardMessage } from './protocol';

const write = (level: number) => (fields: object, msg: string) =>
  process.stderr.write(`${JSON.stringify({ level, time: Date.now(), component: 'node-guard', pid: process.pid, ...fields, msg })}\n`);
const log = { info: write(30), warn: write(40) };

// The node's signals are not the guard's: it follows its pipe.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
log.info({ interfaces: process.argv.slice(2) }, 'node guard running');

const state = new NodeGuardState();
let witness: RedisWitness | null = null;
let witnessAt: WitnessAddress | null = null;

/** Connected ahead of need: at the node's death the release is one round trip. */
function connectWitness(): void {
  const want = state.duties().witness;
  if (want === witnessAt) return;
  void witness?.close();
  witnessAt = want;
  witness = want ? new RedisWitness({ connection: { host: want.host, port: want.port }, ...(want.keyPrefix ? { keyPrefix: want.keyPrefix } : {}), connectionName: 'twinsan-node-guard' }) : null;
}

async function main(): Promise<number> {
  const outcome = await runGuard(process.stdin, new IpRoute2(), log, process.argv.slice(2), {
    ops: NODE_GUARD_OPS,
    take: (line) => {
      state.apply(parseNodeGuardMessage(line));
      connectWitness();
    },
  });
  try {
    if (outcome.released) return 0;
    const duties = state.duties();
    if (outcome.failed.length > 0) {
      // An address still configured here would still answer ARP: the peer must not take it over before the lease runs out.
      log.warn({ leases: duties.leases }, 'guard: some alias addresses could not be removed; leaving the leases to run out');
    } else if (duties.leases.length > 0) {
      await witness?.ready(1_000).catch(() => undefined);
      await releaseLeases(duties, witness, log);
    }
    await sendDeathNotice(duties.notice, log);
    return outcome.failed.length > 0 ? 1 : 0;
  } finally {
    await witness?.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log.warn({ err: (err as Error).message }, 'node guard failed');
    process.exit(2);
  },
);
