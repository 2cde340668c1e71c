/**
 * The node config file: every problem is reported with the file and the
 * key; defaults and relative paths are resolved as docs/node-config.md says.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSIONS } from '../../../../src/mirror';
import { ConfigError, MAX_PROTOCOL_VERSION_ENV, applyEnvOverrides, loadNodeConfig, parseNodeConfig, redactConfig } from '../../../../src/resource-groups/node/config';

const SECRET = 'correct horse battery staple';

function sample(): Record<string, any> {
  return {
    nodeId: 'node-a',
    clusterId: 'lab',
    dataDir: '/var/lib/twinsan',
    iscsi: { listen: ['127.0.0.1:3260'] },
    peer: {
      nodeId: 'node-b',
      secret: SECRET,
      links: [
        { local: '127.0.0.1:7001', peer: '127.0.0.1:7101' },
        { local: '127.0.0.1:7002', peer: '127.0.0.1:7102' },
      ],
    },
    volumes: [
      { id: '6F1D3C1E-7A52-4B8E-9C1A-0D2B5E8F4A11', name: 'v1', iqn: 'iqn.2026-11.io.twinsan:v1', sizeBytes: 67108864, thin: true, owner: 'node-a' },
      { id: '0b7e9f42-5c3d-4e6a-8f21-9a4c7d1e2b22', name: 'v2', iqn: 'iqn.2026-11.io.twinsan:v2', sizeBytes: 67108864, thin: false, owner: 'node-b', blockSize: 4096, backing: 'disks/v2.img' },
    ],
  };
}

async function problems(raw: unknown, file = '/etc/twinsan/node-a.json'): Promise<string[]> {
  try {
    await parseNodeConfig(raw, { file, readSecretFile: async () => `${SECRET}\n` });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message.split('\n');
  }
  return [];
}

describe('parseNodeConfig', () => {
  it('accepts a complete config and fills in the defaults', async () => {
    const c = await parseNodeConfig(sample(), { file: '/etc/twinsan/node-a.json' });
    expect(c.file).toBe('/etc/twinsan/node-a.json');
    expect(c.dataDir).toBe('/var/lib/twinsan');
    expect(c.iscsi).toEqual({ listen: ['127.0.0.1:3260'], portalGroupTag: 1, relativeTargetPortId: 1 });
    expect(c.peer.relativeTargetPortId).toBe(2);
    expect(c.peer.secret).toBe(SECRET);
    expect(c.log).toEqual({ level: 'info' });
    expect(c.status).toBeNull();
    expect(c.volumes[0]).toEqual({
      id: '6f1d3c1e-7a52-4b8e-9c1a-0d2b5e8f4a11',
      name: 'v1',
      iqn: 'iqn.2026-11.io.twinsan:v1',
      sizeBytes: 67108864,
      thin: true,
      blockSize: 512,
      physicalBlockSize: 512,
      owner: 'node-a',
      resourceGroup: null,
      backing: '/var/lib/twinsan/v1.img',
    });
    expect(c.resourceGroups).toEqual([]);
    expect(c.heartbeat).toEqual({ local: null, peer: null, intervalMs: 200, deadMs: 900 });
    expect(c.witness).toEqual({ redis: null, keyPrefix: null, allowTakeoverWithoutWitness: false });
    // Relative to the config file's directory, not the working directory.
    expect(c.volumes[1]!.backing).toBe('/etc/twinsan/disks/v2.img');
    expect(c.volumes[1]!.blockSize).toBe(4096);
    expect(c.volumes[1]!.physicalBlockSize).toBe(4096);
  });

  it('gives the node whose id sorts second position 2: portal group tag and relative target port id 2', async () => {
    const raw = sample();
    raw.nodeId = 'node-b';
    raw.peer.nodeId = 'node-a';
    const c = await parseNodeConfig(raw);
    expect(c.iscsi.portalGroupTag).toBe(2);
    expect(c.iscsi.relativeTargetPortId).toBe(2);
    expect(c.peer.relativeTargetPortId).toBe(1);
  });

  it('resolves a relative dataDir from the config file and derives backing files from it', async () => {
    const raw = sample();
    raw.dataDir = 'data';
    const c = await parseNodeConfig(raw, { file: '/srv/pair/node-a.json' });
    expect(c.dataDir).toBe('/srv/pair/data');
    expect(c.volumes[0]!.backing).toBe('/srv/pair/data/v1.img');
  });

  it('names the file, the key and the value of a bad link address', async () => {
    const raw = sample();
    raw.peer.links[1].local = '127.0.0.1:99999';
    expect(await problems(raw)).toEqual(['node-a.json: peer.links[1].local: "127.0.0.1:99999" is not host:port']);
  });

  it('reports every problem at once, in document order', async () => {
    const raw = sample();
    delete raw.clusterId;
    raw.iscsi.listen = [];
    raw.volumes[0].id = 'not-a-uuid';
    raw.volumes[1].thin = 'yes';
    raw.volumes[1].blockSize = 1024;
    raw.log = { level: 'loud' };
    expect(await problems(raw)).toEqual([
      'node-a.json: clusterId: missing',
      'node-a.json: iscsi.listen: has 0 entries, needs at least 1',
      'node-a.json: volumes[0].id: "not-a-uuid" is not a UUID',
      'node-a.json: volumes[1].thin: "yes" is not true or false',
      'node-a.json: volumes[1].blockSize: 1024 is not one of 512, 4096',
      'node-a.json: log.level: "loud" is not one of "trace", "debug", "info", "warn", "error", "fatal", "silent"',
    ]);
  });

  it('refuses unknown keys, so a misspelt key is not silently ignored', async () => {
    const raw = sample();
    raw.peer.link = raw.peer.links;
    raw.volumes[0].sizebytes = 1;
    expect(await problems(raw)).toEqual(['node-a.json: peer.link: unknown key', 'node-a.json: volumes[0].sizebytes: unknown key']);
  });

  it('needs two replication links or more', async () => {
    const raw = sample();
    raw.peer.links.pop();
    expect(await problems(raw)).toEqual(['node-a.json: peer.links: has 1 entries, needs at least 2']);
  });

  it('rejects values of the wrong type with the value quoted', async () => {
    const raw = sample();
    raw.iscsi = ['127.0.0.1:3260'];
    raw.volumes[0].sizeBytes = 1.5;
    raw.volumes[0].iqn = 'IQN.2026-11.IO.TWINSAN:V1';
    expect(await problems(raw)).toEqual([
      'node-a.json: iscsi: ["127.0.0.1:3260"] is not an object',
      'node-a.json: volumes[0].iqn: "IQN.2026-11.IO.TWINSAN:V1" is not an iSCSI name (iqn.YYYY-MM.reversed.domain[:suffix] in lower case, eui. or naa.)',
      `node-a.json: volumes[0].sizeBytes: 1.5 is not a whole number in 1..${Number.MAX_SAFE_INTEGER}`,
    ]);
  });

  it('needs exactly one of peer.secret and peer.secretFile, and a secret of 16 bytes or more', async () => {
    const both = sample();
    both.peer.secretFile = 'secret';
    expect(await problems(both)).toEqual(['node-a.json: peer: needs exactly one of secret and secretFile']);
    const neither = sample();
    delete neither.peer.secret;
    expect(await problems(neither)).toEqual(['node-a.json: peer: needs exactly one of secret and secretFile']);
    const short = sample();
    short.peer.secret = 'hunter2';
    expect(await problems(short)).toEqual(['node-a.json: peer.secret: is shorter than 16 bytes']);
  });

  it('reads peer.secretFile relative to the config file, without its trailing newline', async () => {
    const raw = sample();
    delete raw.peer.secret;
    raw.peer.secretFile = 'pair.secret';
    const read: string[] = [];
    const c = await parseNodeConfig(raw, {
      file: '/etc/twinsan/node-a.json',
      readSecretFile: async (p) => {
        read.push(p);
        return `${SECRET}\n`;
      },
    });
    expect(read).toEqual(['/etc/twinsan/pair.secret']);
    expect(c.peer.secret).toBe(SECRET);
  });

  it('reports a secret file that cannot be read under peer.secretFile', async () => {
    const raw = sample();
    delete raw.peer.secret;
    raw.peer.secretFile = 'missing.secret';
    await expect(
      parseNodeConfig(raw, {
        file: '/etc/twinsan/node-a.json',
        readSecretFile: async () => {
          throw new Error('ENOENT: no such file');
        },
      }),
    ).rejects.toThrow('node-a.json: peer.secretFile: "missing.secret" cannot be read: ENOENT: no such file');
  });

  it('checks keys against each other: peer id, owners, duplicates, sizes, listen addresses', async () => {
    const raw = sample();
    raw.peer.nodeId = 'node-a';
    raw.volumes[1].owner = 'node-c';
    raw.volumes[1].name = 'v1';
    raw.volumes[1].iqn = 'iqn.2026-11.io.twinsan:v1';
    raw.volumes[0].sizeBytes = 1000;
    raw.volumes[1].physicalBlockSize = 2048;
    raw.peer.links[1].local = '127.0.0.1:3260';
    const got = await problems(raw);
    expect(got).toEqual([
      'node-a.json: peer.nodeId: "node-a" is this node\'s own id (nodeId)',
      'node-a.json: peer.links[1].local: "127.0.0.1:3260" is also iscsi.listen[0]',
      'node-a.json: volumes[0].sizeBytes: 1000 is not a multiple of the 512-byte block size',
      'node-a.json: volumes[1].name: "v1" is also the name of volumes[0]',
      'node-a.json: volumes[1].iqn: "iqn.2026-11.io.twinsan:v1" is also the iqn of volumes[0]',
      'node-a.json: volumes[1].owner: "node-c" is neither this node ("node-a") nor its peer ("node-a")',
      'node-a.json: volumes[1].physicalBlockSize: 2048 is smaller than the 4096-byte block size',
    ]);
  });

  it('treats volume ids case-insensitively when looking for duplicates', async () => {
    const raw = sample();
    raw.volumes[1].id = raw.volumes[0].id.toLowerCase();
    expect(await problems(raw)).toEqual(['node-a.json: volumes[1].id: "6f1d3c1e-7a52-4b8e-9c1a-0d2b5e8f4a11" is also the id of volumes[0]']);
  });

  it('keeps the status endpoint on a loopback address', async () => {
    const raw = sample();
    raw.status = { listen: '0.0.0.0:8080' };
    expect(await problems(raw)).toEqual(['node-a.json: status.listen: "0.0.0.0:8080" is not a loopback address (127.x.x.x, ::1 or localhost)']);
    raw.status = { listen: '127.0.0.1:8080' };
    expect((await parseNodeConfig(raw)).status).toEqual({ listen: '127.0.0.1:8080' });
  });

  it('reads the api section: token file default under dataDir, TLS paths from the config file, errors naming the key', async () => {
    const c = await parseNodeConfig({ ...sample(), api: { listen: '0.0.0.0:8443', tls: { cert: 'tls/cert.pem', key: '/etc/k.pem' } } }, { file: '/etc/twinsan/node-a.json' });
    expect(c.api).toEqual({ listen: '0.0.0.0:8443', tokenFile: '/var/lib/twinsan/api.token', tls: { cert: '/etc/twinsan/tls/cert.pem', key: '/etc/k.pem' } });
    expect((await parseNodeConfig(sample())).api).toBeNull();
    expect(await problems({ ...sample(), api: { listen: 'nowhere', tls: { cert: 'c.pem' } } })).toEqual([
      'node-a.json: api.listen: "nowhere" is not host:port',
      'node-a.json: api.tls.key: missing',
    ]);
    expect(await problems({ ...sample(), api: { listen: '127.0.0.1:7001' } })).toEqual(['node-a.json: api.listen: "127.0.0.1:7001" is also peer.links[0].local']);
  });

  it('takes peer.maxProtocolVersion in the versions this release speaks, and TWINSAN_MAX_PROTOCOL_VERSION over it', async () => {
    const base = sample();
    const c = await parseNodeConfig({ ...base, peer: { ...base.peer, maxProtocolVersion: 1 } });
    expect(c.peer.maxProtocolVersion).toBe(1);
    expect((await parseNodeConfig(sample())).peer.maxProtocolVersion).toBeNull();
    expect(await problems({ ...base, peer: { ...base.peer, maxProtocolVersion: 99 } })).toEqual([
      `node-a.json: peer.maxProtocolVersion: 99 is not a whole number in 1..${PROTOCOL_VERSIONS.max}`,
    ]);
    expect(applyEnvOverrides(c, { [MAX_PROTOCOL_VERSION_ENV]: '2' }).peer.maxProtocolVersion).toBe(2);
    expect(applyEnvOverrides(c, {}).peer.maxProtocolVersion).toBe(1);
    expect(() => applyEnvOverrides(c, { [MAX_PROTOCOL_VERSION_ENV]: 'two' })).toThrow(/TWINSAN_MAX_PROTOCOL_VERSION="two" is not a protocol version/);
  });

  it('refuses the same relative target port id on both nodes', async () => {
    const raw = sample();
    raw.iscsi.relativeTargetPortId = 2;
    expect(await problems(raw)).toEqual(['node-a.json: iscsi.relativeTargetPortId: 2 is the relative target port id of both nodes (they must differ)']);
    raw.peer.relativeTargetPortId = 7;
    const c = await parseNodeConfig(raw);
    expect([c.iscsi.relativeTargetPortId, c.peer.relativeTargetPortId]).toEqual([2, 7]);
  });

  it('accepts IPv6 and host name endpoints', async () => {
    const raw = sample();
    raw.iscsi.listen = ['[::1]:3260', 'storage-a.example.net:3260'];
    expect((await parseNodeConfig(raw)).iscsi.listen).toEqual(['[::1]:3260', 'storage-a.example.net:3260']);
  });

  it('leaves the secret out of redactConfig()', async () => {
    const c = await parseNodeConfig(sample());
    expect(JSON.stringify(redactConfig(c))).not.toContain(SECRET);
  });
});

describe('loadNodeConfig', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-config-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('names the file when it is not JSON', async () => {
    const file = path.join(dir, 'broken.json');
    await writeFile(file, '{ "nodeId": ');
    await expect(loadNodeConfig(file)).rejects.toThrow(/^broken\.json: is not valid JSON: /);
  });

  it('names the file when it cannot be read', async () => {
    await expect(loadNodeConfig(path.join(dir, 'absent.json'))).rejects.toThrow(/^absent\.json: cannot be read: ENOENT/);
  });

  it('loads a config and its secret file from disk', async () => {
    const raw = sample();
    delete raw.peer.secret;
    raw.peer.secretFile = 'pair.secret';
    raw.dataDir = '.';
    await writeFile(path.join(dir, 'pair.secret'), `${SECRET}\n`);
    await writeFile(path.join(dir, 'node-a.json'), JSON.stringify(raw));
    const c = await loadNodeConfig(path.join(dir, 'node-a.json'));
    expect(c.peer.secret).toBe(SECRET);
    expect(c.dataDir).toBe(dir);
  });
});

describe('examples/', () => {
  it.each(['node-a', 'node-b'])('%s.json is a valid config whose peer is the other example', async (name) => {
    const file = path.join(__dirname, '../../../../examples', `${name}.json`);
    const raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, any>;
    const c = await parseNodeConfig(raw, { file, readSecretFile: async () => `${SECRET}\n` });
    const other = await parseNodeConfig(JSON.parse(await readFile(file.replace(name, name === 'node-a' ? 'node-b' : 'node-a'), 'utf8')), {
      readSecretFile: async () => SECRET,
    });
    expect(c.peer.nodeId).toBe(other.nodeId);
    // Each node dials the other's listening address of the same link.
    expect(c.peer.links.map((l) => l.peer)).toEqual(other.peer.links.map((l) => l.local));
    expect(c.volumes.map((v) => [v.id, v.iqn, v.owner])).toEqual(other.volumes.map((v) => [v.id, v.iqn, v.owner]));
  });
});
