/**
 * The iSCSI target server: listens on portals, accepts connections, keeps
 * the targets it serves and the sessions logged in to them (TSIH
 * allocation, session reinstatement), and answers SendTargets.
 */
import { Server, Socket, createServer } from 'node:net';
import { Logger } from 'pino';
import { Connection, ConnectionHost, ConnectionTimers } from './connection';
import { SendTargetsDirectory } from './discovery';
import { LoginContext, LoginMachine } from './login';
import { LoginPdu } from './pdu';
import { Session, SessionGroup, SessionType } from './session';
import { ChapSecrets, IscsiTarget, initiatorAllowed, makeNexus } from './target-port';

export interface IscsiServerOptions {
  readonly log: Logger;
  /** Target portal group tag reported at login and in SendTargets. */
  readonly portalGroupTag?: number;
  /** Relative target port id of this server's target port (SPC-4). */
  readonly relativeTargetPortId?: number;
  readonly timers?: Partial<ConnectionTimers>;
  /** Commands each session may have queued or running (the CmdSN window). */
  readonly cmdWindow?: number;
  /** CHAP required on discovery sessions, if set. */
  readonly discoveryChap?: ChapSecrets | null;
  /** Target-side negotiation limits (see params.ts). */
  readonly limits?: LoginContext['limits'];
}

export const DEFAULT_TIMERS: ConnectionTimers = {
  loginTimeoutMs: 15_000,
  nopInIntervalMs: 5_000,
  nopInTimeoutMs: 15_000,
};

export interface SessionInfo {
  readonly tsih: number;
  readonly initiatorName: string;
  readonly isid: string;
  readonly target: string | null;
  readonly type: SessionType;
  readonly remoteAddress: string;
  readonly localAddress: string;
  /** When the session was established (ISO time). */
  readonly since: string;
}

/** A logged-in session, its connection, and the CHAP credentials it authenticated with (null: none). */
interface SessionEntry {
  readonly session: Session;
  readonly conn: Connection;
  readonly since: Date;
  readonly credentials: ChapSecrets | null;
}

/** Why a session already logged in loses its access after the target's rules change; the first that applies ends it. */
const SESSION_REVOKED: ReadonlyArray<{ readonly reason: string; applies(t: IscsiTarget, s: SessionEntry): boolean }> = [
  { reason: 'initiator no longer allowed', applies: (t, s) => !initiatorAllowed(t, s.session.initiatorName) },
  { reason: 'CHAP credentials changed', applies: (t, s) => t.chap !== undefined && !sameCredentials(t.chap, s.credentials) },
];

function sameCredentials(a: ChapSecrets, b: ChapSecrets | null): boolean {
  return b !== null && a.user === b.user && a.secret === b.secret && a.mutualUser === b.mutualUser && a.mutualSecret === b.mutualSecret;
}

export class IscsiServer implements ConnectionHost, SessionGroup, SendTargetsDirectory {
  readonly log: Logger;
  readonly timers: ConnectionTimers;
  readonly portalGroupTag: number;
  private readonly relativeTargetPortId: number;
  private readonly cmdWindow: number;
  private readonly discoveryChap: ChapSecrets | null;
  private readonly limits: LoginContext['limits'];
  private readonly targets = new Map<string, IscsiTarget>();
  private readonly listeners: Server[] = [];
  private readonly connections = new Set<Connection>();
  private readonly sessions = new Map<number, SessionEntry>();
  private nextConnectionId = 1;
  private nextTsih = 1;
  private stopping = false;

  constructor(options: IscsiServerOptions) {
    this.log = options.log;
    this.timers = { ...DEFAULT_TIMERS, ...options.timers };
    this.portalGroupTag = options.portalGroupTag ?? 1;
    this.relativeTargetPortId = options.relativeTargetPortId ?? 1;
    this.cmdWindow = options.cmdWindow ?? 128;
    this.discoveryChap = options.discoveryChap ?? null;
    this.limits = options.limits;
  }

  /* ---------------- targets ---------------- */

  addTarget(target: IscsiTarget): void {
    if (this.targets.has(target.name)) throw new Error(`target ${target.name} is already served`);
    this.targets.set(target.name, target);
  }

  /** Stop serving a target; its sessions are dropped. */
  async removeTarget(name: string): Promise<void> {
    this.targets.delete(name);
    const closing = [...this.sessions.values()].filter((s) => s.session.target?.name === name).map((s) => s.conn.shutdown());
    await Promise.all(closing);
  }

