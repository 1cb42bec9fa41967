/**
 * Layer machinery benchmarks (measure only; nothing asserted):
 *  - writing a 200 MB single-file layer: LayerWriter streaming into sha256 and into a real store
 *    (MB/s and peak RSS: the writer must stream, so RSS stays far below the file size);
 *  - unpacking that layer into a snapshot;
 *  - a RUN's 200 MB upper dir committed AND kept as the layer's snapshot (keepAsSnapshot: one
 *    rename instead of the unpack above), MB/s and peak RSS;
 *  - diff + commit of a 1,000-file overlay upperdir (real overlay mount when root; else a plain
 *    directory standing in for the upper), the same with keepAsSnapshot against unpacking its
 *    layer, and a MergedView walk over 3 stacked snapshots.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, renameSync, rmSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { openStore } from '../store/index.js';
import { LayerWriter } from '../src/exec/layer/writer.js';
import { unpackLayerToSnapshot } from '../src/exec/layer/unpack.js';
import { commitUpperdir, diffUpperdir } from '../src/exec/layer/diff.js';
import { MergedView } from '../src/exec/layer/view.js';

function rssMB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

function mbps(bytes: number, ms: number): string {
  return `${((bytes / 1048576) / (ms / 1000)).toFixed(0)} MB/s`;
}

export default async function (report: (line: string) => void): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), 'tsb-bench-layer-'));
  try {
    // 200 MB file from a 1 MB random block (content need not be unique; it must be real bytes).
    const SIZE = 200 * 1048576;
    const big = join(base, 'big.bin');
    const block = randomBytes(1048576);
    const fd = openSync(big, 'w');
    for (let i = 0; i < SIZE / block.length; i++) writeSync(fd, block);
    closeSync(fd);
    const rss0 = rssMB();

    const w = new LayerWriter();
    w.add({ path: 'data', type: 'dir' }).add({ path: 'data/big.bin', type: 'file', source: { path: big } });
    let t = performance.now();
    const h = createHash('sha256');
    let n = 0;
    await pipeline(w.stream(), new Writable({ write(c: Buffer, _e, cb) { h.update(c); n += c.length; cb(); } }));
    let ms = performance.now() - t;
    report(`write 200 MB layer → sha256: ${ms.toFixed(0)} ms, ${mbps(n, ms)}, peak RSS ${rssMB().toFixed(0)} MB (before: ${rss0.toFixed(0)} MB)`);

    const store = await openStore(join(base, 'store'));
    try {
      t = performance.now();
      const r = await w.commit(store.blobs);
      ms = performance.now() - t;
      report(`write 200 MB layer → store.blobs.put: ${ms.toFixed(0)} ms, ${mbps(r.size, ms)}, peak RSS ${rssMB().toFixed(0)} MB`);

      const snap = join(base, 'snap');
      mkdirSync(snap);
      t = performance.now();
      await unpackLayerToSnapshot(store.blobs.open(r.diffId), snap, { expectDiffId: r.diffId });
      ms = performance.now() - t;
      report(`unpack 200 MB layer from the store into a snapshot (digest verified twice): ${ms.toFixed(0)} ms, ${mbps(r.size, ms)}, peak RSS ${rssMB().toFixed(0)} MB`);

      // The same file as a RUN's upper dir: diff + write + store + keep the upper as the snapshot.
      const up = await store.snapshots.tempDir('bench-upper');
      mkdirSync(join(up, 'data'));
      renameSync(big, join(up, 'data', 'big.bin'));
      t = performance.now();
      const rk = await commitUpperdir(store, up, { lowers: [], keepAsSnapshot: { snapshots: store.snapshots, lowerDiffIds: [] } });
      ms = performance.now() - t;
      report(`RUN upper with a 200 MB file → layer in the store + kept as its snapshot: ${ms.toFixed(0)} ms, ${mbps(rk!.size, ms)}, peak RSS ${rssMB().toFixed(0)} MB`);
    } finally { await store.close(); }
    rmSync(big, { force: true });

    // 1,000-file upper.
    const lower = join(base, 'lower');
    for (let d = 0; d < 20; d++) {
      mkdirSync(join(lower, `d${d}`), { recursive: true });
      for (let f = 0; f < 50; f++) writeFileSync(join(lower, `d${d}`, `f${f}`), `lower ${d}/${f}\n`);
    }
    let upper = join(base, 'upper');
    const root = process.getuid?.() === 0;
    if (root) {
      const mnt = join(base, 'm'), work = join(base, 'w');
      mkdirSync(mnt); mkdirSync(upper); mkdirSync(work);
      execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off`, mnt]);
      try {
        for (let d = 0; d < 20; d++) for (let f = 0; f < 50; f++) {
          const p = join(mnt, `d${d}`, `f${f}`);
          if (f % 10 === 0) rmSync(p); else writeFileSync(p, `changed ${d}/${f}\n`.repeat(20));
        }
        for (let f = 0; f < 100; f++) writeFileSync(join(mnt, `new${f}`), `new ${f}`);
      } finally { execFileSync('umount', [mnt]); }
    } else {
      upper = lower; // stand-in: 1,000 plain files
    }
    const store2 = await openStore(join(base, 'store2'));
    try {
      t = performance.now();
      const entries = diffUpperdir(upper, root ? [lower] : []);
      const msDiff = performance.now() - t;
      t = performance.now();
      const r = await commitUpperdir(store2, upper, { lowers: root ? [lower] : [] });
      ms = performance.now() - t;
      report(`diff ${root ? 'overlay upper (900 modified, 100 deleted, 100 new files)' : 'plain dir of 1,000 files'}: diffUpperdir ${msDiff.toFixed(0)} ms (${entries?.length ?? 0} entries); diff+write+store ${ms.toFixed(0)} ms (${r?.size ?? 0} bytes)`);
      if (root) {
        const copy = await store2.snapshots.tempDir('bench-upper');
        execFileSync('cp', ['-a', '--', upper + '/.', copy]);
        t = performance.now();
        await commitUpperdir(store2, copy, { lowers: [lower], keepAsSnapshot: { snapshots: store2.snapshots, lowerDiffIds: ['sha256:' + '0'.repeat(64)] } });
        ms = performance.now() - t;
        report(`the same upper: diff+write+store + kept as the snapshot (no unpack needed): ${ms.toFixed(0)} ms`);
      }

      // MergedView walk over lower + the diff's snapshot + lower again as a third layer.
      const snap = join(base, 'snap2');
      mkdirSync(snap);
      t = performance.now();
      await unpackLayerToSnapshot(store2.blobs.open(r!.diffId), snap);
      ms = performance.now() - t;
      report(`unpack that ${r!.size}-byte layer (1,120 entries) into a snapshot: ${ms.toFixed(0)} ms`);
      const view = new MergedView([lower, snap, lower]);
      t = performance.now();
      let count = 0;
      for (const _ of view.walk('/')) count++;
      ms = performance.now() - t;
      report(`MergedView walk of 3 stacked snapshots: ${count} entries in ${ms.toFixed(0)} ms`);
    } finally { await store2.close(); }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
