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
 * - Memory: file contents are read from their source while the tar is made; only metadata is
 *   held, plus three 256 KiB buffers the tar is assembled in (see Stager). A `path` file whose size
 *   changes while being read throws TSB4416.
 * - commit() into the file store goes through a BlobSink: headers are encoded and files read
 *   straight into those reused buffers, which are hashed and written as they fill (no stream, no
 *   buffer per read: fresh 1 MiB buffers cost more than hashing the bytes on this kind of machine,
 *   page faults and GC). A large file's next read is in flight while the current chunk is hashed.
 *   stream() gives the same bytes (copied out, for tests and other consumers).
 * - Taps (LayerWriterOptions.tap): a caller may see each file's bytes as they are read, e.g. to
 *   hash a build-context file for its cache key in the same pass (one read per file).
 * - diff_id = sha256 of exactly these bytes = the digest `store.blobs.put` returns for them.
 */
import { closeSync, fstatSync, openSync, read, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import type { BlobSink } from '../../../store/blobs.js';
import type { BlobStore, Digest, PutOptions } from '../../../store/types.js';
import {
  type FileSource, type LayerEntry, OPAQUE_MARKER, WHITEOUT_PREFIX, baseOf, checkEntry, compareLayerPaths, keepXattr, parentOf,
} from './entry.js';
import { LayerCodes, fsError, layerError } from './errors.js';
import { noteExactMtimes } from './mtimes.js';
import { fsPath } from './names.js';
import { type TarHeader, type TarType, encodeHeader, encodeHeaderInto } from './tar.js';

const NS = 1_000_000_000n;

export interface LayerWriterOptions {
  /** SOURCE_DATE_EPOCH (seconds): every mtime later than this is written as this. */
  sourceDateEpoch?: number | undefined;
  /**
   * Called once per regular file whose content the layer carries (hardlinks to it excluded), just
   * before its bytes are read: a FileTap returned here sees exactly those bytes, in order, as the
   * writer reads them (e.g. to hash a build-context file for its cache key in the same pass, so it
   * is read once). `end()` only after the whole content was read and found unchanged; `fail()`
   * on any error. The tap must not keep or change the chunks (they are the writer's buffers).
   */
  tap?: ((source: FileSource, tarName: string) => FileTap | undefined) | undefined;
}

/** An observer of one file's bytes (LayerWriterOptions.tap). */
export interface FileTap {
  update(chunk: Buffer): void;
  end(): void;
  fail(err: unknown): void;
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

export class LayerWriter {
  private readonly byName = new Map<string, LayerEntry>();
  private readonly epoch: number | undefined;
  /** Exact mtimes seen while streaming (layer path → ns), for the snapshot (mtimes.ts). */
  private readonly exact = new Map<string, bigint>();

  private readonly tap: LayerWriterOptions['tap'];

  constructor(opts: LayerWriterOptions = {}) {
    this.epoch = opts.sourceDateEpoch;
    this.tap = opts.tap;
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
    const names = sortLayerPaths([...this.byName.keys()]);
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

  /**
   * The tar bytes, streamed. Each call produces a fresh, identical stream. (The same emitter as
   * commit(); the chunks are copies, since the emitter reuses its buffers.)
   */
  stream(): Readable {
    let wake: (() => void) | undefined;
    let started = false, closed = false;
    const target: ChunkTarget = {
      write: async (b) => {
        if (closed) throw new Error('layer stream closed');
        if (!out.push(Buffer.from(b))) await new Promise<void>((r) => { wake = r; });
        if (closed) throw new Error('layer stream closed');
      },
    };
    const out: Readable = new Readable({
      highWaterMark: 1 << 20,
      read: () => {
        // Nothing is opened before the first read; a consumer that stops reading holds the
        // emitter at its next write, and destroying the stream unwinds it (files get closed).
        if (!started) {
          started = true;
          this.emit(target).then(() => out.push(null), (e: unknown) => { if (!closed) out.destroy(e as Error); });
        }
        const w = wake; wake = undefined; w?.();
      },
      destroy: (err, cb) => { closed = true; const w = wake; wake = undefined; w?.(); cb(err); },
    });
    return out;
  }

  /**
   * Writes the tar into the store; the blob digest is the diff_id. With the file store's sink the
   * tar is assembled in a few reused buffers and hashed and written as it is made (no stream).
   */
  async commit(blobs: Pick<BlobStore, 'put'> & { openSink?: (opts?: PutOptions) => Promise<BlobSink> }): Promise<LayerResult> {
    let res: { digest: Digest; size: number };
    if (typeof blobs.openSink === 'function') {
      const sink = await blobs.openSink();
      try { await this.emit(sink); } catch (e) { await sink.abort(); throw e; }
      res = await sink.end();
    } else {
      res = await blobs.put(this.stream());
    }
    noteExactMtimes(res.digest, this.exact);
    return { diffId: res.digest, size: res.size };
  }

  /** The tar, in order, through a Stager into `target`. */
  private async emit(target: ChunkTarget): Promise<void> {
    const out = new Stager(target);
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
        const w = out.header(header);
        if (w) await w;
        continue;
      }
      const src = e.source;
      const tap = this.tap?.(src, p.tarName);
      try {
        if ('buffer' in src) {
          header.size = src.buffer.length;
          let w = out.header(header);
          if (w) await w;
          w = out.bytes(src.buffer, true);
          if (w) await w;
          tap?.update(src.buffer);
          w = out.pad(src.buffer.length);
          if (w) await w;
        } else if ('path' in src) {
          await this.fromPath(out, header, src.path, e.size, e.mtimeNs === undefined ? { path: p.tarName, sec: Math.trunc(e.mtime ?? 0) } : undefined, tap);
        } else {
          const size = e.size!;
          header.size = size;
          await out.header(header);
          let n = 0;
          for await (const chunk of src.stream()) {
            const c = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
            n += c.length;
            if (n > size) break;
            tap?.update(c);
            await out.bytes(c, true);
          }
          if (n !== size) {
            throw layerError(LayerCodes.FILE_CHANGED, `${e.path}: stream gave ${n > size ? 'more' : n} bytes, expected ${size}`,
              'The file changed while the layer was written; retry the build.');
          }
          await out.pad(size);
        }
      } catch (err) {
        tap?.fail(err);
        throw err;
      }
      tap?.end();
    }
    await out.end();
  }

  /** `exact`: note the file's own ns mtime for `exact.path` when its whole seconds are `exact.sec`. */
  private noteFileMtime(exact: { path: string; sec: number } | undefined, mtimeNs: bigint): void {
    if (exact && mtimeNs % NS !== 0n && mtimeNs / NS === BigInt(exact.sec)) this.exact.set(exact.path, mtimeNs);
  }

  /**
   * A file from the host: its bytes are read straight into the stager's buffers. Small files (most
   * of a typical layer) synchronously: a few quick syscalls beat threadpool round trips per file
   * by ~5x. Large files in reads up to the stager's chunk size, the next one in flight while the
   * current one is hashed.
   */
  private async fromPath(out: Stager, header: TarHeader, path: string, declared: number | undefined, exact: { path: string; sec: number } | undefined, tap: FileTap | undefined): Promise<void> {
    const changed = (why: string) => layerError(LayerCodes.FILE_CHANGED, `${path}: ${why}`, 'The file changed while the layer was written; retry the build.');
    const rethrow = (e: unknown) => (e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('TSB') ? e : fsError('read', path, e));
    let fd: number;
    try { fd = openSync(fsPath(path), 'r'); } catch (e) { throw fsError('open', path, e); }
    let size: number;
    let small = false;
    try {
      const st = fstatSync(fd, { bigint: true });
      this.noteFileMtime(exact, st.mtimeNs);
      size = declared ?? Number(st.size);
      if (Number(st.size) !== size) throw changed(`size is ${st.size}, expected ${size}`);
      header.size = size;
      const w = out.header(header);
      if (w) await w;
      if (size <= SMALL_READ) {
        if (!out.fits(size)) await out.advance();
        const [buf, off] = out.here();
        let pos = 0;
        while (pos < size) {
          const n = readSync(fd, buf, off + pos, size - pos, pos);
          if (n === 0) throw changed('file shrank while being read');
          pos += n;
        }
        if (fstatSync(fd).size !== size) throw changed('file grew while being read');
        tap?.update(buf.subarray(off, off + size));
        out.commit(size);
        small = true;
      }
    } catch (e) {
      closeSync(fd);
      throw rethrow(e);
    }
    if (small) {
      closeSync(fd);
      const w = out.pad(size);
      if (w) await w;
      return;
    }
    // Large: async reads, one ahead. A read fills up to the end of the stager's current buffer;
    // the next is started (into the next buffer, which the sink contract keeps free) before the
    // current one is hashed.
    let inflight: Promise<number> | undefined;
    try {
      let pos = 0;
      let [buf, off] = await out.room(1);
      let want = Math.min(buf.length - off, size);
      inflight = readAt(fd, buf, off, want, 0);
      while (pos < size) {
        const n = await inflight!;
        inflight = undefined;
        if (n === 0) throw changed('file shrank while being read');
        const region = buf.subarray(off, off + n);
        pos += n;
        const full = off + n === buf.length;
        let next: [Buffer, number] | undefined;
        if (pos < size && n === want && full) {
          next = out.peekNext();
          inflight = readAt(fd, next[0], 0, Math.min(next[0].length, size - pos), pos);
        }
        tap?.update(region);
        out.commit(n);
        if (pos >= size) break;
        if (next) {
          await out.advance();
          [buf, off] = [next[0], 0];
          want = Math.min(buf.length, size - pos);
        } else {
          [buf, off] = await out.room(1);
          want = Math.min(buf.length - off, size - pos);
          inflight = readAt(fd, buf, off, want, pos);
        }
      }
      if (fstatSync(fd).size !== size) throw changed('file grew while being read');
    } catch (e) {
      // A read still in flight must not outlive the descriptor (its number could be reused).
      if (inflight) await inflight.catch(() => 0);
      throw rethrow(e);
    } finally {
      closeSync(fd);
    }
    await out.pad(size);
  }
}

/**
 * names sorted by compareLayerPaths, without its two name encodings per comparison when it can:
 * for names of characters below U+D800 only, UTF-16 order is UTF-8 byte order, and '/' → NUL (no
 * name holds a NUL) makes a plain string comparison the component-wise one.
 */
function sortLayerPaths(names: string[]): string[] {
  if (names.some((n) => HIGH.test(n))) return names.sort(compareLayerPaths);
  // The default sort (no comparator call per comparison) of the keys, mapped back: names hold no NUL.
  const keys = names.map((n) => n.replaceAll('/', '\0'));
  keys.sort();
  return keys.map((k) => k.replaceAll('\0', '/'));
}

const HIGH = /[\uD800-\uFFFF]/;

/** Files up to this size are read with one synchronous read (they fit a stager buffer). */
const SMALL_READ = 256 << 10;
/** Two zero blocks: padding and the end-of-archive marker. */
const ZEROS = new Uint8Array(1024);
/** Stager buffer size: the unit of hashing and of writes to the store. */
const CHUNK = 256 << 10;

function readAt(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((res, rej) => read(fd, buf, off, len, pos, (err, n) => (err ? rej(err) : res(n))));
}

/** Where the stager's chunks go: a BlobSink (buffer ownership as BlobSink documents). */
interface ChunkTarget {
  write(b: Uint8Array): Promise<void>;
}

/**
 * Assembles the tar in three CHUNK-sized buffers used in turn. Each full buffer goes to the target;
 * by the BlobSink contract, once target.write(X) resolves only X is still in use, so the buffer
 * after the current one is always free (that is where a large file's next read goes early).
 * Buffers the caller hands over whole (`bytes(b, true)`) are written as they are when large.
 */
class Stager {
  private readonly bufs = [Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK), Buffer.allocUnsafeSlow(CHUNK)];
  private i = 0;
  private buf = this.bufs[0]!;
  private off = 0;

  constructor(private readonly target: ChunkTarget) {}

  /** Sends the current buffer (if it holds anything) and moves to the next one. */
  async advance(): Promise<void> {
    if (this.off === 0) return;
    await this.target.write(this.buf.subarray(0, this.off));
    this.i = (this.i + 1) % this.bufs.length;
    this.buf = this.bufs[this.i]!;
    this.off = 0;
  }

  /** The buffer that advance() will move to (free: see the class comment), and its start. */
  peekNext(): [Buffer, number] {
    return [this.bufs[(this.i + 1) % this.bufs.length]!, 0];
  }

  /** Whether n more bytes fit the current buffer. */
  fits(n: number): boolean {
    return this.off + n <= this.buf.length;
  }

  /** The current buffer and the offset where the next byte goes. */
  here(): [Buffer, number] {
    return [this.buf, this.off];
  }

  /** A place for n contiguous bytes (n ≤ CHUNK; n = 1: any room at all): [buffer, offset]. Fill it, then commit(count). */
  async room(n: number): Promise<[Buffer, number]> {
    if (this.off + n > this.buf.length) await this.advance();
    return [this.buf, this.off];
  }

  commit(n: number): void {
    this.off += n;
  }

  // header/bytes/pad return undefined when done synchronously (the common case: the piece fits the
  // current buffer), a promise only when a buffer must be sent first: most entries then cost no
  // await (a cold build runs this loop once per file, mostly unoptimized).

  header(h: TarHeader): Promise<void> | undefined {
    if (this.off + 512 <= this.buf.length && encodeHeaderInto(h, this.buf, this.off)) { this.off += 512; return undefined; }
    return this.headerSlow(h);
  }

  private async headerSlow(h: TarHeader): Promise<void> {
    const [buf, off] = await this.room(512);
    if (encodeHeaderInto(h, buf, off)) { this.off += 512; return; }
    await this.bytes(encodeHeader(h), false);
  }

  /** Appends b (copied; a large b that the caller never changes is written as it is). */
  bytes(b: Buffer, stable: boolean): Promise<void> | undefined {
    if (stable && b.length >= CHUNK / 2) return this.whole(b);
    // TypedArray#set, not Buffer#copy: no argument handling in JS per call.
    if (this.off + b.length <= this.buf.length) { this.buf.set(b, this.off); this.off += b.length; return undefined; }
    return this.bytesSlow(b);
  }

  private async whole(b: Buffer): Promise<void> {
    await this.advance();
    await this.target.write(b);
  }

  private async bytesSlow(b: Buffer): Promise<void> {
    let at = 0;
    while (at < b.length) {
      const [buf, off] = await this.room(1);
      const n = Math.min(b.length - at, buf.length - off);
      buf.set(b.subarray(at, at + n), off);
      this.off += n;
      at += n;
    }
  }

  /** Zero padding after `size` data bytes. */
  pad(size: number): Promise<void> | undefined {
    const n = (512 - (size % 512)) % 512;
    if (n === 0) return undefined;
    if (this.off + n <= this.buf.length) { this.buf.set(ZEROS.subarray(0, n), this.off); this.off += n; return undefined; }
    return this.padSlow(n);
  }

  private async padSlow(n: number): Promise<void> {
    const [buf, off] = await this.room(n);
    buf.set(ZEROS.subarray(0, n), off);
    this.off += n;
  }

  async end(): Promise<void> {
    const [buf, off] = await this.room(1024);
    buf.set(ZEROS, off);
    this.off += 1024;
    await this.advance();
  }
}
