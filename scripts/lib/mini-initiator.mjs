// A minimal iSCSI initiator for benchmarks and e2e tests: one connection,
// login straight into the operational stage (no authentication), then READ
// (10), WRITE (10), PERSISTENT RESERVE IN/OUT and TEST UNIT READY with
// immediate data and R2T answering, one command at a time or many in
// flight. Enough to hold sessions open and push some I/O through them (the
// 64-session memory measurement of scripts/bench.mjs, the failover e2e
// tests); it is not a conformance tool and checks only what it needs to keep
// going. A command that does not end GOOD rejects with a ScsiStatusError
// carrying the status and the sense key / ASC / ASCQ.
//
// Wire layout per RFC 7143 §11, written here by hand.

import net from 'node:net';

const OP = { SCSI_COMMAND: 0x01, LOGIN_REQUEST: 0x03, DATA_OUT: 0x05, LOGOUT_REQUEST: 0x06 };
const IN = { SCSI_RESPONSE: 0x21, LOGIN_RESPONSE: 0x23, DATA_IN: 0x25, LOGOUT_RESPONSE: 0x26, R2T: 0x31, NOP_IN: 0x20, REJECT: 0x3f };

/** SCSI status values the tests look at. */
export const ScsiStatus = { GOOD: 0x00, CHECK_CONDITION: 0x02, BUSY: 0x08, RESERVATION_CONFLICT: 0x18, TASK_SET_FULL: 0x28 };

/** A command ended with a status other than GOOD. */
export class ScsiStatusError extends Error {
  constructor(itt, status, sense) {
    const fields = parseSense(sense);
    super(
      `command 0x${itt.toString(16)} ended with SCSI status 0x${status.toString(16)}` +
        (fields ? ` (sense key ${fields.key.toString(16)}h, ASC ${fields.asc.toString(16)}h, ASCQ ${fields.ascq.toString(16)}h)` : ''),
    );
    this.name = 'ScsiStatusError';
    this.status = status;
    this.sense = fields;
  }
}

/** Sense key / ASC / ASCQ from fixed (70h/71h) or descriptor (72h/73h) sense data; null when absent. */
export function parseSense(sense) {
  if (!sense || sense.length < 8) return null;
  const code = sense[0] & 0x7f;
  if (code === 0x72 || code === 0x73) return { key: sense[1] & 0x0f, asc: sense[2], ascq: sense[3] };
  if (sense.length < 14) return null;
  return { key: sense[2] & 0x0f, asc: sense[12], ascq: sense[13] };
}

function pad4(n) {
  return (4 - (n & 3)) & 3;
}

