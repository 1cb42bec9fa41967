/**
 * The layer store's public contract. store/ imports nothing from src/; src/ uses the store only
 * through these interfaces (implementation: store/store.ts, `openStore`).
 *
 * On disk (root = --store / TSBUILD_STORE / $XDG_DATA_HOME/tsbuild / ~/.local/share/tsbuild):
 *   oci-layout, index.json, blobs/sha256/<hex>   an OCI image layout (skopeo/umoci read it directly);
 *                                                index.json entries carry org.opencontainers.image.ref.name
 *   tsbuild/v1/…                                  tsbuild's own versioned records (cache index, refs
 *                                                metadata, compressed-blob map, leases, locks)
 *   snapshots/v1/<id>/                            unpacked layer trees used as overlay lowerdirs
 *   tsbuild/{inputs,statcache,memo,runcache}/v1/  the engine's derived areas (store/derived.ts: who
 *                                                writes them, and when gc/prune remove what)
 *   tmp/                                          temp files and dirs; swept after a crash
 * (The implementation owns the exact sub-layout; every format carries a version.)
 *
 * Guarantees (see issue 3): writes are temp+hash+fsync+rename, "already exists" is success; reads
 * verify digests; concurrent processes are safe; a SIGKILL at any instant leaves a store that
 * `verify` finds consistent. Errors are TsbError TSB5xxx.
 */
import type { Readable } from 'node:stream';

/** `sha256:<64 hex>` */
export type Digest = string;

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  urls?: string[];
  artifactType?: string;
}

export type BlobSource = Buffer | Uint8Array | string | Readable | AsyncIterable<Uint8Array>;

export interface PutOptions {
  /** When given, the written bytes must hash to this digest (and size), else TSB5xxx and nothing is kept. */
  expectDigest?: Digest;
  expectSize?: number;
}

export interface BlobStore {
  /** Stream into tmp/ while hashing, fsync, rename into blobs/. Already present → success. */
  put(data: BlobSource, opts?: PutOptions): Promise<{ digest: Digest; size: number }>;
  has(digest: Digest): Promise<boolean>;
  /** Size, or undefined when absent. */
  size(digest: Digest): Promise<number | undefined>;
  /** Whole blob, digest verified (use for manifests/configs: small). */
  read(digest: Digest): Promise<Buffer>;
  /** Parsed JSON blob, digest verified, cached (lru) by digest. */
  readJSON<T = unknown>(digest: Digest): Promise<T>;
  /** Streaming read; the stream errors (TSB5xxx naming the blob) at the end if the digest does not match. */
  open(digest: Digest): Readable;
  /** Path of the blob file, for consumers that verify themselves or need random access. Do not write. */
  path(digest: Digest): string;
}

export interface RefEntry {
  /** Full name as the user tagged it, normalized by src/ (e.g. `docker.io/library/app:1.2`, `app:1.2`). */
  name: string;
  /** Manifest (or index) descriptor; stored as an index.json entry. */
  descriptor: Descriptor;
  /**
   * Added by the store: what `images` shows, recorded at set() time so a listing needs only
   * index.json. config = the image ID docker shows (config digest; the first platform's for an
   * index), created = the config's `created`, size = sum of (uncompressed) layer sizes present.
   */
  summary?: ImageSummary;
}

export interface ImageSummary { config?: Digest; created?: string; size: number }

export interface RefStore {
  /** Atomic under the store lock: concurrent tags of different names are all kept. */
  set(name: string, descriptor: Descriptor): Promise<void>;
  get(name: string): Promise<Descriptor | undefined>;
  delete(name: string): Promise<boolean>;
  list(): Promise<RefEntry[]>;
  /** Many names in one index.json write (archives with many tags); all-or-nothing like set(). */
  setMany(entries: readonly RefEntry[]): Promise<void>;
  /**
   * An opaque stamp of index.json (inode, size, mtime): equal stamps mean no name changed in
   * between (index.json is only ever replaced by rename). 'none' when there is no index.json.
   */
  stamp(): Promise<string>;
}

/** One record per step cache key. Readable on its own: a later miss is explained from it. */
export interface CacheRecord {
  /** Recipe version + hash, e.g. `v1:sha256:…`. */
  key: string;
  /** Parent step's key (chain), or undefined for a stage's base. */
  parent?: string;
  /** Resulting layer (diff_id = digest of the uncompressed tar), absent for config-only steps. */
  layer?: Descriptor;
  /** Image config after the step (digest of a config blob in the store). */
  config?: Digest;
  /** What a person needs to read it. */
  instruction: string;
  source?: { file: string; line: number };
  /** The key's inputs, readable (name → value or digest); compared to explain a miss. */
  inputs: Record<string, string>;
  /** Anything the planner needs back on a hit (e.g. history entry, env changes). */
  meta?: Record<string, unknown>;
  created: string; // RFC 3339
  lastUsed: string;
  hits: number;
}

