/**
 * Derived areas (store/derived.ts): the engine's inputs side files, stat caches, RUN cache mounts
 * and snapshots are cleaned by `store gc` / `cache prune` by their keep rules, and never while a
 * running build (another live process's lease, or a held run-cache lock) may use them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readdir, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runMain } from '../helpers/cli.js';
import { openStore, type FsStore } from '../../store/index.js';
import { DERIVED_AREAS, sweepBounded } from '../../store/derived.js';
import { makeImage, tempStoreDir } from './image.js';

const DAY = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms);
const hex = (c: string) => c.repeat(64);

let dir: string;
let cleanup: () => Promise<void>;
let store: FsStore;
const children: ChildProcess[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await tempStoreDir());
  store = await openStore(dir);
});
afterEach(async () => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
  await store.close();
  await cleanup();
});

async function file(area: keyof typeof DERIVED_AREAS, name: string, content: string, age?: number): Promise<string> {
  const d = join(dir, DERIVED_AREAS[area]);
  await mkdir(d, { recursive: true });
  const p = join(d, name);
  await writeFile(p, content);
  if (age !== undefined) await utimes(p, ago(age), ago(age));
  return p;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** A run cache dir with one file, all dated `age` ago. */
async function runCache(name: string, age: number): Promise<string> {
  const d = join(dir, DERIVED_AREAS.runcache, name);
  await mkdir(join(d, 'pkg'), { recursive: true });
  await writeFile(join(d, 'pkg', 'big'), 'x'.repeat(1000));
  for (const p of [join(d, 'pkg', 'big'), join(d, 'pkg'), d]) await utimes(p, ago(age), ago(age));
  return d;
}

/** A live process other than us (its pid and /proc start time), for leases and locks. */
function otherProcess(): { pid: number; start: string } {
  const c = spawn('sleep', ['60'], { stdio: 'ignore' });
  children.push(c);
  const s = readFileSync(`/proc/${c.pid}/stat`, 'latin1');
  return { pid: c.pid!, start: s.slice(s.lastIndexOf(')') + 2).split(' ')[19]! };
}

function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '0']).pid;
}

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await runMain(argv, { env: { TSBUILD_STORE: dir, HOME: dir }, cwd: dir });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

describe('inputs/v1', () => {
  it('keeps side files a live cache record names, sweeps the rest (not fresh ones) and dead writers\' temps', async () => {
    const img = await makeImage(store, undefined, [{ a: '1' }]);
    const named = await file('inputs', `${hex('a')}.json`, '{"version":1,"files":{}}', DAY);
    const orphan = await file('inputs', `${hex('b')}.json`, '{"version":1,"files":{"file:x":"y"}}', DAY);
    const fresh = await file('inputs', `${hex('c')}.json`, '{"version":1,"files":{}}');
    const temp = await file('inputs', `${hex('d')}.json.${deadPid()}.1700000000000.tmp`, '{');
    const liveTemp = await file('inputs', `${hex('e')}.json.${process.pid}.1700000000000.tmp`, '{');
    await store.cache.put({ key: 'v1:k', instruction: 'COPY . /', inputs: { files: `sha256:${hex('a')}` }, layer: img.layers[0], config: img.config });
    const dry = await store.gc({ dryRun: true });
    expect(dry.areas?.inputs).toMatchObject({ removed: 2 });
    expect(await exists(orphan)).toBe(true);
    const r = await store.gc();
    expect(r.areas?.inputs).toMatchObject({ removed: 2, kept: 2 });
    expect(await exists(named)).toBe(true);
    expect(await exists(fresh)).toBe(true);
    expect(await exists(orphan)).toBe(false);
    expect(await exists(temp)).toBe(false);
    expect(await exists(liveTemp)).toBe(true);
    // Once the record goes, so does its side file (by cache prune --all, which runs gc).
    await utimes(fresh, ago(DAY), ago(DAY));
    expect((await run('cache', 'prune', '--all')).code).toBe(0);
    expect(await exists(named)).toBe(false);
    expect(await exists(fresh)).toBe(false);
  });
});

describe('statcache/v1', () => {
  it('sweeps stat caches unused for 30 days, then the least recently used beyond the size bound', async () => {
    const old = await file('statcache', `${hex('1')}.json`, '{}', 40 * DAY);
    const recent = await file('statcache', `${hex('2')}.json`, 'x'.repeat(3000), 2 * DAY);
    const newer = await file('statcache', `${hex('3')}.json`, 'y'.repeat(3000), DAY);
    const r = await store.gc();
    expect(r.areas?.statcache).toMatchObject({ removed: 1, kept: 2 });
    expect(await exists(old)).toBe(false);
    expect(await exists(recent)).toBe(true);
    const cutoff = Date.now() - 2000;
    const bounded = await sweepBounded(store, 'statcache', cutoff, false, { maxBytes: 4000 });
    expect(bounded).toMatchObject({ removed: 1, freedBytes: 3000, kept: 1 });
    expect(await exists(recent)).toBe(false);
    expect(await exists(newer)).toBe(true);
    // Written after the cutoff (a running build): kept even beyond the bound.
    expect((await sweepBounded(store, 'statcache', cutoff, false, { maxBytes: 0 })).removed).toBe(1);
    await file('statcache', `${hex('4')}.json`, 'z');
    expect((await sweepBounded(store, 'statcache', Date.now() - 2000, false, { maxBytes: 0 })).kept).toBe(1);
  });
});

