import { execFile } from 'node:child_process';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { cliHarness, CliHarness, runCli, unreachablePort } from './harness';

let h: CliHarness;
let tlsH: CliHarness;
let cert: string;
let raw: http.Server;
let rawPort: number;
let unreachable: number;

beforeAll(async () => {
  h = await cliHarness();
  // A self-signed certificate for 127.0.0.1, made for this run.
  const key = path.join(h.dir, 'key.pem');
  cert = path.join(h.dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert,
  ]);
  tlsH = await cliHarness({ cert: await readFile(cert), key: await readFile(key) });
  // Not the API: a proxy's error page, and a server that never answers.
  raw = http.createServer((req, res) => {
    if (req.url?.startsWith('/slow')) return; // never answers
    if (req.url === '/api/v1/volumes/evil') {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ statusCode: 404, error: 'Not Found', message: 'no volume \u001b[2J\u001b]0;owned\u0007' }));
      return;
    }
    if (req.url?.startsWith('/api/v1/resource-groups/')) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ statusCode: 400, error: 'Bad Request', message: 'interface eth9 does not exist on node-b', field: 'aliasIps[1].interface' }));
      return;
    }
    res.writeHead(502, { 'content-type': 'text/html' }).end('<html><body><h1>502 Bad Gateway</h1>\n</body></html>');
  });
  await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
  rawPort = (raw.address() as AddressInfo).port;
  unreachable = await unreachablePort();
});
afterAll(async () => {
  raw.closeAllConnections();
  await new Promise((resolve) => raw.close(resolve));
  await tlsH.close();
  await h.close();
});