function textData(pairs) {
  return Buffer.from(Object.entries(pairs).map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

function parseText(buf) {
  const out = {};
  for (const kv of buf.toString('utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

export class MiniInitiator {
  constructor({ host, port, targetName, initiatorName, isid }) {
    this.host = host;
    this.port = port;
    this.targetName = targetName;
    this.initiatorName = initiatorName;
    this.isid = isid; // 6 bytes
    this.cmdSN = 1;
    this.expStatSN = 0;
    this.nextItt = 1;
    this.pending = new Map(); // itt -> { resolve, reject, chunks, write, data }
    this.targetMaxRecv = 8192;
    this.rx = [];
    this.rxBytes = 0;
    this.loginWaiter = null;
    /** LUN the commands address (single-level, < 256). */
    this.lun = 0;
  }

  async connect() {
    this.socket = net.connect({ host: this.host, port: this.port });
    this.socket.setNoDelay(true);
    await new Promise((resolve, reject) => {
      this.socket.once('connect', resolve);
      this.socket.once('error', reject);
    });
    this.socket.on('data', (c) => this.onData(c));
    this.socket.on('error', (e) => this.failAll(e));
    this.socket.on('close', () => this.failAll(new Error('connection closed')));
  }

  failAll(err) {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.loginWaiter?.reject(err);
    this.loginWaiter = null;
  }

  send(bhs, data) {
    const parts = [bhs];
    if (data && data.length) {
      parts.push(data);
      const p = pad4(data.length);
      if (p) parts.push(Buffer.alloc(p));
    }
    this.socket.write(parts.length === 1 ? bhs : Buffer.concat(parts));
  }

  header(opcode, flags, dataLength) {
    const b = Buffer.alloc(48);
    b[0] = opcode;
    b[1] = flags;
    b.writeUIntBE(dataLength, 5, 3);
    return b;
  }

  async login() {
    const keys = {
      InitiatorName: this.initiatorName,
      TargetName: this.targetName,
      SessionType: 'Normal',
      HeaderDigest: 'None',
      DataDigest: 'None',
      MaxRecvDataSegmentLength: '262144',
      InitialR2T: 'No',
      ImmediateData: 'Yes',
      MaxBurstLength: '262144',
      FirstBurstLength: '65536',
      MaxOutstandingR2T: '1',
      DefaultTime2Wait: '0',
      DefaultTime2Retain: '0',
      ErrorRecoveryLevel: '0',
    };
    let data = textData(keys);
    for (let step = 0; step < 4; step++) {
      const b = this.header(OP.LOGIN_REQUEST | 0x40, 0x80 | (1 << 2) | 3, data.length); // T, CSG=1, NSG=3
      this.isid.copy(b, 8);
      b.writeUInt32BE(0, 16); // ITT
      b.writeUInt32BE(this.cmdSN, 24);
      b.writeUInt32BE(this.expStatSN, 28);
      const resp = await new Promise((resolve, reject) => {
        this.loginWaiter = { resolve, reject };
        this.send(b, data);
      });
      const status = (resp.bhs[36] << 8) | resp.bhs[37];
      if (status !== 0) throw new Error(`login to ${this.targetName} failed with status 0x${status.toString(16)}`);
      const got = parseText(resp.data);
      if (got.MaxRecvDataSegmentLength) this.targetMaxRecv = Number(got.MaxRecvDataSegmentLength);
      if (got.FirstBurstLength) this.firstBurst = Number(got.FirstBurstLength);
      if (got.ImmediateData) this.immediateData = got.ImmediateData === 'Yes';
      if (got.InitialR2T) this.initialR2T = got.InitialR2T === 'Yes';
      this.expStatSN = (resp.bhs.readUInt32BE(24) + 1) >>> 0;
      if ((resp.bhs[1] & 0x80) && (resp.bhs[1] & 0x03) === 3) return;
      data = Buffer.alloc(0);
    }
    throw new Error('login did not reach full feature phase');
  }

  onData(chunk) {
    this.rx.push(chunk);
    this.rxBytes += chunk.length;
    for (;;) {
      if (this.rxBytes < 48) return;
      const head = this.rx.length === 1 ? this.rx[0] : Buffer.concat(this.rx);
      this.rx = [head];
      const ahs = head[4] * 4;
      const dlen = head.readUIntBE(5, 3);
      const total = 48 + ahs + dlen + pad4(dlen);
      if (head.length < total) return;
      const bhs = head.subarray(0, 48);
      const data = head.subarray(48 + ahs, 48 + ahs + dlen);
      const rest = head.subarray(total);
      this.rx = rest.length ? [rest] : [];
      this.rxBytes = rest.length;
      this.onPdu(bhs, data);
    }
  }

  onPdu(bhs, data) {
    const op = bhs[0] & 0x3f;
    const itt = bhs.readUInt32BE(16);
    switch (op) {
      case IN.LOGIN_RESPONSE: {
        const w = this.loginWaiter;
        this.loginWaiter = null;
        w?.resolve({ bhs: Buffer.from(bhs), data: Buffer.from(data) });
        return;
      }
      case IN.DATA_IN: {
        const p = this.pending.get(itt);
        if (p) p.chunks.push(Buffer.from(data));
        if (bhs[1] & 0x01) {
          this.expStatSN = (bhs.readUInt32BE(24) + 1) >>> 0;
          this.finish(itt, bhs[3], null);
        }
        return;
      }
      case IN.SCSI_RESPONSE: {
        this.expStatSN = (bhs.readUInt32BE(24) + 1) >>> 0;
        // The data segment of a response with CHECK CONDITION: SenseLength (2 bytes), then the sense data.
        const sense = data.length >= 2 ? Buffer.from(data.subarray(2, 2 + data.readUInt16BE(0))) : null;
        this.finish(itt, bhs[3], sense);
        return;
      }
      case IN.R2T: {
        const p = this.pending.get(itt);
        if (!p) return;
        const ttt = bhs.readUInt32BE(20);
        const offset = bhs.readUInt32BE(40);
        const length = bhs.readUInt32BE(44);
        let sn = 0;
        for (let at = offset; at < offset + length; ) {
          const n = Math.min(this.targetMaxRecv, offset + length - at);
          const last = at + n >= offset + length;
          const b = this.header(OP.DATA_OUT, last ? 0x80 : 0, n);
          bhs.copy(b, 8, 8, 16);
          b.writeUInt32BE(itt, 16);
          b.writeUInt32BE(ttt, 20);
          b.writeUInt32BE(this.expStatSN, 28);
          b.writeUInt32BE(sn++, 36);
          b.writeUInt32BE(at, 40);
          this.send(b, p.data.subarray(at, at + n));
          at += n;
        }
        return;
      }
      case IN.NOP_IN: {
        // Answer a ping (target transfer tag set) with a NOP-Out.
        const ttt = bhs.readUInt32BE(20);
        if (ttt === 0xffffffff) return;
        const b = this.header(0x00 | 0x40, 0x80, 0);
        bhs.copy(b, 8, 8, 16);
        b.writeUInt32BE(0xffffffff, 16);
        b.writeUInt32BE(ttt, 20);
        b.writeUInt32BE(this.cmdSN, 24);
        b.writeUInt32BE(this.expStatSN, 28);
        this.send(b);
        return;
      }
      case IN.LOGOUT_RESPONSE:
        this.finish(itt, 0, null);
        return;
      default:
        this.failAll(new Error(`unexpected PDU opcode 0x${op.toString(16)}`));
    }
  }

  finish(itt, status, sense) {
    const p = this.pending.get(itt);
    if (!p) return;
    this.pending.delete(itt);
    if (status !== 0) p.reject(new ScsiStatusError(itt, status, sense));
    else p.resolve(p.chunks.length === 1 ? p.chunks[0] : Buffer.concat(p.chunks));
  }

  command(cdb, { read = 0, write = null } = {}) {
    const itt = this.nextItt++;
    const edtl = write ? write.length : read;
    const immediate = write && this.immediateData !== false ? Math.min(write.length, this.firstBurst ?? 65536, this.targetMaxRecv) : 0;
    const unsolicitedDone = !write || this.initialR2T !== false || immediate >= write.length;
    const b = this.header(OP.SCSI_COMMAND, (unsolicitedDone ? 0x80 : 0) | (read ? 0x40 : 0) | (write ? 0x20 : 0) | 0x01, immediate);
    b[9] = this.lun;
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(edtl, 20);
    b.writeUInt32BE(this.cmdSN, 24);
    this.cmdSN = (this.cmdSN + 1) >>> 0;
    b.writeUInt32BE(this.expStatSN, 28);
    cdb.copy(b, 32);
    return new Promise((resolve, reject) => {
      this.pending.set(itt, { resolve, reject, chunks: [], data: write });
      this.send(b, immediate ? write.subarray(0, immediate) : null);
      if (!unsolicitedDone) {
        // Unsolicited Data-Out up to FirstBurstLength (InitialR2T=No).
        const limit = Math.min(write.length, this.firstBurst ?? 65536);
        let sn = 0;
        for (let at = immediate; at < limit; ) {
          const n = Math.min(this.targetMaxRecv, limit - at);
          const last = at + n >= limit;
          const d = this.header(OP.DATA_OUT, last ? 0x80 : 0, n);
          d[9] = this.lun;
          d.writeUInt32BE(itt, 16);
          d.writeUInt32BE(0xffffffff, 20);
          d.writeUInt32BE(this.expStatSN, 28);
          d.writeUInt32BE(sn++, 36);
          d.writeUInt32BE(at, 40);
          this.send(d, write.subarray(at, at + n));
          at += n;
        }
      }
    });
  }

  /** TEST UNIT READY until GOOD: takes the unit attention a new nexus gets (POWER ON, RESET...). */
  async ready(tries = 4) {
    for (let i = 0; ; i++) {
      try {
        return await this.command(Buffer.alloc(16));
      } catch (err) {
        if (i + 1 >= tries) throw err;
      }
    }
  }

  read10(lba, blocks, blockSize = 512) {
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x28;
    cdb.writeUInt32BE(lba, 2);
    cdb.writeUInt16BE(blocks, 7);
    return this.command(cdb, { read: blocks * blockSize });
  }

  write10(lba, data, blockSize = 512) {
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x2a;
    cdb.writeUInt32BE(lba, 2);
    cdb.writeUInt16BE(data.length / blockSize, 7);
    return this.command(cdb, { write: data });
  }

  /** PERSISTENT RESERVE IN: READ KEYS (0) or READ RESERVATION (1); resolves with the parameter data. */
  persistentReserveIn(serviceAction, allocationLength = 1024) {
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x5e;
    cdb[1] = serviceAction & 0x1f;
    cdb.writeUInt16BE(allocationLength, 7);
    return this.command(cdb, { read: allocationLength });
  }

  /**
   * PERSISTENT RESERVE OUT with the basic 24-byte parameter list: service
   * action (0 REGISTER, 1 RESERVE, 2 RELEASE, 6 REGISTER AND IGNORE...),
   * TYPE (1 WE, 3 EA, 5 WE-RO, 6 EA-RO...), keys as bigint, flags byte 20
   * (ALL_TG_PT 0x04, APTPL 0x01).
   */
  persistentReserveOut(serviceAction, { type = 0, key = 0n, serviceActionKey = 0n, flags = 0 } = {}) {
    const params = Buffer.alloc(24);
    params.writeBigUInt64BE(key, 0);
    params.writeBigUInt64BE(serviceActionKey, 8);
    params[20] = flags;
    const cdb = Buffer.alloc(16);
    cdb[0] = 0x5f;
    cdb[1] = serviceAction & 0x1f;
    cdb[2] = type & 0x0f; // SCOPE 0 (LU)
    cdb.writeUInt32BE(params.length, 5);
    return this.command(cdb, { write: params });
  }

  async logout() {
    const itt = this.nextItt++;
    const b = this.header(OP.LOGOUT_REQUEST | 0x40, 0x80, 0);
    b.writeUInt32BE(itt, 16);
    b.writeUInt32BE(this.cmdSN, 24);
    b.writeUInt32BE(this.expStatSN, 28);
    const done = new Promise((resolve, reject) => this.pending.set(itt, { resolve, reject, chunks: [] }));
    this.send(b);
    await Promise.race([done, new Promise((r) => setTimeout(r, 2000))]).catch(() => undefined);
    this.socket.destroy();
  }

  destroy() {
    this.socket?.destroy();
  }
}
