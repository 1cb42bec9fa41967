/**
 * Randomized stacks (seeded, reproducible): random files, dirs, symlinks, whiteouts and opaque
 * dirs over 4 layers; MergedView must equal the kernel's overlayfs mount of the same snapshots,
 * and flat application of the same layers must give the same tree.
 */
import { afterAll, describe, expect, test } from 'vitest';
import type { LayerEntry } from '../../../src/exec/layer/entry.js';
import { LayerWriter } from '../../../src/exec/layer/writer.js';
import { unpackLayerFlat, unpackLayerToSnapshot } from '../../../src/exec/layer/unpack.js';
import { MergedView } from '../../../src/exec/layer/view.js';
import { cleanup, describeTree, describeView, mountOverlay, overlayMissing, tmp, umount } from './helpers.js';

afterAll(cleanup);

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

const NAMES = ['a', 'b', 'c', 'a-b', 'a.b'];

function randomLayer(rnd: () => number, n: number): LayerEntry[] {
  const byPath = new Map<string, LayerEntry>();
  const addDirs = (p: string): void => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      const cur = byPath.get(d);
      if (!cur || (cur.type !== 'dir')) byPath.set(d, { path: d, type: 'dir', mode: 0o755, mtime: 1000 });
    }
  };
  for (let k = 0; k < n; k++) {
    const depth = 1 + Math.floor(rnd() * 3);
    const p = Array.from({ length: depth }, () => NAMES[Math.floor(rnd() * NAMES.length)]!).join('/');
    // drop anything below p that a non-dir would orphan
    const r = rnd();
    let e: LayerEntry;
    if (r < 0.35) e = { path: p, type: 'file', mode: 0o644, mtime: 1000, source: { buffer: Buffer.from(`${p}:${k}`) } };
    else if (r < 0.55) e = { path: p, type: 'dir', mode: rnd() < 0.5 ? 0o755 : 0o700, mtime: 1000 + k };
    else if (r < 0.65) e = { path: p, type: 'symlink', linkname: NAMES[Math.floor(rnd() * NAMES.length)]!, mtime: 1000 };
    else if (r < 0.85) e = { path: p, type: 'whiteout' };
    else e = { path: p, type: 'opaque' };
    // keep the layer consistent: no entry below a non-dir, whiteout/opaque not mixed with same path
    const clash = [...byPath.keys()].some((q) => q === p || q.startsWith(p + '/') || p.startsWith(q + '/') && byPath.get(q)!.type !== 'dir');
    if (clash) continue;
    addDirs(p);
    if (e.type === 'opaque') byPath.set(p, { path: p, type: 'dir', mode: 0o755, mtime: 1000 });
    byPath.set(e.type === 'opaque' ? p + '\0opq' : p, e);
  }
  return [...byPath.values()];
}

describe('MergedView vs kernel overlayfs on random stacks', () => {
  test('12 seeded random 4-layer stacks', async (ctx) => {
    const why = overlayMissing();
    if (why) { ctx.skip(why); return; }
    for (let seed = 1; seed <= 12; seed++) {
      const rnd = prng(seed);
      const snaps: string[] = [];
      const flat = tmp('fz');
      for (let l = 0; l < 4; l++) {
        const w = new LayerWriter();
        for (const e of randomLayer(rnd, 12)) w.add(e);
        const s = tmp('fz');
        await unpackLayerToSnapshot(w.stream(), s, { lowers: [...snaps] });
        await unpackLayerFlat(w.stream(), flat);
        snaps.push(s);
      }
      const { mnt } = mountOverlay(tmp('fzm'), snaps);
      let kernel;
      try { kernel = describeTree(mnt); } finally { umount(mnt); }
      expect({ seed, tree: describeView(new MergedView(snaps)) }).toEqual({ seed, tree: kernel });
      expect({ seed, tree: describeTree(flat) }).toEqual({ seed, tree: kernel });
    }
  });
});
