/**
 * openStore(root): the layer store (contract: types.ts). On disk, version 1:
 *
 *   oci-layout                         {"imageLayoutVersion":"1.0.0"}
 *   index.json                         OCI image index; one entry per name (org.opencontainers.image.ref.name)
 *   blobs/sha256/<hex>                 every blob: uncompressed layers (digest = diff_id), configs,
 *                                      manifests, compressed forms made for export/push
 *   tsbuild/v1/store.json              {"version":1}: the format of everything under tsbuild/v1
 *   tsbuild/v1/cache/records.log       build cache index (append-only log; cache.ts)
 *   tsbuild/v1/compressed/<hex>.json   diff_id → compressed descriptors already made
 *   tsbuild/v1/leases/<id>.json        live builds' leases (owner pid + start time, items)
 *   tsbuild/v1/locks/*.lock            cross-process locks (symlinks naming their owner; lock.ts)
 *   snapshots/v1/<id>/                 unpacked layer trees (overlay lowerdirs); `:` in ids → `-`
 *   tsbuild/inputs/v1, statcache/v1, memo/v1, runcache/v1   written by the build engine; derived.ts says
 *                                      how gc keeps and removes them
 *   tmp/                               temp files/dirs named <prefix>.<pid>.<start>.<rand>;
 *                                      anything whose owner is gone is swept
 *
 * Everything the store writes goes through tmp/ and a rename, so a SIGKILL at any instant leaves
 * only tmp/ leftovers (swept by sweepTmp: at open, by gc and by verify) and stale locks (stolen
 * from dead owners).
 *
 * Known gaps:
 * - Owners are PIDs (+ start time) of this host and PID namespace: tsbuild processes sharing one
 *   store from different PID namespaces (containers) or hosts (NFS) would see each other as dead
 *   and steal locks / sweep temp files. One host, one PID namespace per store.
 * - Snapshot trees are renamed into place but their files are not fsynced: they survive a killed
 *   process, not a power cut (they are caches: `tsbuild store gc` then re-unpacking rebuilds them).
 * - A gc killed between moving an unreferenced-but-recently-used blob to tmp/ and moving it back
 *   loses that blob; the build using it then fails to tag with TSB5008 (never a dangling tag).
 * - Only sha256 digests are stored (TSB5009 for others).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, unlink, utimes } from './afs.js';
import { join } from 'node:path';
import { TsbError, errnoCode } from './errors.js';
import { FsBlobStore, hexOf } from './blobs.js';
import { FsCacheIndex } from './cache.js';
import { E, atomicWrite, fsyncDir, ioError, tempName, tempOwner, uniqueHex } from './fsutil.js';
import { withLock } from './lock.js';
import { ownerAlive, selfOwner } from './owner.js';
import { FsRefStore } from './refs.js';
import type { Descriptor, Digest, GcOptions, GcResult, Lease, Snapshots, Store, VerifyProblem } from './types.js';

/** The temp name gc gives a blob it is about to delete (see gc.ts): `gc-blob-HEX.PID.START.RAND`. */
export const GC_BLOB_TRASH = /^gc-blob-([0-9a-f]{64})\./;

export const STORE_VERSION = 1;

export interface OpenStoreOptions {
  /** Create the layout when the directory is empty or missing (default true). */
  create?: boolean;
}

export interface LeaseFile {
  v: 1;
  id: string;
  label: string;
  pid: number;
  start: string;
  /** ms since the epoch; gc keeps whatever was written after the oldest live lease's created. */
  created: number;
  items: string[];
}

const SNAP_ID = /^[A-Za-z0-9][A-Za-z0-9:._-]{0,199}$/;

export class FsStore implements Store {
  readonly blobs: FsBlobStore;
  readonly refs: FsRefStore;
  readonly cache: FsCacheIndex;
  readonly snapshots: Snapshots;
  readonly tmpDir: string;
  readonly metaDir: string;
  readonly lockDir: string;
  readonly leaseDir: string;
  readonly compressedDir: string;
  readonly snapDir: string;
  private readonly myLeases = new Set<FsLease>();

