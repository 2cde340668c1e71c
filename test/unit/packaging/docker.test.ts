/**
 * docker/: what can be checked without a Docker engine. The image's
 * entrypoint is the README's start command; the Dockerfile copies what
 * exists and lays the runtime out the way the code looks for it; the compose
 * file parses, runs two nodes and a witness with the alias-IP capabilities,
 * data volumes and health checks, and mounts configs that the node accepts
 * and that agree with each other and with the networks.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { buildApp, TokenStore } from '../../../src/api';
import { NATIVE_ADDON_PATH } from '../../../src/block/native';
import { FakeControl } from '../api/fake-control';
import { parseNodeConfig } from '../../../src/resource-groups/node/config';
import { parseHostPort } from '../../../src/resource-groups/node/schema';
import { containerArgv, copyParts, DockerStage, inCidr, lastInstruction, splitWords } from './parsers';
import { compose, ComposeService, configArg, DOCKER_DIR, DOCKERFILE, dockerfile, documentedStartCommand, read, REPO } from './repo';

const NODE_SERVICES = ['node-a', 'node-b'] as const;
const TEST_SECRET = 'packaging-test-secret-0123456789';

function runtimeStage(): DockerStage {
  const stages = dockerfile().stages;
  return stages[stages.length - 1]!;
}

function workdir(stage: DockerStage): string {
  const w = lastInstruction(stage, 'WORKDIR');
  if (!w) throw new Error(`stage ${stage.name ?? stage.from} has no WORKDIR`);
  return w.args;
}

/** The image a stage starts from, with the global ARG defaults substituted. */
function baseImage(stage: DockerStage): string {
  const args = dockerfile().globalArgs;
  return stage.from.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, name: string) => {
    const value = args[name];
    if (value === undefined || value === '') throw new Error(`FROM uses \${${name}}, which has no default`);
    return value;
  });
}

/** Every word of the apt-get install commands of a stage. */
function aptPackages(stage: DockerStage): Set<string> {
  const packages = new Set<string>();
  for (const run of stage.instructions.filter((i) => i.keyword === 'RUN')) {
    for (const command of run.args.split(/&&|;/)) {
      const words = splitWords(command);
      const at = words.findIndex((w, i) => w === 'install' && words[i - 1] === 'apt-get');
      if (at >= 0) words.slice(at + 1).filter((w) => !w.startsWith('-')).forEach((w) => packages.add(w));
    }
  }
  return packages;
}

/** A node service's mounted config: its host file, raw JSON, and the service. */
function mountedConfig(name: string): { file: string; raw: Record<string, unknown> & NodeJsonShape; service: ComposeService } {
  const service = compose().services[name];
  if (!service) throw new Error(`compose.yaml has no service ${name}`);
  const target = configArg(containerArgv(runtimeStage()));
  const mount = (service.volumes ?? []).map((v) => v.split(':')).find((parts) => parts[1] === target);
  if (!mount) throw new Error(`${name} mounts nothing at ${target}, the image's --config`);
  const file = path.resolve(DOCKER_DIR, mount[0]!);
  return { file, raw: JSON.parse(read(file)) as Record<string, unknown> & NodeJsonShape, service };
}

interface NodeJsonShape {
  nodeId: string;
  clusterId: string;
  dataDir: string;
  iscsi: { listen: string[] };
  api: { listen: string };
  peer: { nodeId: string; secretFile: string; links: { local: string; peer: string }[] };
  heartbeat: { local: string; peer: string };
  witness: { redis: string };
  volumes: { id: string; name: string }[];
  resourceGroups: { name: string; preferredNode: string; aliasIps: { address: string; prefix: number; interface: string }[]; volumes: string[] }[];
}

function secretTargets(service: ComposeService): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of service.secrets ?? []) {
    const source = typeof s === 'string' ? s : s.source;
    const target = typeof s === 'string' || s.target === undefined ? `/run/secrets/${source}` : s.target;
    out.set(target, source);
  }
  return out;
}

