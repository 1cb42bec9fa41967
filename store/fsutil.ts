/**
 * File-system helpers every store write goes through: temp names that say who made them (so a
 * sweep can tell a dead process's leftovers from a live one's work), atomic replace
 * (temp + fsync + rename + fsync dir), and errno → coded TsbError mapping.
 */
import { isAscii } from 'node:buffer';
import { constants as C } from 'node:fs';
import { createRequire } from 'node:module';
import { mkdir, open, rename, unlink } from './afs.js';
import { basename, dirname, join } from 'node:path';
import { TsbError, errnoCode } from './errors.js';
import { selfOwner } from './owner.js';

/**
 * Store error codes (TSB5xxx). A code keeps its meaning once shipped.
 *   5001 blob not found             5002 content does not match the expected digest/size (put)
 *   5003 disk full (ENOSPC/EDQUOT)  5004 permission denied / read-only file system
 *   5005 corrupt blob (read check)  5006 corrupt index or record
 *   5007 lock wait timed out        5008 ref/cache target incomplete (a blob it needs is missing)
 *   5009 invalid digest or id       5010 not a store / unsupported store version
 *   5011 image name not found       5012 other I/O error
 */
export const E = {
  NOT_FOUND: 'TSB5001', MISMATCH: 'TSB5002', NOSPC: 'TSB5003', PERM: 'TSB5004', CORRUPT_BLOB: 'TSB5005',
  CORRUPT_INDEX: 'TSB5006', LOCK_TIMEOUT: 'TSB5007', INCOMPLETE: 'TSB5008', BAD_DIGEST: 'TSB5009',
  BAD_STORE: 'TSB5010', NO_SUCH_REF: 'TSB5011', IO: 'TSB5012',
} as const;

/** Turn an fs error into the store's coded error; TsbErrors pass through unchanged. */
export function ioError(err: unknown, what: string, path: string): TsbError {
  if (err instanceof TsbError) return err;
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new TsbError(E.NOSPC, `disk full while ${what} (${path})`, {
      cause: err, hint: 'free space on that file system (e.g. "tsbuild cache prune", "tsbuild store gc") or point --store at a larger disk.',
    });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new TsbError(E.PERM, `permission denied while ${what} (${path})`, {
      cause: err, hint: code === 'EROFS' ? 'the store is on a read-only file system; use --store DIR on a writable one.'
        : 'check ownership and mode of the store directory, or use --store DIR / TSBUILD_STORE for a store you own.',
    });
  }
  return new TsbError(E.IO, `I/O error ${code ?? ''} while ${what} (${path}): ${err instanceof Error ? err.message : String(err)}`.replace('  ', ' '), {
    cause: err, hint: 'run "tsbuild store verify" to check the store.',
  });
}

let cryptoMod: typeof import('node:crypto') | undefined;
let streamMod: typeof import('node:stream') | undefined;
/**
 * node:crypto and node:stream, loaded on first use (why): loading each costs ~5 ms of a command's
 * start-up, and the commands that only read the store (images, cache ls, a memoized no-op build)
 * never hash or stream a blob.
 */
export function crypto(): typeof import('node:crypto') {
  return cryptoMod ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
}
export function stream(): typeof import('node:stream') {
  return streamMod ??= createRequire(import.meta.url)('node:stream') as typeof import('node:stream');
}

type LRU = typeof import('lru-cache').LRUCache;
let lruClass: Promise<LRU> | undefined;
/**
 * lru-cache's class, loaded on first use (why: loading it loads node:perf_hooks and a dozen
 * internal modules, ~2.5 ms, and the read-only commands and a memoized no-op build never cache a
 * record or a JSON blob). An import(), not require: the fast loader serves it from its pack.
 */
export function lruCache(): Promise<LRU> {
  return lruClass ??= import('lru-cache').then((m) => m.LRUCache);
}

/**
 * `bytes` random bytes as hex, from Math.random: for names that must not collide (temp files,
 * lock owners, lease ids: each also carries its pid and start time), never for secrets.
 */
export function uniqueHex(bytes: number): string {
  let s = '';
  while (s.length < 2 * bytes) s += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return s.slice(0, 2 * bytes);
}

/**
 * A unique temp name in `dir` that embeds the owner (`pid.start`), e.g. `blob.1234.98765.ab12…`.
 * sweepTmp() removes entries whose owner process is gone.
 */
export function tempName(dir: string, prefix: string): string {
  const o = selfOwner();
  return join(dir, `${prefix}.${o.pid}.${o.start}.${uniqueHex(6)}`);
}

/** Owner `{pid, start}` parsed from a temp name made by tempName, if it has one. */
export function tempOwner(name: string): { pid: number; start: string } | undefined {
  const m = /\.(\d+)\.(\d+)\.[0-9a-f]{12}(?:\.[^/]*)?$/.exec(basename(name));
  return m ? { pid: Number(m[1]), start: m[2]! } : undefined;
}

export async function fsyncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, C.O_RDONLY | C.O_DIRECTORY);
    await fh.sync();
  } catch (e) {
    // Some file systems refuse fsync on directories (EINVAL); the rename is still atomic there.
    if (errnoCode(e) !== 'EINVAL') throw e;
  } finally {
    await fh?.close();
  }
}

/**
 * Write `data` to `path` atomically: temp file in `tmpDir` (same file system), fsync, rename over
 * `path`, fsync the directory. Readers see the old or the new file, never a torn one.
 * `durable: false` skips both fsyncs, for files that mean nothing after a crash (a lease names a
 * live process: after a power cut its owner is gone, and an unreadable lease is dropped anyway);
 * other processes still see the old or the new file, never a torn one.
 */
export async function atomicWrite(path: string, data: string | Uint8Array, tmpDir: string, what: string, opts: { durable?: boolean } = {}): Promise<void> {
  const tmp = tempName(tmpDir, 'w');
  const durable = opts.durable !== false;
  try {
    const fh = await open(tmp, 'wx', 0o644);
    try {
      await fh.writeFile(data);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path).catch(async (e: unknown) => {
      if (errnoCode(e) !== 'ENOENT') throw e;
      await mkdir(dirname(path), { recursive: true });
      await rename(tmp, path);
    });
    if (durable) await fsyncDir(dirname(path));
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw ioError(e, what, path);
  }
}

export async function readFileOrUndefined(fh: Promise<Buffer>): Promise<Buffer | undefined> {
  try { return await fh; } catch (e) { if (errnoCode(e) === 'ENOENT') return undefined; throw e; }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * buf[start, end) as text. Node's UTF-8 decoder costs ~4 ms per MB here (index.json with 10,000
 * tags is 4.4 MB); ASCII text (nearly always: digests, names, ISO dates) decodes as latin1, the
 * same characters, ~50 times faster, after a SIMD ASCII check.
 */
export function decodeText(buf: Buffer, start = 0, end = buf.length): string {
  const b = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
  return b.toString(isAscii(b) ? 'latin1' : 'utf8');
}
