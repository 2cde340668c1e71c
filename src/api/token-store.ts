/**
 * The API's bearer token: 32 random bytes, base64url, generated on first
 * start and kept in a file only the node's user may read (mode 0600). A
 * file with a wider mode is repaired to 0600 and the old mode reported;
 * a file that does not hold a token is refused rather than overwritten (it
 * may be somebody else's file). Rotation writes the new token atomically
 * (temporary file, then rename), after which only the new one is accepted.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

const TOKEN_BYTES = 32;
/** base64url of 32 bytes: 43 characters, no padding. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;
const FILE_MODE = 0o600;

export class TokenFileError extends Error {
  override readonly name = 'TokenFileError';
}

export interface TokenStoreOpened {
  readonly store: TokenStore;
  /** True when this call generated the token (first start). */
  readonly created: boolean;
  /** The file's mode before it was repaired to 0600, e.g. 0o644; null when it was already 0600 or new. */
  readonly repairedMode: number | null;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

export function generateToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

export class TokenStore {
  private tokenDigest: Buffer;

  private constructor(
    readonly file: string,
    private token: string,
  ) {
    this.tokenDigest = digest(token);
  }

  /** Loads the token file, creating it (and its directory, mode 0700) with a new token when missing. */
  static async open(file: string): Promise<TokenStoreOpened> {
    let stat;
    try {
      stat = await fs.stat(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const token = generateToken();
      await writeTokenFile(file, token, 'wx');
      return { store: new TokenStore(file, token), created: true, repairedMode: null };
    }
    if (!stat.isFile()) throw new TokenFileError(`API token file ${file} is not a regular file`);
    const text = (await fs.readFile(file, 'utf8')).trim();
    if (!TOKEN_PATTERN.test(text)) {
      throw new TokenFileError(`API token file ${file} does not hold a token (43 base64url characters); remove it to have a new one generated`);
    }
    const mode = stat.mode & 0o777;
    let repairedMode: number | null = null;
    if ((mode & 0o077) !== 0) {
      await fs.chmod(file, FILE_MODE);
      repairedMode = mode;
    }
    return { store: new TokenStore(file, text), created: false, repairedMode };
  }

  /** Constant-time check of a presented token (both sides hashed first so lengths match). */
  verify(candidate: string): boolean {
    return timingSafeEqual(digest(candidate), this.tokenDigest);
  }

  /** The token, for the operator on first start and for local tools (the CLI reads the file). */
  current(): string {
    return this.token;
  }

  /** Replaces the token; the old one stops working once the new file is in place. */
  async rotate(): Promise<string> {
    const token = generateToken();
    const temp = `${this.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeTokenFile(temp, token, 'wx');
      await fs.rename(temp, this.file);
    } catch (err) {
      await fs.rm(temp, { force: true });
      throw err;
    }
    this.token = token;
    this.tokenDigest = digest(token);
    return token;
  }
}

async function writeTokenFile(file: string, token: string, flag: 'wx'): Promise<void> {
  const handle = await fs.open(file, flag, FILE_MODE);
  try {
    // The umask cannot widen 0600, but set it explicitly in case it narrowed it oddly.
    await handle.chmod(FILE_MODE);
    await handle.writeFile(`${token}\n`, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}
