/**
 * An image's filesystem read straight from its uncompressed layer tars, without unpacking:
 * each layer blob is indexed once (headers only; bodies are skipped by offset), the indexes are
 * merged with OCI whiteout/opaque rules, and a file's content is a byte range of its layer blob.
 *
 * WHY: COPY needs to know what the destination image holds (is `/app` a directory? which parents
 * are missing? /etc/passwd for --chown) and COPY --from reads another stage's files. Unpacking
 * every layer to a snapshot for that would rewrite the whole image on disk for each COPY (a
 * 200 MB COPY followed by another COPY would cost 200 MB of writes). Reading tar headers costs one
 * 512-byte read per entry.
 *
 * Symlinks resolve chroot-style (absolute targets restart at the image root, `..` stops there),
 * so nothing here can name a host path.
 */
import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import { TsbError } from '../../errors.js';
import type { SourceFS, SrcNode, DestView, NodeType } from './select.js';

export interface IdxEntry {
  readonly type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtime: number;
  readonly linkname: string;
  /** Byte offset of the data in the blob. */
  readonly offset: number;
  /** Which blob (path on disk). */
  readonly blob: string;
  /** 'char'/'block' device numbers. */
  readonly devmajor?: number;
  readonly devminor?: number;
}

export interface LayerIndex {
  readonly entries: Map<string, IdxEntry>;
  readonly whiteouts: string[];
  readonly opaques: string[];
}

const indexCache = new Map<string, LayerIndex>();

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z < 0 ? s : s.subarray(0, z)).toString('utf8');
}

function num(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    let v = 0n;
    for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(i === 0 ? b[off]! & 0x7f : b[off + i]!);
    return Number(v);
  }
  const s = b.subarray(off, off + len).toString('ascii').replace(/[\0 ]+$/g, '').replace(/^[\0 ]+/, '');
  return s === '' ? 0 : parseInt(s, 8);
}

function parsePax(data: Buffer, into: Map<string, string>): void {
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString('ascii'), 10);
    if (!Number.isSafeInteger(len) || len <= 0) break;
    const rec = data.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq > 0) into.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1).toString('utf8'));
    i += len;
  }
}

function cleanName(n: string): string {
  const parts: string[] = [];
  for (const p of n.split('/')) {
    if (p === '' || p === '.') continue;
    if (p === '..') { parts.pop(); continue; }
    parts.push(p);
  }
  return parts.join('/');
}