  constructor(readonly root: string) {
    this.tmpDir = join(root, 'tmp');
    this.metaDir = join(root, 'tsbuild', `v${STORE_VERSION}`);
    this.lockDir = join(this.metaDir, 'locks');
    this.leaseDir = join(this.metaDir, 'leases');
    this.compressedDir = join(this.metaDir, 'compressed');
    this.snapDir = join(root, 'snapshots', `v${STORE_VERSION}`);
    this.blobs = new FsBlobStore(root, this.tmpDir);
    this.refs = new FsRefStore(root, this.tmpDir, this.lockDir, this.blobs);
    this.cache = new FsCacheIndex(join(this.metaDir, 'cache'), this.tmpDir, this.lockDir, this.blobs);
    this.snapshots = new FsSnapshots(this);
    this.blobs.beforeWrite = () => this.processLease();
  }

  private implicit: Promise<unknown> | undefined;
  /**
   * The implicit lease: taken once per process, before its first write (blob put, snapshot, temp
   * dir), released by close() or found dead by gc. With it, gc's time rule keeps everything a
   * running process wrote or touched even when the caller never took a lease of its own.
   */
  processLease(): Promise<void> {
    this.implicit ??= this.lease(`process ${process.pid} ${process.argv.slice(1, 4).join(' ')}`.slice(0, 200)).catch((e: unknown) => {
      this.implicit = undefined;
      throw e;
    });
    return this.implicit.then(() => undefined);
  }

  compressed = {
    get: async (diffId: Digest, mediaType: string): Promise<Descriptor | undefined> => {
      for (const d of await this.compressedForms(diffId)) {
        if (d.mediaType === mediaType && (await this.blobs.size(d.digest)) === d.size) return d;
      }
      return undefined;
    },
    set: async (diffId: Digest, compressed: Descriptor): Promise<void> => {
      const file = join(this.compressedDir, `${hexOf(diffId)}.json`);
      hexOf(compressed.digest);
      if ((await this.blobs.size(compressed.digest)) === undefined) {
        throw new TsbError(E.INCOMPLETE, `cannot record compressed form ${compressed.digest} of ${diffId}: that blob is not in the store`, {
          hint: 'put the compressed blob first.',
        });
      }
      await withLock(join(this.lockDir, 'compressed.lock'), async () => {
        const forms = (await this.compressedForms(diffId)).filter((d) => d.mediaType !== compressed.mediaType);
        forms.push({ mediaType: compressed.mediaType, digest: compressed.digest, size: compressed.size });
        await atomicWrite(file, JSON.stringify({ v: 1, diffId, forms }) + '\n', this.tmpDir, 'recording a compressed layer');
      });
    },
  };

  /** Compressed descriptors recorded for a diff_id (empty when none or unreadable). */
  async compressedForms(diffId: Digest): Promise<Descriptor[]> {
    try {
      const j = JSON.parse(await readFile(join(this.compressedDir, `${hexOf(diffId)}.json`), 'utf8')) as { v: number; forms: Descriptor[] };
      return j.v === 1 && Array.isArray(j.forms) ? j.forms : [];
    } catch (e) {
      if (e instanceof TsbError) throw e;
      return [];
    }
  }

