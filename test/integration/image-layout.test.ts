/**
 * The runtime image without Docker: the files docker/Dockerfile's runtime
 * stage copies from the build stage are laid out in a temp root exactly as
 * the COPY --from instructions say (build-stage paths mapped to this
 * checkout's build, node_modules linked), and the image's ENTRYPOINT + CMD
 * is run from there with a config of ours: the CLI loads, finds
 * package.json, the native addon and the dashboard files, starts a node
 * that serves a volume over iSCSI and its REST API (the health route the
 * compose health check asks for), and stops on SIGTERM with status 0.
 * Needs a fresh build (npm run build:ts).
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containerArgv, copyParts, DockerStage, lastInstruction } from '../unit/packaging/parsers';
import { configArg, dockerfile, REPO } from '../unit/packaging/repo';
import { track } from './helpers/cleanup';

/** This worktree's loopback ports. */
const PORTS = { iscsi: 27201, link0: 27202, link1: 27203, peer0: 27204, peer1: 27205, status: 27206, api: 27207 } as const;
const IQN = 'iqn.2026-11.io.twinsan.test:layout';

function runtime(): DockerStage {
  const stages = dockerfile().stages;
  return stages[stages.length - 1]!;
}

/** A path of the image, under the temp root. */
function inRoot(root: string, imagePath: string): string {
  return path.join(root, imagePath);
}

/** Lay the runtime stage's COPY --from=build files out under `root`; returns the app directory (WORKDIR) there. */
async function assemble(root: string): Promise<string> {
  const stages = dockerfile().stages;
  const stage = runtime();
  const app = lastInstruction(stage, 'WORKDIR')!.args;
  for (const c of stage.instructions.filter((i) => i.keyword === 'COPY' && i.flags['from'] !== undefined)) {
    const from = stages.find((s) => s.name === c.flags['from'])!;
    const { sources, dest } = copyParts(c);
    const rel = path.posix.relative(lastInstruction(from, 'WORKDIR')!.args, sources[0]!);
    const src = path.join(REPO, rel);
    const target = inRoot(root, path.posix.resolve(app, dest));
    await mkdir(path.dirname(target), { recursive: true });
    // node_modules: the build's pruned copy in the image; here the checkout's, linked (it is large).
    if (rel === 'node_modules') await symlink(src, target.replace(/\/$/, ''));
    else await cp(src, target.replace(/\/$/, ''), { recursive: true });
  }
  return inRoot(root, app);
}

function run(file: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

function waitForPort(port: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const attempt = (): void => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

describe('the runtime image layout (docker/Dockerfile), assembled without Docker', () => {
  let root = '';
  let app = '';
  let bin = '';
  let argv: string[] = [];

  beforeAll(async () => {
    if (!existsSync(path.join(REPO, 'dist/cli/bin.js'))) throw new Error('build first: npm run build:ts');
    root = await mkdtemp(path.join(tmpdir(), 'twinsan-image-'));
    app = await assemble(root);
    argv = containerArgv(runtime());
    // The image links package.json's bin onto PATH as argv[0].
    const pkg = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    bin = path.join(app, pkg.bin[argv[0]!]!);
  });

  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('has the entrypoint, package.json, the addon and the dashboard where the code looks for them', async () => {
    expect(existsSync(bin)).toBe(true);
    const version = await run(bin, ['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
    const check = [
      `const n = require(${JSON.stringify(path.join(app, 'dist/block/native.js'))});`,
      `const d = require(${JSON.stringify(path.join(app, 'dist/api/dashboard-files.js'))});`,
      "const fs = require('node:fs');",
      'console.log(JSON.stringify({ addon: n.NATIVE_ADDON_PATH, addonThere: fs.existsSync(n.NATIVE_ADDON_PATH),',
      '  dashboard: d.DASHBOARD_DIR, missing: d.DASHBOARD_FILES.filter((f) => !fs.existsSync(require("node:path").join(d.DASHBOARD_DIR, f))) }));',
    ].join('\n');
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['-e', check], (err, stdout) => (err ? reject(err) : resolve(stdout))),
    );
    const found = JSON.parse(out) as { addon: string; addonThere: boolean; dashboard: string; missing: string[] };
    expect(found.addon.startsWith(app)).toBe(true);
    expect(found.addonThere).toBe(true);
    expect(found.dashboard.startsWith(app)).toBe(true);
    expect(found.missing).toEqual([]);
  });

  it("runs the image's start command: a node starts, serves its volume over iSCSI and its API health route, and stops on SIGTERM with status 0", async () => {
    const dataDir = path.join(root, 'var/lib/twinsan');
    const configFile = inRoot(root, configArg(argv));
    await mkdir(path.dirname(configFile), { recursive: true });
    await writeFile(
      configFile,
      JSON.stringify({
        nodeId: 'node-a',
        clusterId: 'image-layout',
        dataDir,
        iscsi: { listen: [`127.0.0.1:${PORTS.iscsi}`] },
        peer: {
          nodeId: 'node-b',
          secret: 'image-layout-test-secret-0123456789',
          links: [
            { local: `127.0.0.1:${PORTS.link0}`, peer: `127.0.0.1:${PORTS.peer0}` },
            { local: `127.0.0.1:${PORTS.link1}`, peer: `127.0.0.1:${PORTS.peer1}` },
          ],
        },
        volumes: [{ id: '5e1f0c2a-3b4d-4c5e-8f60-718293a4b5c6', name: 'layout', iqn: IQN, sizeBytes: 16 * 1024 * 1024, thin: true, owner: 'node-a' }],
        status: { listen: `127.0.0.1:${PORTS.status}` },
        api: { listen: `127.0.0.1:${PORTS.api}` },
        log: { level: 'warn' },
      }),
    );
    const args = [...argv.slice(1)].map((a) => (a === configArg(argv) ? configFile : a));
    let stderr = '';
    const child: ChildProcess = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    track({
      label: 'image-layout node',
      dispose: async () => {
        if (child.exitCode === null) child.kill('SIGKILL');
        await exited;
      },
      disposeSync: () => {
        if (child.exitCode === null) child.kill('SIGKILL');
      },
    });

    // The node prints the URLs it serves once it has started (volumes, groups, then the API).
    const started = new Promise<void>((resolve) => {
      const check = (): void => {
        if (stderr.includes(`serving layout at iscsi://`)) resolve();
      };
      child.stderr!.on('data', check);
      check();
    });
    const early = await Promise.race([started.then(() => null), exited.then((code) => ({ code }))]);
    expect(early, `the node exited before it started:\n${stderr}`).toBeNull();
    await waitForPort(PORTS.iscsi, 5_000);
    const status = (await (await fetch(`http://127.0.0.1:${PORTS.status}/status`)).json()) as { state: string; targets: { iqn: string; urls: string[] }[] };
    expect(status.state).toBe('running');
    expect(status.targets.map((t) => t.iqn)).toEqual([IQN]);
    expect(stderr).toContain(`iscsi://127.0.0.1:${PORTS.iscsi}/${IQN}/0`);
    // The backing file went to the data directory the image keeps on its volume.
    expect(existsSync(path.join(dataDir, 'layout.img'))).toBe(true);
    // The REST API answers the route the compose health check asks for, and wrote its token (0600) there too.
    const health = await fetch(`http://127.0.0.1:${PORTS.api}/api/v1/health`);
    expect(health.status).toBe(200);
    expect(((await stat(path.join(dataDir, 'api.token'))).mode & 0o777).toString(8)).toBe('600');

    child.kill('SIGTERM');
    expect(await exited, stderr).toBe(0);
  });
});
