/**
 * MergedView: a read-only, userspace union of overlay LOWERDIR snapshots (bottom first), used
 * without mounting (COPY --from, base-image reads, /etc/passwd lookups, exports).
 *
 * Contract:
 * - Union rules are overlayfs' own: the topmost layer holding a name wins; a char device 0/0
 *   there is a whiteout (the name does not exist); a directory merges with the same-named
 *   directories below it until (and including) the first one marked opaque
 *   (trusted.overlay.opaque=y or user.overlay.opaque=y), stopping earlier at a whiteout or a
 *   non-directory. The layer roots always merge (the kernel ignores opaque on a lowerdir root).
 * - Paths are view paths ('/'-rooted; relative ones are taken from '/'). Symlinks are resolved
 *   like a chroot: absolute targets restart at the view root, '..' never climbs above it, at most
 *   40 links per lookup (then TSB4413). Nothing ever resolves to a host path outside the lowers.
 * - Methods are SYNCHRONOUS on purpose (except createReadStream): a lookup is a handful of tiny
 *   lstat/getxattr calls per layer, which Node's threadpool would make several times slower.
 *   Directory layer sets are cached for the view's lifetime: build a new view after the
 *   snapshots change (they never do: snapshots are immutable).
 * - Errors are TsbError TSB4413 (message names the view path; cause carries ENOENT/ENOTDIR/ELOOP).
 */
