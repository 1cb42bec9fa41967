/**
 * The reusable store test suite: storeSuite(open) runs every contract test against a store that
 * `open(dir)` opens in a fresh temp directory. store.test.ts runs it against openStore.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { appendFile, readdir, readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TsbError } from '../../store/errors.js';
import type { Store } from '../../store/index.js';
import { layerTar, makeImage, tempStoreDir } from './image.js';

const OLD = new Date(Date.now() - 3600_000);

async function code(p: Promise<unknown>): Promise<string> {
  try { await p; } catch (e) { if (e instanceof TsbError) return e.code; throw e; }
  return 'no error';
}

async function age(store: Store, ...digests: string[]): Promise<void> {
  for (const d of digests) await utimes(store.blobs.path(d), OLD, OLD);
}

export function storeSuite(open: (dir: string) => Promise<Store>): void {
  let dir: string;
  let cleanup: () => Promise<void>;
  let store: Store;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempStoreDir());
    store = await open(dir);
  });
  afterEach(async () => {
    await store.close();
    await cleanup();
  });

  describe('layout', () => {
    it('is an OCI image layout', async () => {
      expect(JSON.parse(await readFile(join(dir, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });
      const idx = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
      expect(idx).toMatchObject({ schemaVersion: 2, manifests: [] });
      expect((await stat(join(dir, 'blobs', 'sha256'))).isDirectory()).toBe(true);
      expect(JSON.parse(await readFile(join(dir, 'tsbuild', 'v1', 'store.json'), 'utf8'))).toEqual({ version: 1 });
    });
    it('reopens an existing store and refuses a foreign oci-layout version', async () => {
      await makeImage(store, 'app:1', [{ a: '1' }]);
      const again = await open(dir);
      expect(await again.refs.get('app:1')).toBeDefined();
      await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"9.0.0"}');
      expect(await code(open(dir))).toBe('TSB5010');
    });
  });

  describe('blobs', () => {
    it('puts buffers, strings, streams and async iterables, content-addressed', async () => {
      const a = await store.blobs.put(Buffer.from('hello'));
      expect(a).toEqual({ digest: 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', size: 5 });
      expect(await store.blobs.put('hello')).toEqual(a);
      expect(await store.blobs.put(Readable.from([Buffer.from('hel'), Buffer.from('lo')]))).toEqual(a);
      expect(await store.blobs.put((async function* () { yield new Uint8Array([104, 101]); yield Buffer.from('llo'); })())).toEqual(a);
      expect(await store.blobs.has(a.digest)).toBe(true);
      expect(await store.blobs.size(a.digest)).toBe(5);
      expect((await store.blobs.read(a.digest)).toString()).toBe('hello');
      expect(await readFile(store.blobs.path(a.digest), 'utf8')).toBe('hello');
      expect(await store.blobs.size('sha256:' + '0'.repeat(64))).toBeUndefined();
      expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    });
    it('streams a large blob and reads it back verified', async () => {
      const big = Buffer.alloc(5 << 20, 7);
      for (let i = 0; i < big.length; i += 4096) big[i] = i & 0xff;
      const r = await store.blobs.put(Readable.from((function* () { for (let i = 0; i < big.length; i += 65536) yield big.subarray(i, i + 65536); })()));
      const back: Buffer[] = [];
      for await (const c of store.blobs.open(r.digest)) back.push(c as Buffer);
      expect(Buffer.concat(back).equals(big)).toBe(true);
    });
    it('rejects content that does not match expectDigest/expectSize and keeps nothing', async () => {
      const other = 'sha256:' + 'a'.repeat(64);
      expect(await code(store.blobs.put('x', { expectDigest: other }))).toBe('TSB5002');
      expect(await code(store.blobs.put(Readable.from([Buffer.from('x')]), { expectDigest: other }))).toBe('TSB5002');
      expect(await code(store.blobs.put('x', { expectSize: 2 }))).toBe('TSB5002');
      expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([]);
      expect(await readdir(join(dir, 'tmp'))).toEqual([]);
      const ok = await store.blobs.put('x');
      expect(await store.blobs.put(Readable.from([Buffer.from('x')]), { expectDigest: ok.digest, expectSize: 1 })).toEqual(ok);
    });
    it('bad digests and missing blobs are coded errors', async () => {
      expect(await code(store.blobs.read('sha256:xyz'))).toBe('TSB5009');
      expect(await code(store.blobs.read('sha256:' + 'b'.repeat(64)))).toBe('TSB5001');
      const err = await new Promise<unknown>((res) => { store.blobs.open('sha256:' + 'b'.repeat(64)).on('error', res).resume(); });
      expect((err as TsbError).code).toBe('TSB5001');
    });
    it('readJSON parses, caches and verifies', async () => {
      const r = await store.blobs.put(JSON.stringify({ a: 1 }));
      expect(await store.blobs.readJSON(r.digest)).toEqual({ a: 1 });
      const j = await store.blobs.readJSON<{ a: number }>(r.digest);
      j.a = 2; // callers may mutate their copy
      expect(await store.blobs.readJSON(r.digest)).toEqual({ a: 1 });
      const t = await store.blobs.put('not json');
      expect(await code(store.blobs.readJSON(t.digest))).toBe('TSB5006');
    });
  });

  describe('corruption', () => {
    it('a flipped byte is detected on read, on streaming read and by verify, naming the blob', async () => {
      const img = await makeImage(store, 'app:1', [{ 'etc/a': 'aaaa'.repeat(1000) }]);
      const layer = img.layers[0]!.digest;
      const p = store.blobs.path(layer);
      const buf = await readFile(p);
      buf[600] = buf[600]! ^ 0x01;
      await writeFile(p, buf);
      let err: unknown;
      try { await store.blobs.read(layer); } catch (e) { err = e; }
      expect((err as TsbError).code).toBe('TSB5005');
      expect((err as TsbError).message).toContain(layer);
      const streamErr = await new Promise<unknown>((res, rej) => {
        const s = store.blobs.open(layer);
        s.on('error', res); s.on('end', () => rej(new Error('stream ended without an error'))); s.resume();
      });
      expect((streamErr as TsbError).code).toBe('TSB5005');
      expect((streamErr as TsbError).message).toContain(layer);
      const problems = await store.verify();
      expect(problems.map((x) => [x.kind, x.subject])).toEqual([['blob-corrupt', layer], ['ref-incomplete', 'app:1']]);
      expect(problems[0]!.message).toContain(layer);
      const repaired = await store.verify({ repair: true });
      expect(repaired.every((x) => x.repaired)).toBe(true);
      expect(await store.verify()).toEqual([]);
      expect(await store.refs.get('app:1')).toBeUndefined();
      expect(await store.blobs.has(layer)).toBe(false);
    });
    it('a corrupt index.json is a coded error, and repair sets it aside', async () => {
      await makeImage(store, 'app:1', [{ a: '1' }]);
      await writeFile(join(dir, 'index.json'), '{"schemaVersion": 2, "manif');
      expect(await code(store.refs.list())).toBe('TSB5006');
      const p = await store.verify({ repair: true });
      expect(p.map((x) => x.kind)).toEqual(['index-corrupt']);
      expect(await store.refs.list()).toEqual([]);
      expect((await readdir(join(dir, 'tsbuild', 'v1'))).some((n) => n.startsWith('index.json.corrupt-'))).toBe(true);
    });
  });

  describe('refs', () => {
    it('set, get, list (with summary), retag, delete', async () => {
      const img = await makeImage(store, 'docker.io/library/app:1', [{ a: '1' }, { b: '22' }], { created: '2024-05-06T07:08:09Z' });
      expect(await store.refs.get('docker.io/library/app:1')).toEqual(img.manifest);
      await store.refs.set('docker.io/library/app:2', img.manifest);
      const list = await store.refs.list();
      expect(list.map((e) => e.name)).toEqual(['docker.io/library/app:1', 'docker.io/library/app:2']);
      expect(list[0]!.summary).toEqual({ config: img.config, created: '2024-05-06T07:08:09Z', size: img.layers[0]!.size + img.layers[1]!.size });
      const idx = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
      expect(idx.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe('docker.io/library/app:1');
      const img2 = await makeImage(store, undefined, [{ c: '3' }]);
      await store.refs.set('docker.io/library/app:1', img2.manifest);
      expect((await store.refs.get('docker.io/library/app:1'))!.digest).toBe(img2.manifest.digest);
      expect((await store.refs.list()).length).toBe(2);
      expect(await store.refs.delete('docker.io/library/app:1')).toBe(true);
      expect(await store.refs.delete('docker.io/library/app:1')).toBe(false);
      expect((await store.refs.list()).map((e) => e.name)).toEqual(['docker.io/library/app:2']);
    });
    it('refuses to tag an incomplete image', async () => {
      const img = await makeImage(store, undefined, [{ a: '1' }]);
      await writeFile(store.blobs.path(img.layers[0]!.digest), ''); // make it look present but check below removes
      const { unlink } = await import('node:fs/promises');
      await unlink(store.blobs.path(img.layers[0]!.digest));
      expect(await code(store.refs.set('x:1', img.manifest))).toBe('TSB5008');
      expect(await code(store.refs.set('x:1', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:' + 'c'.repeat(64), size: 2 }))).toBe('TSB5008');
      expect(await store.refs.list()).toEqual([]);
    });
    it('accepts an index with one platform present', async () => {
      const img = await makeImage(store, undefined, [{ a: '1' }]);
      const index = {
        schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { ...img.manifest, platform: { architecture: 'amd64', os: 'linux' } },
          { mediaType: img.manifest.mediaType, digest: 'sha256:' + 'd'.repeat(64), size: 100, platform: { architecture: 'arm64', os: 'linux' } },
        ],
      };
      const i = await store.blobs.put(JSON.stringify(index));
      await store.refs.set('multi:1', { mediaType: index.mediaType, digest: i.digest, size: i.size });
      expect((await store.refs.list())[0]!.summary!.config).toBe(img.config);
      expect(await store.verify()).toEqual([]);
    });
    it('concurrent tags from one process are all kept', async () => {
      const img = await makeImage(store, undefined, [{ a: '1' }]);
      await Promise.all(Array.from({ length: 40 }, (_, i) => store.refs.set(`t:${i}`, img.manifest)));
      expect((await store.refs.list()).length).toBe(40);
    });
  });

  describe('cache index', () => {
    const rec = (key: string, extra: Record<string, unknown> = {}) => ({
      key, instruction: `RUN echo ${key}`, source: { file: 'Dockerfile', line: 3 }, inputs: { cmd: `echo ${key}` }, ...extra,
    });
    it('put, get, touch, list, delete, and it survives reopening', async () => {
      const img = await makeImage(store, undefined, [{ a: '1' }]);
      const r = await store.cache.put(rec('v1:k1', { layer: img.layers[0], config: img.config, parent: 'v1:k0', meta: { scope: 'app' } }));
      expect(r.hits).toBe(0);
      expect(r.created).toBe(r.lastUsed);
      await store.cache.touch('v1:k1');
      await store.cache.touch('v1:k1');
      await store.cache.touch('v1:nope');
      const g = await store.cache.get('v1:k1');
      expect(g).toMatchObject({ key: 'v1:k1', hits: 2, layer: img.layers[0], config: img.config, instruction: 'RUN echo v1:k1', inputs: { cmd: 'echo v1:k1' } });
      expect(g!.lastUsed >= r.lastUsed).toBe(true);
      await store.cache.put(rec('v1:k2'));
      const again = await open(dir);
      expect((await again.cache.list()).map((x) => x.key).sort()).toEqual(['v1:k1', 'v1:k2']);
      expect((await again.cache.get('v1:k1'))!.hits).toBe(2);
      expect(await store.cache.delete(['v1:k2', 'v1:zz'])).toBe(1);
      expect(await again.cache.get('v1:k2')).toBeUndefined();
      expect((await again.cache.list()).length).toBe(1);
    });
    it('touchMany, position and changedSince: hits do not count, puts and deletes of the keys do', async () => {
      await store.cache.put(rec('v1:a'));
      await store.cache.put(rec('v1:b'));
      const pos = await store.cache.position();
      expect(pos).toMatch(/^\d+:\d+$/);
      const mine = new Set(['v1:a']);
      expect(await store.cache.changedSince(pos, mine)).toBe(false);
      await store.cache.touchMany(['v1:a', 'v1:b', 'v1:a', 'v1:none']);
      expect((await store.cache.get('v1:a'))!.hits).toBe(1);
      expect((await store.cache.get('v1:b'))!.hits).toBe(1);
      await store.cache.put(rec('v1:other'));
      expect(await store.cache.changedSince(pos, mine)).toBe(false);
      await store.cache.delete(['v1:b']);
      expect(await store.cache.changedSince(pos, mine)).toBe(false);
      expect(await store.cache.changedSince(pos, new Set(['v1:b']))).toBe(true);
      await store.cache.put(rec('v1:a', { instruction: 'RUN again' }));
      expect(await store.cache.changedSince(pos, mine)).toBe(true);
      // More than maxTail bytes since, a foreign position, or a torn line: "changed".
      expect(await store.cache.changedSince(pos, new Set(['v1:zz']), 10)).toBe(true);
      expect(await store.cache.changedSince('1:0', mine)).toBe(true);
      const now = await store.cache.position();
      await appendFile(join(dir, 'tsbuild', 'v1', 'cache', 'records.log'), 'garbage line\n');
      expect(await store.cache.changedSince(now, new Set(['v1:zz']))).toBe(true);
    });
    it('refs.stamp changes with every change of names, and only then', async () => {
      const img = await makeImage(store, undefined, [{ a: '1' }]);
      const s0 = await store.refs.stamp();
      expect(await store.refs.stamp()).toBe(s0);
      await store.refs.set('docker.io/library/s:1', img.manifest);
      const s1 = await store.refs.stamp();
      expect(s1).not.toBe(s0);
      await store.refs.get('docker.io/library/s:1');
      await store.refs.list();
      expect(await store.refs.stamp()).toBe(s1);
      await store.refs.delete('docker.io/library/s:1');
      expect(await store.refs.stamp()).not.toBe(s1);
    });
    it('refuses records whose blobs are missing', async () => {
      expect(await code(store.cache.put(rec('v1:x', { config: 'sha256:' + 'e'.repeat(64) })))).toBe('TSB5008');
    });
    it('findBySource returns newest first, filtered by scope', async () => {
      await store.cache.put(rec('v1:a', { created: '2024-01-01T00:00:00Z', meta: { scope: 's1' } }));
      await store.cache.put(rec('v1:b', { created: '2024-02-01T00:00:00Z', meta: { scope: 's1' } }));
      await store.cache.put(rec('v1:c', { created: '2024-03-01T00:00:00Z', meta: { scope: 's2' } }));
      await store.cache.put({ ...rec('v1:d'), source: { file: 'Dockerfile', line: 4 } });
      await store.cache.put({ ...rec('v1:e'), source: { file: 'Dockerfile', line: 30 } });
      await store.cache.put({ ...rec('v1:f'), source: { file: 'Dockerfile:3', line: 3 } });
      // A record re-put with another source no longer answers for the old one.
      await store.cache.put({ ...rec('v1:g'), source: { file: 'Dockerfile', line: 3 } });
      await store.cache.put({ ...rec('v1:g'), source: { file: 'Dockerfile', line: 5 } });
      expect((await store.cache.findBySource('Dockerfile', 3)).map((r) => r.key)).toEqual(['v1:c', 'v1:b', 'v1:a']);
      expect((await store.cache.findBySource('Dockerfile', 5)).map((r) => r.key)).toEqual(['v1:g']);
      expect((await store.cache.findBySource('Dockerfile', 3, 's1')).map((r) => r.key)).toEqual(['v1:b', 'v1:a']);
    });
    it('skips a torn line and keeps later records separate', async () => {
      await store.cache.put(rec('v1:a'));
      await appendFile(join(dir, 'tsbuild', 'v1', 'cache', 'records.log'), 'P\tv1:torn\t2024-01-01T00:00:00.000Z\t0\t2024-01-01T00:00:00.000Z\t0\t""\t"RUN x"\t{"key":"v1:to');
      const other = await open(dir);
      await other.cache.put(rec('v1:b'));
      expect((await store.cache.list()).map((r) => r.key).sort()).toEqual(['v1:a', 'v1:b']);
      expect(await store.cache.get('v1:torn')).toBeUndefined();
    });
    it('keys with tabs or newlines are refused; free text with them round-trips', async () => {
      expect(await code(store.cache.put(rec('v1:a\tb')))).toBe('TSB5006');
      await store.cache.put({ ...rec('v1:t'), instruction: 'RUN a\tb\n  c "q" \\', source: { file: 'dir\twith tab/Dockerfile', line: 9 } });
      const again = await open(dir);
      expect((await again.cache.get('v1:t'))!.instruction).toBe('RUN a\tb\n  c "q" \\');
      const s = (await (again.cache as unknown as { summaries(): Promise<{ key: string; instruction: string; source: string }[]> }).summaries())[0]!;
      expect(s).toMatchObject({ key: 'v1:t', instruction: 'RUN a\tb\n  c "q" \\', source: 'dir\twith tab/Dockerfile:9' });
    });
    it('compacts the log when dead lines dominate', async () => {
      for (let i = 0; i < 1100; i++) await store.cache.touch('v1:none');
      await store.cache.put(rec('v1:a'));
      for (let i = 0; i < 1100; i++) await store.cache.touch('v1:a');
      const log = await readFile(join(dir, 'tsbuild', 'v1', 'cache', 'records.log'), 'utf8');
      expect(log.trim().split('\n').length).toBeLessThan(1100);
      expect((await (await open(dir)).cache.get('v1:a'))!.hits).toBe(1100);
    });
  });

  describe('gc and leases', () => {
    it('sweeps what nothing references and keeps refs, cache records and leased items', async () => {
      const kept = await makeImage(store, 'keep:1', [{ a: '1' }]);
      const cached = await makeImage(store, undefined, [{ c: '2' }]);
      await store.cache.put({ key: 'v1:c', instruction: 'RUN x', inputs: {}, layer: cached.layers[0], config: cached.config });
      const orphan = await store.blobs.put('orphan');
      const leased = await store.blobs.put('leased');
      const lease = await store.lease('test');
      await lease.add(leased.digest);
      const all = [...kept.layers.map((l) => l.digest), kept.config, kept.manifest.digest, cached.config, cached.layers[0]!.digest, cached.manifest.digest, orphan.digest, leased.digest];
      await age(store, ...all);
      // The lease was taken before these were aged: date it just after the aged blobs, so the time rule keeps nothing extra.
      const lf = join(dir, 'tsbuild', 'v1', 'leases', `${lease.id}.json`);
      const l = JSON.parse(await readFile(lf, 'utf8'));
      await writeFile(lf, JSON.stringify({ ...l, created: OLD.getTime() + 60_000 }));
      const dry = await store.gc({ dryRun: true });
      expect(dry.removedBlobs).toBe(2); // orphan + the cached image's manifest
      expect(await store.blobs.has(orphan.digest)).toBe(true);
      const r = await store.gc();
      expect(r).toMatchObject({ removedBlobs: 2, freedBytes: 6 + cached.manifest.size });
      expect(await store.blobs.has(orphan.digest)).toBe(false);
      expect(await store.blobs.has(leased.digest)).toBe(true);
      expect(await store.blobs.has(cached.layers[0]!.digest)).toBe(true);
      expect(await store.verify()).toEqual([]);
      await lease.release();
      await store.gc();
      expect(await store.blobs.has(leased.digest)).toBe(false);
    });
    it('keeps what was written after the oldest live lease, even before lease.add', async () => {
      const lease = await store.lease('build');
      const fresh = await store.blobs.put('in progress');
      expect((await store.gc()).removedBlobs).toBe(0);
      expect(await store.blobs.has(fresh.digest)).toBe(true);
      await lease.release();
      await age(store, fresh.digest);
      expect((await store.gc()).removedBlobs).toBe(1);
    });
    it('a lease whose owner died is released by gc', async () => {
      const x = await store.blobs.put('x');
      await age(store, x.digest);
      const child = spawnSync(process.execPath, ['-e', '0']);
      expect(child.status).toBe(0);
      const dead = { v: 1, id: 'dead', label: 'gone', pid: child.pid, start: '1', created: OLD.getTime() - 1000, items: [x.digest] };
      await writeFile(join(dir, 'tsbuild', 'v1', 'leases', 'dead.json'), JSON.stringify(dead));
      expect((await store.gc()).removedBlobs).toBe(1);
      expect(await readdir(join(dir, 'tsbuild', 'v1', 'leases'))).not.toContain('dead.json');
    });
    it('puts of an existing blob bump its mtime so a running gc keeps it', async () => {
      const x = await store.blobs.put('x');
      await age(store, x.digest);
      await store.blobs.put('x');
      expect((await stat(store.blobs.path(x.digest))).mtimeMs).toBeGreaterThan(Date.now() - 60_000);
      expect((await store.gc()).removedBlobs).toBe(0);
    });
    it('removes snapshots of dead layers and keeps live ones', async () => {
      const img = await makeImage(store, 'keep:1', [{ a: '1' }]);
      const live = await store.snapshots.ensure(img.layers[0]!.digest, async (d) => { await writeFile(join(d, 'a'), '1'); });
      const dead = await store.snapshots.ensure('sha256:' + 'f'.repeat(64), async (d) => { await writeFile(join(d, 'b'), '2'); });
      await utimes(live, OLD, OLD); await utimes(dead, OLD, OLD);
      expect((await store.gc()).removedSnapshots).toBe(1);
      expect(await store.snapshots.has(img.layers[0]!.digest)).toBe(true);
      expect(await store.snapshots.has('sha256:' + 'f'.repeat(64))).toBe(false);
    });
  });

  describe('implicit process lease', () => {
    it('is taken before the first write, protects what this process writes, and close() releases it', async () => {
      const leases = join(dir, 'tsbuild', 'v1', 'leases');
      expect(await readdir(leases)).toEqual([]);
      const x = await store.blobs.put('written by a process that took no lease');
      expect((await readdir(leases)).length).toBe(1);
      // Backdate lease and blob by an hour (blob just after the lease): only the lease keeps it.
      const lf = join(leases, (await readdir(leases))[0]!);
      await writeFile(lf, JSON.stringify({ ...JSON.parse(await readFile(lf, 'utf8')), created: OLD.getTime() }));
      const after = new Date(OLD.getTime() + 1000);
      await utimes(store.blobs.path(x.digest), after, after);
      const other = await open(dir);
      expect((await other.gc()).removedBlobs).toBe(0);
      await store.close();
      expect(await readdir(leases)).toEqual([]);
      await age(store, x.digest);
      expect((await other.gc()).removedBlobs).toBe(1);
    });
  });

  describe('snapshots', () => {
    it('ensure fills once for concurrent callers and never shows a half-filled tree', async () => {
      let fills = 0;
      const fill = async (d: string) => { fills++; await writeFile(join(d, 'f'), 'x'); await new Promise((r) => setTimeout(r, 50)); };
      const ps = await Promise.all([1, 2, 3].map(() => store.snapshots.ensure('sha256:' + '1'.repeat(64), fill)));
      expect(new Set(ps).size).toBe(1);
      expect(fills).toBe(1);
      expect(ps[0]).toBe(store.snapshots.path('sha256:' + '1'.repeat(64)));
      expect(ps[0]!.includes(':')).toBe(false); // usable in overlay lowerdir=
      expect(await readFile(join(ps[0]!, 'f'), 'utf8')).toBe('x');
      await expect(store.snapshots.ensure('broken', async () => { throw new Error('boom'); })).rejects.toThrow('boom');
      expect(await store.snapshots.has('broken')).toBe(false);
      expect(await readdir(join(dir, 'tmp'))).toEqual([]);
      expect(await code(store.snapshots.ensure('../x', fill))).toBe('TSB5009');
      const t = await store.snapshots.tempDir('upper');
      expect(t.startsWith(join(dir, 'tmp'))).toBe(true);
    });
  });

  describe('compressed forms', () => {
    it('remembers diff_id → compressed descriptors', async () => {
      const layer = await store.blobs.put(await layerTar({ a: '1' }));
      const gz = await store.blobs.put('pretend gzip');
      const d = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: gz.digest, size: gz.size };
      expect(await store.compressed.get(layer.digest, d.mediaType)).toBeUndefined();
      await store.compressed.set(layer.digest, d);
      expect(await store.compressed.get(layer.digest, d.mediaType)).toEqual(d);
      expect(await store.compressed.get(layer.digest, 'application/vnd.oci.image.layer.v1.tar+zstd')).toBeUndefined();
      expect(await code(store.compressed.set(layer.digest, { ...d, digest: 'sha256:' + '2'.repeat(64) }))).toBe('TSB5008');
    });
  });

  describe('tmp sweeping', () => {
    it('removes leftovers of dead processes, keeps live ones', async () => {
      const child = spawnSync(process.execPath, ['-e', '0']);
      const deadName = `blob.${child.pid}.12345.0123456789ab`;
      await writeFile(join(dir, 'tmp', deadName), 'partial');
      const live = await store.snapshots.tempDir('work');
      expect(await store.sweepTmp()).toBe(1);
      expect(await readdir(join(dir, 'tmp'))).toEqual([live.split('/').pop()]);
    });
    it('puts back a blob a killed gc had moved aside (gc-blob-HEX.PID.START.RAND)', async () => {
      const x = await store.blobs.put('kept by a running build');
      const child = spawnSync(process.execPath, ['-e', '0']);
      const trash = `gc-blob-${x.digest.slice(7)}.${child.pid}.12345.0123456789ab`;
      await rename(store.blobs.path(x.digest), join(dir, 'tmp', trash));
      expect(await store.sweepTmp()).toBe(1);
      expect(await readdir(join(dir, 'tmp'))).not.toContain(trash);
      expect((await store.blobs.read(x.digest)).toString()).toBe('kept by a running build');
    });
  });

  describe('real tools read the store', () => {
    const has = (t: string) => spawnSync('sh', ['-c', `command -v ${t}`]).status === 0;
    it('skopeo inspect oci:STORE:name', async (ctx) => {
      if (!has('skopeo')) { ctx.skip(); return; }
      const img = await makeImage(store, 'docker.io/library/app:1.2', [{ 'etc/hello': 'hi\n' }, { 'usr/bin/x': '#!/bin/sh\n' }]);
      const r = spawnSync('skopeo', ['inspect', `oci:${dir}:docker.io/library/app:1.2`], { encoding: 'utf8' });
      expect(r.stderr).toBe('');
      const j = JSON.parse(r.stdout);
      expect(j.Digest).toBe(img.manifest.digest);
      expect(j.Layers).toEqual(img.layers.map((l) => l.digest));
      expect(j.Architecture).toBe('amd64');
      const cfg = spawnSync('skopeo', ['inspect', '--config', `oci:${dir}:docker.io/library/app:1.2`], { encoding: 'utf8' });
      expect(JSON.parse(cfg.stdout).rootfs.diff_ids).toEqual(img.layers.map((l) => l.digest));
    });
    it('umoci stat --image STORE:name', async (ctx) => {
      if (!has('umoci')) { ctx.skip(); return; }
      await makeImage(store, 'app-1.2', [{ 'etc/hello': 'hi\n' }]);
      const r = spawnSync('umoci', ['stat', '--image', `${dir}:app-1.2`], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toContain('echo layer 0');
    });
    it('skopeo copies the image out of the store', async (ctx) => {
      if (!has('skopeo')) { ctx.skip(); return; }
      await makeImage(store, 'app:1', [{ 'etc/hello': 'hi\n' }]);
      const out = join(dir, 'tmp', 'copy-out');
      const r = spawnSync('skopeo', ['copy', `oci:${dir}:app:1`, `oci:${out}:x`], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      void createReadStream;
    });
  });
}
