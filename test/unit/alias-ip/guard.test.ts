/**
 * The alias guard: its line protocol, its state (only allowed interfaces,
 * drop forgets, release is final), runGuard's end-of-input rule (delete what
 * is held on EOF, nothing after a clean release), the manager's messages
 * (hold before the add, drop after the delete) and a real guard process
 * whose pipe closes.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AliasGuardPort,
  AliasIpError,
  AliasIpManager,
  AliasSpec,
  encodeGuardMessage,
  GUARD_ENTRY,
  GuardMessage,
  GuardState,
  parseGuardMessage,
  runGuard,
} from '../../../src/alias-ip';
import { FakeAddresses, FakeLink, silentLogger } from './fakes';

const A: AliasSpec = { address: '198.18.0.10', prefix: 24, interface: 'eth1' };
const B: AliasSpec = { address: '198.18.0.11', prefix: 24, interface: 'eth1' };
const V6: AliasSpec = { address: 'fd00:7157::50', prefix: 64, interface: 'eth2' };

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(AliasIpError);
    return (err as AliasIpError).code;
  }
}

describe('guard protocol', () => {
  it('round-trips every message through one JSON line', () => {
    const messages: GuardMessage[] = [{ op: 'allow', interface: 'eth1' }, { op: 'hold', alias: A }, { op: 'drop', alias: V6 }, { op: 'release' }];
    for (const m of messages) {
      const line = encodeGuardMessage(m);
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
      expect(parseGuardMessage(line.slice(0, -1))).toEqual(m);
    }
  });

  it('reads the wire form written by hand', () => {
    expect(parseGuardMessage('{"op":"hold","address":"198.18.0.10","prefix":24,"interface":"eth1"}')).toEqual({ op: 'hold', alias: A });
  });

  it.each([
    ['not JSON', 'hold 198.18.0.10'],
    ['an array', '["hold"]'],
    ['no op', '{"address":"198.18.0.10"}'],
    ['an unknown op', '{"op":"flush"}'],
    ['a prototype op', '{"op":"toString"}'],
    ['a missing prefix', '{"op":"hold","address":"198.18.0.10","interface":"eth1"}'],
    ['a bad address', '{"op":"hold","address":"198.18.0.300","prefix":24,"interface":"eth1"}'],
    ['a bad prefix', '{"op":"drop","address":"198.18.0.10","prefix":33,"interface":"eth1"}'],
    ['a bad interface', '{"op":"allow","interface":"eth1/x"}'],
    ['an over-long line', `{"op":"release","pad":"${'x'.repeat(2000)}"}`],
  ])('refuses %s with EINVAL', (_what, line) => {
    expect(codeOf(() => parseGuardMessage(line))).toBe('EINVAL');
  });
});

describe('guard state', () => {
  it('holds addresses only on allowed interfaces', () => {
    const s = new GuardState(['eth1']);
    s.apply({ op: 'hold', alias: A });
    expect(codeOf(() => s.apply({ op: 'hold', alias: V6 }))).toBe('ENOTALLOWED');
    s.apply({ op: 'allow', interface: 'eth2' });
    s.apply({ op: 'hold', alias: V6 });
    expect(s.endOfInput().map((a) => a.address)).toEqual(['198.18.0.10', 'fd00:7157::50']);
  });

  it('forgets a dropped address, matched by value', () => {
    const s = new GuardState(['eth1']);
    s.apply({ op: 'hold', alias: A });
    s.apply({ op: 'hold', alias: B });
    s.apply({ op: 'drop', alias: { ...A, prefix: 16 } });
    expect(s.endOfInput().map((a) => a.address)).toEqual(['198.18.0.11']);
  });

  it('after release deletes nothing and refuses further messages', () => {
    const s = new GuardState(['eth1']);
    s.apply({ op: 'hold', alias: A });
    s.apply({ op: 'release' });
    expect(s.phase).toBe('released');
    expect(codeOf(() => s.apply({ op: 'hold', alias: B }))).toBe('EINVAL');
    expect(s.endOfInput()).toEqual([]);
  });

  it('refuses a bad interface name given at start', () => {
    expect(codeOf(() => new GuardState(['a b']))).toBe('EINVAL');
  });
});

/** Feeds `text` (split at every `split` bytes) to runGuard and ends the input. */
async function guardOver(text: string, addresses: FakeAddresses, split = text.length || 1) {
  const input = new PassThrough();
  const warnings: string[] = [];
  const done = runGuard(input, addresses, { info: () => undefined, warn: (_f, m) => void warnings.push(m) }, ['eth1']);
  for (let i = 0; i < text.length; i += split) input.write(text.slice(i, i + split));
  input.end();
  return { outcome: await done, warnings };
}