/** Index one uncompressed layer tar on disk (headers only). Cached by path for the process. */
export function indexLayer(blobPath: string): LayerIndex {
  const hit = indexCache.get(blobPath);
  if (hit) return hit;
  const entries = new Map<string, IdxEntry>();
  const whiteouts: string[] = [];
  const opaques: string[] = [];
  const fd = openSync(blobPath, 'r');
  try {
    const b = Buffer.alloc(512);
    let pos = 0;
    let pax = new Map<string, string>();
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      const n = readSync(fd, b, 0, 512, pos);
      if (n < 512 || b.every((x) => x === 0)) break;
      const flag = String.fromCharCode(b[156]!);
      let size = num(b, 124, 12);
      if (pax.has('size')) size = Number(pax.get('size'));
      const dataAt = pos + 512;
      const next = dataAt + Math.ceil(size / 512) * 512;
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        const data = Buffer.alloc(size);
        readSync(fd, data, 0, size, dataAt);
        if (flag === 'x' || flag === 'g') parsePax(data, pax);
        else if (flag === 'L') longName = cstr(data, 0, size);
        else longLink = cstr(data, 0, size);
        pos = next;
        continue;
      }
      const magic = b.subarray(257, 263).toString('binary');
      let name = cstr(b, 0, 100);
      const prefix = magic === 'ustar\0' ? cstr(b, 345, 155) : '';
      if (prefix) name = `${prefix}/${name}`;
      if (longName !== undefined) name = longName;
      if (pax.has('path')) name = pax.get('path')!;
      let linkname = cstr(b, 157, 100);
      if (longLink !== undefined) linkname = longLink;
      if (pax.has('linkpath')) linkname = pax.get('linkpath')!;
      const uid = pax.has('uid') ? Number(pax.get('uid')) : num(b, 108, 8);
      const gid = pax.has('gid') ? Number(pax.get('gid')) : num(b, 116, 8);
      const mtime = pax.has('mtime') ? Math.trunc(Number(pax.get('mtime'))) : num(b, 136, 12);
      pax = new Map(); longName = longLink = undefined;
      let type: IdxEntry['type'];
      switch (flag) {
        case '1': type = 'hardlink'; break;
        case '2': type = 'symlink'; break;
        case '3': type = 'char'; break;
        case '4': type = 'block'; break;
        case '5': type = 'dir'; break;
        case '6': type = 'fifo'; break;
        default: type = name.endsWith('/') ? 'dir' : 'file';
      }
      const path = cleanName(name);
      const base = path.slice(path.lastIndexOf('/') + 1);
      const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
      if (base === '.wh..wh..opq') opaques.push(parent);
      else if (base.startsWith('.wh.')) whiteouts.push(parent ? `${parent}/${base.slice(4)}` : base.slice(4));
      else if (path !== '') {
        entries.set(path, {
          type, mode: num(b, 100, 8) & 0o7777, uid, gid, size: type === 'file' ? size : 0, mtime,
          linkname: type === 'hardlink' ? cleanName(linkname) : linkname, offset: dataAt, blob: blobPath,
          ...(type === 'char' || type === 'block' ? { devmajor: num(b, 329, 8), devminor: num(b, 337, 8) } : {}),
        });
      }
      pos = next;
    }
  } finally { closeSync(fd); }
  const idx = { entries, whiteouts, opaques };
  indexCache.set(blobPath, idx);
  return idx;
}

/** Merged view of layers (bottom first). Implements both SourceFS (COPY --from) and DestView. */
export class LayerFS implements SourceFS, DestView {
  private readonly map = new Map<string, IdxEntry>();
  private readonly kids = new Map<string, Set<string>>();

  private pending: string[];

  /** Indexing is lazy: a view nobody queries (a cached step's result) costs nothing. */
  constructor(blobPaths: readonly string[]) {
    this.kids.set('', new Set());
    this.pending = [...blobPaths];
  }

  private ensure(): void {
    if (this.pending.length === 0) return;
    const ps = this.pending;
    this.pending = [];
    for (const p of ps) this.apply(indexLayer(p));
  }

  /** A view with one more layer on top (views are cheap to extend). */
  extend(blobPath: string): LayerFS {
    // Nothing applied yet: stay lazy. Otherwise copy what is applied and queue the rest (a view
    // can hold applied layers AND pending ones after an extend of an extend).
    if (this.map.size === 0) return new LayerFS([...this.pending, blobPath]);
    const v = new LayerFS([]);
    for (const [k, e] of this.map) v.map.set(k, e);
    for (const [k, s] of this.kids) v.kids.set(k, new Set(s));
    v.pending = [...this.pending, blobPath];
    return v;
  }

  private removeTree(p: string): void {
    const e = this.map.get(p);
    if (e?.type === 'dir') this.clearDir(p);
    this.map.delete(p);
    this.kids.delete(p);
    const parent = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    this.kids.get(parent)?.delete(p.slice(p.lastIndexOf('/') + 1));
  }

  private clearDir(p: string): void {
    const ks = this.kids.get(p);
    if (!ks) return;
    for (const k of [...ks]) this.removeTree(p === '' ? k : `${p}/${k}`);
  }

  /** Children set of a directory key (created when a foreign layer nests under a non-directory). */
  private kidsOf(dir: string): Set<string> {
    let k = this.kids.get(dir);
    if (!k) { k = new Set(); this.kids.set(dir, k); }
    return k;
  }

