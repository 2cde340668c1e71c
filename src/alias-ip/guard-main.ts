/**
 * Entry of the alias guard process (see guard.ts): `node guard-main.js IFACE...`,
 * messages on stdin. Spawned by the node, in its network namespace.
 */
import { runGuard } from './guard';
import { IpRoute2 } from './iproute';

const log = {
  info: (fields: object, msg: string) => process.stderr.write(`${JSON.stringify({ level: 30, time: Date.now(), component: 'alias-guard', pid: process.pid, ...fields, msg })}\n`),
  warn: (fields: object, msg: string) => process.stderr.write(`${JSON.stringify({ level: 40, time: Date.now(), component: 'alias-guard', pid: process.pid, ...fields, msg })}\n`),
};

// The node's signals are not the guard's: it follows its pipe (guard.ts).
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
// Said once those handlers are in: from here on a signal does not end the guard.
log.info({ interfaces: process.argv.slice(2) }, 'alias guard running');

runGuard(process.stdin, new IpRoute2(), log, process.argv.slice(2)).then(
  (outcome) => process.exit(outcome.failed.length > 0 ? 1 : 0),
  (err: unknown) => {
    log.warn({ err: (err as Error).message }, 'alias guard failed');
    process.exit(2);
  },
);
