/**
 * The few libc calls Node lacks, via koffi (allowed only under src/exec): extended attributes that
 * do not follow symlinks (l*xattr) and mknod for device nodes / overlay whiteouts.
 * Loaded lazily so importing the layer modules never fails on a machine where koffi cannot load;
 * the first call then throws TSB4414.
 */
import { createRequire } from 'node:module';
import { TsbError } from '../../errors.js';
import { LayerCodes } from './errors.js';
import { cPath } from './names.js';

type CPath = string | Buffer;

interface Libc {
  lsetxattr: (path: CPath, name: string, value: Buffer, size: number, flags: number) => number;
  lgetxattr: (path: CPath, name: string, value: Buffer | null, size: number) => number;
  llistxattr: (path: CPath, list: Buffer | null, size: number) => number;
  lremovexattr: (path: CPath, name: string) => number;
  mknod: (path: CPath, mode: number, dev: bigint) => number;
  utimensat: (dirfd: number, path: CPath, times: Buffer, flags: number) => number;
  errno: () => number;
}

let libc: Libc | undefined;

function load(): Libc {
  if (libc) return libc;
  try {
    const require = createRequire(import.meta.url);
    // koffi ships CJS with prebuilt binaries.
    const koffi = require('koffi') as {
      load(name: string): { func(sig: string): (...args: unknown[]) => unknown };
      errno(): number;
    };
    const lib = koffi.load('libc.so.6');
    const lsetxattr = lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)');
    const lgetxattr = lib.func('intptr_t lgetxattr(const char *path, const char *name, _Out_ void *value, size_t size)');
    const llistxattr = lib.func('intptr_t llistxattr(const char *path, _Out_ void *list, size_t size)');
    const lremovexattr = lib.func('int lremovexattr(const char *path, const char *name)');
    const mknod = lib.func('int mknod(const char *path, uint32_t mode, uint64_t dev)');
    // struct timespec[2] = 4 x int64 on the 64-bit Linux targets tsbuild runs on.
    const utimensat = lib.func('int utimensat(int dirfd, const char *path, const void *times, int flags)');
    libc = {
      lsetxattr: lsetxattr as Libc['lsetxattr'],
      lgetxattr: (p, n, v, s) => Number(lgetxattr(p, n, v, s)),
      llistxattr: (p, l, s) => Number(llistxattr(p, l, s)),
      lremovexattr: lremovexattr as Libc['lremovexattr'],
      mknod: mknod as Libc['mknod'],
      utimensat: utimensat as Libc['utimensat'],
      errno: () => koffi.errno(),
    };
    return libc;
  } catch (e) {
    throw new TsbError(LayerCodes.FS_ERROR, 'cannot load libc through koffi (needed for xattrs and device nodes)', {
      cause: e, hint: 'Run tsbuild on Linux x86_64/arm64 with glibc; reinstall node_modules if koffi is broken.',
    });
  }
}

const ERRNO: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 40: 'ELOOP', 36: 'ENAMETOOLONG', 13: 'EACCES', 17: 'EEXIST', 20: 'ENOTDIR', 22: 'EINVAL', 28: 'ENOSPC',
  34: 'ERANGE', 61: 'ENODATA', 95: 'ENOTSUP', 7: 'E2BIG',
};

/** A Node-style system error so callers can use errnoCode(). */
function sysError(op: string, path: string, errno: number): Error & { code: string; errno: number } {
  const code = ERRNO[errno] ?? `ERRNO${errno}`;
  return Object.assign(new Error(`${op} ${path}: ${code}`), { code, errno: -errno, syscall: op, path });
}

