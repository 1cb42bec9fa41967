/**
 * LayerWriter: builds an OCI layer tar (uncompressed) from LayerEntry values.
 *
 * Contract:
 * - Order: THE WRITER SORTS. Callers add entries in any order; the tar is emitted in walk order
 *   (compareLayerPaths on the tar names: a directory before its children, siblings by UTF-8
 *   bytes), so output depends only on the entry set, never on walk timing. Whiteouts sort under
 *   their tar name `dir/.wh.NAME`, opaque markers as `dir/.wh..wh..opq`.
 * - The writer does NOT invent parent directories: a caller that wants them in the layer (Docker
 *   emits parents of every change) adds them. Duplicate tar names throw TSB4412.
 * - Hardlinks: `linkname` names another entry of the same layer. If the target sorts after the
 *   link, the roles are swapped (the first name in walk order carries the content), so readers
 *   never meet a link before its target. A target absent from the layer throws TSB4412.
 * - Headers: uid/gid numeric, uname/gname empty, mode & 0o7777 (setuid/setgid/sticky kept), mtime
 *   truncated to seconds and clamped to `sourceDateEpoch` when given, xattrs filtered by
 *   keepXattr() and written as binary-safe PAX SCHILY.xattr.* records; long/non-ASCII names and
 *   link targets via PAX path/linkpath. Whiteout and opaque entries are empty regular files with
 *   mode 0, uid/gid 0, mtime 0 (content-free markers must not make a layer's digest depend on
 *   when the deletion happened).
 * - Memory: file contents are streamed from their source while the tar is read; only metadata is
 *   held. A `path` file whose size changes while being read throws TSB4416.
 * - diff_id = sha256 of exactly these bytes = the digest `store.blobs.put` returns for them.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { BlobStore, Digest } from '../../../store/types.js';
import {
  type LayerEntry, OPAQUE_MARKER, WHITEOUT_PREFIX, baseOf, checkEntry, compareLayerPaths, keepXattr, parentOf,
} from './entry.js';
import { LayerCodes, fsError, layerError } from './errors.js';
import { noteExactMtimes } from './mtimes.js';
import { fsPath } from './names.js';
import { END_OF_ARCHIVE, type TarHeader, type TarType, encodeHeader, padding } from './tar.js';

const NS = 1_000_000_000n;

export interface LayerWriterOptions {
  /** SOURCE_DATE_EPOCH (seconds): every mtime later than this is written as this. */
  sourceDateEpoch?: number | undefined;
}

export interface LayerResult {
  /** sha256 of the uncompressed tar (= its blob digest in the store). */
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  size: number;
}

/** One tar entry as the writer will emit it (see LayerWriter.plan). */
export interface Planned {
  tarName: string;
  entry: LayerEntry;
  type: TarType;
  linkname: string;
}

/** The tar name of an entry (no trailing '/'; the writer appends it for directories). */
export function tarNameOf(e: LayerEntry): string {
  if (e.type === 'whiteout') {
    const p = parentOf(e.path);
    return (p ? p + '/' : '') + WHITEOUT_PREFIX + baseOf(e.path);
  }
  if (e.type === 'opaque') return (e.path ? e.path + '/' : '') + OPAQUE_MARKER;
  return e.path;
}

/**
 * Merges the many tiny pieces (512-byte headers, small files, padding) into ~256 KiB chunks so
 * the consumer (hash + write in the store) does few large writes; big file chunks pass through.
 */
async function* coalesce(src: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const LIMIT = 256 << 10;
  let pending: Buffer[] = [];
  let size = 0;
  for await (const b of src) {
    if (b.length >= LIMIT) {
      if (size) { yield Buffer.concat(pending, size); pending = []; size = 0; }
      yield b;
      continue;
    }
    pending.push(b);
    size += b.length;
    if (size >= LIMIT) { yield Buffer.concat(pending, size); pending = []; size = 0; }
  }
  if (size) yield Buffer.concat(pending, size);
}

export class LayerWriter {
  private readonly byName = new Map<string, LayerEntry>();
  private readonly epoch: number | undefined;
  /** Exact mtimes seen while streaming (layer path → ns), for the snapshot (mtimes.ts). */
  private readonly exact = new Map<string, bigint>();

  constructor(opts: LayerWriterOptions = {}) {
    this.epoch = opts.sourceDateEpoch;
  }

  /** Adds one entry (validated now: TSB4412). Whiteouts/opaques: `path` is the deleted path / the opaque dir. */
  add(e: LayerEntry): this {
    checkEntry(e);
    if (e.type === 'whiteout' && e.path === '') throw layerError(LayerCodes.BAD_ENTRY, 'cannot white out the layer root', 'This is a tsbuild bug.');
    const name = tarNameOf(e);
    if (this.byName.has(name)) {
      throw layerError(LayerCodes.BAD_ENTRY, `duplicate layer entry ${JSON.stringify(name)}`, 'This is a tsbuild bug: each path may appear once per layer.');
    }
    this.byName.set(name, e);
    return this;
  }

