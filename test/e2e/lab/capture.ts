/**
 * Packet capture in a namespace with tcpdump, read back as frames with
 * kernel timestamps, and decoders for the frames the failover tests look at
 * (written from the RFCs, independently of src/alias-ip's encoders).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LabProcess, Namespace } from './netns';

export interface CapturedFrame {
  /** Kernel receive time, milliseconds since the epoch (µs precision). */
  readonly atMs: number;
  readonly data: Buffer;
}

export interface Capture {
  /** Stops tcpdump (letting it flush) and returns every frame captured, oldest first. */
  stop(): Promise<CapturedFrame[]>;
}

/**
 * Starts `tcpdump -i IFNAME -w FILE FILTER...` inside `ns` and resolves once
 * it is listening. Frames are handed over at once (--immediate-mode: without
 * it libpcap holds them in a ring block that a stop can lose) and written
 * unbuffered (-U), whole up to 256 bytes.
 */
export async function startCapture(ns: Namespace, ifname: string, filter: readonly string[]): Promise<Capture> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsan-capture-'));
  const file = path.join(dir, 'capture.pcap');
  const proc = ns.spawn('tcpdump', ['-i', ifname, '-n', '-U', '--immediate-mode', '-Z', 'root', '-s', '256', '-w', file, ...filter], `tcpdump on ${ifname} in ${ns.name}`);
  try {
    await waitForListening(proc, 10_000);
  } catch (err) {
    await proc.stop(500);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let stopped: Promise<CapturedFrame[]> | undefined;
  return {
    stop() {
      stopped ??= (async () => {
        proc.child.kill('SIGINT');
        const killer = setTimeout(() => proc.child.kill('SIGKILL'), 3000);
        await proc.exited;
        clearTimeout(killer);
        try {
          return parsePcap(readFileSync(file));
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      })();
      return stopped;
    },
  };
}

function waitForListening(proc: LabProcess, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`${proc.label} not listening after ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    proc.child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/listening on/.test(stderr)) {
        clearTimeout(timer);
        resolve();
      }
    });
    void proc.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${proc.label} exited with ${code} before listening: ${stderr}`));
    });
  });
}

/** Reads a classic pcap file (either byte order, µs or ns timestamps). */
export function parsePcap(file: Buffer): CapturedFrame[] {
  if (file.length < 24) return [];
  const magicLE = file.readUInt32LE(0);
  const little = magicLE === 0xa1b2c3d4 || magicLE === 0xa1b23c4d;
  const magic = little ? magicLE : file.readUInt32BE(0);
  if (magic !== 0xa1b2c3d4 && magic !== 0xa1b23c4d) throw new Error(`not a pcap file (magic ${magic.toString(16)})`);
  const fractionPerMs = magic === 0xa1b23c4d ? 1e6 : 1e3;
  const u32 = (offset: number): number => (little ? file.readUInt32LE(offset) : file.readUInt32BE(offset));
  const frames: CapturedFrame[] = [];
  for (let at = 24; at + 16 <= file.length; ) {
    const length = u32(at + 8);
    if (at + 16 + length > file.length) break; // cut short by the stop
    frames.push({ atMs: u32(at) * 1000 + u32(at + 4) / fractionPerMs, data: Buffer.from(file.subarray(at + 16, at + 16 + length)) });
    at += 16 + length;
  }
  return frames;
}

const mac = (b: Buffer): string => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ipv4 = (b: Buffer): string => [...b].join('.');
/** RFC 5952 text: lower case, longest run of two or more zero words as "::". */
function ipv6(b: Buffer): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push(b.readUInt16BE(i));
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8; i++) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
  }
  const hex = words.map((w) => w.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}

export interface ArpFrame {
  readonly atMs: number;
  readonly ethSource: string;
  readonly ethDestination: string;
  /** 1 request, 2 reply. */
  readonly op: number;
  readonly senderMac: string;
  readonly senderIp: string;
  readonly targetMac: string;
  readonly targetIp: string;
}

/** The ARP frames of a capture (EtherType 0x0806, Ethernet/IPv4). */
export function arpFrames(frames: readonly CapturedFrame[]): ArpFrame[] {
  return frames
    .filter(({ data }) => data.length >= 42 && data.readUInt16BE(12) === 0x0806 && data.readUInt16BE(14) === 1 && data.readUInt16BE(16) === 0x0800)
    .map(({ atMs, data }) => ({
      atMs,
      ethDestination: mac(data.subarray(0, 6)),
      ethSource: mac(data.subarray(6, 12)),
      op: data.readUInt16BE(20),
      senderMac: mac(data.subarray(22, 28)),
      senderIp: ipv4(data.subarray(28, 32)),
      targetMac: mac(data.subarray(32, 38)),
      targetIp: ipv4(data.subarray(38, 42)),
    }));
}

/** Gratuitous ARP for `address`: sender and target IP both the address. */
export function gratuitousArps(frames: readonly CapturedFrame[], address: string): ArpFrame[] {
  return arpFrames(frames).filter((f) => f.senderIp === address && f.targetIp === address);
}

export interface NeighborAdvert {
  readonly atMs: number;
  readonly ethSource: string;
  readonly ethDestination: string;
  readonly ipSource: string;
  readonly ipDestination: string;
  readonly hopLimit: number;
  readonly router: boolean;
  readonly solicited: boolean;
  readonly override: boolean;
  readonly target: string;
  /** From the target link-layer address option, if present. */
  readonly targetMac?: string;
}

/** The ICMPv6 neighbour advertisements of a capture (no extension headers). */
export function neighborAdverts(frames: readonly CapturedFrame[]): NeighborAdvert[] {
  const out: NeighborAdvert[] = [];
  for (const { atMs, data } of frames) {
    if (data.length < 78 || data.readUInt16BE(12) !== 0x86dd || data[20] !== 58 || data[54] !== 136) continue;
    const flags = data[58]!;
    let targetMac: string | undefined;
    for (let opt = 78; opt + 8 <= data.length && data[opt + 1]! > 0; opt += data[opt + 1]! * 8) {
      if (data[opt] === 2) targetMac = mac(data.subarray(opt + 2, opt + 8));
    }
    out.push({
      atMs,
      ethDestination: mac(data.subarray(0, 6)),
      ethSource: mac(data.subarray(6, 12)),
      ipSource: ipv6(data.subarray(22, 38)),
      ipDestination: ipv6(data.subarray(38, 54)),
      hopLimit: data[21]!,
      router: (flags & 0x80) !== 0,
      solicited: (flags & 0x40) !== 0,
      override: (flags & 0x20) !== 0,
      target: ipv6(data.subarray(62, 78)),
      ...(targetMac ? { targetMac } : {}),
    });
  }
  return out;
}
