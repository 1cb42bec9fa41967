/**
 * Garbage collection: mark, then sweep, holding the gc, index and cache locks (in that order;
 * everyone else takes at most one of index/cache, so there is no cycle). Holding them means no tag
 * and no cache record can start pointing at a blob between our mark and our sweep.
 *
 * Roots: every ref's image (manifest/index, configs, layers); every cache record's layer and config;
 * the compressed forms of every live layer (so the same layer is not compressed twice); every item
 * of a live lease (a lease whose owner process is gone is deleted first). Snapshots are kept when
 * their id is a live layer's diff_id, a chain id of a live config's rootfs, or a lease item.
 *
 * What a running build has written but not yet tagged, cached or added to its lease is kept by
 * time: anything written or touched (put of an existing blob bumps its mtime, as does
 * snapshots.ensure) after min(gc start, oldest live lease's creation) − 2 s is not swept, nor even
 * moved. An older blob is swept by renaming it into tmp/ first and re-checking its mtime there: a
 * put that bumped it just before the rename is seen (it is renamed back), one just after finds the
 * blob gone and writes it again. A gc killed between the two renames leaves the blob in tmp/ under
 * a name that says what it is; the next sweepTmp puts it back. So gc never deletes what a running
 * build uses, provided the build takes its lease before its first put.
 *
 * Derived areas (derived.ts): inputs files are swept under the cache lock with the blobs (kept
 * while a live record names them); the stat cache and run caches after the locks are released
 * (they do not depend on the mark, and removing a big run cache must not stall builds' writes).
 */
import { readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from './errors.js';
import { tempName } from './fsutil.js';
import { withLock } from './lock.js';
import { imageClosure } from './refs.js';
import type { FsStore, LeaseFile } from './store.js';
import type { Digest, GcOptions, GcResult } from './types.js';
import { sweepBounded, sweepInputs, sweepRunCaches } from './derived.js';
import { chainIds } from './chain.js';

export { chainIds };

const SLACK_MS = 2000;

export async function runGc(s: FsStore, opts: GcOptions): Promise<GcResult> {
  const started = Date.now();
  const dry = opts.dryRun === true;
  await s.sweepTmp();
  // Mark once without the index/cache locks (the expensive part: reading every manifest and
  // config), then again under them, reusing what was computed: the second pass only reads what was
  // tagged or cached meanwhile, so writers wait for the locks only briefly.
  const closures = new Map<Digest, Awaited<ReturnType<typeof imageClosure>>>();
  const chains = new Map<Digest, string[]>();
  const inputsKeep = new Set<string>();
  const mark = async (live: Set<Digest>, snapKeep: Set<string>, leases: LeaseFile[]): Promise<void> => {
    const configs = new Set<Digest>();
    for (const m of (await s.refs.readIndex()).manifests) {
      let c = closures.get(m.digest);
      if (!c) { c = await imageClosure(s.blobs, m); closures.set(m.digest, c); }
      for (const d of c.digests) live.add(d);
      for (const d of c.configs) configs.add(d);
    }
    for (const r of await s.cache.list()) {
      if (r.layer) { live.add(r.layer.digest); snapKeep.add(r.layer.digest); }
      if (r.config) { live.add(r.config); configs.add(r.config); }
      for (const k in r.inputs) { const v = r.inputs[k]; if (typeof v === 'string' && v.startsWith('sha256:')) inputsKeep.add(v); }
    }
    for (const l of leases) for (const i of l.items) { live.add(i); snapKeep.add(i); }
    for (const cfg of configs) {
      let ids = chains.get(cfg);
      if (!ids) {
        ids = [];
        try {
          const j = await s.blobs.readJSON<{ rootfs?: { diff_ids?: string[] } }>(cfg);
          const diffs = j.rootfs?.diff_ids ?? [];
          ids = [...diffs, ...chainIds(diffs)];
        } catch { /* corrupt or missing config: verify reports it */ }
        chains.set(cfg, ids);
      }
      for (const i of ids) snapKeep.add(i);
    }
  };
  await mark(new Set(), new Set(), await s.liveLeases());

  const res = await withLock(join(s.lockDir, 'gc.lock'), () => withLock(s.refs.lockPath, () => s.cache.holding(async () => {
    const leases = await s.liveLeases();
    const cutoff = Math.min(started, ...leases.map((l) => l.created)) - SLACK_MS;
    const live = new Set<Digest>();
    const snapKeep = new Set<string>();
    inputsKeep.clear();
    await mark(live, snapKeep, leases);

    // Compressed forms of live layers are live; records of dead layers go.
    let names: string[] = [];
    try { names = await readdir(s.compressedDir); } catch { /* none */ }
    for (const n of names) {
      const m = /^([a-f0-9]{64})\.json$/.exec(n);
      if (!m) continue;
      const diffId = `sha256:${m[1]}`;
      if (live.has(diffId)) {
        for (const f of await s.compressedForms(diffId)) live.add(f.digest);
      } else if (!dry) {
        const st = await stat(join(s.compressedDir, n)).catch(() => undefined);
        if (st && st.mtimeMs < cutoff) await unlink(join(s.compressedDir, n)).catch(() => undefined);
        else for (const f of await s.compressedForms(diffId)) live.add(f.digest);
      }
    }

    const res: GcResult = { removedBlobs: 0, removedSnapshots: 0, freedBytes: 0 };
    const blobDir = join(s.root, 'blobs', 'sha256');
    let blobs: string[] = [];
    try { blobs = await readdir(blobDir); } catch { /* empty store */ }
    for (const hex of blobs) {
      const digest = `sha256:${hex}`;
      if (live.has(digest)) continue;
      const p = join(blobDir, hex);
      if (dry) {
        const st = await stat(p).catch(() => undefined);
        if (st && st.mtimeMs < cutoff) { res.removedBlobs++; res.freedBytes += st.size; }
        continue;
      }
      // Recent blobs are never moved (a build may be about to tag or cache them); an old one is moved
      // aside under a name that says what it is, so a gc killed before deleting it or putting it
      // back loses nothing: sweepTmp puts it back.
      const st0 = await stat(p).catch(() => undefined);
      if (!st0 || st0.mtimeMs >= cutoff) continue;
      const trash = tempName(s.tmpDir, `gc-blob-${hex}`);
      try { await rename(p, trash); } catch (e) { if (errnoCode(e) === 'ENOENT') continue; throw e; }
      const st = await stat(trash);
      if (st.mtimeMs >= cutoff) { await rename(trash, p); continue; } // in use by a running build
      await unlink(trash);
      s.blobs.forget(digest);
      res.removedBlobs++;
      res.freedBytes += st.size;
    }

    let snaps: string[] = [];
    try { snaps = await readdir(s.snapDir); } catch { /* none */ }
    const keepNames = new Set([...snapKeep].map((i) => i.replaceAll(':', '-')));
    for (const n of snaps) {
      if (keepNames.has(n)) continue;
      const p = join(s.snapDir, n);
      const st = await stat(p).catch(() => undefined);
      if (!st || st.mtimeMs >= cutoff) continue;
      res.removedSnapshots++;
      if (dry) continue;
      const trash = tempName(s.tmpDir, 'gcsnap');
      try { await rename(p, trash); } catch { res.removedSnapshots--; continue; }
      await rm(trash, { recursive: true, force: true });
    }
    const inputs = await sweepInputs(s, inputsKeep, cutoff, dry);
    res.freedBytes += inputs.freedBytes;
    return { ...res, cutoff, inputs };
  })));
  const { cutoff, inputs, ...out } = res;
  const statcache = await sweepBounded(s, 'statcache', cutoff, dry);
  const memo = await sweepBounded(s, 'memo', cutoff, dry);
  const runcache = await sweepRunCaches(s, opts.runCaches ?? 'keep', dry);
  out.freedBytes += statcache.freedBytes + memo.freedBytes + runcache.freedBytes;
  out.areas = { inputs, statcache, memo, runcache: { removed: runcache.removed, freedBytes: runcache.freedBytes, kept: runcache.kept } };
  if (runcache.busy) out.runCachesBusy = true;
  return out;
}

/** Read a JSON file, undefined when missing or unreadable. */
export async function readJsonFile<T>(p: string): Promise<T | undefined> {
  try { return JSON.parse(await readFile(p, 'utf8')) as T; } catch { return undefined; }
}