describe('connection, token and errors', () => {
  it('no_token_is_a_401_with_a_hint_where_to_get_one', async () => {
    const r = await h.run(['volume', 'list'], { env: { TWINSAN_API: h.server.url } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^twinsan: .*\[401 Unauthorized\]\n  hint: no API token was given: use --token-file FILE or TWINSAN_TOKEN_FILE/);
  });

  it('a_wrong_token_says_where_it_came_from', async () => {
    const r = await h.run(['volume', 'list'], { env: { TWINSAN_API: h.server.url, TWINSAN_TOKEN: 'not-the-token' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/hint: the token from TWINSAN_TOKEN was refused: it may have been rotated/);
  });

  it('token_on_argv_works_with_a_warning_and_wins_over_the_environment', async () => {
    const r = await h.run(['volume', 'list', '--token', h.tokens.current()], { env: { TWINSAN_API: h.server.url, TWINSAN_TOKEN: 'wrong' } });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      'warning: --token puts the API token where other local users can read it (ps, /proc) and in shell history; prefer --token-file or TWINSAN_TOKEN_FILE\n',
    );
  });

  it('connection_options_before_the_command_apply_and_the_commands_own_win', async () => {
    const bare = { TWINSAN_API: `http://127.0.0.1:${unreachable}` };
    const before = await h.run(['--api', h.server.url, '--token-file', h.tokenFile, '--json', 'rg', 'list'], { env: bare });
    expect(before.code).toBe(0);
    expect(before.stdout).toBe(`${await h.inject('/api/v1/resource-groups')}\n`);
    const after = await h.run(['--api', `http://127.0.0.1:${unreachable}`, 'rg', 'list', '--api', h.server.url, '--token-file', h.tokenFile], { env: {} });
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/^NAME/);
    const timeout = await h.run(['--timeout', '0.3', 'volume', 'list'], { env: { TWINSAN_API: `http://127.0.0.1:${rawPort}/slow` } });
    expect(timeout.stderr).toMatch(/no answer within 0\.3 s/);
  });

  it('token_file_readable_by_others_is_warned_about', async () => {
    const file = path.join(h.dir, 'wide.token');
    await writeFile(file, `${h.tokens.current()}\n`);
    await chmod(file, 0o640);
    const r = await h.run(['volume', 'list', '--token-file', file], { env: { TWINSAN_API: h.server.url } });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`warning: token file ${file} is readable by group or others (mode 0640); run: chmod 600 ${file}\n`);
    expect(r.stdout).toMatch(/^NAME/);
  });

  it('bad_token_files_are_usage_errors', async () => {
    const empty = path.join(h.dir, 'empty.token');
    await writeFile(empty, '\n', { mode: 0o600 });
    const two = path.join(h.dir, 'two.token');
    await writeFile(two, 'a b\n', { mode: 0o600 });
    for (const [file, why] of [
      [empty, /token file .*empty\.token \(--token-file\) is empty/],
      [two, /holds more than one printable word/],
      [path.join(h.dir, 'missing'), /cannot read token file .*missing \(--token-file\): ENOENT/],
      [h.dir, /is not a regular file/],
    ] as const) {
      const r = await h.run(['volume', 'list', '--token-file', file]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(why);
    }
  });

  it('connection_refused_exits_3_naming_the_url', async () => {
    const r = await runCli(['volume', 'list'], { TWINSAN_API: `http://127.0.0.1:${unreachable}` });
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `twinsan: cannot reach http://127.0.0.1:${unreachable}/api/v1/volumes: connection refused (ECONNREFUSED)\n  hint: is the node's API running and listening there? Set --api URL or TWINSAN_API\n`,
    );
  });

  it('the_default_api_is_loopback_8080', async () => {
    const r = await runCli(['volume', 'list', '--timeout', '2'], {});
    // Whether or not something listens on 8080 here, the URL tried is the documented default.
    expect(r.stderr).toContain('http://127.0.0.1:8080/api/v1/volumes');
  });

  it('a_bad_api_url_is_a_usage_error', async () => {
    for (const api of ['not a url', 'ftp://x', 'http://x/?q=1']) {
      const r = await runCli(['volume', 'list', '--api', api], {});
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^twinsan: --api: /);
    }
  });

  it('an_api_base_with_a_path_prefix_is_kept', async () => {
    const r = await runCli(['volume', 'list', '--api', `http://127.0.0.1:${unreachable}/twinsan/`], {});
    expect(r.stderr).toContain(`http://127.0.0.1:${unreachable}/twinsan/api/v1/volumes`);
  });

  it('a_non_json_error_page_becomes_one_line', async () => {
    const r = await runCli(['volume', 'list'], { TWINSAN_API: `http://127.0.0.1:${rawPort}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('twinsan: <html><body><h1>502 Bad Gateway</h1> </body></html> [502 Bad Gateway]\n');
  });

  it('control_characters_in_an_api_message_do_not_reach_the_terminal', async () => {
    const r = await runCli(['volume', 'show', 'evil'], { TWINSAN_API: `http://127.0.0.1:${rawPort}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('twinsan: no volume ?[2J?]0;owned? [404 Not Found]\n');
  });

  it('a_nested_field_is_traced_to_the_option_of_its_top_level_key', async () => {
    const r = await runCli(['rg', 'update', 'rg-a', '--alias', '198.18.0.50/24@eth1', '--alias', '198.18.0.51/24@eth9'], { TWINSAN_API: `http://127.0.0.1:${rawPort}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('twinsan: interface eth9 does not exist on node-b (field aliasIps[1].interface, from --alias) [400 Bad Request]\n');
  });

  it('a_server_that_does_not_answer_times_out_with_exit_3', async () => {
    const r = await runCli(['volume', 'list', '--timeout', '0.3'], { TWINSAN_API: `http://127.0.0.1:${rawPort}/slow` });
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/cannot reach .*\/slow\/api\/v1\/volumes: no answer within 0\.3 s\n  hint: a slow operation\? raise --timeout/);
  });

  it('https_self_signed_needs_ca_or_insecure', async () => {
    const env = { ...tlsH.env };
    const plain = await runCli(['volume', 'list'], env);
    expect(plain.code).toBe(3);
    expect(plain.stderr).toMatch(/the server certificate is self-signed\n  hint: trust it with --ca FILE/);
    const withCa = await runCli(['volume', 'list', '--ca', cert], env);
    expect(withCa.code).toBe(0);
    expect(withCa.stdout).toMatch(/^NAME/);
    const caFromEnv = await runCli(['volume', 'list'], { ...env, TWINSAN_CA: cert });
    expect(caFromEnv.code).toBe(0);
    const insecure = await runCli(['volume', 'list', '--insecure'], env);
    expect(insecure.code).toBe(0);
    const http = await runCli(['volume', 'list'], { ...env, TWINSAN_API: tlsH.server.url.replace('https:', 'http:') });
    expect(http.code).toBe(3);
  });

  it('token_rotate_out_writes_a_0600_file_and_the_old_token_stops_working', async () => {
    const old = h.tokens.current();
    const out = path.join(h.dir, 'new.token');
    const r = await h.run(['token', 'rotate', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`new token written to ${out} (mode 0600); the old token no longer works\n`);
    expect((await stat(out)).mode & 0o777).toBe(0o600);
    const token = (await readFile(out, 'utf8')).trim();
    expect(token).toBe(h.tokens.current());
    expect(token).not.toBe(old);
    const stale = await h.run(['volume', 'list'], { env: { TWINSAN_API: h.server.url, TWINSAN_TOKEN: old } });
    expect(stale.code).toBe(1);
    const fresh = await h.run(['volume', 'list'], { env: { TWINSAN_API: h.server.url, TWINSAN_TOKEN_FILE: out } });
    expect(fresh.code).toBe(0);
  });

  it('token_rotate_prints_the_token_without_out', async () => {
    const r = await h.run(['token', 'rotate']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${h.tokens.current()}\n`);
    expect(r.stderr).toMatch(/the old token no longer works/);
  });
});