import { createReadStream as fsCreateReadStream, lstatSync, readFileSync, readdirSync, type Dirent, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { TsbError } from '../../errors.js';
import { LayerCodes, fsError } from './errors.js';
import { readLinkName } from './fsentry.js';
import { decodeName, encodeName, fsPath } from './names.js';
import { lgetxattr } from './native.js';

export interface ViewEntry {
  /** Canonical view path ('/' for the root). */
  path: string;
  /** The host file that backs it (in one of the lowers). */
  hostPath: string;
  /** lstat of hostPath. */
  stat: Stats;
  /** Index into lowers (0 = bottom). */
  layer: number;
}

const MAX_LINKS = 40;

function notFound(path: string, code: 'ENOENT' | 'ENOTDIR' | 'ELOOP', what = 'no such file or directory'): TsbError {
  return new TsbError(LayerCodes.VIEW_LOOKUP, `${path}: ${what}`, {
    cause: Object.assign(new Error(code), { code }),
    hint: code === 'ELOOP' ? 'The image has a symlink loop at this path.' : 'Check the path exists in the image or stage.',
  });
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function isOpaque(host: string): boolean {
  const v = lgetxattr(host, 'trusted.overlay.opaque') ?? lgetxattr(host, 'user.overlay.opaque');
  return v !== undefined && v.toString() === 'y';
}

function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

export class MergedView {
  /** Snapshot directories, bottom first (the image's layer order). */
  readonly lowers: readonly string[];
  /** canonical dir key ('' = root) → layer indices holding it, top first. */
  private readonly dirLayers = new Map<string, number[]>();

  constructor(lowers: readonly string[]) {
    this.lowers = [...lowers];
    // The roots always merge: overlayfs ignores an opaque mark on a lowerdir's root (unpack
    // translates a root opaque marker into whiteouts instead).
    const root: number[] = [];
    for (let i = this.lowers.length - 1; i >= 0; i--) root.push(i);
    this.dirLayers.set('', root);
  }

  private host(layer: number, key: string): string {
    return key === '' ? this.lowers[layer]! : join(this.lowers[layer]!, key);
  }

  private lstatHost(h: string): Stats | undefined {
    try { return lstatSync(fsPath(h), { throwIfNoEntry: false }); } catch (e) {
      const c = (e as { code?: string }).code;
      if (c === 'ENOTDIR') return undefined;
      throw fsError('lstat', h, e);
    }
  }

  /** One component below a canonical directory key (which must be a known dir). */
  private child(dirKey: string, name: string): ViewEntry | undefined {
    const layers = this.dirLayers.get(dirKey)!;
    const key = dirKey ? `${dirKey}/${name}` : name;
    for (let k = 0; k < layers.length; k++) {
      const i = layers[k]!;
      const h = this.host(i, key);
      const st = this.lstatHost(h);
      if (!st) continue;
      if (isWhiteout(st)) return undefined;
      if (st.isDirectory() && !this.dirLayers.has(key)) {
        const set = [i];
        if (!isOpaque(h)) {
          for (let m = k + 1; m < layers.length; m++) {
            const j = layers[m]!;
            const hj = this.host(j, key);
            const sj = this.lstatHost(hj);
            if (!sj) continue;
            if (!sj.isDirectory()) break;
            set.push(j);
            if (isOpaque(hj)) break;
          }
        }
        this.dirLayers.set(key, set);
      }
      return { path: '/' + key, hostPath: h, stat: st, layer: i };
    }
    return undefined;
  }

  private rootEntry(): ViewEntry {
    const top = this.dirLayers.get('')![0];
    if (top === undefined) throw notFound('/', 'ENOENT', 'empty view (no layers)');
    return { path: '/', hostPath: this.lowers[top]!, stat: lstatSync(this.lowers[top]!), layer: top };
  }

  /**
   * Resolves a view path chroot-style. `follow`: also follow a symlink in the last component.
   * Returns undefined when it does not exist (ENOENT/ENOTDIR); throws TSB4413 on a loop.
   */
  entry(p: string, opts: { follow?: boolean } = {}): ViewEntry | undefined {
    let parts = splitPath(p);
    const stack: string[] = [];
    let cur: ViewEntry | undefined;
    let links = 0;
    while (parts.length) {
      const c = parts.shift()!;
      if (c === '..') { stack.pop(); cur = undefined; continue; }
      const e = this.child(stack.join('/'), c);
      if (!e) return undefined;
      const last = parts.length === 0;
      if (e.stat.isSymbolicLink() && (!last || opts.follow)) {
        if (++links > MAX_LINKS) throw notFound(p, 'ELOOP', 'too many levels of symbolic links');
        let target: string;
        try { target = readLinkName(e.hostPath); } catch (err) { throw fsError('readlink', e.hostPath, err); }
        if (target.startsWith('/')) stack.length = 0;
        parts = [...splitPath(target), ...parts];
        cur = undefined;
        continue;
      }
      if (!last && !e.stat.isDirectory()) return undefined;
      stack.push(c);
      cur = e;
    }
    if (stack.length === 0) return this.rootEntry();
    if (!cur) {
      // Reached via '..' or a symlink: look the canonical path up again (no links left in it).
      const key = stack.join('/');
      const parent = stack.slice(0, -1).join('/');
      if (!this.dirLayers.has(parent)) return this.entry('/' + key, opts);
      cur = this.child(parent, stack[stack.length - 1]!);
    }
    return cur;
  }

  /**
   * Like realpath, but the path need not exist: existing components are resolved chroot-style
   * (symlinks followed inside the root), the first missing component and everything after it are
   * appended lexically ('..' still never climbs above '/'). This is Docker's FollowSymlinkInScope,
   * what COPY/WORKDIR destinations and `--from` sources need.
   */
  rootPath(p: string): string {
    let parts = splitPath(p);
    const stack: string[] = [];
    let links = 0;
    let missing = false;
    while (parts.length) {
      const c = parts.shift()!;
      if (c === '..') { stack.pop(); continue; }
      if (missing) { stack.push(c); continue; }
      const dirKey = stack.join('/');
      const e = this.dirLayers.has(dirKey) ? this.child(dirKey, c) : undefined;
      if (!e) { missing = true; stack.push(c); continue; }
      if (e.stat.isSymbolicLink()) {
        if (++links > MAX_LINKS) throw notFound(p, 'ELOOP', 'too many levels of symbolic links');
        let target: string;
        try { target = readLinkName(e.hostPath); } catch (err) { throw fsError('readlink', e.hostPath, err); }
        if (target.startsWith('/')) stack.length = 0;
        parts = [...splitPath(target), ...parts];
        continue;
      }
      stack.push(c);
      if (!e.stat.isDirectory()) missing = true;
    }
    return '/' + stack.join('/');
  }

  private must(p: string, follow: boolean): ViewEntry {
    const e = this.entry(p, { follow });
    if (!e) throw notFound(p, 'ENOENT');
    return e;
  }

  exists(p: string): boolean {
    return this.entry(p, { follow: false }) !== undefined;
  }

  lstat(p: string): Stats {
    return this.must(p, false).stat;
  }

  /** stat(): follows symlinks, within the view only. */
  stat(p: string): Stats {
    return this.must(p, true).stat;
  }

  /** Canonical view path with every symlink resolved inside the root (like realpath in a chroot). */
  realpath(p: string): string {
    return this.must(p, true).path;
  }

  readlink(p: string): string {
    const e = this.must(p, false);
    if (!e.stat.isSymbolicLink()) throw new TsbError(LayerCodes.VIEW_LOOKUP, `${p}: not a symbolic link`, { hint: 'Check the path.' });
    return readLinkName(e.hostPath);
  }

  readFile(p: string): Buffer {
    const e = this.must(p, true);
    if (!e.stat.isFile()) throw new TsbError(LayerCodes.VIEW_LOOKUP, `${p}: not a regular file`, { hint: 'Check the path.' });
    try { return readFileSync(fsPath(e.hostPath)); } catch (err) { throw fsError('read', e.hostPath, err); }
  }

  createReadStream(p: string): Readable {
    const e = this.must(p, true);
    if (!e.stat.isFile()) throw new TsbError(LayerCodes.VIEW_LOOKUP, `${p}: not a regular file`, { hint: 'Check the path.' });
    return fsCreateReadStream(fsPath(e.hostPath));
  }

  /**
   * Merged children of a directory: name → top entry, whiteouts applied; sorted by UTF-8 bytes.
   * One readdir per layer; the dirents tell which layers hold each name, so only the top entry is
   * lstat'ed (plus char devices, to tell whiteouts) and child dir layer sets come for free.
   */
  private children(dirKey: string): Map<string, ViewEntry> {
    const layers = this.dirLayers.get(dirKey)!;
    const holders = new Map<string, Array<{ layer: number; d: Dirent<Buffer> }>>();
    for (const i of layers) {
      const h = this.host(i, dirKey);
      let ents: Dirent<Buffer>[];
      try { ents = readdirSync(fsPath(h), { withFileTypes: true, encoding: 'buffer' }) as Dirent<Buffer>[]; } catch (err) { throw fsError('readdir', h, err); }
      for (const d of ents) {
        const name = decodeName(d.name);
        const list = holders.get(name);
        if (list) list.push({ layer: i, d }); else holders.set(name, [{ layer: i, d }]);
      }
    }
    const names = [...holders.keys()].sort((a, b) => Buffer.compare(encodeName(a), encodeName(b)));
    const out = new Map<string, ViewEntry>();
    for (const n of names) {
      const list = holders.get(n)!;
      const top = list[0]!;
      const key = dirKey ? `${dirKey}/${n}` : n;
      const host = this.host(top.layer, key);
      let st: Stats;
      try { st = lstatSync(fsPath(host)); } catch (err) { throw fsError('lstat', host, err); }
      if (isWhiteout(st)) continue;
      if (st.isDirectory() && !this.dirLayers.has(key)) {
        const set = [top.layer];
        if (!isOpaque(host)) {
          for (let m = 1; m < list.length; m++) {
            const { layer, d } = list[m]!;
            if (!d.isDirectory()) break; // a whiteout or non-dir below ends the merge
            set.push(layer);
            if (isOpaque(this.host(layer, key))) break;
          }
        }
        this.dirLayers.set(key, set);
      }
      out.set(n, { path: '/' + key, hostPath: host, stat: st, layer: top.layer });
    }
    return out;
  }

  /** Sorted names in a directory (follows symlinks to reach it). */
  readdir(p: string): string[] {
    const e = this.must(p, true);
    if (!e.stat.isDirectory()) throw notFound(p, 'ENOTDIR', 'not a directory');
    return [...this.children(e.path === '/' ? '' : e.path.slice(1)).keys()];
  }

  /**
   * The entry at p (symlinks in p followed, so a symlinked directory is walked) and, when it is
   * a directory, everything below it: parents before children, siblings sorted by UTF-8 bytes,
   * symlinks inside NOT followed. Entry paths are canonical view paths.
   */
  *walk(p = '/'): Generator<ViewEntry> {
    const top = this.must(p, true);
    yield top;
    if (!top.stat.isDirectory()) return;
    const rec = function* (this: MergedView, key: string): Generator<ViewEntry> {
      for (const e of this.children(key).values()) {
        yield e;
        if (e.stat.isDirectory()) yield* rec.call(this, e.path.slice(1));
      }
    };
    yield* rec.call(this, top.path === '/' ? '' : top.path.slice(1));
  }
}