export interface CacheIndex {
  get(key: string): Promise<CacheRecord | undefined>;
  /** Insert or replace; cross-process safe. */
  put(record: Omit<CacheRecord, 'created' | 'lastUsed' | 'hits'> & Partial<Pick<CacheRecord, 'created'>>): Promise<CacheRecord>;
  /** Many records in one locked append (imports); same checks as put(). Returns how many. */
  putMany(records: readonly (Omit<CacheRecord, 'created' | 'lastUsed' | 'hits'> & Partial<Pick<CacheRecord, 'created'>>)[]): Promise<number>;
  /** Bump lastUsed and hits. */
  touch(key: string): Promise<void>;
  /** touch() of many keys in one append (cheaper than touch: no lock, no read); hits of keys without a record are ignored. */
  touchMany(keys: readonly string[]): Promise<void>;
  /** Where the index is now, as an opaque string for changedSince(). */
  position(): Promise<string>;
  /**
   * Whether any of `keys` may have been put again or removed since position() gave `pos` (hits do
   * not count). True whenever that cannot be told cheaply (index rewritten, more than `maxTail`
   * bytes of changes since): callers treat true as "redo the work", so it errs that way.
   */
  changedSince(pos: string, keys: ReadonlySet<string>, maxTail?: number): Promise<boolean>;
  list(): Promise<CacheRecord[]>;
  delete(keys: readonly string[]): Promise<number>;
  /**
   * Records with the same source file and line (and the same build "scope", e.g. tag), newest
   * first: used to explain a miss by diffing `inputs`.
   */
  findBySource(file: string, line: number, scope?: string): Promise<CacheRecord[]>;
}

/**
 * A lease keeps blobs and snapshots alive while a build runs: gc never deletes anything a live
 * lease names (or that a live lease's process is still writing). Released on dispose, or found
 * dead (owner PID gone) by the next gc.
 */
export interface Lease {
  readonly id: string;
  add(...digestsOrSnapshotIds: string[]): Promise<void>;
  release(): Promise<void>;
}

export interface Snapshots {
  /**
   * The unpacked tree for an id (by convention the layer's chain id), creating it when absent by
   * calling `fill(tmpDir)` into a temp dir that is then renamed into place (so a half-filled tree is
   * never visible). Concurrent callers for the same id wait for one fill.
   */
  ensure(id: string, fill: (tmpDir: string) => Promise<void>): Promise<string>;
  has(id: string): Promise<boolean>;
  path(id: string): string;
  /** A fresh, empty temp directory inside the store's filesystem (same device as snapshots). */
  tempDir(prefix: string): Promise<string>;
}

export interface GcResult {
  removedBlobs: number;
  removedSnapshots: number;
  /** Bytes of removed blobs and derived-area files (snapshot trees are not counted). */
  freedBytes: number;
  /** Per derived area (store/derived.ts): what was removed and kept. */
  areas?: Record<'inputs' | 'statcache' | 'memo' | 'runcache', { removed: number; freedBytes: number; kept: number }>;
  /** True when run caches were due but kept because a build was running (or held their lock). */
  runCachesBusy?: boolean;
}

export interface GcOptions {
  dryRun?: boolean;
  /**
   * Run caches (RUN --mount=type=cache dirs): 'keep' (default: `store gc`), or remove those
   * unused for `unusedForMs` (0 = all; `cache prune` passes 48 h or its filter, --all passes 0).
   * Never removed while another process holds a live lease or the dir's lock (store/derived.ts).
   */
  runCaches?: 'keep' | { unusedForMs: number };
}

export interface VerifyProblem { kind: string; subject: string; message: string; repaired?: boolean }

export interface Store {
  readonly root: string;
  readonly blobs: BlobStore;
  readonly refs: RefStore;
  readonly cache: CacheIndex;
  readonly snapshots: Snapshots;
  /** diff_id → compressed forms already made (gzip/zstd), so a layer is never compressed twice. */
  compressed: {
    get(diffId: Digest, mediaType: string): Promise<Descriptor | undefined>;
    set(diffId: Digest, compressed: Descriptor): Promise<void>;
  };
  lease(label: string): Promise<Lease>;
  /**
   * Mark from refs, cache records, compressed forms of live layers and live leases; sweep the rest.
   * Blobs/snapshots written or touched after the gc started, or after the oldest live lease was
   * taken, are kept too: so a build must take its lease BEFORE its first put (then everything it
   * writes is safe until it tags or caches it, even before it calls lease.add). The store also
   * takes an implicit lease per process before that process's first write (put, snapshot, temp
   * dir), released by close(): so even a caller that takes no lease is covered from its first write.
   * Also cleans the derived areas the engine writes (inputs, statcache, snapshots, and run caches
   * when opts.runCaches asks): their keep rules are the contract in store/derived.ts.
   */
  gc(opts?: GcOptions): Promise<GcResult>;
  /** Checks every blob's digest, every ref's and cache record's closure, the layout files. */
  verify(opts?: { repair?: boolean }): Promise<VerifyProblem[]>;
  /** Remove tmp/ entries (and stale locks) left by processes that are gone; returns how many. */
  sweepTmp(): Promise<number>;
  close(): Promise<void>;
}
