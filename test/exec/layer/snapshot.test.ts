/** Snapshots in the REAL store: chain ids, unpack-once, compressed blobs, diff_id verification. */
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { openStore } from '../../../store/index.js';
import { chainIds, ensureLayerSnapshot, snapshotsForImage } from '../../../src/exec/layer/snapshot.js';
import { LayerWriter } from '../../../src/exec/layer/writer.js';
import { MergedView } from '../../../src/exec/layer/view.js';
import { copyViewToDir } from '../../../src/exec/layer/flatten.js';
import { lutimesNs } from '../../../src/exec/layer/native.js';
import { encodeHeader, readTar } from '../../../src/exec/layer/tar.js';
import { unpackLayerFlat, unpackLayerToSnapshot } from '../../../src/exec/layer/unpack.js';
import { cleanup, collect, rawTar, sha256, streamOf, tmp } from './helpers.js';

afterAll(cleanup);

describe('chainIds', () => {
  test('follows the OCI image spec definition', () => {
    const a = 'sha256:' + 'a'.repeat(64), b = 'sha256:' + 'b'.repeat(64), c = 'sha256:' + 'c'.repeat(64);
    const ab = sha256(Buffer.from(`${a} ${b}`));
    expect(chainIds([a, b, c])).toEqual([a, ab, sha256(Buffer.from(`${ab} ${c}`))]);
    expect(chainIds([])).toEqual([]);
  });
});