  /** Number of entries added (markers included). */
  get count(): number {
    return this.byName.size;
  }

  /** The entries in emission order, hardlink roles already resolved (for inspection and tests). */
  plan(): Planned[] {
    for (const e of this.byName.values()) {
      const parent = this.byName.get(parentOf(e.path));
      if (e.path !== '' && parent && parent.type !== 'dir') {
        throw layerError(LayerCodes.BAD_ENTRY, `layer entry ${JSON.stringify(e.path)} is below ${JSON.stringify(parent.path)}, which is a ${parent.type}`,
          'This is a tsbuild bug: a layer cannot hold a path below a non-directory.');
      }
    }
    const names = [...this.byName.keys()].sort(compareLayerPaths);
    const order = new Map(names.map((n, i) => [n, i]));
    const planned: Planned[] = names.map((n) => {
      const e = this.byName.get(n)!;
      const type: TarType = e.type === 'whiteout' || e.type === 'opaque' ? 'file' : e.type;
      return { tarName: n, entry: e, type, linkname: e.linkname ?? '' };
    });
    // Hardlink groups: resolve chains to a root (non-hardlink) entry, then let the first member in
    // walk order carry the content.
    const rootOf = (name: string, seen = new Set<string>()): string => {
      const e = this.byName.get(name);
      if (!e || e.type === 'whiteout' || e.type === 'opaque' || e.type === 'dir') {
        throw layerError(LayerCodes.BAD_ENTRY, `hardlink target ${JSON.stringify(name)} is not a non-directory entry of this layer`, 'This is a tsbuild bug: hardlinks must point inside the layer.');
      }
      if (e.type !== 'hardlink') return name;
      if (seen.has(name)) throw layerError(LayerCodes.BAD_ENTRY, `hardlink cycle at ${JSON.stringify(name)}`, 'This is a tsbuild bug.');
      seen.add(name);
      return rootOf(e.linkname!, seen);
    };
    const groups = new Map<string, number[]>();
    planned.forEach((p, i) => {
      if (p.entry.type !== 'hardlink') return;
      const root = rootOf(p.entry.linkname!);
      const g = groups.get(root) ?? [order.get(root)!];
      g.push(i);
      groups.set(root, g);
    });
    for (const [root, members] of groups) {
      members.sort((a, b) => a - b);
      const first = members[0]!;
      const rootEntry = this.byName.get(root)!;
      const firstName = planned[first]!.tarName;
      for (const i of members) {
        const p = planned[i]!;
        if (i === first) {
          p.type = rootEntry.type as TarType;
          p.entry = { ...rootEntry, path: p.entry.path };
          p.linkname = rootEntry.linkname ?? '';
        } else {
          p.type = 'hardlink';
          p.entry = { ...rootEntry, path: p.entry.path, type: 'hardlink', linkname: firstName, source: undefined, size: 0 };
          p.linkname = firstName;
        }
      }
    }
    return planned;
  }

  /** The tar bytes, streamed. Each call produces a fresh, identical stream. */
  stream(): Readable {
    return Readable.from(coalesce(this.generate()), { objectMode: false, highWaterMark: 1 << 20 });
  }

  /** Streams the tar into the store; the blob digest is the diff_id. */
  async commit(blobs: Pick<BlobStore, 'put'>): Promise<LayerResult> {
    const { digest, size } = await blobs.put(this.stream());
    noteExactMtimes(digest, this.exact);
    return { diffId: digest, size };
  }

