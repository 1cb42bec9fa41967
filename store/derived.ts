/**
 * Derived areas: directories under the store that the build engine (src/) writes and the store
 * cleans. store/ imports nothing from src/, so this file IS the contract: src/ writes where and how
 * it says, and `store gc` / `cache prune` keep or remove by the rules below.
 *
 *   area        path (under the store root)   entries                     kept while / removed when
 *   inputs      tsbuild/inputs/v1             <64 hex>.json               a live cache record names sha256:<hex> as one of
 *                                                                         its `inputs` values (the engine uses key `files`);
 *                                                                         otherwise swept by every gc
 *   statcache   tsbuild/statcache/v1          <64 hex>.json (one per      bounded: swept by every gc when unused (max of
 *                                             build context)              atime and mtime) for STATCACHE_MAX_AGE_MS, then the
 *                                                                         least recently used go until the area fits
 *                                                                         STATCACHE_MAX_BYTES
 *   memo        tsbuild/memo/v1               <64 hex>.json (one per      as statcache (same limits, its own budget)
 *                                             build request: src/exec/
 *                                             memo.ts)
 *   runcache    tsbuild/runcache/v1           <name>/ (RUN --mount=       kept by `store gc`; `cache prune` removes those unused
 *                                             type=cache dirs),           for RUNCACHE_UNUSED_MS (or the --filter until
 *                                             private-XXXXXX scratch dirs duration), `cache prune --all` removes all (subject to
 *                                                                         --filter until), as `docker builder prune` treats
 *                                                                         cache mounts (BuildKit's default policy: 48 h)
 *   snapshots   snapshots/v1                  <chain id>/ (`:` → `-`)     gc.ts: kept while its id is a live layer's diff_id,
 *                                                                         a chain id of a live config's rootfs, or a lease
 *                                                                         item; so a snapshot goes with its layer's blob
 *
 * Writers' side of the contract (what src/ must do, and does):
 * - Every file is written temp + rename; a temp file is named `<final>.<pid>.<anything>.tmp` in the
 *   same directory, so a leftover of a dead process is recognized and swept (any age; a live pid's
 *   temp is kept unless older than a day, in case the pid was recycled).
 * - A build takes a store lease (store.lease) before it writes anything; everything in these areas
 *   written (mtime) after the oldest live lease was taken, minus 2 s, is kept (the gc time rule).
 * - A run cache dir is in use while its RUN runs: sharing=locked holds `tsbuild/v1/locks/
 *   runcache-<name>.lock`; the other modes take no lock. So a run cache dir is removed only when no
 *   other process holds a live lease (no build is running) and its lock is free; it is renamed into
 *   tmp/ first and removed only if still no lease appeared (a build that mounted it before the
 *   rename holds a lease taken before the mount, so the re-check sees it and the dir is put back).
 *
 * Known gaps:
 * - "Unused" for a run cache is max(atime, mtime) of its top directory and of its direct entries:
 *   relatime refreshes atime at most daily, and a noatime mount never does, so a cache that is only
 *   read can look older than it is (it is then removed by `cache prune` and refilled by the next
 *   RUN: a slower build, never a wrong one).
 * - An inputs file that a build finds already present is not touched; if a gc sweeps it between
 *   that build's check and its cache record, `cache why` loses that step's per-file detail (the
 *   cache key and the build are unaffected).
 */
import { lstat, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode } from './errors.js';
import { tempName } from './fsutil.js';
import { tryLock } from './lock.js';
import { ownerAlive } from './owner.js';

export const DERIVED_VERSION = 1;

export const DERIVED_AREAS = {
  inputs: `tsbuild/inputs/v${DERIVED_VERSION}`,
  statcache: `tsbuild/statcache/v${DERIVED_VERSION}`,
  memo: `tsbuild/memo/v${DERIVED_VERSION}`,
  runcache: `tsbuild/runcache/v${DERIVED_VERSION}`,
  snapshots: `snapshots/v${DERIVED_VERSION}`,
} as const;