  /**
   * Changes who may log in to a served target: the initiator ACL and CHAP (null: none). Sessions
   * the new rules would not have let in are dropped at once (SESSION_REVOKED): an initiator taken
   * off the list, and, when CHAP is required, a session that did not authenticate with exactly the
   * new credentials (CHAP turned on, user/secret or mutual CHAP changed), so it logs in again under
   * the new rules. Sessions still allowed are untouched.
   */
  updateTargetAccess(name: string, access: { readonly allowedInitiators: readonly string[] | null; readonly chap: ChapSecrets | null }): void {
    const t = this.targets.get(name);
    if (!t) throw new Error(`target ${name} is not served`);
    const { chap: _old, ...rest } = t;
    const updated: IscsiTarget = { ...rest, allowedInitiators: access.allowedInitiators, ...(access.chap ? { chap: access.chap } : {}) };
    this.targets.set(name, updated);
    for (const entry of [...this.sessions.values()]) {
      if (entry.session.target?.name !== name) continue;
      const revoked = SESSION_REVOKED.find((rule) => rule.applies(updated, entry));
      if (revoked) entry.conn.fail(`access to ${name} changed: ${revoked.reason}`);
    }
  }

  /**
   * Changes the portals a served target is listed and logged in to (a resource group's alias IPs
   * changed at run time). Sessions made through an address no longer among them are ended: that
   * address is going away, and an initiator must log in again through a current one.
   */
  async updateTargetPortals(name: string, portals: readonly string[]): Promise<void> {
    const t = this.targets.get(name);
    if (!t) throw new Error(`target ${name} is not served`);
    const updated: IscsiTarget = { ...t, portals: [...portals] };
    this.targets.set(name, updated);
    const stale = [...this.sessions.values()].filter((s) => s.session.target?.name === name && !servedAt(updated, s.conn.localAddress));
    await Promise.all(stale.map((s) => s.conn.shutdown()));
  }

  listTargets(): IscsiTarget[] {
    return [...this.targets.values()];
  }

  /** The targets SendTargets lists to a connection made to `localAddress`: those without portals, and those with it among theirs. */
  targetsAt(localAddress: string, _localPort: number): Iterable<IscsiTarget> {
    return [...this.targets.values()].filter((t) => servedAt(t, localAddress));
  }

  /* ---------------- portals ---------------- */

  /** Stop listening on one portal (an alias IP going away); sessions already made through it stay until their target is removed. */
  async unlisten(host: string, port: number): Promise<boolean> {
    const i = this.listeners.findIndex((l) => {
      const addr = l.address();
      return typeof addr === 'object' && addr !== null && plainAddress(addr.address) === plainAddress(host) && addr.port === port;
    });
    if (i < 0) return false;
    const [server] = this.listeners.splice(i, 1);
    // close() stops accepting at once; its callback would wait for every connection accepted
    // here to end, and those are ended by removeTarget() or close(), not by this.
    server!.close();
    return true;
  }