describe('snapshots in the store', () => {
  test('commit layers, unpack each once as lowerdirs, read them through a MergedView', async () => {
    const store = await openStore(tmp('store'));
    try {
      const l1 = new LayerWriter().add({ path: 'etc', type: 'dir' }).add({ path: 'etc/os-release', type: 'file', source: { buffer: Buffer.from('ID=test\n') } })
        .add({ path: 'old', type: 'file', source: { buffer: Buffer.from('old') } });
      const l2 = new LayerWriter().add({ path: 'old', type: 'whiteout' }).add({ path: 'new', type: 'file', mode: 0o755, source: { buffer: Buffer.from('new') } });
      const r1 = await l1.commit(store.blobs), r2 = await l2.commit(store.blobs);
      expect(r1.diffId).toBe(sha256(await collect(l1.stream())));
      expect(r1.size).toBe((await collect(l1.stream())).length);
      const dirs = await snapshotsForImage(store, [r1.diffId, r2.diffId]);
      expect(dirs).toEqual(chainIds([r1.diffId, r2.diffId]).map((c) => store.snapshots.path(c)));
      const v = new MergedView(dirs);
      expect(v.readdir('/')).toEqual(['etc', 'new']);
      expect(v.readFile('/etc/os-release').toString()).toBe('ID=test\n');
      // Second call: no refill (a marker written into the snapshot survives).
      writeFileSync(join(dirs[0]!, 'marker'), 'x');
      await snapshotsForImage(store, [r1.diffId, r2.diffId]);
      expect(readFileSync(join(dirs[0]!, 'marker'), 'utf8')).toBe('x');
    } finally { await store.close(); }
  });

  test('a process ensures (touches) each snapshot once; a snapshot removed behind its back is made again', async () => {
    const store = await openStore(tmp('store'));
    try {
      const r1 = await new LayerWriter().add({ path: 'a', type: 'file', source: { buffer: Buffer.from('a') } }).commit(store.blobs);
      const r2 = await new LayerWriter().add({ path: 'b', type: 'file', source: { buffer: Buffer.from('b') } }).commit(store.blobs);
      const ensured: string[] = [];
      const snapshots = Object.assign(Object.create(store.snapshots) as typeof store.snapshots, {
        ensure: (id: string, fill: (tmp: string) => Promise<void>) => { ensured.push(id); return store.snapshots.ensure(id, fill); },
      });
      const s = { blobs: store.blobs, snapshots };
      const chains = chainIds([r1.diffId, r2.diffId]);
      const first = await snapshotsForImage(s, [r1.diffId, r2.diffId]);
      expect(ensured).toEqual(chains);
      expect(await snapshotsForImage(s, [r1.diffId, r2.diffId])).toEqual(first);
      expect(await snapshotsForImage(s, [r1.diffId])).toEqual([first[0]]);
      expect(ensured).toEqual(chains); // no second touch
      execFileSync('rm', ['-rf', first[1]!]);
      expect(await snapshotsForImage(s, [r1.diffId, r2.diffId])).toEqual(first);
      expect(ensured).toEqual([...chains, chains[1]]);
      expect(readFileSync(join(first[1]!, 'b'), 'utf8')).toBe('b');
      // Another snapshots object (another open of the store) remembers nothing.
      const other = Object.assign(Object.create(store.snapshots) as typeof store.snapshots, {
        ensure: (id: string, fill: (tmp: string) => Promise<void>) => { ensured.push(id); return store.snapshots.ensure(id, fill); },
      });
      await snapshotsForImage({ blobs: store.blobs, snapshots: other }, [r1.diffId]);
      expect(ensured).toEqual([...chains, chains[1], chains[0]]);
    } finally { await store.close(); }
  });

  test('a layer whose source fails mid-stream is not stored and the coded error comes through', async () => {
    const store = await openStore(tmp('store'));
    try {
      const { Readable } = await import('node:stream');
      const w = new LayerWriter().add({ path: 'big', type: 'file', size: 1 << 20, source: { stream: () => Readable.from([Buffer.alloc(1000)]) } });
      await expect(w.commit(store.blobs)).rejects.toMatchObject({ code: 'TSB4416' });
      expect(await store.verify()).toEqual([]);
    } finally { await store.close(); }
  });

  test('a gzip/zstd blob unpacks when its content matches the diff_id, and is refused when not', async () => {
    const store = await openStore(tmp('store'));
    try {
      const w = new LayerWriter().add({ path: 'f', type: 'file', source: { buffer: Buffer.from('zipped') } });
      const tar = await collect(w.stream());
      const diffId = sha256(tar);
      const d = tmp('z');
      writeFileSync(join(d, 'l.tar'), tar);
      execFileSync('gzip', ['-k', join(d, 'l.tar')]);
      execFileSync('zstd', ['-q', join(d, 'l.tar')]);
      const gz = await store.blobs.put(readFileSync(join(d, 'l.tar.gz')));
      const zs = await store.blobs.put(readFileSync(join(d, 'l.tar.zst')));
      const p = await ensureLayerSnapshot(store, diffId, diffId, { blob: gz.digest });
      expect(readFileSync(join(p, 'f'), 'utf8')).toBe('zipped');
      const other = 'sha256:' + 'e'.repeat(64);
      const err = await ensureLayerSnapshot(store, other, other, { blob: zs.digest }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'TSB4409' });
      expect(await store.snapshots.has(other)).toBe(false);
    } finally { await store.close(); }
  });
});