describe('runcache/v1 (RUN --mount=type=cache)', () => {
  it('store gc keeps run caches; cache prune removes those unused for 48 h; --all removes all', async () => {
    const stale = await runCache(hex('5').slice(0, 32), 3 * DAY);
    const recent = await runCache(hex('6').slice(0, 32), 3600_000);
    const g = await run('store', 'gc');
    expect(g.code).toBe(0);
    expect(await exists(stale)).toBe(true);
    const p = JSON.parse((await run('cache', 'prune', '--format', 'json')).out);
    expect(p).toMatchObject({ RemovedRunCaches: 1, RunCachesInUse: false });
    expect(p.ReclaimedBytes).toBeGreaterThanOrEqual(1000);
    expect(await exists(stale)).toBe(false);
    expect(await exists(recent)).toBe(true);
    const all = await run('cache', 'prune', '--all');
    expect(all.out).toMatch(/^Deleted 0 cache records and 1 RUN cache mount\n/);
    expect(await readdir(join(dir, DERIVED_AREAS.runcache))).toEqual([]);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  });
  it('--filter until=D limits prune --all to run caches unused for D', async () => {
    const stale = await runCache(hex('7').slice(0, 32), 3 * DAY);
    const recent = await runCache(hex('8').slice(0, 32), 3600_000);
    expect((await run('cache', 'prune', '--all', '--filter', 'until=24h')).code).toBe(0);
    expect(await exists(stale)).toBe(false);
    expect(await exists(recent)).toBe(true);
  });
  it('never removes a run cache while another process holds a live lease (a running build)', async () => {
    const c = await runCache(hex('9').slice(0, 32), 3 * DAY);
    const o = otherProcess();
    const lease = join(dir, 'tsbuild', 'v1', 'leases', 'build.json');
    await writeFile(lease, JSON.stringify({ v: 1, id: 'build', label: 'build', pid: o.pid, start: o.start, created: Date.now(), items: [] }));
    const r = await store.gc({ runCaches: { unusedForMs: 0 } });
    expect(r.runCachesBusy).toBe(true);
    expect(r.areas?.runcache).toMatchObject({ removed: 0, kept: 1 });
    expect(await exists(join(c, 'pkg', 'big'))).toBe(true);
    const cli = await run('cache', 'prune', '--all');
    expect(cli.err).toContain('a build is running');
    expect(await exists(c)).toBe(true);
  });
  it('never removes a run cache whose sharing=locked lock a live process holds', async () => {
    const name = hex('a').slice(0, 32);
    const c = await runCache(name, 3 * DAY);
    const free = await runCache(hex('b').slice(0, 32), 3 * DAY);
    const o = otherProcess();
    await symlink(`${o.pid}:${o.start}:abcdef`, join(dir, 'tsbuild', 'v1', 'locks', `runcache-${name}.lock`));
    const r = await store.gc({ runCaches: { unusedForMs: 0 } });
    expect(r.areas?.runcache).toMatchObject({ removed: 1, kept: 1 });
    expect(await exists(c)).toBe(true);
    expect(await exists(free)).toBe(false);
    // A lock left by a dead process does not pin it.
    await symlink(`${deadPid()}:1:abcdef`, join(dir, 'tsbuild', 'v1', 'locks', 'runcache-x.lock')).catch(() => undefined);
    children.splice(0).forEach((ch) => ch.kill('SIGKILL'));
    await new Promise((res) => setTimeout(res, 100));
    expect((await store.gc({ runCaches: { unusedForMs: 0 } })).areas?.runcache.removed).toBe(1);
    expect(await exists(c)).toBe(false);
  });
});

describe('snapshots/v1', () => {
  it('a snapshot keyed by a layer goes when that layer\'s blob is swept, and stays while the layer lives', async () => {
    const img = await makeImage(store, 'app:1', [{ a: '1' }]);
    const gone = await makeImage(store, undefined, [{ b: '2' }]);
    const keep = await store.snapshots.ensure(img.layers[0]!.digest, async (d) => { await writeFile(join(d, 'a'), '1'); });
    const drop = await store.snapshots.ensure(gone.layers[0]!.digest, async (d) => { await writeFile(join(d, 'b'), '2'); });
    for (const p of [keep, drop]) await utimes(p, ago(DAY), ago(DAY));
    for (const d of [gone.config, gone.manifest.digest, gone.layers[0]!.digest]) await utimes(store.blobs.path(d), ago(DAY), ago(DAY));
    const r = await store.gc();
    expect(await store.blobs.has(gone.layers[0]!.digest)).toBe(false);
    expect(r.removedSnapshots).toBe(1);
    expect(await exists(drop)).toBe(false);
    expect(await exists(keep)).toBe(true);
  });
});
