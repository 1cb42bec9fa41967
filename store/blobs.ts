/**
 * Content-addressed blobs at blobs/sha256/<hex> (the OCI image layout's own place for them).
 *
 * put: bytes go to a temp file in tmp/ while being hashed (node:crypto sha256 directly: ssri's
 * stream wrapper adds a copy per chunk and we need only sha256), then fsync, rename into place,
 * fsync the directory. A blob that already exists is success; its mtime is bumped so a gc running
 * at that moment keeps it (see gc.ts). A write is pipelined: the next chunk is hashed while the
 * previous one is being written, so a put costs about max(hash, write), not their sum.
 * openSink: the same, driven piece by piece by a producer that reuses its buffers (BlobSink says
 * when a buffer is free again); put itself writes through one. One fsync per blob (+ its dir).
 *
 * Reads verify: read()/readJSON() hash the whole blob; open() hashes as it streams and fails at the
 * end (before 'end') on a mismatch. A mismatch is TSB5005 naming the blob and its path.
 */
import type { Hash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { open, readFile, rename, stat, unlink, utimes } from './afs.js';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { LRUCache } from 'lru-cache';
import { TsbError, errnoCode } from './errors.js';
import { E, crypto, fsyncDir, ioError, lruCache, stream, tempName } from './fsutil.js';
import type { BlobSource, BlobStore, Digest, PutOptions } from './types.js';

const DIGEST_RE = /^sha256:([a-f0-9]{64})$/;

export function hexOf(digest: Digest): string {
  const m = DIGEST_RE.exec(digest);
  if (!m) {
    throw new TsbError(E.BAD_DIGEST, `"${digest}" is not a sha256 digest`, {
      hint: 'a digest is sha256: followed by 64 lowercase hex digits (other algorithms are not stored).',
    });
  }
  return m[1]!;
}

export function isSha256Digest(s: string): boolean {
  return DIGEST_RE.test(s);
}

export function corruptBlob(digest: Digest, path: string, actual: string): TsbError {
  return new TsbError(E.CORRUPT_BLOB, `blob ${digest} is corrupt: its content hashes to ${actual} (${path})`, {
    hint: 'run "tsbuild store verify --repair" to remove it, then rebuild or re-pull the image that uses it.',
  });
}

export function notFound(digest: Digest): TsbError {
  return new TsbError(E.NOT_FOUND, `blob ${digest} is not in the store`, {
    hint: 'rebuild or re-pull the image; "tsbuild store verify" lists what is missing.',
  });
}

function toChunks(data: BlobSource): AsyncIterable<Uint8Array> | Uint8Array {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (data instanceof Uint8Array) return data;
  return data as AsyncIterable<Uint8Array>;
}

export class FsBlobStore implements BlobStore {
  private readonly dir: string;
  /** Verified JSON text by digest, bounded by characters (manifests and configs are small). */
  /** Parsed-on-read JSON blobs (manifests, configs) by digest; made on first use (fsutil lruCache). */
  private json: LRUCache<string, string> | undefined;

  /** Called before any write: the store's implicit per-process lease (see store.ts). */
  beforeWrite: () => Promise<void> = async () => undefined;

  constructor(private readonly root: string, private readonly tmpDir: string) {
    this.dir = join(root, 'blobs', 'sha256');
  }

  path(digest: Digest): string {
    return join(this.dir, hexOf(digest));
  }

  async has(digest: Digest): Promise<boolean> {
    return (await this.size(digest)) !== undefined;
  }

  // A synchronous stat (why): one metadata call on the store's own disk costs less than a
  // thread-pool round trip, and a build or a memo check asks this for every layer.
  async size(digest: Digest): Promise<number | undefined> {
    const p = this.path(digest);
    try {
      return statSync(p, { throwIfNoEntry: false })?.size;
    } catch (e) {
      throw ioError(e, 'reading blob size', p);
    }
  }

  /** Bump mtime so a concurrent gc keeps the blob; false if it is not there. */
  private async touch(p: string): Promise<boolean> {
    try {
      const now = new Date();
      await utimes(p, now, now);
      return true;
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw ioError(e, 'touching a blob', p);
    }
  }

  async put(data: BlobSource, opts: PutOptions = {}): Promise<{ digest: Digest; size: number }> {
    if (opts.expectDigest !== undefined) hexOf(opts.expectDigest);
    await this.beforeWrite();
    const src = toChunks(data);
    if (src instanceof Uint8Array) {
      const digest = `sha256:${crypto().createHash('sha256').update(src).digest('hex')}`;
      this.check(digest, src.length, opts);
      const p = this.path(digest);
      const st = await stat(p).catch(() => undefined);
      if (st && st.size === src.length && (await this.touch(p))) return { digest, size: src.length };
      const sink = await this.openFsSink(opts, digest);
      try { await sink.write(src); } catch (e) { await sink.abort(); throw sink.wrap(e); }
      return sink.end();
    }
    // Streamed: hash while writing; the digest is known only at the end.
    if (opts.expectDigest !== undefined && opts.expectSize !== undefined) {
      // Already have it? Still drain the source so the caller's stream does not hang.
      const p = this.path(opts.expectDigest);
      const st = await stat(p).catch(() => undefined);
      if (st && st.size === opts.expectSize && (await this.touch(p))) {
        for await (const _ of src) { /* drain */ }
        return { digest: opts.expectDigest, size: opts.expectSize };
      }
    }
    const sink = await this.openFsSink(opts);
    try {
      // Chunks of a stream are never reused by it, so hashing the next one overlaps writing this one.
      for await (const chunk of src) await sink.write(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    } catch (e) {
      await sink.abort();
      throw sink.wrap(e);
    }
    return sink.end();
  }

  /**
   * A blob written piece by piece (BlobSink), for producers that fill buffers of their own (the
   * layer writer): no stream in between, buffers reused. Same guarantees as put: temp file, sha256
   * while writing, fsync, rename, fsync the directory; the digest is known at end().
   */
  openSink(opts: PutOptions = {}): Promise<BlobSink> {
    return this.openFsSink(opts);
  }

  /** `knownDigest`: the caller hashed the bytes already (put of a buffer): not hashed again. */
  private async openFsSink(opts: PutOptions, knownDigest?: Digest): Promise<FsBlobSink> {
    if (opts.expectDigest !== undefined) hexOf(opts.expectDigest);
    await this.beforeWrite();
    const tmp = tempName(this.tmpDir, 'blob');
    let fh;
    try { fh = await open(tmp, 'wx', 0o644); } catch (e) { throw ioError(e, 'writing a blob', tmp); }
    return new FsBlobSink(this, fh, tmp, opts, knownDigest);
  }

  /** @internal (FsBlobSink) */
  check(digest: Digest, size: number, opts: PutOptions): void {
    if (opts.expectDigest !== undefined && opts.expectDigest !== digest) {
      throw new TsbError(E.MISMATCH, `content does not match its digest: expected ${opts.expectDigest}, got ${digest}`, {
        hint: 'the source (archive, registry or file) sent different bytes than it described; fetch it again.',
      });
    }
    if (opts.expectSize !== undefined && opts.expectSize !== size) {
      throw new TsbError(E.MISMATCH, `content of ${digest} is ${size} bytes, expected ${opts.expectSize}`, {
        hint: 'the source sent a different size than it described; fetch it again.',
      });
    }
  }

  /** @internal (FsBlobSink) Publishes a synced temp file under its digest. */
  async publish(tmp: string, digest: Digest): Promise<void> {
    await rename(tmp, this.path(digest));
    await fsyncDir(this.dir);
  }

  async read(digest: Digest): Promise<Buffer> {
    const p = this.path(digest);
    let buf: Buffer;
    try {
      buf = await readFile(p);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') throw notFound(digest);
      throw ioError(e, 'reading a blob', p);
    }
    const actual = `sha256:${crypto().createHash('sha256').update(buf).digest('hex')}`;
    if (actual !== digest) throw corruptBlob(digest, p, actual);
    return buf;
  }

  async readJSON<T = unknown>(digest: Digest): Promise<T> {
    this.json ??= new (await lruCache())<string, string>({ maxSize: 32 << 20, sizeCalculation: (v) => Math.max(1, v.length) });
    let text = this.json.get(digest);
    if (text === undefined) {
      text = (await this.read(digest)).toString('utf8');
      this.json.set(digest, text);
    }
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new TsbError(E.CORRUPT_INDEX, `blob ${digest} is not JSON`, { cause: e, hint: 'it is not a manifest or config; check what refers to it.' });
    }
  }

  open(digest: Digest): Readable {
    const p = this.path(digest);
    const hash = crypto().createHash('sha256');
    const out = new (stream().Transform)({
      transform(chunk: Buffer, _enc, cb) { hash.update(chunk); cb(null, chunk); },
      flush(cb) {
        const actual = `sha256:${hash.digest('hex')}`;
        cb(actual === digest ? null : corruptBlob(digest, p, actual));
      },
    });
    const src = createReadStream(p, { highWaterMark: 1 << 20 });
    src.on('error', (e) => out.destroy(errnoCode(e) === 'ENOENT' ? notFound(digest) : ioError(e, 'reading a blob', p)));
    out.on('close', () => src.destroy());
    src.pipe(out);
    return out;
  }

  /** Re-hash a blob file (verify): the actual digest, or undefined if it is gone. */
  async hashFile(digest: Digest): Promise<string | undefined> {
    const p = this.path(digest);
    const hash = crypto().createHash('sha256');
    try {
      for await (const chunk of createReadStream(p, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw ioError(e, 'reading a blob', p);
    }
    return `sha256:${hash.digest('hex')}`;
  }

  forget(digest: Digest): void {
    this.json?.delete(digest);
  }
}

/**
 * One blob being written (FsBlobStore.openSink).
 *
 * Buffer ownership (why: the layer writer refills a few fixed buffers instead of allocating one
 * per read, which on this kind of machine costs more than hashing the bytes): write(b) hashes b at
 * once, waits for the PREVIOUS write to finish, starts writing b and resolves. So when write(b)
 * resolves, every buffer given before b is free again; b itself stays in use until the next
 * write() or drain() resolves. At most one write is in flight.
 *
 * end(): waits for the last write, fsyncs, renames to blobs/sha256/<digest> (an existing blob is
 * success), fsyncs the directory. abort(): closes and removes the temp file. Any failure aborts.
 */
export interface BlobSink {
  write(b: Uint8Array): Promise<void>;
  /** Resolves when nothing is in flight (every buffer given so far is free). */
  drain(): Promise<void>;
  /** Bytes given so far. */
  readonly size: number;
  end(): Promise<{ digest: Digest; size: number }>;
  abort(): Promise<void>;
}

class FsBlobSink implements BlobSink {
  /** Absent when the caller already hashed the bytes (put of a buffer). */
  private readonly hash: Hash | undefined;
  size = 0;
  private pending: Promise<void> = Promise.resolve();
  private failed: unknown;
  private done = false;

  constructor(
    private readonly store: FsBlobStore, private fh: FileHandle | undefined, private readonly tmp: string,
    private readonly opts: PutOptions, private readonly knownDigest?: Digest,
  ) {
    this.hash = knownDigest === undefined ? crypto().createHash('sha256') : undefined;
  }

  async write(b: Uint8Array): Promise<void> {
    if (this.done) throw new Error('internal: write after end/abort of a blob sink');
    if (b.length === 0) return this.drain(); // still "everything before is free" on return
    this.hash?.update(b);
    this.size += b.length;
    await this.pending;
    if (this.failed !== undefined) throw this.wrap(this.failed);
    const fh = this.fh!;
    this.pending = (async () => {
      let off = 0;
      while (off < b.length) {
        const { bytesWritten } = await fh.write(b, off, b.length - off);
        off += bytesWritten;
      }
    })().catch((e: unknown) => { this.failed = e; });
  }

  async drain(): Promise<void> {
    await this.pending;
    if (this.failed !== undefined) throw this.wrap(this.failed);
  }

  /** An error as put reports it: a TsbError as is, anything else as an I/O error on the temp file. */
  wrap(e: unknown): TsbError {
    return e instanceof TsbError ? e : ioError(e, 'writing a blob', this.tmp);
  }

  async end(): Promise<{ digest: Digest; size: number }> {
    try {
      await this.drain();
      const digest = this.knownDigest ?? `sha256:${this.hash!.digest('hex')}`;
      this.done = true;
      this.store.check(digest, this.size, this.opts);
      await this.fh!.sync();
      const fh = this.fh!;
      this.fh = undefined;
      await fh.close();
      await this.store.publish(this.tmp, digest);
      return { digest, size: this.size };
    } catch (e) {
      await this.abort();
      throw this.wrap(e);
    }
  }

  async abort(): Promise<void> {
    this.done = true;
    await this.pending.catch(() => undefined);
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
    await unlink(this.tmp).catch(() => undefined);
  }
}
