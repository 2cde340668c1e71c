/**
 * What the node guard does once the node is gone (protocol.ts): release
 * the lease terms it held, then tell the peer. Each step is bounded and
 * logged; a failure costs the survivor time (the lease runs out on its own,
 * the liveness dead time passes), never safety.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { GuardLogger } from '../../alias-ip';
import type { Witness } from '../witness';
import type { DeathDuties, DeathNotice } from './protocol';

/** Copies of the notice sent (UDP may drop one), this far apart. */
const NOTICE_COPIES = 3;
const NOTICE_GAP_MS = 20;

/** Releases each lease term the node held; resolves with the groups whose term was released. */
export async function releaseLeases(duties: DeathDuties, witness: Witness | null, log: GuardLogger): Promise<string[]> {
  if (duties.leases.length === 0) return [];
  if (!witness || !duties.witness) {
    log.warn({ leases: duties.leases }, 'guard: the node died holding leases but no witness address was given; they run out on their own');
    return [];
  }
  const results = await Promise.allSettled(duties.leases.map((l) => witness.release(l.rg, duties.witness!.node, l.epoch)));
  const released: string[] = [];
  results.forEach((r, i) => {
    const l = duties.leases[i]!;
    if (r.status === 'fulfilled' && r.value) released.push(l.rg);
    else if (r.status === 'rejected') log.warn({ rg: l.rg, epoch: l.epoch, err: (r.reason as Error).message }, 'guard: cannot release the lease; it runs out on its own');
  });
  if (released.length > 0) log.warn({ released }, 'guard: the node died holding these leases; released them');
  return released;
}

/** Sends the node's signed death notice to the peer's heartbeat port a few times. */
export async function sendDeathNotice(notice: DeathNotice | null, log: GuardLogger): Promise<boolean> {
  if (!notice) return false;
  const socket = dgram.createSocket({ type: net.isIPv6(notice.from) ? 'udp6' : 'udp4' });
  socket.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, notice.from, () => resolve());
    });
    for (let i = 0; i < NOTICE_COPIES; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, NOTICE_GAP_MS));
      await new Promise<void>((resolve, reject) => socket.send(notice.datagram, notice.port, notice.host, (err) => (err ? reject(err) : resolve())));
    }
    log.info({ peer: `${notice.host}:${notice.port}` }, 'guard: told the peer this node died');
    return true;
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'guard: cannot send the death notice; the peer finds out by silence');
    return false;
  } finally {
    socket.close();
  }
}