  // Synchronous file calls at open (why): every command opens the store, and on an existing store
  // these are a dozen tiny metadata calls whose thread-pool round trips cost more than the calls.
  async init(create: boolean): Promise<void> {
    const layout = join(this.root, 'oci-layout');
    let have: string | undefined;
    try { have = readFileSync(layout, 'utf8'); } catch (e) {
      if (errnoCode(e) !== 'ENOENT' && errnoCode(e) !== 'ENOTDIR') throw ioError(e, 'opening the store', layout);
    }
    if (have !== undefined) {
      let v: unknown;
      try { v = (JSON.parse(have) as { imageLayoutVersion?: unknown }).imageLayoutVersion; } catch { v = undefined; }
      if (typeof v !== 'string' || !v.startsWith('1.')) {
        throw new TsbError(E.BAD_STORE, `${this.root} has an oci-layout file this tsbuild cannot read (imageLayoutVersion ${JSON.stringify(v)})`, {
          hint: 'use --store DIR to point at another directory.',
        });
      }
    } else if (!create) {
      throw new TsbError(E.BAD_STORE, `${this.root} is not a tsbuild store`, { hint: 'check --store / TSBUILD_STORE.' });
    }
    try {
      for (const d of [this.tmpDir, join(this.root, 'blobs', 'sha256'), this.lockDir, this.leaseDir, this.compressedDir, join(this.metaDir, 'cache'), this.snapDir]) {
        mkdirSync(d, { recursive: true });
      }
    } catch (e) {
      throw ioError(e, 'creating the store', this.root);
    }
    const marker = join(this.metaDir, 'store.json');
    let m: string | undefined;
    try { m = readFileSync(marker, 'utf8'); } catch { m = undefined; }
    if (m === undefined) await atomicWrite(marker, JSON.stringify({ version: STORE_VERSION }) + '\n', this.tmpDir, 'creating the store');
    if (have === undefined) await atomicWrite(layout, JSON.stringify({ imageLayoutVersion: '1.0.0' }) + '\n', this.tmpDir, 'creating the store');
    if (!existsSync(join(this.root, 'index.json'))) {
      await this.refs.update(async () => {
        try { await stat(join(this.root, 'index.json')); } catch {
          await this.refs.writeIndex({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] });
        }
      });
    }
  }

  async lease(label: string): Promise<Lease> {
    const o = selfOwner();
    const l = new FsLease(this, {
      v: 1, id: `${Date.now().toString(36)}-${uniqueHex(6)}`, label, pid: o.pid, start: o.start, created: Date.now(), items: [],
    });
    await l.write();
    this.myLeases.add(l);
    return l;
  }

  forgetLease(l: FsLease): void { this.myLeases.delete(l); }

  /** Live leases; files of dead owners are removed. */
  async liveLeases(): Promise<LeaseFile[]> {
    const out: LeaseFile[] = [];
    let names: string[];
    try { names = await readdir(this.leaseDir); } catch { return out; }
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      const p = join(this.leaseDir, n);
      let l: LeaseFile;
      try { l = JSON.parse(await readFile(p, 'utf8')) as LeaseFile; } catch (e) {
        if (errnoCode(e) === 'ENOENT') continue;
        // Unreadable lease (cannot happen through atomicWrite; external damage): drop it.
        await unlink(p).catch(() => undefined);
        continue;
      }
      if (ownerAlive({ pid: l.pid, start: l.start })) out.push(l);
      else await unlink(p).catch(() => undefined);
    }
    return out;
  }

  /** Temp entries of dead owners are removed; blobs a killed gc had moved aside are put back. */
  async sweepTmp(): Promise<number> {
    let n = 0;
    const sweepDir = async (dir: string): Promise<void> => {
      let names: string[];
      try { names = readdirSync(dir); } catch { return; }
      for (const name of names) {
        const o = tempOwner(name);
        // Entries without an owner tag are not ours to judge unless clearly stale (> 1 day).
        if (o ? ownerAlive(o) : await stat(join(dir, name)).then((s) => Date.now() - s.mtimeMs < 86_400_000, () => true)) continue;
        // A blob a killed gc had moved aside (gc.ts): put back, whole (it was renamed, never
        // rewritten); the next gc judges it again by its refs and mtime.
        const g = GC_BLOB_TRASH.exec(name);
        if (g && await rename(join(dir, name), join(this.root, 'blobs', 'sha256', g[1]!)).then(() => true, () => false)) { n++; continue; }
        await rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
        n++;
      }
    };
    await sweepDir(this.tmpDir);
    return n;
  }

  // gc and verify (and the derived-data sweeps) load on first use: most commands never run them.
  async gc(opts: GcOptions = {}): Promise<GcResult> {
    const { runGc } = await import('./gc.js');
    return runGc(this, opts);
  }

  async verify(opts: { repair?: boolean } = {}): Promise<VerifyProblem[]> {
    const { runVerify } = await import('./verify.js');
    return runVerify(this, opts);
  }

  async close(): Promise<void> {
    for (const l of [...this.myLeases]) await l.release();
    this.implicit = undefined;
  }
}

