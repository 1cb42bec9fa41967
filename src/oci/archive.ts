/**
 * Image archives: writing OCI layouts (tar or directory) and `docker load` archives, and loading
 * OCI archives / OCI layout directories / docker archives (old `<id>/layer.tar` style and the
 * Docker 25+ style that is an OCI layout plus manifest.json) into the store.
 *
 * Loading never writes an archive entry to the filesystem by its name: blobs go into the store
 * (digest verified while streaming), small JSON files are held in memory. Hostile names (absolute,
 * `..`), links leading outside the archive, device nodes and FIFOs are rejected (TSB6121); a
 * truncated archive or a missing blob is TSB6122; a blob whose bytes do not hash to its name is
 * TSB6105; a layer whose uncompressed digest is not the config's diff_id is TSB6106.
 * Layer CONTENTS are checked when they are unpacked (src/exec/layer), not here.
 *
 * Codes: TSB6120 unrecognized archive / oversized metadata, TSB6121 hostile entry, TSB6122
 * truncated or incomplete, TSB6123 write failure at the destination.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readFile, rename, rm, writeFile, open as fsOpen } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import * as tar from 'tar-stream';
import { TsbError, errnoCode, isTsbError } from '../errors.js';
import type { Descriptor, Digest, Store } from '../../store/types.js';
import {
  MediaType, canonicalIndex, isIndexType, isManifestType, layerCompression, parseJSON, validateConfig,
  validateIndex, validateManifest, layerDescriptor, withLease, type Index, type Manifest,
} from './image.js';
import { autoDecompress, compressedKey, decompressStream, pipeThrough, readAll, sniffCompression } from './compress.js';
import { parseReference, tryParseReference } from './reference.js';

const HEX = /^[a-f0-9]{64}$/;
const METADATA_LIMIT = 64 << 20;

// ---------------------------------------------------------------------------------------------
// Writing

export interface ArchiveImage {
  /** Distribution manifest (its blobs, compressed as wanted, all in the store). */
  descriptor: Descriptor;
  /** Full normalized names (docker.io/library/app:1); may be empty. */
  names: string[];
}

export interface WriteArchiveOptions {
  format: 'oci' | 'docker';
  /** Tar entry mtime (seconds); default 0 (reproducible). */
  mtime?: number;
  signal?: AbortSignal;
  onProgress?: (ev: { blob: Digest; bytes: number }) => void;
}

async function blobsOf(store: Store, d: Descriptor, out: Map<Digest, number>): Promise<void> {
  out.set(d.digest, d.size);
  const raw = parseJSON(await store.blobs.read(d.digest), `manifest ${d.digest}`);
  if (isIndexType(d.mediaType) || Array.isArray((raw as { manifests?: unknown }).manifests)) {
    const idx = validateIndex(raw);
    for (const m of idx.manifests) if (await store.blobs.has(m.digest)) await blobsOf(store, m, out);
    return;
  }
  const m = validateManifest(raw);
  out.set(m.config.digest, m.config.size);
  for (const l of m.layers) out.set(l.digest, l.size);
}

function refAnnotations(name: string | undefined): Record<string, string> | undefined {
  if (!name) return undefined;
  const ref = tryParseReference(name);
  if (!ref) return { 'org.opencontainers.image.ref.name': name };
  return { 'io.containerd.image.name': ref.full, 'org.opencontainers.image.ref.name': ref.tag ?? ref.digest ?? 'latest' };
}