describe('snapshots of layers this process wrote keep nanosecond mtimes (as BuildKit COPY does)', () => {
  const ns = (p: string): bigint => lstatSync(p, { bigint: true }).mtimeNs;
  test('files read from a path keep their ns mtime; explicit mtimeNs too; the tar stays in whole seconds', async () => {
    const base = tmp('store');
    const store = await openStore(join(base, 'store'));
    try {
      const src = join(base, 'src.txt'), other = join(base, 'other.txt');
      writeFileSync(src, 'hello');
      writeFileSync(other, 'other');
      const S = 1_600_000_000n, F = 123_456_789n;
      lutimesNs(src, S * 1_000_000_000n + F);
      lutimesNs(other, S * 1_000_000_000n + F);
      const w = new LayerWriter()
        .add({ path: 'd', type: 'dir', mtime: Number(S), mtimeNs: S * 1_000_000_000n + 5n })
        .add({ path: 'd/f', type: 'file', mtime: Number(S), source: { path: src } })
        // A caller that sets another mtime (e.g. SOURCE_DATE_EPOCH, 0) does not get the file's.
        .add({ path: 'd/zero', type: 'file', mtime: 0, source: { path: other } });
      const r = await w.commit(store.blobs);
      const mtimes: number[] = [];
      for await (const { header } of readTar(store.blobs.open(r.diffId))) mtimes.push(header.mtime);
      expect(mtimes).toEqual([Number(S), Number(S), 0]);
      const [dir] = await snapshotsForImage(store, [r.diffId]);
      expect(ns(join(dir!, 'd/f'))).toBe(S * 1_000_000_000n + F);
      expect(ns(join(dir!, 'd'))).toBe(S * 1_000_000_000n + 5n);
      expect(ns(join(dir!, 'd/zero'))).toBe(0n);
      // The same layer unpacked without that knowledge (another process): whole seconds.
      const fresh = join(base, 'fresh');
      mkdirSync(fresh);
      await unpackLayerToSnapshot(store.blobs.open(r.diffId), fresh);
      expect(ns(join(fresh, 'd/f'))).toBe(S * 1_000_000_000n);
    } finally { await store.close(); }
  });

  test('a PAX mtime with a fraction (GNU tar --format=posix) is applied to the nanosecond, as containerd/BuildKit ADD do', async () => {
    const base = tmp('store');
    const rec = (k: string, v: string): Buffer => {
      const body = ` ${k}=${v}\n`;
      let n = body.length + 1;
      while (String(n).length + body.length !== n) n = String(n).length + body.length;
      return Buffer.from(`${n}${body}`);
    };
    const pax = (name: string, v: string): Buffer => {
      const data = rec('mtime', v);
      return Buffer.concat([encodeHeader({ name: `PaxHeaders/${name}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0, xattrs: {} }).fill(0x78, 156, 157),
        data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
    };
    // encodeHeader computed the checksum with type '0': rebuild it for the 'x' flag.
    const fix = (h: Buffer): Buffer => {
      h.fill(0x20, 148, 156);
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += h[i]!;
      h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
      return h;
    };
    const px1 = pax('d', '1600000000.123456789'), px2 = pax('f', '-1.5');
    fix(px1.subarray(0, 512)); fix(px2.subarray(0, 512));
    const tar = Buffer.concat([
      px1, rawTar([{ name: 'd/', type: 'dir', mtime: 1600000000 }]).subarray(0, 512),
      px2, rawTar([{ name: 'd/f', data: Buffer.from('x'), mtime: 0 }]).subarray(0, 1024),
      Buffer.alloc(1024),
    ]);
    const hs: Array<bigint | undefined> = [];
    for await (const { header } of readTar(streamOf(tar))) hs.push(header.mtimeNs);
    expect(hs).toEqual([1_600_000_000_123_456_789n, -1_500_000_000n]);
    for (const unpack of [unpackLayerToSnapshot, unpackLayerFlat]) {
      const dir = join(base, unpack.name);
      mkdirSync(dir);
      await unpack(streamOf(tar), dir);
      expect(ns(join(dir, 'd'))).toBe(1_600_000_000_123_456_789n);
      expect(ns(join(dir, 'd/f'))).toBe(-1_500_000_000n);
    }
  });

  test('copyViewToDir (--output type=local) copies mtimes to the nanosecond', async () => {
    const base = tmp('store');
    const lower = join(base, 'lower'), out = join(base, 'out');
    mkdirSync(join(lower, 'd'), { recursive: true });
    writeFileSync(join(lower, 'd/f'), 'f');
    const T = 1_600_000_000_987_654_321n;
    lutimesNs(join(lower, 'd/f'), T);
    lutimesNs(join(lower, 'd'), T + 1n);
    mkdirSync(out);
    await copyViewToDir(new MergedView([lower]), out);
    expect(ns(join(out, 'd/f'))).toBe(T);
    expect(ns(join(out, 'd'))).toBe(T + 1n);
  });
});
