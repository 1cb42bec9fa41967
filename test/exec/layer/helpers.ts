/**
 * Test helpers for the layer machinery: temp dirs, a full description of a file tree (host or
 * MergedView) for exact comparisons, raw tar construction for hostile archives, overlay mounts.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { lgetxattr, llistxattr, devMajor, devMinor } from '../../../src/exec/layer/native.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarHeader } from '../../../src/exec/layer/tar.js';
import type { MergedView } from '../../../src/exec/layer/view.js';

const made: string[] = [];

export function tmp(prefix = 'layer'): string {
  const d = mkdtempSync(join(tmpdir(), `tsb-${prefix}-`));
  made.push(d);
  return d;
}

export function cleanup(): void {
  for (const d of made.splice(0)) {
    try { execFileSync('umount', ['-l', join(d, 'm')], { stdio: 'ignore' }); } catch { /* not mounted */ }
    rmSync(d, { recursive: true, force: true });
  }
}

export interface Desc {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  mtime?: number;
  content?: string;
  target?: string;
  dev?: string;
  xattrs?: Record<string, string>;
  /** index of the hardlink group (same inode) among the tree's multi-link files */
  link?: number;
}

function typeName(st: import('node:fs').Stats): string {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

function xattrDesc(host: string): Record<string, string> | undefined {
  const names = llistxattr(host).filter((n) => !n.startsWith('trusted.overlay.') && !n.startsWith('security.selinux')).sort();
  if (!names.length) return undefined;
  const o: Record<string, string> = {};
  for (const n of names) o[n] = lgetxattr(host, n)!.toString('hex');
  return o;
}

function describeOne(host: string, st: import('node:fs').Stats, withMtime: boolean): Desc {
  const d: Desc = { type: typeName(st), mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
  if (withMtime && !st.isSymbolicLink()) d.mtime = Math.floor(st.mtimeMs / 1000);
  if (st.isFile()) d.content = createHash('sha256').update(readFileSync(host)).digest('hex').slice(0, 16);
  if (st.isSymbolicLink()) d.target = readlinkSync(host);
  if (st.isCharacterDevice() || st.isBlockDevice()) d.dev = `${devMajor(st.rdev)}:${devMinor(st.rdev)}`;
  const x = xattrDesc(host);
  if (x) d.xattrs = x;
  return d;
}

function linkGroups(out: Record<string, Desc>, inos: Map<string, string[]>): void {
  let g = 0;
  for (const paths of [...inos.values()].filter((p) => p.length > 1).sort((a, b) => (a[0]! < b[0]! ? -1 : 1))) {
    for (const p of paths) out[p]!.link = g;
    g++;
  }
}

/** Every entry below root (not root itself), keyed by '/'-relative path. */
export function describeTree(root: string, opts: { mtime?: boolean } = {}): Record<string, Desc> {
  const out: Record<string, Desc> = {};
  const inos = new Map<string, string[]>();
  const rec = (rel: string): void => {
    for (const n of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      const h = join(root, r);
      const st = lstatSync(h);
      out[r] = describeOne(h, st, opts.mtime ?? false);
      if (st.isFile() && st.nlink > 1) { const k = `${st.ino}`; inos.set(k, [...(inos.get(k) ?? []), r]); }
      if (st.isDirectory()) rec(r);
    }
  };
  rec('');
  linkGroups(out, inos);
  return out;
}

/** The same description of a MergedView. */
export function describeView(view: MergedView, opts: { mtime?: boolean } = {}): Record<string, Desc> {
  const out: Record<string, Desc> = {};
  const inos = new Map<string, string[]>();
  for (const e of view.walk('/')) {
    if (e.path === '/') continue;
    const r = e.path.slice(1);
    out[r] = describeOne(e.hostPath, e.stat, opts.mtime ?? false);
    if (e.stat.isFile() && e.stat.nlink > 1) { const k = `${e.stat.dev}:${e.stat.ino}`; inos.set(k, [...(inos.get(k) ?? []), r]); }
  }
  linkGroups(out, inos);
  return out;
}

/** A tar built header by header, bypassing the LayerWriter's validation (for hostile archives). */
export function rawTar(entries: Array<Partial<TarHeader> & { name: string; data?: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const h: TarHeader = {
      type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0, linkname: '', uname: '', gname: '',
      devmajor: 0, devminor: 0, xattrs: {}, ...e,
    };
    h.size = h.type === 'file' ? data.length : 0;
    parts.push(encodeHeader(h));
    if (h.type === 'file' && data.length) { parts.push(data, padding(data.length)); }
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export function streamOf(b: Buffer): Readable {
  return Readable.from([b]);
}

export async function collect(r: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

export function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** Why overlay tests cannot run here, or undefined. */
export function overlayMissing(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: skipping overlayfs tests';
  try {
    if (!readFileSync('/proc/filesystems', 'utf8').includes('overlay')) return 'overlayfs not available: skipping';
  } catch { return 'no /proc/filesystems: skipping overlayfs tests'; }
  return undefined;
}

/** Mounts overlay at base/m with lowers (bottom first), upper base/u, work base/w. */
export function mountOverlay(base: string, lowers: string[], opts: { upper?: boolean } = {}): { mnt: string; upper: string } {
  const mnt = join(base, 'm'), upper = join(base, 'u'), work = join(base, 'w');
  execFileSync('mkdir', ['-p', mnt, upper, work]);
  const lowerOpt = [...lowers].reverse().join(':');
  const o = opts.upper === false
    ? `lowerdir=${lowerOpt}`
    : `lowerdir=${lowerOpt},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off`;
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', o, mnt]);
  return { mnt, upper };
}

export function umount(mnt: string): void {
  execFileSync('umount', [mnt]);
}