/** The layout's index.json: one entry per (image, name), or one unnamed entry. */
export function layoutIndex(images: ArchiveImage[]): Index {
  const manifests: Descriptor[] = [];
  for (const im of images) {
    const base = { mediaType: im.descriptor.mediaType, digest: im.descriptor.digest, size: im.descriptor.size };
    if (im.names.length === 0) manifests.push(base);
    for (const n of im.names) manifests.push({ ...base, annotations: refAnnotations(n)! });
  }
  return { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
}

/** docker's manifest.json + repositories for the images (manifests only; indexes are resolved by the caller). */
async function dockerFiles(store: Store, images: ArchiveImage[]): Promise<{ manifestJson: Buffer; repositories: Buffer }> {
  const entries: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const repos: Record<string, Record<string, string>> = {};
  for (const im of images) {
    const m = validateManifest(parseJSON(await store.blobs.read(im.descriptor.digest), 'manifest'));
    const tags: string[] = [];
    for (const n of im.names) {
      const ref = tryParseReference(n);
      if (!ref || ref.tag === undefined) continue;
      tags.push(ref.familiar.replace(/@.*$/, ''));
      (repos[ref.familiarName] ??= {})[ref.tag] = m.config.digest.slice(7);
    }
    entries.push({
      Config: `blobs/sha256/${m.config.digest.slice(7)}`,
      RepoTags: tags,
      Layers: m.layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
    });
  }
  return { manifestJson: Buffer.from(JSON.stringify(entries)), repositories: Buffer.from(JSON.stringify(repos)) };
}

/**
 * Write an OCI image layout (plus manifest.json/repositories for docker) as a tar to `out`.
 * Entries are in a fixed order with fixed metadata, so the same images give the same bytes.
 */
export async function writeArchive(store: Store, images: ArchiveImage[], out: NodeJS.WritableStream, opts: WriteArchiveOptions): Promise<void> {
  const blobs = new Map<Digest, number>();
  for (const im of images) await blobsOf(store, im.descriptor, blobs);
  const mtime = new Date((opts.mtime ?? 0) * 1000);
  const pack = tar.pack();
  const hdr = (name: string, size: number): Partial<tar.Header> & { name: string } => ({ name, size, mode: 0o644, mtime, uid: 0, gid: 0, uname: '', gname: '', type: 'file' });
  const dir = (name: string): Partial<tar.Header> & { name: string } => ({ name, mode: 0o755, mtime, uid: 0, gid: 0, uname: '', gname: '', type: 'directory' });
  const done = new Promise<void>((res, rej) => {
    pack.on('error', rej);
    out.on('error', (e) => rej(new TsbError('TSB6123', 'could not write the archive', { cause: e })));
    out.on('finish', () => res());
    if ((out as { writableFinished?: boolean }).writableFinished) res();
  });
  const isStd = out === process.stdout;
  // tar-stream 3 streams are streamx streams: bridge to a Node Readable for pipe semantics.
  const packNode = Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
  packNode.on('error', (e) => out.emit('error', e));
  packNode.pipe(out as NodeJS.WritableStream, { end: !isStd });
  const addBuffer = (name: string, data: Buffer) => new Promise<void>((res, rej) => pack.entry(hdr(name, data.length), data, (e) => (e ? rej(e) : res())));
  const work = (async () => {
    await new Promise<void>((res, rej) => pack.entry(dir('blobs/'), (e) => (e ? rej(e) : res())));
    await new Promise<void>((res, rej) => pack.entry(dir('blobs/sha256/'), (e) => (e ? rej(e) : res())));
    for (const [digest, size] of [...blobs].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      if (opts.signal?.aborted) throw new TsbError('TSB6123', 'interrupted', { cause: opts.signal.reason });
      const actual = await store.blobs.size(digest);
      if (actual === undefined) throw new TsbError('TSB6104', `blob ${digest} is missing from the store`, { hint: 'run "tsbuild store verify".' });
      if (actual !== size) throw new TsbError('TSB6105', `blob ${digest} is ${actual} bytes in the store but its descriptor says ${size}`);
      const src = store.blobs.open(digest);
      let n = 0;
      src.on('data', (c: Buffer) => { n += c.length; opts.onProgress?.({ blob: digest, bytes: n }); });
      await new Promise<void>((res, rej) => {
        const entry = pack.entry(hdr(`blobs/sha256/${digest.slice(7)}`, size), (e) => (e ? rej(e) : res()));
        src.on('error', (e) => { rej(e); entry.destroy(e); });
        src.pipe(entry as unknown as NodeJS.WritableStream);
      });
    }
    if (opts.format === 'docker') {
      const f = await dockerFiles(store, images);
      await addBuffer('manifest.json', f.manifestJson);
      await addBuffer('repositories', f.repositories);
    }
    await addBuffer('index.json', canonicalIndex(layoutIndex(images)));
    await addBuffer('oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
    pack.finalize();
  })();
  await work.catch((e) => { pack.destroy(e as Error); throw e; });
  if (isStd) await finished(packNode);
  else await done;
}

/** Write an OCI layout as a directory (BuildKit's `tar=false`). */
export async function writeLayoutDir(store: Store, images: ArchiveImage[], dest: string): Promise<void> {
  const blobs = new Map<Digest, number>();
  for (const im of images) await blobsOf(store, im.descriptor, blobs);
  try {
    await mkdir(join(dest, 'blobs', 'sha256'), { recursive: true });
    for (const [digest] of blobs) {
      const to = join(dest, 'blobs', 'sha256', digest.slice(7));
      try { await lstat(to); continue; } catch { /* absent */ }
      const tmp = `${to}.tmp-${process.pid}`;
      const w = createWriteStream(tmp);
      store.blobs.open(digest).pipe(w);
      await finished(w);
      await rename(tmp, to);
    }
    await writeFile(join(dest, 'index.json'), canonicalIndex(layoutIndex(images)));
    await writeFile(join(dest, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  } catch (e) {
    if (isTsbError(e)) throw e;
    throw new TsbError('TSB6123', `could not write the OCI layout to ${dest}`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

export interface LoadedImage {
  /** What the name (or, when unnamed, the entry) points at: a manifest or an index. */
  descriptor: Descriptor;
  /** Full normalized names given to it (refs set). */
  names: string[];
}

export interface LoadOptions {
  signal?: AbortSignal;
  /** Set refs for the names found (default true). */
  tag?: boolean;
  onProgress?: (ev: { entry: string; bytes: number }) => void;
}

function hostile(name: string, why: string): TsbError {
  return new TsbError('TSB6121', `archive entry "${name}" ${why}`, { hint: 'the archive is malformed or hostile; nothing from it was used.' });
}

/** Archive-relative clean path; rejects absolute paths and `..`. */
function cleanName(name: string): string {
  if (name.includes('\0')) throw hostile(name.replace(/\0/g, '\\0'), 'has a NUL byte in its name');
  if (name.startsWith('/')) throw hostile(name, 'has an absolute path');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw hostile(name, 'leads outside the archive ("..")');
  return parts.join('/');
}

/** Put a stream into the store, verifying it hashes to `expect` (TSB6105 naming `what` when not). */
/**
 * `rechunk: false` hands the source's chunks to the store as they are: right for a download split
 * without copies (registry.ts), where joining 64 KiB socket chunks into 1 MiB buffers cost more
 * (fresh 1 MiB allocations + memcpy) than the extra writes (measured: pull 3.2 s → 2.0 s).
 */
export async function putVerified(store: Store, src: Readable, expect: Digest | undefined, what: string, expectSize?: number, { rechunk = true }: { rechunk?: boolean } = {}): Promise<{ digest: Digest; size: number }> {
  // The store hashes while writing and refuses a mismatch (TSB5002) keeping nothing; this only
  // re-codes failures: a source that broke (truncated archive, cut download, corrupt compression)
  // is TSB6122 (or the source's own TSB6xxx), a mismatch is TSB6105 naming `what`.
  let srcErr: unknown;
  src.on('error', (e) => { srcErr ??= e; });
  try {
    const opts = expect ? { expectDigest: expect, ...(expectSize !== undefined ? { expectSize } : {}) } : {};
    return await store.blobs.put(rechunk ? coalesce(src) : src, opts);
  } catch (e) {
    if (srcErr !== undefined) {
      if (isTsbError(srcErr) && srcErr.code.startsWith('TSB6')) throw srcErr;
      throw new TsbError('TSB6122', `${what}: the data ended early or could not be read (truncated or corrupt)`, { cause: srcErr, hint: 'check the file or connection and try again; nothing was kept.' });
    }
    // The store's own mismatch codes (TSB5002 mismatch, TSB5009 bad digest) → this module's code.
    if (isTsbError(e) && expect && (e.code === 'TSB5002' || e.code === 'TSB5009')) {
      throw new TsbError('TSB6105', `${what}: ${e.message}`, { hint: 'the data is corrupt, truncated or was tampered with; nothing was kept.', cause: e });
    }
    if (isTsbError(e)) throw e;
    throw new TsbError('TSB6122', `${what}: could not read it (truncated or unreadable)`, { cause: e });
  }
}

/**
 * Re-chunk a stream into ~1 MiB pieces: network and zlib chunks are 16–64 KiB, and the store awaits
 * each write, so fewer, larger writes cut the per-chunk round trips (pull got ~2× faster).
 */
async function* coalesce(src: AsyncIterable<Uint8Array>, size = 1 << 20): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let n = 0;
  for await (const c of src) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
    parts.push(b);
    n += b.length;
    if (n >= size) { yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, n); parts = []; n = 0; }
  }
  if (n > 0) yield parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
}

/** Is a stored blob compressed (by magic bytes)? */
async function blobCompression(store: Store, digest: Digest): Promise<ReturnType<typeof sniffCompression>> {
  const fh = await fsOpen(store.blobs.path(digest), 'r');
  try {
    const b = Buffer.alloc(8);
    const { bytesRead } = await fh.read(b, 0, 8, 0);
    return sniffCompression(b.subarray(0, bytesRead));
  } finally { await fh.close(); }
}

/**
 * Make sure the uncompressed form of a layer is in the store under `diffId`. `blob` is how the layer
 * is stored/distributed (maybe compressed). TSB6106 when the uncompressed bytes are not `diffId`.
 */
export async function ensureDiffId(store: Store, blob: Descriptor, diffId: Digest, what: string, signal?: AbortSignal): Promise<void> {
  let c = layerCompression(blob.mediaType);
  if (c === 'uncompressed' || c === undefined) {
    // Some writers label compressed blobs as plain tar (old docker-archive layer.tar may be gzip).
    c = (await blobCompression(store, blob.digest)) as typeof c;
  }
  if (c === 'uncompressed' || c === undefined) {
    if (blob.digest !== diffId) throw new TsbError('TSB6106', `${what}: layer ${blob.digest} is uncompressed but the config's diff_id is ${diffId}`, { hint: 'the image is inconsistent; rebuild or re-pull it.' });
    return;
  }
  if (!(await store.blobs.has(diffId))) {
    const d = decompressStream(c as 'gzip' | 'zstd' | 'bzip2' | 'xz', what);
    const src = pipeThrough(store.blobs.open(blob.digest), d, signal);
    try {
      await putVerified(store, src, diffId, what);
    } catch (e) {
      if (isTsbError(e) && e.code === 'TSB6105') {
        throw new TsbError('TSB6106', `${what}: layer ${blob.digest} uncompresses to content that is not the config's diff_id ${diffId}`, { hint: 'the image is inconsistent or tampered with; nothing was kept.', cause: e });
      }
      throw e;
    }
  }
  if (c === 'gzip' || c === 'zstd') await store.compressed.set(diffId, { mediaType: compressedKey(c), digest: blob.digest, size: blob.size });
}

interface Collected {
  /** archive path → stored blob digest */
  blobs: Map<string, Digest>;
  /** archive path → small file contents */
  files: Map<string, Buffer>;
  /** archive path → archive path (symlinks, hardlinks) */
  links: Map<string, string>;
}

function resolvePath(c: Collected, p: string): string {
  let cur = p;
  for (let i = 0; i < 32; i++) {
    const next = c.links.get(cur);
    if (next === undefined) return cur;
    cur = next;
  }
  throw hostile(p, 'is a link loop');
}

function isSmall(name: string): boolean {
  return name === 'index.json' || name === 'oci-layout' || name === 'manifest.json' || name === 'repositories'
    || name.endsWith('.json') || name.endsWith('/json') || name.endsWith('/VERSION');
}

async function collectTar(store: Store, input: Readable, opts: LoadOptions): Promise<Collected> {
  const c: Collected = { blobs: new Map(), files: new Map(), links: new Map() };
  const extract = tar.extract();
  extract.on('error', () => { /* surfaced by the iterator below */ });
  const dec = autoDecompress('archive');
  input.on('error', (e) => dec.destroy(e));
  dec.on('error', (e) => extract.destroy(e));
  input.pipe(dec).pipe(extract);
  let entries = 0;
  try {
    for await (const entry of extract) {
      if (opts.signal?.aborted) throw new TsbError('TSB6122', 'interrupted', { cause: opts.signal.reason });
      entries++;
      // Errors of an entry stream are also the extractor's: reported once, by the iterator.
      entry.on('error', () => {});
      const h = entry.header;
      const name = cleanName(h.name);
      switch (h.type) {
        case 'directory': entry.resume(); break;
        case 'symlink': case 'link': {
          const target = h.linkname ?? '';
          if (target.startsWith('/')) throw hostile(h.name, `is a link to an absolute path (${target})`);
          const joined = h.type === 'symlink' ? posix.normalize(posix.join(posix.dirname(name), target)) : posix.normalize(target);
          if (joined === '..' || joined.startsWith('../') || joined.startsWith('/')) throw hostile(h.name, `is a link leading outside the archive (${target})`);
          c.links.set(name, cleanName(joined));
          entry.resume();
          break;
        }
        case 'file': case 'contiguous-file': case null: case undefined: {
          const m = /^blobs\/sha256\/(.+)$/.exec(name);
          if (m) {
            if (!HEX.test(m[1]!)) throw hostile(h.name, 'is in blobs/sha256/ but is not named by a sha256 digest');
            const digest = `sha256:${m[1]}`;
            const r = await putVerified(store, Readable.from(entry), digest, `archive blob ${name}`);
            c.blobs.set(name, r.digest);
          } else if (isSmall(name) && (h.size ?? 0) <= METADATA_LIMIT) {
            c.files.set(name, await readAll(entry as AsyncIterable<Buffer>, METADATA_LIMIT, `archive entry ${name}`));
          } else {
            const r = await putVerified(store, Readable.from(entry), undefined, `archive entry ${name}`);
            c.blobs.set(name, r.digest);
          }
          break;
        }
        default:
          throw hostile(h.name, `is a ${h.type ?? 'special file'}, which an image archive never contains`);
      }
    }
  } catch (e) {
    extract.destroy();
    input.destroy();
    if (isTsbError(e)) throw e;
    throw new TsbError('TSB6122', 'the archive is truncated or not a tar archive', { hint: 'check the file; docker save, tsbuild save and skopeo write valid archives.', cause: e });
  }
  if (entries === 0) throw new TsbError('TSB6120', 'the archive is empty', { hint: 'give an OCI or docker image archive (tsbuild save, docker save, skopeo copy … oci-archive:).' });
  return c;
}

async function collectDir(store: Store, dir: string): Promise<Collected> {
  const c: Collected = { blobs: new Map(), files: new Map(), links: new Map() };
  for (const f of ['index.json', 'oci-layout', 'manifest.json', 'repositories']) {
    try {
      const st = await lstat(join(dir, f));
      if (!st.isFile()) throw hostile(f, 'is not a regular file');
      if (st.size > METADATA_LIMIT) throw new TsbError('TSB6120', `${f} is larger than ${METADATA_LIMIT} bytes`);
      c.files.set(f, await readFile(join(dir, f)));
    } catch (e) {
      if (isTsbError(e)) throw e;
      if (errnoCode(e) !== 'ENOENT') throw new TsbError('TSB6122', `could not read ${join(dir, f)}`, { cause: e });
    }
  }
  if (!c.files.has('index.json')) {
    throw new TsbError('TSB6120', `${dir} is not an OCI image layout (no index.json)`, { hint: 'give an OCI layout directory, or an archive file.' });
  }
  // Blobs are read on demand by digest (see dirBlob): only those the index reaches are copied.
  return c;
}

export interface LoadResult { images: LoadedImage[] }

/**
 * Load an archive (tar stream, maybe gzip/zstd-compressed as a whole) or an OCI layout directory
 * into the store; sets refs for the names found. Returns what was loaded.
 */
export async function loadArchive(store: Store, source: Readable | { dir: string }, opts: LoadOptions = {}): Promise<LoadResult> {
  return withLease(store, 'load', () => loadUnderLease(store, source, opts));
}

async function loadUnderLease(store: Store, source: Readable | { dir: string }, opts: LoadOptions): Promise<LoadResult> {
  const isDir = !(source instanceof Readable) && 'dir' in source;
  const c = isDir ? await collectDir(store, (source as { dir: string }).dir) : await collectTar(store, source as Readable, opts);

  /** Bring a blob (named by digest) into the store: from the archive's blobs/ (tar: already there), or the dir. */
  const need = async (d: Descriptor, what: string): Promise<void> => {
    if (isDir) {
      if (!(await store.blobs.has(d.digest))) {
        const p = join((source as { dir: string }).dir, 'blobs', 'sha256', d.digest.slice(7));
        let st;
        try { st = await lstat(p); } catch { throw new TsbError('TSB6122', `${what} blob ${d.digest} is missing from the layout`, { hint: 'the layout is incomplete.' }); }
        if (!st.isFile()) throw hostile(`blobs/sha256/${d.digest.slice(7)}`, 'is not a regular file');
        await putVerified(store, createReadStream(p), d.digest, `layout blob ${d.digest}`, d.size);
      }
    } else {
      const path = resolvePath(c, `blobs/sha256/${d.digest.slice(7)}`);
      const got = c.blobs.get(path);
      if (!got) throw new TsbError('TSB6122', `${what} blob ${d.digest} is missing from the archive`, { hint: 'the archive is incomplete or truncated.' });
      if (got !== d.digest) throw new TsbError('TSB6105', `${what}: archive blob for ${d.digest} holds ${got}`);
    }
    const size = await store.blobs.size(d.digest);
    if (size !== d.size) throw new TsbError('TSB6105', `${what} blob ${d.digest} is ${size} bytes but its descriptor says ${d.size}`, { hint: 'the archive is corrupt or tampered with.' });
  };

  const loadManifest = async (d: Descriptor, what: string): Promise<void> => {
    await need(d, what);
    const m = validateManifest(parseJSON(await store.blobs.read(d.digest), `${what} ${d.digest}`), `${what} ${d.digest}`);
    await need(m.config, `${what} config`);
    const config = validateConfig(parseJSON(await store.blobs.read(m.config.digest), 'image config'));
    if (config.rootfs.diff_ids.length !== m.layers.length) throw new TsbError('TSB6106', `${what}: ${m.layers.length} layers but ${config.rootfs.diff_ids.length} diff_ids in the config`);
    for (let i = 0; i < m.layers.length; i++) {
      await need(m.layers[i]!, `${what} layer ${i}`);
      await ensureDiffId(store, m.layers[i]!, config.rootfs.diff_ids[i]!, `${what} layer ${i}`, opts.signal);
    }
  };

  const loadAny = async (d: Descriptor, what: string, depth = 0): Promise<void> => {
    if (depth > 4) throw new TsbError('TSB6101', `${what}: indexes nested too deep`);
    if (isIndexType(d.mediaType)) {
      await need(d, what);
      const idx = validateIndex(parseJSON(await store.blobs.read(d.digest), `${what} ${d.digest}`));
      let loaded = 0;
      for (const m of idx.manifests) {
        const present = isDir ? true : c.blobs.has(resolvePath(c, `blobs/sha256/${m.digest.slice(7)}`));
        if (!present && !isDir) continue; // partial multi-platform archive: keep what is there
        try { await loadAny(m, `${what} → ${m.platform ? `${m.platform.os}/${m.platform.architecture}` : m.digest.slice(7, 19)}`, depth + 1); loaded++; } catch (e) {
          if (isDir && isTsbError(e) && e.code === 'TSB6122') continue;
          throw e;
        }
      }
      if (loaded === 0) throw new TsbError('TSB6122', `${what}: none of its manifests are in the archive`);
    } else if (isManifestType(d.mediaType)) {
      await loadManifest(d, what);
    } else {
      throw new TsbError('TSB6102', `${what}: unsupported media type ${d.mediaType}`, { hint: 'tsbuild loads OCI and Docker v2 schema 2 images.' });
    }
  };

  const results: LoadedImage[] = [];
  const setNames = async (descriptor: Descriptor, names: string[]) => {
    const full = [...new Set(names.map((n) => parseReference(n).full))];
    if (opts.tag !== false) for (const n of full) await store.refs.set(n, descriptor);
    results.push({ descriptor, names: full });
  };

  const dockerManifest = c.files.get('manifest.json');
  const dockerEntries = dockerManifest ? parseDockerManifest(dockerManifest) : undefined;
  const indexJson = c.files.get('index.json');
  if (indexJson) {
    const idx = validateIndex(parseJSON(indexJson, 'index.json'), 'index.json');
    // Docker 25+ archives: names come from manifest.json RepoTags, matched by config digest.
    const tagsByConfig = new Map<string, string[]>();
    for (const e of dockerEntries ?? []) {
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(cleanName(e.Config));
      if (m) tagsByConfig.set(`sha256:${m[1]}`, e.RepoTags ?? []);
    }
    const byDigest = new Map<string, { d: Descriptor; names: string[] }>();
    for (const [i, d] of idx.manifests.entries()) {
      const ann = d.annotations ?? {};
      const slot = byDigest.get(d.digest) ?? { d: { mediaType: d.mediaType, digest: d.digest, size: d.size }, names: [] };
      byDigest.set(d.digest, slot);
      await loadAny(slot.d, `index.json entry ${i}`);
      const full = ann['io.containerd.image.name'];
      const refName = ann['org.opencontainers.image.ref.name'];
      if (full && tryParseReference(full)) slot.names.push(full);
      else if (refName && /[/:]/.test(refName) && tryParseReference(refName)) slot.names.push(refName);
      if (isManifestType(d.mediaType) && tagsByConfig.size) {
        const m = validateManifest(parseJSON(await store.blobs.read(d.digest), 'manifest'));
        for (const t of tagsByConfig.get(m.config.digest) ?? []) if (tryParseReference(t)) slot.names.push(t);
      }
    }
    for (const { d, names } of byDigest.values()) await setNames(d, names);
    return { images: results };
  }
  if (dockerEntries) {
    for (const [i, e] of dockerEntries.entries()) {
      const what = `manifest.json entry ${i}`;
      const cfgPath = resolvePath(c, cleanName(e.Config));
      let cfgBytes = c.files.get(cfgPath);
      if (!cfgBytes) {
        const dg = c.blobs.get(cfgPath);
        if (dg) cfgBytes = await store.blobs.read(dg);
      }
      if (!cfgBytes) throw new TsbError('TSB6122', `${what}: config ${e.Config} is not in the archive`);
      const config = validateConfig(parseJSON(cfgBytes, `${what} config`));
      if (config.rootfs.diff_ids.length !== e.Layers.length) throw new TsbError('TSB6106', `${what}: ${e.Layers.length} layers but ${config.rootfs.diff_ids.length} diff_ids in the config`);
      const layers: Descriptor[] = [];
      for (const [j, lp] of e.Layers.entries()) {
        const path = resolvePath(c, cleanName(lp));
        const dg = c.blobs.get(path);
        if (!dg) throw new TsbError('TSB6122', `${what}: layer ${lp} is not in the archive`, { hint: 'the archive is incomplete or truncated.' });
        const size = (await store.blobs.size(dg))!;
        const diffId = config.rootfs.diff_ids[j]!;
        await ensureDiffId(store, { mediaType: MediaType.DOCKER_LAYER, digest: dg, size }, diffId, `${what} layer ${j}`, opts.signal);
        layers.push(layerDescriptor(diffId, (await store.blobs.size(diffId))!));
      }
      // Keep the config bytes as they were (its digest is the image ID docker shows).
      const cfg = await store.blobs.put(cfgBytes);
      const manifest: Manifest = {
        schemaVersion: 2, mediaType: MediaType.DOCKER_MANIFEST,
        config: { mediaType: MediaType.DOCKER_CONFIG, digest: cfg.digest, size: cfg.size },
        layers: layers.map((l) => ({ ...l, mediaType: MediaType.DOCKER_LAYER })),
      };
      const mb = await store.blobs.put(Buffer.from(JSON.stringify(manifest)));
      await setNames({ mediaType: MediaType.DOCKER_MANIFEST, digest: mb.digest, size: mb.size }, (e.RepoTags ?? []).filter((t) => tryParseReference(t)));
    }
    return { images: results };
  }
  throw new TsbError('TSB6120', 'not an image archive: it has neither index.json nor manifest.json', {
    hint: 'give an OCI archive or layout, or a docker archive (docker save / tsbuild save).',
  });
}

interface DockerEntry { Config: string; RepoTags?: string[]; Layers: string[] }

function parseDockerManifest(b: Buffer): DockerEntry[] {
  const v = parseJSON(b, 'manifest.json');
  if (!Array.isArray(v)) throw new TsbError('TSB6101', 'malformed manifest.json: not a list');
  return v.map((e, i) => {
    const o = e as Record<string, unknown>;
    if (!o || typeof o.Config !== 'string' || !Array.isArray(o.Layers) || !o.Layers.every((l) => typeof l === 'string')) {
      throw new TsbError('TSB6101', `malformed manifest.json entry ${i}: needs Config and Layers`);
    }
    if (o.RepoTags !== undefined && o.RepoTags !== null && (!Array.isArray(o.RepoTags) || !o.RepoTags.every((t) => typeof t === 'string'))) {
      throw new TsbError('TSB6101', `malformed manifest.json entry ${i}: RepoTags is not a list of strings`);
    }
    return { Config: o.Config, Layers: o.Layers as string[], RepoTags: (o.RepoTags as string[] | null) ?? [] };
  });
}

/** Write `data` to `dest` atomically (temp + rename in the same directory). */
export async function atomicFileFrom(dest: string, write: (w: NodeJS.WritableStream) => Promise<void>): Promise<void> {
  const tmp = join(dirname(dest), `.${posix.basename(dest)}.tmp-${process.pid}-${Date.now()}`);
  try {
    await mkdir(dirname(dest), { recursive: true });
    const w = createWriteStream(tmp);
    const opened = new Promise<void>((res, rej) => { w.once('open', () => res()); w.once('error', rej); });
    await opened;
    await write(w);
    await new Promise<void>((res, rej) => w.close((e) => (e ? rej(e) : res())));
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    if (isTsbError(e)) throw e;
    throw new TsbError('TSB6123', `could not write ${dest}`, { cause: e, hint: 'check that the directory exists and is writable.' });
  }
}