describe('runGuard', () => {
  const line = (m: GuardMessage) => encodeGuardMessage(m);

  it('deletes the held addresses when input ends without release', async () => {
    const addresses = new FakeAddresses(['eth1']);
    addresses.configure('eth1', '198.18.0.1', 24);
    addresses.configure('eth1', A.address, 24);
    addresses.configure('eth1', B.address, 24);
    const { outcome } = await guardOver(line({ op: 'hold', alias: A }) + line({ op: 'hold', alias: B }), addresses);
    expect(outcome).toEqual({ released: false, removed: [A, B], failed: [] });
    expect(addresses.addresses('eth1')).toEqual(['198.18.0.1/24']);
  });

  it('deletes nothing after a clean release', async () => {
    const addresses = new FakeAddresses(['eth1']);
    addresses.configure('eth1', A.address, 24);
    const { outcome } = await guardOver(line({ op: 'hold', alias: A }) + line({ op: 'release' }), addresses);
    expect(outcome).toEqual({ released: true, removed: [], failed: [] });
    expect(addresses.addresses('eth1')).toEqual(['198.18.0.10/24']);
    expect(addresses.calls).toEqual([]);
  });

  it('never deletes an address the node dropped', async () => {
    const addresses = new FakeAddresses(['eth1']);
    addresses.configure('eth1', A.address, 24);
    addresses.configure('eth1', B.address, 24);
    const text = line({ op: 'hold', alias: A }) + line({ op: 'hold', alias: B }) + line({ op: 'drop', alias: A });
    const { outcome } = await guardOver(text, addresses);
    expect(outcome.removed).toEqual([B]);
    expect(addresses.calls).toEqual(['del 198.18.0.11/24 dev eth1']);
  });

  it('reads messages split at every byte, and a last line without its newline', async () => {
    const addresses = new FakeAddresses(['eth1']);
    addresses.configure('eth1', A.address, 24);
    const text = line({ op: 'hold', alias: A }) + line({ op: 'hold', alias: B }) + line({ op: 'drop', alias: B }).trimEnd();
    const { outcome } = await guardOver(text, addresses, 1);
    expect(outcome.removed).toEqual([A]);
  });

  it('skips bad lines and a hold on an interface it may not touch, keeping the rest', async () => {
    const addresses = new FakeAddresses(['eth1', 'eth2']);
    addresses.configure('eth1', A.address, 24);
    addresses.configure('eth2', V6.address, 64);
    const text = 'garbage\n' + line({ op: 'hold', alias: V6 }) + line({ op: 'hold', alias: A });
    const { outcome, warnings } = await guardOver(text, addresses);
    expect(outcome.removed).toEqual([A]);
    expect(warnings.filter((w) => w.includes('refused'))).toHaveLength(2);
    expect(addresses.addresses('eth2')).toEqual(['fd00:7157::50/64']);
  });

  it('reports an address it cannot delete and deletes the others', async () => {
    const addresses = new FakeAddresses(['eth1']);
    addresses.configure('eth1', B.address, 24);
    const { outcome } = await guardOver(line({ op: 'hold', alias: A }) + line({ op: 'hold', alias: B }), addresses);
    expect(outcome).toEqual({ released: false, removed: [B], failed: [A] });
  });
});

/** Records what the manager tells its guard, with the address list at that moment. */
class RecordingGuard implements AliasGuardPort {
  readonly log: string[] = [];
  constructor(private readonly addresses: FakeAddresses) {}
  private note(what: string): Promise<void> {
    this.log.push(`${what} [${this.addresses.addresses('eth1').join(' ')}]`);
    return Promise.resolve();
  }
  allow(name: string) {
    return this.note(`allow ${name}`);
  }
  hold(a: AliasSpec) {
    return this.note(`hold ${a.address}`);
  }
  drop(a: AliasSpec) {
    return this.note(`drop ${a.address}`);
  }
  release() {
    return this.note('release');
  }
}