describe('docker/Dockerfile', () => {
  it('runs, as its entrypoint and command, the start command the README documents', () => {
    const argv = containerArgv(runtimeStage());
    const documented = documentedStartCommand();
    expect(argv.length).toBeGreaterThan(0);
    expect([path.basename(argv[0]!), ...argv.slice(1)]).toEqual([path.basename(documented[0]!), ...documented.slice(1)]);
  });

  it('builds in a stage with the node-gyp toolchain and runs in a slim Node 20 stage with iproute2', () => {
    const { stages } = dockerfile();
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = stages.find((s) => s.name === 'build');
    expect(build).toBeDefined();
    for (const p of ['g++', 'make', 'python3']) expect(aptPackages(build!)).toContain(p);
    expect(build!.instructions.some((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args))).toBe(true);
    const runtime = runtimeStage();
    expect(baseImage(runtime)).toBe('node:20-bookworm-slim');
    expect(aptPackages(runtime)).toContain('iproute2');
    // Nothing of the toolchain in the image that runs.
    for (const p of ['g++', 'make', 'python3']) expect(aptPackages(runtime)).not.toContain(p);
  });

  it('copies into the build only files that exist and that the ignore file lets through', () => {
    const service = compose().services['node-a']!;
    const context = path.resolve(DOCKER_DIR, service.build!.context);
    expect(context).toBe(REPO);
    // compose resolves the Dockerfile from the context.
    expect(path.resolve(context, service.build!.dockerfile)).toBe(DOCKERFILE);
    const ignored = read(`${DOCKERFILE}.dockerignore`)
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const copies = dockerfile().stages.flatMap((s) => s.instructions.filter((i) => (i.keyword === 'COPY' || i.keyword === 'ADD') && i.flags['from'] === undefined));
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      for (const source of copyParts(c).sources) {
        expect(existsSync(path.join(context, source)), `COPY ${source} (line ${c.line})`).toBe(true);
        const clean = source.replace(/\/$/, '');
        for (const pattern of ignored) {
          const p = pattern.replace(/^\*\*\//, '');
          expect(clean === p || clean.startsWith(`${p}/`), `COPY ${source} is excluded by ${pattern}`).toBe(false);
        }
      }
    }
    // What the image must not take from the host: its own builds.
    for (const p of ['**/node_modules', 'dist', 'native/build']) expect(ignored).toContain(p);
  });

  it('copies into the build stage everything `npm run build` reads', () => {
    const build = dockerfile().stages.find((s) => s.name === 'build')!;
    const copied = build.instructions
      .filter((i) => i.keyword === 'COPY' && i.flags['from'] === undefined)
      .flatMap((i) => copyParts(i).sources.map((s) => s.replace(/^\.\//, '').replace(/\/$/, '')));
    const covered = (p: string): boolean => copied.some((c) => p === c || p.startsWith(`${c}/`) || c.startsWith(`${p}/`));
    const scripts = (JSON.parse(read(path.join(REPO, 'package.json'))) as { scripts: Record<string, string> }).scripts;
    expect(build.instructions.some((i) => i.keyword === 'RUN' && /\bnpm run build\b/.test(i.args))).toBe(true);
    // The build script, and the scripts it runs with `npm run`, name their inputs as repository paths.
    const seen = new Set<string>();
    const inputs: string[] = [];
    const walk = (name: string): void => {
      if (seen.has(name)) return;
      seen.add(name);
      const words = splitWords(scripts[name] ?? '');
      words.forEach((w, i) => {
        if (w === 'run' && words[i - 1] === 'npm' && words[i + 1]) walk(words[i + 1]!);
        const rel = w.replace(/^\.\//, '').replace(/\/$/, '');
        if (rel !== '' && !rel.startsWith('-') && existsSync(path.join(REPO, rel))) inputs.push(rel);
      });
    };
    walk('build');
    expect(inputs).toEqual(expect.arrayContaining(['native', 'tsconfig.json']));
    for (const input of inputs) expect(covered(input), `npm run build reads ${input}, which the build stage does not copy`).toBe(true);
    // tsc compiles what tsconfig.json includes.
    const include = (JSON.parse(read(path.join(REPO, 'tsconfig.json'))) as { include: string[] }).include;
    for (const pattern of include) expect(covered(pattern.split('/')[0]!), `tsconfig include ${pattern}`).toBe(true);
  });

  it('lays the runtime out as the code finds it: dist/, the addon beside it, package.json, the twinsan binary', () => {
    const { stages } = dockerfile();
    const runtime = runtimeStage();
    const app = workdir(runtime);
    const fromBuild = runtime.instructions.filter((i) => i.keyword === 'COPY' && i.flags['from'] !== undefined);
    const dests = new Map<string, string>();
    for (const c of fromBuild) {
      const stage = stages.find((s) => s.name === c.flags['from']);
      expect(stage, `COPY --from=${c.flags['from']}`).toBeDefined();
      const { sources, dest } = copyParts(c);
      expect(sources).toHaveLength(1);
      const source = sources[0]!;
      const rel = path.posix.relative(workdir(stage!), source);
      expect(rel.startsWith('..'), `${source} is outside the build stage's ${workdir(stage!)}`).toBe(false);
      dests.set(rel, path.posix.resolve(app, dest).replace(/\/$/, ''));
    }
    const outDir = (JSON.parse(read(path.join(REPO, 'tsconfig.json'))) as { compilerOptions: { outDir: string } }).compilerOptions.outDir;
    expect(dests.get(outDir)).toBe(path.posix.join(app, outDir));
    // src/block/native.ts finds the addon relative to its own directory: the same layout under the app root.
    const addon = path.relative(REPO, NATIVE_ADDON_PATH);
    expect(dests.get(addon)).toBe(path.posix.join(app, addon));
    // cli/bin.ts reads the version from ../../package.json.
    expect(dests.get('package.json')).toBe(path.posix.join(app, 'package.json'));
    expect(dests.get('node_modules')).toBe(path.posix.join(app, 'node_modules'));
    // The entrypoint's command is package.json's bin, linked onto PATH.
    const bin = (JSON.parse(read(path.join(REPO, 'package.json'))) as { bin: Record<string, string> }).bin;
    const entry = containerArgv(runtime)[0]!;
    expect(bin[entry]).toBeDefined();
    const links = runtime.instructions.filter((i) => i.keyword === 'RUN').flatMap((i) => i.args.split('&&').map((c) => splitWords(c)));
    expect(links).toContainEqual(['ln', '-s', path.posix.join(app, bin[entry]!), `/usr/local/bin/${entry}`]);
  });

  it('runs as a user other than root, keeps the data directory on a volume and exposes every port the nodes listen on', () => {
    const runtime = runtimeStage();
    const user = lastInstruction(runtime, 'USER');
    expect(user).toBeDefined();
    expect(user!.args.split(':')[0]).not.toMatch(/^(root|0)$/);
    const volumes = runtime.instructions.filter((i) => i.keyword === 'VOLUME').flatMap((i) => i.exec ?? i.args.split(/\s+/));
    const exposed = new Set(runtime.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map((p) => (p.includes('/') ? p : `${p}/tcp`)));
    for (const name of NODE_SERVICES) {
      const { raw } = mountedConfig(name);
      expect(volumes).toContain(raw.dataDir);
      const tcp = [...raw.iscsi.listen, raw.api.listen, ...raw.peer.links.map((l) => l.local)];
      for (const hp of tcp) expect(exposed, `${name}: ${hp}`).toContain(`${parseHostPort(hp)!.port}/tcp`);
      expect(exposed).toContain(`${parseHostPort(raw.heartbeat.local)!.port}/udp`);
    }
  });
});

describe('docker/compose.yaml', () => {
  it('parses, with two node services built from docker/Dockerfile and a witness', () => {
    const c = compose();
    expect(Object.keys(c.services).sort()).toEqual([...NODE_SERVICES, 'witness'].sort());
    for (const name of NODE_SERVICES) {
      const s = c.services[name]!;
      expect(path.resolve(DOCKER_DIR, s.build!.context, s.build!.dockerfile)).toBe(DOCKERFILE);
      // The image's own start command runs: no override.
      expect(s.command).toBeUndefined();
      expect(s.entrypoint).toBeUndefined();
    }
  });

  it('gives the nodes the capabilities alias IPs need, and no no-new-privileges (it would void the file capabilities)', () => {
    for (const name of NODE_SERVICES) {
      const s = compose().services[name]!;
      expect(s.cap_add).toEqual(expect.arrayContaining(['NET_ADMIN', 'NET_RAW']));
      expect((s.security_opt ?? []).some((o) => o.startsWith('no-new-privileges'))).toBe(false);
    }
  });

  it('mounts each node a config that the node accepts, read-only, with the pair secret from a compose secret', async () => {
    const c = compose();
    for (const name of NODE_SERVICES) {
      const { file, raw, service } = mountedConfig(name);
      expect(existsSync(file)).toBe(true);
      const mount = service.volumes!.find((v) => path.resolve(DOCKER_DIR, v.split(':')[0]!) === file)!;
      expect(mount.split(':')[2]).toBe('ro');
      const secrets = secretTargets(service);
      const read: string[] = [];
      const config = await parseNodeConfig(raw, {
        file: configArg(containerArgv(runtimeStage())),
        readSecretFile: async (p) => {
          read.push(p);
          if (!secrets.has(p)) throw new Error(`${p} is not a secret mounted into ${name}`);
          return `${TEST_SECRET}\n`;
        },
      });
      expect(read).toEqual([raw.peer.secretFile]);
      expect(config.nodeId).toBe(name);
      // `docker compose exec NODE twinsan ...` talks to this node's API with its token.
      expect(config.api).not.toBeNull();
      const env = service.environment ?? {};
      expect(new URL(env['TWINSAN_API']!).port).toBe(String(parseHostPort(config.api!.listen)!.port));
      expect(env['TWINSAN_TOKEN_FILE']).toBe(config.api!.tokenFile);
      expect(path.dirname(config.api!.tokenFile).startsWith(config.dataDir)).toBe(true);
      const secretFile = c.secrets[secrets.get(raw.peer.secretFile)!]?.file;
      expect(secretFile).toBeDefined();
      // The secret is generated on the host (docker/README.md), never committed.
      const ignore = readFileSync(path.join(path.dirname(path.resolve(DOCKER_DIR, secretFile!)), '.gitignore'), 'utf8').split('\n');
      expect(ignore).toContain(path.basename(secretFile!));
    }
  });

  it('keeps each node data directory on its own named volume', () => {
    const c = compose();
    const sources = NODE_SERVICES.map((name) => {
      const { raw, service } = mountedConfig(name);
      const mount = service.volumes!.map((v) => v.split(':')).find((parts) => parts[1] === raw.dataDir);
      expect(mount, `${name} mounts nothing at ${raw.dataDir}`).toBeDefined();
      expect(Object.keys(c.volumes)).toContain(mount![0]);
      return mount![0];
    });
    expect(new Set(sources).size).toBe(NODE_SERVICES.length);
  });

  it('puts each node on the addresses its config listens on, and the alias IPs on an interface of the front network outside the range Docker hands out', () => {
    const c = compose();
    for (const name of NODE_SERVICES) {
      const { raw, service } = mountedConfig(name);
      const attached = Object.entries(service.networks ?? {});
      const own = attached.map(([, n]) => n?.ipv4_address).filter((a): a is string => a !== undefined);
      const listens = [...raw.iscsi.listen, ...raw.peer.links.map((l) => l.local), raw.heartbeat.local];
      for (const hp of listens) expect(own, `${name}: ${hp}`).toContain(parseHostPort(hp)!.host);
      for (const rg of raw.resourceGroups) {
        for (const alias of rg.aliasIps) {
          const entry = attached.find(([, n]) => n?.interface_name === alias.interface);
          expect(entry, `${rg.name}: no network of ${name} is attached as interface ${alias.interface}`).toBeDefined();
          const ipam = c.networks[entry![0]]?.ipam?.config[0];
          expect(ipam).toBeDefined();
          expect(inCidr(alias.address, ipam!.subnet)).toBe(true);
          expect(Number(ipam!.subnet.split('/')[1])).toBe(alias.prefix);
          expect(ipam!.ip_range, `network ${entry![0]} needs an ip_range that leaves the alias IPs out`).toBeDefined();
          expect(inCidr(alias.address, ipam!.ip_range!)).toBe(false);
        }
      }
    }
    // Replication link 0 has a network of its own that reaches nothing else.
    const repl = Object.entries(c.networks).find(([, n]) => n?.internal === true);
    expect(repl).toBeDefined();
  });

  it('describes one pair: the two configs point at each other and at the witness service', () => {
    const c = compose();
    const a = mountedConfig('node-a').raw;
    const b = mountedConfig('node-b').raw;
    expect(a.clusterId).toBe(b.clusterId);
    expect(a.peer.nodeId).toBe(b.nodeId);
    expect(b.peer.nodeId).toBe(a.nodeId);
    expect(a.peer.links.length).toBe(b.peer.links.length);
    a.peer.links.forEach((l, i) => {
      expect(l.peer).toBe(b.peer.links[i]!.local);
      expect(b.peer.links[i]!.peer).toBe(l.local);
    });
    expect(a.heartbeat.peer).toBe(b.heartbeat.local);
    expect(b.heartbeat.peer).toBe(a.heartbeat.local);
    expect(a.volumes).toEqual(b.volumes);
    expect(a.resourceGroups).toEqual(b.resourceGroups);
    expect(a.witness).toEqual(b.witness);
    const witnessHost = parseHostPort(a.witness.redis)!.host;
    const witnessAddresses = Object.values(c.services['witness']!.networks ?? {}).map((n) => n?.ipv4_address);
    expect(witnessAddresses).toContain(witnessHost);
    // Each node prefers one group: active/active.
    expect(new Set(a.resourceGroups.map((rg) => rg.preferredNode))).toEqual(new Set([a.nodeId, b.nodeId]));
  });

  it('checks each node through the API health route on the port its config gives the API, and starts the nodes after a healthy witness', async () => {
    const c = compose();
    const healthUrls = new Set<string>();
    expect(c.services['witness']!.healthcheck).toBeDefined();
    for (const name of NODE_SERVICES) {
      const { raw, service } = mountedConfig(name);
      const test = service.healthcheck?.test;
      expect(Array.isArray(test) && test[0] === 'CMD').toBe(true);
      const url = /https?:\/\/[^'"\s)]+/.exec((test as string[]).join(' '))?.[0];
      expect(url, 'the health check names no URL').toBeDefined();
      const u = new URL(url!);
      expect(Number(u.port)).toBe(parseHostPort(raw.api.listen)!.port);
      expect(u.hostname).toBe('127.0.0.1');
      healthUrls.add(u.pathname);
      expect(service.depends_on?.['witness']?.condition).toBe('service_healthy');
      // The API is published to the host's loopback only.
      const apiPort = parseHostPort(raw.api.listen)!.port;
      expect((service.ports ?? []).some((p) => p.startsWith('127.0.0.1:') && p.endsWith(`:${apiPort}`))).toBe(true);
    }
    // The path the health checks ask for is a route the API answers without a token.
    expect(healthUrls.size).toBe(1);
    const dir = await mkdtemp(path.join(tmpdir(), 'twinsan-packaging-'));
    const { store } = await TokenStore.open(path.join(dir, 'api.token'));
    const app = buildApp({ control: new FakeControl(), tokens: store, logger: pino({ level: 'silent' }), nodeId: 'node-a', dashboard: false });
    try {
      const res = await app.inject({ method: 'GET', url: [...healthUrls][0]! });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: 'ok' });
    } finally {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
