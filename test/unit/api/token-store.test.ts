import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TokenFileError, TokenStore } from '../../../src/api';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'twinsan-token-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const mode = async (file: string) => (await stat(file)).mode & 0o777;

describe('TokenStore', () => {
  it('generates a token on first start in a 0600 file (directory created 0700) and loads the same one on restart', async () => {
    const file = path.join(dir, 'etc', 'api-token');
    const first = await TokenStore.open(file);
    expect(first.created).toBe(true);
    expect(first.repairedMode).toBeNull();
    expect(first.store.current()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await mode(file)).toBe(0o600);
    expect(await mode(path.dirname(file))).toBe(0o700);
    expect((await readFile(file, 'utf8')).trim()).toBe(first.store.current());

    const again = await TokenStore.open(file);
    expect(again.created).toBe(false);
    expect(again.store.current()).toBe(first.store.current());
  });

  it('two first starts make different tokens', async () => {
    const a = await TokenStore.open(path.join(dir, 'a'));
    const b = await TokenStore.open(path.join(dir, 'b'));
    expect(a.store.current()).not.toBe(b.store.current());
  });

  it('verifies only the exact token', async () => {
    const { store } = await TokenStore.open(path.join(dir, 't'));
    const token = store.current();
    expect(store.verify(token)).toBe(true);
    expect(store.verify(`${token}x`)).toBe(false);
    expect(store.verify(token.slice(0, -1))).toBe(false);
    expect(store.verify('')).toBe(false);
    expect(store.verify(token.toUpperCase() === token ? token.toLowerCase() : token.toUpperCase())).toBe(false);
  });

  it('repairs a file readable by others to 0600 and reports the old mode', async () => {
    const file = path.join(dir, 't');
    const { store } = await TokenStore.open(file);
    await chmod(file, 0o644);
    const reopened = await TokenStore.open(file);
    expect(reopened.repairedMode).toBe(0o644);
    expect(await mode(file)).toBe(0o600);
    expect(reopened.store.current()).toBe(store.current());
  });

  it('refuses a file that does not hold a token, leaving it alone', async () => {
    const file = path.join(dir, 't');
    await writeFile(file, 'hello world\n', { mode: 0o600 });
    await expect(TokenStore.open(file)).rejects.toThrow(TokenFileError);
    await expect(TokenStore.open(file)).rejects.toThrow(/does not hold a token/);
    expect(await readFile(file, 'utf8')).toBe('hello world\n');
  });

  it('refuses a directory in place of the file', async () => {
    await expect(TokenStore.open(dir)).rejects.toThrow(/not a regular file/);
  });

  it('rotation replaces the file (still 0600) and the old token stops verifying', async () => {
    const file = path.join(dir, 't');
    const { store } = await TokenStore.open(file);
    const old = store.current();
    const fresh = await store.rotate();
    expect(fresh).not.toBe(old);
    expect(store.verify(old)).toBe(false);
    expect(store.verify(fresh)).toBe(true);
    expect((await readFile(file, 'utf8')).trim()).toBe(fresh);
    expect(await mode(file)).toBe(0o600);
    const reopened = await TokenStore.open(file);
    expect(reopened.store.current()).toBe(fresh);
  });
});