  private async *generate(): AsyncGenerator<Buffer> {
    for (const p of this.plan()) {
      const e = p.entry;
      const marker = e.type === 'whiteout' || e.type === 'opaque';
      let mtime = marker ? 0 : Math.trunc(e.mtime ?? 0);
      if (!marker && e.mtimeNs !== undefined && e.mtimeNs % NS !== 0n) this.exact.set(p.tarName, e.mtimeNs);
      if (this.epoch !== undefined && mtime > this.epoch) mtime = Math.trunc(this.epoch);
      const xattrs: Record<string, Buffer> = {};
      if (!marker && e.xattrs) for (const k of Object.keys(e.xattrs).sort()) if (keepXattr(k)) xattrs[k] = e.xattrs[k]!;
      const header: TarHeader = {
        name: p.type === 'dir' && p.tarName !== '' ? p.tarName + '/' : p.type === 'dir' ? './' : p.tarName,
        type: p.type,
        mode: marker ? 0 : (e.mode ?? (p.type === 'dir' ? 0o755 : p.type === 'symlink' ? 0o777 : 0o644)) & 0o7777,
        uid: marker ? 0 : e.uid ?? 0,
        gid: marker ? 0 : e.gid ?? 0,
        size: 0,
        mtime: Math.max(0, mtime),
        linkname: p.type === 'symlink' || p.type === 'hardlink' ? p.linkname : '',
        uname: '', gname: '',
        devmajor: p.type === 'char' || p.type === 'block' ? e.devmajor ?? 0 : 0,
        devminor: p.type === 'char' || p.type === 'block' ? e.devminor ?? 0 : 0,
        xattrs,
      };
      if (p.type !== 'file' || marker || !e.source) {
        yield encodeHeader(header);
        continue;
      }
      const src = e.source;
      if ('buffer' in src) {
        header.size = src.buffer.length;
        yield encodeHeader(header);
        if (src.buffer.length) yield src.buffer;
        yield padding(src.buffer.length);
      } else if ('path' in src) {
        yield* this.fromPath(header, src.path, e.size, e.mtimeNs === undefined ? { path: p.tarName, sec: Math.trunc(e.mtime ?? 0) } : undefined);
      } else {
        const size = e.size!;
        header.size = size;
        yield encodeHeader(header);
        let n = 0;
        for await (const chunk of src.stream()) {
          const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
          n += c.length;
          if (n > size) break;
          yield c;
        }
        if (n !== size) {
          throw layerError(LayerCodes.FILE_CHANGED, `${e.path}: stream gave ${n > size ? 'more' : n} bytes, expected ${size}`,
            'The file changed while the layer was written; retry the build.');
        }
        yield padding(size);
      }
    }
    yield END_OF_ARCHIVE;
  }

  /** `exact`: note the file's own ns mtime for `exact.path` when its whole seconds are `exact.sec`. */
  private noteFileMtime(exact: { path: string; sec: number } | undefined, mtimeNs: bigint): void {
    if (exact && mtimeNs % NS !== 0n && mtimeNs / NS === BigInt(exact.sec)) this.exact.set(exact.path, mtimeNs);
  }

  private async *fromPath(header: TarHeader, path: string, declared: number | undefined, exact?: { path: string; sec: number }): AsyncGenerator<Buffer> {
    // Small files (most of a typical layer) are read synchronously: four quick syscalls beat four
    // threadpool round trips per file by ~5x. Large files stream in 1 MiB reads below.
    const SMALL = 256 << 10;
    let fd: number;
    try { fd = openSync(fsPath(path), 'r'); } catch (e) { throw fsError('open', path, e); }
    let small: Buffer | undefined;
    try {
      const st = fstatSync(fd, { bigint: true });
      this.noteFileMtime(exact, st.mtimeNs);
      const size = declared ?? Number(st.size);
      if (Number(st.size) !== size) {
        throw layerError(LayerCodes.FILE_CHANGED, `${path}: size is ${st.size}, expected ${size}`, 'The file changed while the layer was written; retry the build.');
      }
      if (size <= SMALL) {
        small = Buffer.allocUnsafe(size);
        let pos = 0;
        while (pos < size) {
          const n = readSync(fd, small, pos, size - pos, pos);
          if (n === 0) throw layerError(LayerCodes.FILE_CHANGED, `${path}: file shrank while being read`, 'The file changed while the layer was written; retry the build.');
          pos += n;
        }
        if (fstatSync(fd).size !== size) throw layerError(LayerCodes.FILE_CHANGED, `${path}: file grew while being read`, 'The file changed while the layer was written; retry the build.');
      }
    } catch (e) {
      throw e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('TSB') ? e : fsError('read', path, e);
    } finally {
      closeSync(fd);
    }
    if (small) {
      header.size = small.length;
      yield encodeHeader(header);
      if (small.length) yield small;
      yield padding(small.length);
      return;
    }
    let fh;
    try { fh = await open(fsPath(path), 'r'); } catch (e) { throw fsError('open', path, e); }
    try {
      const st = await fh.stat();
      const size = declared ?? st.size;
      if (st.size !== size) {
        throw layerError(LayerCodes.FILE_CHANGED, `${path}: size is ${st.size}, expected ${size}`, 'The file changed while the layer was written; retry the build.');
      }
      header.size = size;
      yield encodeHeader(header);
      let pos = 0;
      const CH = 1 << 20;
      while (pos < size) {
        const want = Math.min(CH, size - pos);
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await fh.read(buf, 0, want, pos);
        if (bytesRead === 0) {
          throw layerError(LayerCodes.FILE_CHANGED, `${path}: file shrank while being read`, 'The file changed while the layer was written; retry the build.');
        }
        pos += bytesRead;
        yield bytesRead === want ? buf : buf.subarray(0, bytesRead);
      }
      const after = await fh.stat();
      if (after.size !== size) {
        throw layerError(LayerCodes.FILE_CHANGED, `${path}: file grew while being read`, 'The file changed while the layer was written; retry the build.');
      }
      yield padding(size);
    } finally {
      await fh.close();
    }
  }
}