  private apply(idx: LayerIndex): void {
    for (const o of idx.opaques) this.clearDir(o);
    for (const w of idx.whiteouts) this.removeTree(w);
    for (const [path, e] of idx.entries) {
      const old = this.map.get(path);
      if (old && (old.type === 'dir') !== (e.type === 'dir')) this.removeTree(path);
      // Parents an archive omits exist implicitly (as directories).
      const parts = path.split('/');
      let cur = '';
      for (let i = 0; i < parts.length - 1; i++) {
        const nx = cur === '' ? parts[i]! : `${cur}/${parts[i]}`;
        if (!this.map.has(nx)) {
          this.map.set(nx, { type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', offset: 0, blob: '' });
          this.kidsOf(cur).add(parts[i]!);
          this.kids.set(nx, new Set());
        }
        cur = nx;
      }
      this.map.set(path, e);
      this.kidsOf(cur).add(parts[parts.length - 1]!);
      if (e.type === 'dir' && !this.kids.has(path)) this.kids.set(path, new Set());
    }
  }

  raw(path: string): IdxEntry | undefined {
    this.ensure();
    return this.map.get(path);
  }

  /** Follow hardlinks to the entry holding the bytes. */
  private content(e: IdxEntry): IdxEntry {
    let cur = e; let n = 0;
    while (cur.type === 'hardlink' && n++ < 40) {
      const t = this.map.get(cur.linkname);
      if (!t) break;
      cur = t;
    }
    return cur;
  }

  private node(path: string, e: IdxEntry): SrcNode {
    const c = this.content(e);
    const type: NodeType = c.type === 'file' ? 'file' : c.type === 'dir' ? 'dir' : c.type === 'symlink' ? 'symlink' : 'other';
    return {
      path, type, perm: e.mode & 0o7777, size: c.type === 'file' ? c.size : 0, mtime: e.mtime, uid: e.uid, gid: e.gid,
      ...(c.type === 'file' ? { linkId: `blob:${c.blob}:${c.offset}` } : {}),
      ...(c.type === 'symlink' ? { linkTarget: c.linkname } : {}),
      ...(c.type === 'fifo' ? { special: 'fifo' as const } : {}),
      ...(c.type === 'char' || c.type === 'block' ? { special: c.type, devmajor: c.devmajor ?? 0, devminor: c.devminor ?? 0 } : {}),
    };
  }

  async lstat(path: string): Promise<SrcNode | undefined> {
    return this.lstatSync(path);
  }

  /** SourceFS's synchronous form (the index is in memory): a directory walk without an await per entry. */
  lstatSync(path: string): SrcNode | undefined {
    this.ensure();
    const p = cleanName(path);
    if (p === '') return { path: '', type: 'dir', perm: 0o755, size: 0, mtime: 0 };
    const e = this.map.get(p);
    return e ? this.node(p, e) : undefined;
  }

  async readdir(path: string): Promise<readonly string[]> {
    return this.readdirSync(path);
  }

  readdirSync(path: string): readonly string[] {
    this.ensure();
    return [...(this.kids.get(cleanName(path)) ?? [])].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Resolve symlinks chroot-style; returns the canonical path or undefined. */
  realpathSync(path: string, followLast = true): string | undefined {
    this.ensure();
    let parts = cleanName(path).split('/').filter(Boolean);
    const stack: string[] = [];
    let hops = 0;
    while (parts.length) {
      const c = parts.shift()!;
      if (c === '..') { stack.pop(); continue; }
      const cur = stack.length ? `${stack.join('/')}/${c}` : c;
      const e = this.map.get(cur);
      if (!e) return undefined;
      if (e.type === 'symlink' && (parts.length > 0 || followLast)) {
        if (++hops > 40) throw new TsbError('TSB4006', `too many levels of symbolic links at /${cur}`);
        if (e.linkname.startsWith('/')) stack.length = 0;
        parts = [...e.linkname.split('/').filter((x) => x && x !== '.'), ...parts];
        continue;
      }
      stack.push(c);
    }
    return stack.join('/');
  }

  async resolve(path: string): Promise<SrcNode | undefined> {
    const r = this.realpathSync(path);
    if (r === undefined) return undefined;
    return this.lstat(r);
  }

  async typeOf(path: string): Promise<NodeType | undefined> {
    return (await this.resolve(path))?.type;
  }

  /**
   * The destination path with symlinks in its existing prefix resolved inside the image
   * (`/bin/x` on a usr-merged image → `/usr/bin/x`), keeping a trailing `/`.
   */
  realDest(dest: string): string {
    this.ensure();
    const trailing = dest.endsWith('/');
    const parts = cleanName(dest).split('/').filter(Boolean);
    let resolved = '';
    let i = 0;
    for (; i < parts.length; i++) {
      const probe = resolved === '' ? parts[i]! : `${resolved}/${parts[i]}`;
      const e = this.map.get(probe);
      if (!e) break;
      const last = i === parts.length - 1;
      // Links are followed all the way, the last one too: BuildKit copies into a linked
      // directory and writes a file through a link, even a dangling one (`/dangle -> nothing`
      // makes /nothing). Checked against BuildKit 0.25.
      void last;
      if (e.type === 'symlink') {
        const r = this.resolveLink(probe);
        resolved = r.path;
        if (!r.exists) { i++; break; }
      } else resolved = probe;
    }
    const rest = parts.slice(i).join('/');
    const out = '/' + [resolved, rest].filter(Boolean).join('/');
    return trailing && out !== '/' ? out + '/' : out;
  }

  /**
   * Where a symlink leads inside the image, chroot-style, even when the target is missing:
   * {path, exists}. Missing intermediate components end the walk (the rest is appended).
   */
  private resolveLink(start: string): { path: string; exists: boolean } {
    let parts = start.split('/').filter(Boolean);
    const stack: string[] = [];
    let hops = 0;
    while (parts.length) {
      const c = parts.shift()!;
      if (c === '.') continue;
      if (c === '..') { stack.pop(); continue; }
      const cur = stack.length ? `${stack.join('/')}/${c}` : c;
      const e = this.map.get(cur);
      if (!e) return { path: [cur, ...parts].filter(Boolean).join('/'), exists: false };
      if (e.type === 'symlink') {
        if (++hops > 40) throw new TsbError('TSB4006', `too many levels of symbolic links at /${cur}`);
        if (e.linkname.startsWith('/')) stack.length = 0;
        parts = [...e.linkname.split('/').filter((x) => x && x !== '.'), ...parts];
        continue;
      }
      stack.push(c);
    }
    return { path: stack.join('/'), exists: true };
  }

  /** A regular file's bytes (following symlinks and hardlinks), or undefined. */
  readFileSync(path: string): Buffer | undefined {
    this.ensure();
    const r = this.realpathSync(path);
    if (r === undefined) return undefined;
    const e = this.map.get(r);
    if (!e) return undefined;
    const c = this.content(e);
    if (c.type !== 'file') return undefined;
    const buf = Buffer.alloc(c.size);
    const fd = openSync(c.blob, 'r');
    try { readSync(fd, buf, 0, c.size, c.offset); } finally { closeSync(fd); }
    return buf;
  }

  /** Stream of a regular file's bytes (by canonical path). */
  openStream(path: string): NodeJS.ReadableStream & AsyncIterable<Buffer> {
    this.ensure();
    const e = this.content(this.map.get(cleanName(path))!);
    if (e.size === 0) return createReadStream('/dev/null') as never;
    return createReadStream(e.blob, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 }) as never;
  }

  /** Owner and raw entry for the layer writer. */
  meta(path: string): { uid: number; gid: number; xattrs?: undefined } | undefined {
    this.ensure();
    const e = this.map.get(cleanName(path));
    return e ? { uid: e.uid, gid: e.gid } : undefined;
  }

  get size(): number { this.ensure(); return this.map.size; }
}