describe('AliasIpManager with a guard', () => {
  it('holds before adding, drops after deleting, releases on request', async () => {
    const addresses = new FakeAddresses(['eth1']);
    const guard = new RecordingGuard(addresses);
    const manager = new AliasIpManager({ interfaces: ['eth1'], addressBackend: addresses, link: new FakeLink(), logger: silentLogger, guard });
    await manager.add(A);
    await manager.add(A); // already there: no second hold
    await manager.remove(A);
    await manager.add(B);
    await manager.removeAll();
    await manager.releaseGuard();
    expect(guard.log).toEqual([
      'allow eth1 []',
      'hold 198.18.0.10 []',
      'drop 198.18.0.10 []',
      'hold 198.18.0.11 []',
      'drop 198.18.0.11 []',
      'release []',
    ]);
  });

  it('holds an address it adopts, and drops one whose add failed', async () => {
    const addresses = new FakeAddresses(['eth1']);
    addresses.configure('eth1', A.address, 24);
    const guard = new RecordingGuard(addresses);
    const manager = new AliasIpManager({ interfaces: ['eth1'], addressBackend: addresses, link: new FakeLink(), logger: silentLogger, guard });
    await manager.add(A);
    addresses.beforeNextChange = () => {
      throw new AliasIpError('ECOMMAND', 'Operation not permitted', { sysCode: 'EPERM' });
    };
    await expect(manager.add(B)).rejects.toThrow('Operation not permitted');
    expect(guard.log.slice(1)).toEqual(['hold 198.18.0.10 [198.18.0.10/24]', 'hold 198.18.0.11 [198.18.0.10/24]', 'drop 198.18.0.11 [198.18.0.10/24]']);
  });
});

describe('guard process', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  /**
   * The real guard-main.js with a stand-in ip(8) on PATH that appends its
   * arguments to a file: what the guard would run, without touching this
   * machine's addresses.
   */
  async function runProcess(input: string, signalFirst?: NodeJS.Signals): Promise<{ code: number | null; ipCalls: string[] }> {
    if (!existsSync(GUARD_ENTRY)) throw new Error(`${GUARD_ENTRY} missing: run npx tsc -p . first`);
    dir = mkdtempSync(path.join(tmpdir(), 'twinsan-guard-'));
    const calls = path.join(dir, 'calls');
    writeFileSync(path.join(dir, 'ip'), `#!/bin/sh\necho "$*" >> ${calls}\n`, { mode: 0o755 });
    const child = spawn(process.execPath, [GUARD_ENTRY, 'eth1'], { stdio: ['pipe', 'ignore', 'pipe'], env: { ...process.env, PATH: `${dir}:${process.env['PATH'] ?? ''}` } });
    let stderr = '';
    const running = new Promise<void>((resolve) =>
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        if (stderr.includes('"msg":"alias guard running"')) resolve();
      }),
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdin.write(input);
    if (signalFirst) {
      // Sent once the guard says it runs, i.e. has its handlers (a fixed 300 ms sleep lost that race
      // on a loaded machine, and the signal's default action killed it): it must survive it.
      await Promise.race([running, exited.then(() => Promise.reject(new Error(`the guard exited before it was running: ${stderr}`)))]);
      child.kill(signalFirst);
    }
    child.stdin.end();
    const code = await exited;
    return { code, ipCalls: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [] };
  }

  it('runs ip addr del for what is held when its pipe closes', async () => {
    const { code, ipCalls } = await runProcess(encodeGuardMessage({ op: 'hold', alias: A }) + encodeGuardMessage({ op: 'hold', alias: B }) + encodeGuardMessage({ op: 'drop', alias: B }));
    expect(code).toBe(0);
    expect(ipCalls).toEqual(['-4 addr del 198.18.0.10/24 dev eth1']);
  });

  it('runs nothing after release, and SIGTERM does not stop it', async () => {
    const { code, ipCalls } = await runProcess(encodeGuardMessage({ op: 'hold', alias: A }) + encodeGuardMessage({ op: 'release' }), 'SIGTERM');
    expect(code).toBe(0);
    expect(ipCalls).toEqual([]);
  });

  it('survives SIGINT and still deletes on EOF', async () => {
    const { code, ipCalls } = await runProcess(encodeGuardMessage({ op: 'hold', alias: A }), 'SIGINT');
    expect(code).toBe(0);
    expect(ipCalls).toEqual(['-4 addr del 198.18.0.10/24 dev eth1']);
  });
});