class FsLease implements Lease {
  private chain: Promise<void> = Promise.resolve();
  private released = false;
  constructor(private readonly store: FsStore, private readonly rec: LeaseFile) {}
  get id(): string { return this.rec.id; }
  get file(): string { return join(this.store.leaseDir, `${this.rec.id}.json`); }

  async write(): Promise<void> {
    // Not durable (no fsync): a lease only matters while its process lives (see atomicWrite).
    await atomicWrite(this.file, JSON.stringify(this.rec) + '\n', this.store.tmpDir, 'writing a lease', { durable: false });
  }

  add(...items: string[]): Promise<void> {
    const next = this.chain.then(async () => {
      if (this.released) throw new TsbError(E.IO, `lease ${this.rec.id} was already released`, { hint: 'this is a bug in the caller.' });
      const have = new Set(this.rec.items);
      const fresh = items.filter((i) => !have.has(i));
      if (!fresh.length) return;
      this.rec.items.push(...fresh);
      await this.write();
    });
    this.chain = next.catch(() => undefined);
    return next;
  }

  async release(): Promise<void> {
    await this.chain;
    if (this.released) return;
    this.released = true;
    this.store.forgetLease(this);
    await unlink(this.file).catch((e: unknown) => { if (errnoCode(e) !== 'ENOENT') throw ioError(e, 'releasing a lease', this.file); });
  }
}

class FsSnapshots implements Snapshots {
  private readonly inflight = new Map<string, Promise<string>>();
  constructor(private readonly store: FsStore) {}

  path(id: string): string {
    if (!SNAP_ID.test(id)) {
      throw new TsbError(E.BAD_DIGEST, `"${id}" is not a valid snapshot id`, { hint: 'snapshot ids are digests or simple names (letters, digits, ":._-").' });
    }
    return join(this.store.snapDir, id.replaceAll(':', '-'));
  }

  async has(id: string): Promise<boolean> {
    try { return (await stat(this.path(id))).isDirectory(); } catch { return false; }
  }

  async ensure(id: string, fill: (tmpDir: string) => Promise<void>): Promise<string> {
    const p = this.path(id);
    const existing = this.inflight.get(p);
    if (existing) return existing;
    await this.store.processLease();
    const work = (async () => {
      if (await this.touch(p)) return p;
      return withLock(join(this.store.lockDir, `snap-${id.replaceAll(':', '-')}.lock`), async () => {
        if (await this.touch(p)) return p; // another process filled it while we waited
        const tmp = await this.tempDir('snap');
        try {
          await fill(tmp);
          await rename(tmp, p);
          await fsyncDir(this.store.snapDir);
        } catch (e) {
          await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
          throw e instanceof TsbError ? e : ioError(e, `filling snapshot ${id}`, tmp);
        }
        return p;
      });
    })();
    this.inflight.set(p, work);
    try { return await work; } finally { this.inflight.delete(p); }
  }

  /** Bump mtime (gc keeps what was used after the oldest live lease); false when absent. */
  private async touch(p: string): Promise<boolean> {
    try { const now = new Date(); await utimes(p, now, now); return true; } catch (e) {
      if (errnoCode(e) === 'ENOENT') return false;
      throw ioError(e, 'using a snapshot', p);
    }
  }

  async tempDir(prefix: string): Promise<string> {
    await this.store.processLease();
    const safe = prefix.replace(/[^A-Za-z0-9_-]/g, '_') || 'dir';
    const d = tempName(this.store.tmpDir, safe);
    try { await mkdir(d, { mode: 0o755 }); } catch (e) { throw ioError(e, 'creating a temp directory', d); }
    return d;
  }
}

/** Open (creating if needed) the store at `root`. */
export async function openStore(root: string, opts: OpenStoreOptions = {}): Promise<FsStore> {
  const s = new FsStore(root);
  await s.init(opts.create !== false);
  await s.sweepTmp().catch(() => 0);
  return s;
}