export type DerivedAreaName = keyof typeof DERIVED_AREAS;

export const STATCACHE_MAX_AGE_MS = 30 * 86_400_000;
export const STATCACHE_MAX_BYTES = 64 << 20;
export const RUNCACHE_UNUSED_MS = 48 * 3_600_000;
const TEMP_MAX_AGE_MS = 86_400_000;

/** What to do with run caches in this gc: keep (store gc), or remove those unused for `unusedForMs`. */
export type RunCachePolicy = 'keep' | { unusedForMs: number };

export interface AreaResult { removed: number; freedBytes: number; kept: number }

/** Everything derived-area sweeping needs from the store (FsStore provides it). */
export interface DerivedHost {
  readonly root: string;
  readonly tmpDir: string;
  readonly lockDir: string;
  /** Live leases (dead ones dropped) with their owner pids. */
  liveLeases(): Promise<{ pid: number; created: number }[]>;
}

/** A temp file left by a writer: `<final>.<pid>.<anything>.tmp`; true when it should go. */
async function staleTemp(path: string, name: string, now: number): Promise<boolean> {
  const m = /\.(\d+)\.[^.]+\.tmp$/.exec(name);
  if (!m) return false;
  const st = await lstat(path).catch(() => undefined);
  if (!st) return false;
  const pid = Number(m[1]);
  const alive = pid === process.pid || ownerAlive({ pid, start: '0' }); // start '0': the name has no start time
  return !alive || now - st.mtimeMs > TEMP_MAX_AGE_MS;
}

async function names(dir: string): Promise<string[]> {
  try { return await readdir(dir); } catch { return []; }
}

/** Bytes of a file or tree (lstat, links not followed). */
export async function treeBytes(p: string): Promise<number> {
  const st = await lstat(p).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let n = 0;
  for (const c of await names(p)) n += await treeBytes(join(p, c));
  return n;
}

/**
 * inputs/v1: keep the files named (by digest) in `referenced` (values of live cache records'
 * inputs) or written after `cutoff`; remove the rest. Caller holds the cache lock (so no record
 * starts naming a file we remove).
 */
export async function sweepInputs(h: DerivedHost, referenced: ReadonlySet<string>, cutoff: number, dry: boolean): Promise<AreaResult> {
  const dir = join(h.root, DERIVED_AREAS.inputs);
  const res: AreaResult = { removed: 0, freedBytes: 0, kept: 0 };
  const now = Date.now();
  for (const n of await names(dir)) {
    const p = join(dir, n);
    const m = /^([a-f0-9]{64})\.json$/.exec(n);
    if (!m) {
      if (await staleTemp(p, n, now)) await drop(p, res, dry);
      continue;
    }
    if (referenced.has(`sha256:${m[1]}`)) { res.kept++; continue; }
    const st = await stat(p).catch(() => undefined);
    if (!st) continue;
    if (st.mtimeMs >= cutoff) { res.kept++; continue; }
    await drop(p, res, dry, st.size);
  }
  return res;
}

async function drop(p: string, res: AreaResult, dry: boolean, size?: number): Promise<void> {
  const bytes = size ?? (await lstat(p).then((s) => s.size, () => 0));
  if (!dry) {
    try { await unlink(p); } catch (e) { if (errnoCode(e) === 'ENOENT') return; throw e; }
  }
  res.removed++;
  res.freedBytes += bytes;
}

/**
 * A bounded area of `<64 hex>.json` caches (statcache/v1, memo/v1): unused for
 * STATCACHE_MAX_AGE_MS, then least recently used beyond STATCACHE_MAX_BYTES (each area its own budget).
 */
