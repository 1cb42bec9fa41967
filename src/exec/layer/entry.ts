/**
 * The one entry model every part of the layer machinery speaks: the LayerWriter consumes it, the
 * upperdir differ and the rootfs flattener produce it, the tar reader yields (close to) it.
 *
 * Paths are layer-relative, '/'-separated, with no leading '/', no trailing '/', no '' / '.' / '..'
 * components (see normalizeLayerPath). The empty path '' is the layer root.
 */
import type { Readable } from 'node:stream';
import { LayerCodes, layerError } from './errors.js';
import { encodeName } from './names.js';

export type LayerEntryType =
  | 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo'
  /** Deletion of `path` from the layers below: written as `dir/.wh.NAME`. */
  | 'whiteout'
  /** `path` is an opaque directory (lower contents hidden): written as `path/.wh..wh..opq`. */
  | 'opaque';

/**
 * Where a regular file's bytes come from. Contents are only read while the tar streams out (never
 * buffered whole): `path` is opened then, `stream` is called then (a function so an entry can be
 * sorted and validated before anything is opened).
 */
export type FileSource =
  | { path: string }
  | { buffer: Buffer }
  | { stream: () => Readable | AsyncIterable<Uint8Array> };

export interface LayerEntry {
  path: string;
  type: LayerEntryType;
  /** Permission bits including setuid/setgid/sticky (0o7777); file-type bits are ignored. Default 0o644 (dirs 0o755, symlinks 0o777). */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch (fractions are truncated, like BuildKit). Default 0. */
  mtime?: number;
  /**
   * The exact mtime in nanoseconds, for the layer's SNAPSHOT only (never in the tar: see
   * mtimes.ts). Optional: for `path` sources the writer takes it from the file itself when the
   * file's whole seconds equal `mtime`.
   */
  mtimeNs?: bigint;
  /** Extended attributes, written as PAX `SCHILY.xattr.NAME` (binary-safe). Filtered by keepXattr(). */
  xattrs?: Record<string, Buffer>;
  /** type 'file': the content (absent = empty file). */
  source?: FileSource;
  /** type 'file': the byte count. Required for `stream` sources; for `path` sources it is taken from stat at write time when absent. */
  size?: number;
  /** 'symlink': the target as stored. 'hardlink': the layer path of the linked entry. */
  linkname?: string;
  /** 'char'/'block'. */
  devmajor?: number;
  devminor?: number;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

/**
 * Lexically cleans an archive/caller path into layer form. Leading '/' and './' are stripped
 * (neutralized, as Docker does); '..' is resolved lexically and an escape above the root returns
 * undefined (callers turn that into TSB4401).
 */
export function normalizeLayerPath(p: string): string | undefined {
  const out: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) return undefined;
      out.pop();
      continue;
    }
    out.push(c);
  }
  return out.join('/');
}

/** True when `p` contains a '..' component (even one that cleans away). */
export function hasDotDot(p: string): boolean {
  return p.split('/').includes('..');
}

export function parentOf(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? '' : p.slice(0, i);
}

export function baseOf(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/**
 * Walk order, the order BuildKit's differ emits: a directory before its children, siblings sorted
 * by the bytes of their names (UTF-8, or raw bytes for non-UTF-8 names: names.ts), comparing path component by component (so `a/b` comes
 * before `a-c`). Used on tar names (an opaque marker sorts by its name `.wh..wh..opq`).
 */
export function compareLayerPaths(a: string, b: string): number {
  if (a === b) return 0;
  const ab = encodeName(a), bb = encodeName(b);
  const n = Math.min(ab.length, bb.length);
  for (let i = 0; i < n; i++) {
    const x = ab[i]!, y = bb[i]!;
    if (x === y) continue;
    // '/' ends a component: the shorter component sorts first.
    if (x === 0x2f) return -1;
    if (y === 0x2f) return 1;
    return x - y;
  }
  return ab.length - bb.length;
}

/**
 * Which extended attributes travel in layers. Kept: `security.capability` (file capabilities, e.g.
 * ping), `user.*`, POSIX ACLs (`system.posix_acl_*`). Never: overlayfs' own bookkeeping
 * (`trusted.overlay.*`, `user.overlay.*`: they would make a lowerdir lie about its contents),
 * `security.selinux` (a host label, not image content), other `trusted.*` (host-private).
 */
export function keepXattr(name: string): boolean {
  if (name.startsWith('user.overlay.')) return false;
  if (name === 'security.capability') return true;
  if (name.startsWith('user.')) return true;
  if (name === 'system.posix_acl_access' || name === 'system.posix_acl_default') return true;
  return false;
}

/** Caller-side validation shared by the writer. Throws TSB4412. */
export function checkEntry(e: LayerEntry): void {
  const bad = (why: string): never => {
    throw layerError(LayerCodes.BAD_ENTRY, `invalid layer entry ${JSON.stringify(e.path)}: ${why}`,
      'This is a tsbuild bug: the caller built a layer entry the writer cannot express.');
  };
  if (normalizeLayerPath(e.path) !== e.path) bad('path is not normalized (no leading "/", no "." or ".." components)');
  if (e.path === '' && e.type !== 'dir' && e.type !== 'opaque') bad('only a directory can be the layer root');
  const b = baseOf(e.path);
  if (b.startsWith(WHITEOUT_PREFIX)) bad('names starting with ".wh." are reserved for whiteouts');
  if ((e.type === 'symlink' || e.type === 'hardlink') && !e.linkname) bad('a link needs a linkname');
  if (e.type === 'hardlink' && normalizeLayerPath(e.linkname!) !== e.linkname) bad('hardlink target must be a normalized layer path');
  if (e.type === 'file' && e.source && 'stream' in e.source && e.size === undefined) bad('a stream source needs a size');
  if (e.type === 'file' && e.source && 'buffer' in e.source && e.size !== undefined && e.size !== e.source.buffer.length) bad('size does not match the buffer');
  for (const n of ['uid', 'gid', 'devmajor', 'devminor', 'size'] as const) {
    const v = e[n];
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) bad(`${n} must be a non-negative integer`);
  }
}