/** Names of the extended attributes of `path` (not following symlinks). ENOTSUP → []. */
export function llistxattr(path: string): string[] {
  const c = load();
  for (let attempt = 0; attempt < 4; attempt++) {
    const n = c.llistxattr(cPath(path), null, 0);
    if (n < 0) {
      const e = c.errno();
      if (e === 95) return [];
      throw sysError('llistxattr', path, e);
    }
    if (n === 0) return [];
    const buf = Buffer.alloc(n);
    const m = c.llistxattr(cPath(path), buf, n);
    if (m < 0) {
      if (c.errno() === 34) continue; // grew in between
      throw sysError('llistxattr', path, c.errno());
    }
    return buf.subarray(0, m).toString('latin1').split('\0').filter((s) => s.length > 0)
      .map((s) => Buffer.from(s, 'latin1').toString('utf8'));
  }
  throw sysError('llistxattr', path, 34);
}

/** Value of one xattr, or undefined when absent (ENODATA) or unsupported. */
export function lgetxattr(path: string, name: string): Buffer | undefined {
  const c = load();
  for (let attempt = 0; attempt < 4; attempt++) {
    const n = c.lgetxattr(cPath(path), name, null, 0);
    if (n < 0) {
      const e = c.errno();
      if (e === 61 || e === 95) return undefined;
      throw sysError('lgetxattr', path, e);
    }
    if (n === 0) return Buffer.alloc(0);
    const buf = Buffer.alloc(n);
    const m = c.lgetxattr(cPath(path), name, buf, n);
    if (m < 0) {
      if (c.errno() === 34) continue;
      throw sysError('lgetxattr', path, c.errno());
    }
    return buf.subarray(0, m);
  }
  throw sysError('lgetxattr', path, 34);
}

export function lsetxattr(path: string, name: string, value: Buffer): void {
  const c = load();
  if (c.lsetxattr(cPath(path), name, value, value.length, 0) !== 0) throw sysError('lsetxattr', path, c.errno());
}

/** Removes one xattr (not following symlinks); absent (ENODATA) is fine. */
export function lremovexattr(path: string, name: string): void {
  const c = load();
  if (c.lremovexattr(cPath(path), name) !== 0) {
    const e = c.errno();
    if (e === 61) return;
    throw sysError('lremovexattr', path, e);
  }
}

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;
const UTIME_OMIT = (1 << 30) - 2;

/**
 * utimensat(2) with AT_SYMLINK_NOFOLLOW at full nanosecond precision (Node's lutimes takes a
 * double of seconds: ~0.5 µs steps at today's dates). `atimeNs` undefined leaves atime alone.
 */
export function lutimesNs(path: string, mtimeNs: bigint, atimeNs?: bigint): void {
  const c = load();
  const t = Buffer.alloc(32);
  // timespec wants 0 <= tv_nsec < 1e9, also before 1970: floor the seconds.
  const split = (ns: bigint, off: number): void => {
    let sec = ns / 1_000_000_000n, rest = ns % 1_000_000_000n;
    if (rest < 0n) { sec -= 1n; rest += 1_000_000_000n; }
    t.writeBigInt64LE(sec, off);
    t.writeBigInt64LE(rest, off + 8);
  };
  if (atimeNs === undefined) { t.writeBigInt64LE(0n, 0); t.writeBigInt64LE(BigInt(UTIME_OMIT), 8); }
  else split(atimeNs, 0);
  split(mtimeNs, 16);
  if (c.utimensat(AT_FDCWD, cPath(path), t, AT_SYMLINK_NOFOLLOW) !== 0) throw sysError('utimensat', path, c.errno());
}

/** glibc's makedev(): the Linux dev_t encoding of (major, minor). */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major), mi = BigInt(minor);
  return (mi & 0xffn) | ((ma & 0xfffn) << 8n) | ((mi & ~0xffn) << 12n) | ((ma & ~0xfffn) << 32n);
}

export function devMajor(rdev: number | bigint): number {
  const d = BigInt(rdev);
  return Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
}

export function devMinor(rdev: number | bigint): number {
  const d = BigInt(rdev);
  return Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
}

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** mknod(2): `type` is S_IFCHR / S_IFBLK / S_IFIFO, `perm` the permission bits. */
export function mknod(path: string, type: number, perm: number, major = 0, minor = 0): void {
  const c = load();
  if (c.mknod(cPath(path), type | (perm & 0o7777), makedev(major, minor)) !== 0) throw sysError('mknod', path, c.errno());
}