export async function sweepBounded(h: DerivedHost, area: 'statcache' | 'memo', cutoff: number, dry: boolean,
  limits: { maxAgeMs?: number; maxBytes?: number } = {}): Promise<AreaResult> {
  const dir = join(h.root, DERIVED_AREAS[area]);
  const res: AreaResult = { removed: 0, freedBytes: 0, kept: 0 };
  const now = Date.now();
  const maxAge = limits.maxAgeMs ?? STATCACHE_MAX_AGE_MS;
  const maxBytes = limits.maxBytes ?? STATCACHE_MAX_BYTES;
  const live: { p: string; used: number; size: number }[] = [];
  for (const n of await names(dir)) {
    const p = join(dir, n);
    if (!/^[a-f0-9]{64}\.json$/.test(n)) {
      if (await staleTemp(p, n, now)) await drop(p, res, dry);
      continue;
    }
    const st = await stat(p).catch(() => undefined);
    if (!st) continue;
    const used = Math.max(st.atimeMs, st.mtimeMs);
    if (st.mtimeMs < cutoff && now - used > maxAge) await drop(p, res, dry, st.size);
    else live.push({ p, used, size: st.size });
  }
  let total = live.reduce((a, f) => a + f.size, 0);
  live.sort((a, b) => a.used - b.used);
  for (const f of live) {
    if (total <= maxBytes) { res.kept++; continue; }
    if ((await stat(f.p).then((s) => s.mtimeMs, () => 0)) >= cutoff) { res.kept++; continue; }
    await drop(f.p, res, dry, f.size);
    total -= f.size;
  }
  return res;
}

/** Last use of a run cache dir: max(atime, mtime) of it and its direct entries (see the gaps above). */
async function lastUsed(p: string): Promise<number> {
  const st = await lstat(p).catch(() => undefined);
  if (!st) return Date.now();
  let t = Math.max(st.atimeMs, st.mtimeMs);
  if (st.isDirectory()) {
    for (const c of await names(p)) {
      const cs = await lstat(join(p, c)).catch(() => undefined);
      if (cs) t = Math.max(t, cs.atimeMs, cs.mtimeMs);
    }
  }
  return t;
}

/**
 * runcache/v1: remove run cache dirs unused for `policy.unusedForMs` (0 = all), unless a build may
 * hold them: any live lease of another process, or the dir's runcache lock held. Not under the
 * store locks (removing a big cache takes a while and touches nothing gc marks).
 */
export async function sweepRunCaches(h: DerivedHost, policy: RunCachePolicy, dry: boolean): Promise<AreaResult & { busy: boolean }> {
  const dir = join(h.root, DERIVED_AREAS.runcache);
  const res = { removed: 0, freedBytes: 0, kept: 0, busy: false };
  const entries = await names(dir);
  if (policy === 'keep') { res.kept = entries.length; return res; }
  const others = async () => (await h.liveLeases()).some((l) => l.pid !== process.pid);
  const now = Date.now();
  for (const n of entries) {
    const p = join(dir, n);
    if (await staleTemp(p, n, now)) { await drop(p, res, dry); continue; }
    if (policy.unusedForMs > 0 && now - (await lastUsed(p)) < policy.unusedForMs) { res.kept++; continue; }
    if (await others()) { res.busy = true; res.kept++; continue; }
    const release = await tryLock(join(h.lockDir, `runcache-${n}.lock`));
    if (!release) { res.busy = true; res.kept++; continue; }
    try {
      const bytes = await treeBytes(p);
      if (dry) { res.removed++; res.freedBytes += bytes; continue; }
      const trash = tempName(h.tmpDir, 'gcrun');
      try { await rename(p, trash); } catch (e) { if (errnoCode(e) === 'ENOENT') continue; throw e; }
      if (await others()) {
        // A build started meanwhile and may have mounted it before our rename: put it back.
        await rename(trash, p).catch(() => rename(trash, `${p}.kept-${process.pid}-${Date.now()}`)).catch(() => undefined);
        res.busy = true; res.kept++;
        continue;
      }
      await rm(trash, { recursive: true, force: true });
      res.removed++;
      res.freedBytes += bytes;
    } finally {
      await release();
    }
  }
  return res;
}
