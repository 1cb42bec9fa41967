/**
 * TreeWriter: creates entries inside a root directory WITHOUT ever following a symlink or leaving
 * the root. Shared by unpack (snapshot and flat) and copyViewToDir.
 *
 * Safety contract (hostile archives, `tsbuild load`):
 * - Paths are cleaned lexically; an escape above the root → TSB4401. Leading '/' is stripped.
 * - Every parent component is checked with lstat (cached per run): a symlink or non-directory in
 *   the parent chain → TSB4403 ("written through a symlink"); missing parents are created (0755,
 *   root-owned, as Docker does). The cache is invalidated whenever an entry replaces a directory.
 * - Files are opened O_CREAT|O_EXCL|O_NOFOLLOW after the old entry (if any) is removed, so a
 *   symlink can never be written through; metadata uses lchown/lutimes/lsetxattr, and chmod only
 *   on entries this writer just created (never symlinks).
 * - Relative symlink targets that lexically escape the root from the link's directory → TSB4402
 *   (Docker's rule; absolute targets are kept verbatim: they are resolved inside the image root).
 *   Hardlink targets must be inside the root, reached without symlinks, and exist → else TSB4402
 *   / TSB4407.
 * - Devices need `allowDevices` (TSB4404); EPERM from mknod is also TSB4404.
 * Symlinks placed by an EARLIER layer (e.g. `bin -> usr/bin` on a usr-merged base) are not this
 * class's business: unpack.ts redirects such entries, chroot-style, before they get here.
 */