  /** Listen on a portal; resolves with the bound port. */
  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.accept(socket));
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error({ err }, 'portal error'));
        this.listeners.push(server);
        const addr = server.address();
        const bound = typeof addr === 'object' && addr ? addr.port : port;
        this.log.info({ host, port: bound }, 'portal listening');
        resolve(bound);
      });
    });
  }

  private accept(socket: Socket): void {
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, this, this.nextConnectionId++);
    this.connections.add(conn);
    conn.log.debug('connection accepted');
  }

  /* ---------------- ConnectionHost ---------------- */

  newLoginMachine(localAddress: string, _localPort: number): LoginMachine {
    return new LoginMachine({
      portalGroupTag: this.portalGroupTag,
      findTarget: (name: string) => {
        const t = this.targets.get(name);
        if (!t) return null;
        return {
          name: t.name,
          ...(t.alias !== undefined ? { alias: t.alias } : {}),
          initiatorAllowed: (initiator: string) => initiatorAllowed(t, initiator),
          ...(t.chap ? { chap: t.chap } : {}),
          // A resource group's target is reached only through its alias IPs, never a node's own address.
          atThisPortal: servedAt(t, localAddress),
        };
      },
      discoveryChap: this.discoveryChap,
      ...(this.limits ? { limits: this.limits } : {}),
    });
  }

  findSession(tsih: number): Session | null {
    return this.sessions.get(tsih)?.session ?? null;
  }

  establishSession(conn: Connection, login: LoginPdu, machine: LoginMachine): Session {
    const result = machine.result!;
    const type = result.sessionType === 'Discovery' ? SessionType.DISCOVERY : SessionType.NORMAL;
    const target = type === SessionType.NORMAL ? (this.targets.get(result.targetName ?? '') ?? null) : null;
    // Session reinstatement: same initiator port (name + ISID) to the same target.
    for (const [tsih, entry] of this.sessions) {
      const s = entry.session;
      if (s.initiatorName === result.initiatorName && s.isid.equals(login.isid) && (s.target?.name ?? null) === (target?.name ?? null) && s.type === type) {
        conn.log.info({ oldSession: tsih }, 'session reinstatement: closing the old session');
        this.sessions.delete(tsih);
        entry.conn.fail('session reinstated by a new login');
      }
    }
    const tsih = this.allocateTsih();
    const nexus = target ? makeNexus(result.initiatorName, login.isid, target.name, this.portalGroupTag, this.relativeTargetPortId) : null;
    const session = new Session({
      tsih,
      isid: login.isid,
      initiatorName: result.initiatorName,
      type,
      target,
      nexus,
      params: result.session,
      expCmdSN: login.cmdSN,
      cmdWindow: this.cmdWindow,
      directory: this,
      group: this,
      log: conn.log.child({ session: tsih, target: target?.name }),
    });
    this.sessions.set(tsih, { session, conn, since: new Date(), credentials: result.credentials });
    return session;
  }

  private allocateTsih(): number {
    for (let i = 0; i < 0xffff; i++) {
      const tsih = this.nextTsih;
      this.nextTsih = this.nextTsih >= 0xffff ? 1 : this.nextTsih + 1;
      if (!this.sessions.has(tsih)) return tsih;
    }
    throw new Error('no free TSIH');
  }

  connectionClosed(conn: Connection): void {
    this.connections.delete(conn);
    const session = conn.session;
    if (session && this.sessions.get(session.tsih)?.conn === conn) this.sessions.delete(session.tsih);
    conn.log.info({ reason: conn.closeReason }, 'connection closed');
  }

  /* ---------------- SessionGroup ---------------- */

  *sessionsOf(targetName: string): Iterable<Session> {
    for (const { session } of this.sessions.values()) if (session.target?.name === targetName) yield session;
  }

  /**
   * Abort, without responses, the tasks on `lun` of the sessions whose I_T
   * nexus is listed (the SCSI device's PREEMPT AND ABORT hook).
   */
  async abortTasks(targetName: string, lun: number, nexusKeys: readonly string[]): Promise<void> {
    const keys = new Set(nexusKeys);
    const victims = [...this.sessionsOf(targetName)].filter((s) => s.nexus !== null && keys.has(s.nexus.key));
    await Promise.all(victims.map((s) => s.abortTasksOnLun(lun)));
  }

  dropSessionsOf(targetName: string): void {
    for (const { session, conn } of [...this.sessions.values()]) {
      if (session.target?.name === targetName) conn.endAfterFlush('target cold reset');
    }
  }

  /** Connections accepted and not yet closed (in login or logged in). */
  get connectionCount(): number {
    return this.connections.size;
  }

  listSessions(): SessionInfo[] {
    return [...this.sessions.values()].map(({ session, conn, since }) => ({
      tsih: session.tsih,
      initiatorName: session.initiatorName,
      isid: session.isid.toString('hex'),
      target: session.target?.name ?? null,
      type: session.type,
      remoteAddress: conn.remoteAddress,
      localAddress: `${conn.localAddress}:${conn.localPort}`,
      since: since.toISOString(),
    }));
  }

  /* ---------------- shutdown ---------------- */

  /** Stop listening, let in-flight commands finish, close every connection. */
  async close(): Promise<void> {
    this.stopping = true;
    // net.Server#close calls back only once every accepted connection has
    // ended, so stop accepting first, shut the connections down, then wait.
    const closed = this.listeners.map((l) => new Promise<void>((r) => l.close(() => r())));
    this.listeners.length = 0;
    await Promise.all([...this.connections].map((c) => c.shutdown()));
    await Promise.all(closed);
  }
}

/** Whether a connection made to `localAddress` reaches the target: it has no portals, or the address is one of them. */
function servedAt(t: IscsiTarget, localAddress: string): boolean {
  if (t.portals === undefined) return true;
  const address = plainAddress(localAddress);
  return t.portals.some((p) => plainAddress(p) === address);
}

/** An address as compared for portals: IPv4-mapped IPv6 as IPv4, lower case, without brackets. */
function plainAddress(address: string): string {
  const a = address.replace(/^\[|\]$/g, '').toLowerCase();
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}
