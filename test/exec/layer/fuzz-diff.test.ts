/**
 * Randomized RUN-like changes (seeded) through a real overlay mount over a 2-layer image: the
 * diff of the upperdir, unpacked as the next snapshot (with its lowers), must reproduce exactly
 * what the mount showed — through MergedView and through a fresh kernel overlay mount; the upper
 * kept as the snapshot instead (keepUpperAsSnapshot) must be the same tree as that unpack.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, lstatSync, mkdirSync, rmSync, symlinkSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { LayerEntry } from '../../../src/exec/layer/entry.js';
import { diffUpper, diffUpperdir } from '../../../src/exec/layer/diff.js';
import { keepUpperAsSnapshot } from '../../../src/exec/layer/snapshot.js';
import { LayerWriter } from '../../../src/exec/layer/writer.js';
import { unpackLayerToSnapshot } from '../../../src/exec/layer/unpack.js';
import { MergedView } from '../../../src/exec/layer/view.js';
import { cleanup, describeTree, describeView, mountOverlay, overlayMissing, tmp, umount } from './helpers.js';

afterAll(cleanup);

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

const NAMES = ['a', 'b', 'c', 'd'];

async function baseLayer(rnd: () => number, lowers: string[]): Promise<string> {
  const w = new LayerWriter();
  const dirs = new Set<string>();
  const files = new Set<string>();
  for (let k = 0; k < 25; k++) {
    const depth = 1 + Math.floor(rnd() * 3);
    const parts = Array.from({ length: depth }, () => NAMES[Math.floor(rnd() * NAMES.length)]!);
    const p = parts.join('/');
    const parentsOk = parts.slice(0, -1).every((_, i) => !files.has(parts.slice(0, i + 1).join('/')));
    if (!parentsOk || dirs.has(p) || files.has(p)) continue;
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (!dirs.has(d)) { dirs.add(d); w.add({ path: d, type: 'dir', mode: 0o755, mtime: 1000 }); }
    }
    files.add(p);
    w.add({ path: p, type: 'file', mode: 0o644, mtime: 1000, source: { buffer: Buffer.from(`base ${p} ${k}`) } });
  }
  const s = tmp('fd');
  await unpackLayerToSnapshot(w.stream(), s, { lowers });
  return s;
}

function randomPath(rnd: () => number): string {
  const depth = 1 + Math.floor(rnd() * 3);
  return Array.from({ length: depth }, () => NAMES[Math.floor(rnd() * NAMES.length)]!).join('/');
}

function mutate(m: string, rnd: () => number, steps: number): void {
  for (let k = 0; k < steps; k++) {
    const p = join(m, randomPath(rnd));
    const q = join(m, randomPath(rnd));
    const op = Math.floor(rnd() * 9);
    try {
      switch (op) {
        case 0: writeFileSync(p, `new ${k}`); break;
        case 1: appendFileSync(p, `more ${k}`); break;
        case 2: rmSync(p, { recursive: true, force: true }); break;
        case 3: mkdirSync(p, { recursive: true }); break;
        case 4: if (!existsSync(q)) execFileSync('mv', [p, q], { stdio: 'ignore' }); break;
        case 5: chmodSync(p, rnd() < 0.5 ? 0o4755 : 0o600); break;
        case 6: symlinkSync(NAMES[Math.floor(rnd() * 4)]!, p); break;
        case 7: if (lstatSync(p).isFile()) linkSync(p, q); break;
        case 8: rmSync(p, { recursive: true, force: true }); mkdirSync(p, { recursive: true }); writeFileSync(join(p, 'z'), 'z'); break;
      }
    } catch { /* the random op did not apply (missing parent, exists, …): fine */ }
  }
}

describe('diffUpperdir on random changes', () => {
  test('10 seeded random RUN steps reproduce the mount exactly', async (ctx) => {
    const why = overlayMissing();
    if (why) { ctx.skip(why); return; }
    for (let seed = 1; seed <= 10; seed++) {
      const rnd = prng(seed * 7919);
      const l1 = await baseLayer(rnd, []);
      const l2 = await baseLayer(rnd, [l1]);
      const base = tmp('fdm');
      const { mnt, upper } = mountOverlay(base, [l1, l2]);
      let seen: ReturnType<typeof describeTree>;
      try {
        mutate(mnt, rnd, 30);
        seen = describeTree(mnt);
      } finally { umount(mnt); }
      const entries: LayerEntry[] = diffUpperdir(upper, [l1, l2]) ?? [];
      const w = new LayerWriter();
      entries.forEach((e) => w.add(e));
      const l3 = tmp('fd');
      await unpackLayerToSnapshot(w.stream(), l3, { lowers: [l1, l2] });
      expect({ seed, tree: describeView(new MergedView([l1, l2, l3])) }).toEqual({ seed, tree: seen });
      const again = mountOverlay(tmp('fdk'), [l1, l2, l3]);
      let kernel;
      try { kernel = describeTree(again.mnt); } finally { umount(again.mnt); }
      expect({ seed, tree: kernel }).toEqual({ seed, tree: seen });
      // The same upper KEPT as the snapshot (what a RUN does now) must equal the unpacked one
      // (whole-second mtimes compared) and give the same union.
      const plan = diffUpper(upper, [l1, l2]);
      const keptRoot = tmp('fdkeep');
      const kept = await keepUpperAsSnapshot({ ensure: async (_id, fill) => { const d = join(keptRoot, 'snap'); mkdirSync(d); await fill(d); return d; } },
        upper, `sha256:${String(seed).padStart(64, '0')}`, plan);
      // Whiteouts (char 0:0) are made when made: the kernel's in the kept upper, mknod's in the unpack.
      const noWhiteoutTimes = (t: ReturnType<typeof describeTree>): ReturnType<typeof describeTree> =>
        Object.fromEntries(Object.entries(t).map(([k, d]) => [k, d.type === 'char' && d.dev === '0:0' ? { ...d, mtime: undefined } : d]));
      expect({ seed, tree: noWhiteoutTimes(describeTree(kept, { mtime: true })) }).toEqual({ seed, tree: noWhiteoutTimes(describeTree(l3, { mtime: true })) });
      expect({ seed, tree: describeView(new MergedView([l1, l2, kept])) }).toEqual({ seed, tree: seen });
    }
  });
});
