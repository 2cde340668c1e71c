import { chmod, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliHarness, CliHarness } from './harness';

let h: CliHarness;
beforeAll(async () => {
  h = await cliHarness();
});
afterAll(async () => {
  await h.close();
});

const SECRET = 'abcdefgh12345678';
const MUTUAL = 'mutual-secret-99';

async function secretFile(name: string, content: string, mode = 0o600): Promise<string> {
  const file = path.join(h.dir, name);
  await writeFile(file, content);
  await chmod(file, mode);
  return file;
}

describe('twinsan acl', () => {
  it('acl_set_allow_and_chap_from_files_sends_them_and_never_prints_them', async () => {
    const chapFile = await secretFile('chap', `${SECRET}\n`);
    const mutualFile = await secretFile('mutual', MUTUAL);
    const r = await h.run([
      'acl', 'set', 'vol1',
      '--allow', 'iqn.1998-01.com.vmware:esx-01', 'iqn.1998-01.com.vmware:esx-02',
      '--chap', 'esx', '--chap-secret-file', chapFile,
      '--mutual-chap', 'target', '--mutual-chap-secret-file', mutualFile,
    ]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(h.control.callsTo('updateAccess').at(-1)?.args).toEqual([
      'vol1',
      {
        allowedInitiators: ['iqn.1998-01.com.vmware:esx-01', 'iqn.1998-01.com.vmware:esx-02'],
        chap: { user: 'esx', secret: SECRET },
        mutualChap: { user: 'target', secret: MUTUAL },
      },
    ]);
    expect(r.stdout).toMatch(/^Initiators: +iqn\.1998-01\.com\.vmware:esx-01\n +iqn\.1998-01\.com\.vmware:esx-02$/m);
    expect(r.stdout).toMatch(/^CHAP: +user esx \(secret set\)$/m);
    expect(r.stdout).toMatch(/^Mutual CHAP: +user target \(secret set\)$/m);
    const show = await h.run(['acl', 'show', 'vol1', '--json']);
    expect(show.stdout).toBe(`${await h.inject('/api/v1/volumes/vol1/access')}\n`);
    for (const out of [r.stdout, show.stdout]) {
      expect(out).not.toContain(SECRET);
      expect(out).not.toContain(MUTUAL);
    }
  });

  it('acl_set_secret_on_argv_is_accepted_with_a_warning', async () => {
    const r = await h.run(['acl', 'set', 'vol1', '--chap', 'esx', '--chap-secret', SECRET]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: --chap-secret puts the secret where other local users can read it \(ps, \/proc\) and in shell history/);
    expect(h.control.callsTo('updateAccess').at(-1)?.args[1]).toEqual({ chap: { user: 'esx', secret: SECRET } });
  });

  it('acl_set_secret_file_readable_by_others_is_warned_about', async () => {
    const file = await secretFile('wide', SECRET, 0o644);
    const r = await h.run(['acl', 'set', 'vol1', '--chap', 'esx', '--chap-secret-file', file]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`warning: --chap-secret-file: ${file} is readable by group or others (mode 0644); run: chmod 600 ${file}\n`);
  });

  it('acl_set_secret_from_stdin', async () => {
    const r = await h.run(['acl', 'set', 'vol1', '--chap', 'esx', '--chap-secret-file', '-'], { stdin: `${SECRET}\n` });
    expect(r.code).toBe(0);
    expect(h.control.callsTo('updateAccess').at(-1)?.args[1]).toEqual({ chap: { user: 'esx', secret: SECRET } });
  });

  it('acl_set_chap_without_a_secret_source_and_no_terminal_is_a_usage_error', async () => {
    const calls = h.control.callsTo('updateAccess').length;
    const r = await h.run(['acl', 'set', 'vol1', '--chap', 'esx']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('twinsan: CHAP secret for esx: give --chap-secret-file FILE (or - for stdin); there is no terminal to prompt on\n');
    expect(h.control.callsTo('updateAccess')).toHaveLength(calls);
  });

  it('acl_set_prompts_on_a_terminal_without_echo', async () => {
    const r = await h.run(['acl', 'set', 'vol1', '--chap', 'esx'], { stdinIsTTY: true, stdin: `${SECRET}x\u007f\r${SECRET}\r` });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('CHAP secret for esx: \nCHAP secret for esx (again): \n');
    expect(h.control.callsTo('updateAccess').at(-1)?.args[1]).toEqual({ chap: { user: 'esx', secret: SECRET } });
    const mismatch = await h.run(['acl', 'set', 'vol1', '--chap', 'esx'], { stdinIsTTY: true, stdin: `${SECRET}\rother-secret-1234\r` });
    expect(mismatch.code).toBe(2);
    expect(mismatch.stderr).toMatch(/the two entries differ/);
  });

  it('acl_set_a_short_secret_is_refused_by_the_api_naming_the_field', async () => {
    const r = await h.run(['acl', 'set', 'vol1', '--chap', 'esx', '--chap-secret-file', '-'], { stdin: 'short' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\(field chap\.secret, from the CHAP secret\) \[400 Bad Request\]/);
    expect(r.stderr).not.toContain('short\n');
  });

  it('acl_set_any_and_no_chap_clear_them', async () => {
    const r = await h.run(['acl', 'set', 'vol1', '--any', '--no-chap']);
    expect(r.code).toBe(0);
    expect(h.control.callsTo('updateAccess').at(-1)?.args[1]).toEqual({ allowedInitiators: null, chap: null });
    expect(r.stdout).toMatch(/^Initiators: +any$/m);
    expect(r.stdout).toMatch(/^CHAP: +off$/m);
  });

  it('acl_set_conflicting_or_empty_options_are_usage_errors', async () => {
    const cases: [string[], RegExp][] = [
      [['--allow', 'iqn.1998-01.com.vmware:esx-01', '--any'], /give --allow or --any, not both/],
      [['--chap-secret-file', '/nonexistent'], /a CHAP secret needs --chap USER/],
      [['--no-chap', '--mutual-chap', 'x', '--mutual-chap-secret-file', '/x'], /--no-chap turns both off/],
      [[], /nothing to change/],
      [['--allow', 'not-an-iqn'], /"not-an-iqn" is not a valid iSCSI name/],
      [['--chap', 'esx', '--chap-secret-file', '/nonexistent/secret'], /--chap-secret-file: cannot read \/nonexistent\/secret: ENOENT/],
    ];
    for (const [args, why] of cases) {
      const r = await h.run(['acl', 'set', 'vol1', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(why);
    }
  });
});