import { closeSync, openSync, writeSync, constants as C, lstatSync, mkdirSync, rmSync, symlinkSync, linkSync, lchownSync, chmodSync, lutimesSync, readdirSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from '../../errors.js';
import { keepXattr, normalizeLayerPath } from './entry.js';
import { LayerCodes, fsError, layerError } from './errors.js';
import { decodeName, fsPath } from './names.js';
import { S_IFBLK, S_IFCHR, S_IFIFO, lsetxattr, lutimesNs, mknod } from './native.js';
import type { TarType } from './tar.js';

export interface TreeWriterOptions {
  /** Apply uid/gid (default: when running as root). */
  chown?: boolean;
  /** Allow char/block device nodes (default true). */
  allowDevices?: boolean;
}

/** Internal: metadata for a parent directory the archive needs but has no header for. */
export type ImplicitDirMeta = (rel: string) => NodeMeta | undefined;

export interface NodeMeta {
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** Exact mtime (ns) to set instead of `mtime` (snapshots of layers this process wrote: mtimes.ts). */
  mtimeNs?: bigint | undefined;
  xattrs?: Record<string, Buffer>;
}

const SMALL_FILE = 256 << 10;

const hintEscape = 'The archive is unsafe (it tries to write outside its target); do not use it, or re-create it with relative paths.';

export class TreeWriter {
  readonly root: string;
  private readonly chown: boolean;
  private readonly allowDevices: boolean;
  private readonly dirs = new Set<string>(['']);
  private readonly dirMeta = new Map<string, NodeMeta>();

  private readonly implicitMeta: ImplicitDirMeta | undefined;

  constructor(root: string, opts: TreeWriterOptions = {}, implicitMeta?: ImplicitDirMeta) {
    this.root = root;
    this.implicitMeta = implicitMeta;
    this.chown = opts.chown ?? process.getuid?.() === 0;
    this.allowDevices = opts.allowDevices ?? true;
  }

  /** Cleans an archive name; TSB4401 when it escapes. `label` is the name shown in errors. */
  clean(name: string, label = name): string {
    const p = normalizeLayerPath(name);
    if (p === undefined) {
      throw layerError(LayerCodes.PATH_ESCAPE, `archive entry ${JSON.stringify(label)} points outside the target directory ("..")`, hintEscape);
    }
    return p;
  }

  host(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** Makes sure every component of `dirRel` is a real directory (creating missing ones). */
  ensureDir(dirRel: string, label: string, create = true): string {
    if (this.dirs.has(dirRel)) return this.host(dirRel);
    const comps = dirRel.split('/');
    let cur = '';
    for (const c of comps) {
      cur = cur ? `${cur}/${c}` : c;
      if (this.dirs.has(cur)) continue;
      const h = this.host(cur);
      let st;
      try { st = lstatSync(fsPath(h), { throwIfNoEntry: false }); } catch (e) { throw fsError('lstat', h, e); }
      if (!st) {
        if (!create) throw layerError(LayerCodes.HARDLINK_TARGET_MISSING, `archive entry ${JSON.stringify(label)}: ${cur} does not exist`, 'The archive refers to a path it does not contain.');
        try { mkdirSync(fsPath(h), { mode: 0o755 }); } catch (e) { throw fsError('mkdir', h, e); }
        // In a snapshot, a parent without a header must look like the lower one it shadows.
        const m = this.implicitMeta?.(cur);
        if (m) {
          this.owner(h, m);
          this.xattrs(h, m.xattrs);
          if (!this.dirMeta.has(cur)) this.dirMeta.set(cur, m);
        } else if (!this.dirMeta.has(cur)) {
          this.dirMeta.set(cur, { mode: 0o755, uid: 0, gid: 0, mtime: NaN });
        }
      } else if (st.isSymbolicLink()) {
        throw layerError(LayerCodes.THROUGH_SYMLINK, `archive entry ${JSON.stringify(label)} would be written through the symlink ${cur}`,
          'The archive is unsafe (a symlink followed by entries below it); tsbuild never follows archive symlinks.');
      } else if (!st.isDirectory()) {
        throw layerError(LayerCodes.THROUGH_SYMLINK, `archive entry ${JSON.stringify(label)} is below ${cur}, which is not a directory`,
          'The archive is inconsistent: a file and a directory share a name.');
      }
      this.dirs.add(cur);
    }
    return this.host(dirRel);
  }

  /** True when rel is already verified (or created) as a real directory in this run. */
  isKnownDir(rel: string): boolean {
    return this.dirs.has(rel);
  }

  /** Removes whatever is at rel (recursively), invalidating cached directories below it. */
  remove(rel: string): void {
    const h = this.host(rel);
    try { rmSync(fsPath(h), { recursive: true, force: true }); } catch (e) { throw fsError('remove', h, e); }
    this.forget(rel);
  }

  private forget(rel: string): void {
    if (!this.dirs.has(rel)) return;
    const pre = rel + '/';
    for (const d of this.dirs) if (d === rel || d.startsWith(pre)) this.dirs.delete(d);
    for (const d of this.dirMeta.keys()) if (d === rel || d.startsWith(pre)) this.dirMeta.delete(d);
  }

  /** lstat of an entry inside the root (parents verified, not created); undefined when absent. */
  lstatEntry(rel: string, label: string): import('node:fs').Stats | undefined {
    const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    try { this.ensureDir(parent, label, false); } catch (e) {
      if (e instanceof Error && 'code' in e && (e as { code: string }).code === LayerCodes.HARDLINK_TARGET_MISSING) return undefined;
      throw e;
    }
    const h = this.host(rel);
    try { return lstatSync(fsPath(h), { throwIfNoEntry: false }); } catch (e) { throw fsError('lstat', h, e); }
  }

  /**
   * Prepares rel for a new entry of `type`: parents made safe, an existing entry removed unless
   * both are directories. Returns [host path, true when an existing directory is kept].
   */
  private prepare(rel: string, type: TarType, label: string): [string, boolean] {
    if (rel === '') {
      if (type !== 'dir') throw layerError(LayerCodes.PATH_ESCAPE, `archive entry ${JSON.stringify(label)} would replace the target directory itself`, hintEscape);
      return [this.root, true];
    }
    const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
    this.ensureDir(parent, label);
    const h = this.host(rel);
    let st;
    try { st = lstatSync(fsPath(h), { throwIfNoEntry: false }); } catch (e) { throw fsError('lstat', h, e); }
    if (st) {
      if (st.isDirectory() && type === 'dir') return [h, true];
      if (st.isDirectory()) this.remove(rel);
      else { try { rmSync(fsPath(h), { force: true }); } catch (e) { throw fsError('remove', h, e); } }
    }
    return [h, false];
  }

  /** Regular file from chunks (never through a symlink: O_EXCL|O_NOFOLLOW). */
  async file(rel: string, meta: NodeMeta, body: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | undefined, label = rel, size?: number): Promise<void> {
    const [h] = this.prepare(rel, 'file', label);
    if (size !== undefined && size <= SMALL_FILE) {
      // Small files: gather the body, then write synchronously (threadpool hops dominate otherwise).
      const parts: Buffer[] = [];
      if (body) for await (const c of body) parts.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
      const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      let fd: number;
      try { fd = openSync(fsPath(h), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600); } catch (e) { throw fsError('create', h, e); }
      try {
        let off = 0;
        while (off < data.length) off += writeSync(fd, data, off, data.length - off);
      } catch (e) { throw fsError('write', h, e); } finally { closeSync(fd); }
      this.meta(h, rel, meta, false);
      return;
    }
    let fh;
    try { fh = await open(fsPath(h), C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_NOFOLLOW, 0o600); } catch (e) { throw fsError('create', h, e); }
    try {
      if (body) for await (const c of body) {
        let off = 0;
        while (off < c.length) {
          const { bytesWritten } = await fh.write(c, off, c.length - off);
          off += bytesWritten;
        }
      }
    } catch (e) {
      throw e instanceof Error && 'code' in e && typeof (e as { code: unknown }).code === 'string' && (e as { code: string }).code.startsWith('TSB') ? e : fsError('write', h, e);
    } finally {
      await fh.close();
    }
    this.meta(h, rel, meta, false);
  }

  dir(rel: string, meta: NodeMeta, label = rel): void {
    const [h, existed] = this.prepare(rel, 'dir', label);
    if (!existed) { try { mkdirSync(fsPath(h), { mode: 0o700 }); } catch (e) { throw fsError('mkdir', h, e); } }
    this.dirs.add(rel);
    this.owner(h, meta);
    this.xattrs(h, meta.xattrs);
    // mode and mtime at finish(): children are still to be written.
    this.dirMeta.set(rel, meta);
  }

  symlink(rel: string, target: string, meta: NodeMeta, label = rel): void {
    if (!target.startsWith('/')) {
      const parent = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
      if (normalizeLayerPath(parent + '/' + target) === undefined) {
        throw layerError(LayerCodes.LINK_ESCAPE, `archive symlink ${JSON.stringify(label)} -> ${JSON.stringify(target)} points outside the target directory`, hintEscape);
      }
    }
    const [h] = this.prepare(rel, 'symlink', label);
    try { symlinkSync(fsPath(target), fsPath(h)); } catch (e) { throw fsError('symlink', h, e); }
    this.meta(h, rel, meta, true);
  }

  /**
   * A symlink copied from a trusted tree (a view of our own snapshots): its target is data, never
   * followed by us, so the escape check (meant for hostile archives) does not apply.
   */
  symlinkUnchecked(rel: string, target: string, meta: NodeMeta, label = rel): void {
    const [h] = this.prepare(rel, 'symlink', label);
    try { symlinkSync(fsPath(target), fsPath(h)); } catch (e) { throw fsError('symlink', h, e); }
    this.meta(h, rel, meta, true);
  }

  /** Hard link to `targetRel` (already cleaned by the caller, checked here to exist safely). */
  hardlink(rel: string, linkname: string, label = rel): void {
    const t = normalizeLayerPath(linkname);
    if (t === undefined || t === '') {
      throw layerError(LayerCodes.LINK_ESCAPE, `archive hardlink ${JSON.stringify(label)} -> ${JSON.stringify(linkname)} points outside the target directory`, hintEscape);
    }
    const st = this.lstatEntry(t, label);
    if (!st || st.isDirectory()) {
      throw layerError(LayerCodes.HARDLINK_TARGET_MISSING, `archive hardlink ${JSON.stringify(label)} -> ${JSON.stringify(linkname)}: target is ${st ? 'a directory' : 'not in this layer'}`,
        'Hardlinks must point to a non-directory entry earlier in the same layer.');
    }
    if (t === rel) return;
    const [h] = this.prepare(rel, 'hardlink', label);
    try { linkSync(fsPath(this.host(t)), fsPath(h)); } catch (e) { throw fsError('link', h, e); }
  }

  device(rel: string, type: 'char' | 'block' | 'fifo', major: number, minor: number, meta: NodeMeta, label = rel): void {
    if (type !== 'fifo' && !this.allowDevices) {
      throw layerError(LayerCodes.DEVICE_NOT_ALLOWED, `archive entry ${JSON.stringify(label)} is a ${type} device (${major}:${minor}), not allowed here`,
        'Device nodes are refused for this operation; remove them from the archive.');
    }
    const [h] = this.prepare(rel, type, label);
    try { mknod(h, type === 'char' ? S_IFCHR : type === 'block' ? S_IFBLK : S_IFIFO, 0o600, major, minor); } catch (e) {
      if (errnoCode(e) === 'EPERM') {
        throw layerError(LayerCodes.DEVICE_NOT_ALLOWED, `cannot create device ${JSON.stringify(label)}: mknod not permitted`, 'Run as root (CAP_MKNOD) to unpack device nodes.', e);
      }
      throw fsError('mknod', h, e);
    }
    this.meta(h, rel, meta, false);
  }

  /** An overlay whiteout (char 0/0, mode 0) — written even when devices are disallowed. */
  overlayWhiteout(rel: string, label = rel): void {
    const [h] = this.prepare(rel, 'char', label);
    try { mknod(h, S_IFCHR, 0, 0, 0); } catch (e) { throw fsError('mknod whiteout', h, e); }
  }

  /** Sets a raw xattr (used for trusted.overlay.opaque, which the filtered path refuses). */
  rawXattr(rel: string, name: string, value: Buffer): void {
    const h = this.host(rel);
    try { lsetxattr(h, name, value); } catch (e) { throw fsError(`setxattr ${name}`, h, e); }
  }

  /** Names in a directory inside the root (parents verified). */
  list(rel: string, label: string): string[] {
    const h = this.ensureDir(rel, label);
    try { return readdirSync(fsPath(h), { encoding: 'buffer' }).map((b) => decodeName(b)); } catch (e) { throw fsError('readdir', h, e); }
  }

  private owner(h: string, meta: NodeMeta): void {
    if (!this.chown) return;
    try { lchownSync(fsPath(h), meta.uid, meta.gid); } catch (e) { throw fsError('lchown', h, e); }
  }

  private xattrs(h: string, x: Record<string, Buffer> | undefined): void {
    if (!x) return;
    for (const [k, v] of Object.entries(x)) {
      if (!keepXattr(k)) continue;
      try { lsetxattr(h, k, v); } catch (e) {
        const c = errnoCode(e);
        if (c === 'ENOTSUP' || (c === 'EPERM' && !this.chown)) continue;
        throw fsError(`setxattr ${k}`, h, e);
      }
    }
  }

  private meta(h: string, _rel: string, meta: NodeMeta, isLink: boolean): void {
    this.owner(h, meta);
    // chmod after chown: chown clears setuid/setgid.
    if (!isLink) { try { chmodSync(fsPath(h), meta.mode & 0o7777); } catch (e) { throw fsError('chmod', h, e); } }
    // security.capability must be set after chown too (chown drops it).
    this.xattrs(h, meta.xattrs);
    try {
      if (meta.mtimeNs !== undefined) lutimesNs(h, meta.mtimeNs, meta.mtimeNs);
      else lutimesSync(fsPath(h), meta.mtime, meta.mtime);
    } catch (e) { throw fsError('utimes', h, e); }
  }

  /** Applies directory modes and mtimes, deepest first (children no longer touch them). */
  finish(): void {
    const rels = [...this.dirMeta.keys()].sort((a, b) => b.length - a.length);
    for (const rel of rels) {
      const m = this.dirMeta.get(rel)!;
      const h = this.host(rel);
      try {
        chmodSync(fsPath(h), m.mode & 0o7777);
        if (m.mtimeNs !== undefined) lutimesNs(h, m.mtimeNs, m.mtimeNs);
        else if (!Number.isNaN(m.mtime)) lutimesSync(fsPath(h), m.mtime, m.mtime);
      } catch (e) { throw fsError('chmod/utimes', h, e); }
    }
    this.dirMeta.clear();
  }
}
