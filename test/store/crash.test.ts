/**
 * Crash test: child processes putting blobs, committing images, tagging, recording cache entries,
 * retagging, untagging and collecting garbage on one store are SIGKILLed at random instants.
 * After every round: `verify` is clean, tmp/ holds nothing, and every tag resolves to a complete
 * image (manifest → config + every layer present and matching its digest).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../store/index.js';
import { buildWorker } from './build-worker.js';
import { makeImage, tempStoreDir } from './image.js';

const ROUNDS = Number(process.env.TSB_CRASH_ROUNDS ?? 50);
const MODES = ['writer', 'writer', 'tagger', 'gc'];

let worker: string;
let cleanupWorker: () => Promise<void>;
beforeAll(async () => { ({ worker, cleanup: cleanupWorker } = await buildWorker()); });
afterAll(async () => { await cleanupWorker?.(); });

async function checkComplete(store: Store): Promise<string[]> {
  const names: string[] = [];
  for (const r of await store.refs.list()) {
    const m = await store.blobs.readJSON<{ config: { digest: string }; layers: { digest: string }[] }>(r.descriptor.digest);
    const cfg = await store.blobs.readJSON<{ rootfs: { diff_ids: string[] } }>(m.config.digest);
    expect(cfg.rootfs.diff_ids).toEqual(m.layers.map((l) => l.digest));
    for (const l of m.layers) {
      const chunks: Buffer[] = [];
      for await (const c of store.blobs.open(l.digest)) chunks.push(c as Buffer); // verifies the digest
      expect(chunks.length).toBeGreaterThan(0);
    }
    names.push(r.name);
  }
  return names;
}

describe('SIGKILL at random instants', () => {
  it(`${ROUNDS} rounds × ${MODES.length} killed workers leave a consistent store`, async () => {
    const { dir, cleanup } = await tempStoreDir();
    let kills = 0;
    let maxRefs = 0;
    let writerTags = 0;
    const stderr: string[] = [];
    try {
      // Seed a few images so taggers and gc have material from the first round.
      const seed = await openStore(dir);
      for (let i = 0; i < 3; i++) await makeImage(seed, `seed:${i}`, [{ base: 'same in every image' }, { [`s${i}`]: String(i) }]);
      await seed.close();
      for (let round = 0; round < ROUNDS; round++) {
        const kids = MODES.map((mode, i) => {
          const c: ChildProcess = spawn(process.execPath, [worker, dir, mode, String(i)], { stdio: ['ignore', 'pipe', 'pipe'] });
          c.stderr!.on('data', (d: Buffer) => stderr.push(`round ${round} ${mode}: ${d}`));
          const exited = new Promise<void>((r) => c.once('exit', () => r()));
          const ready = new Promise<void>((r) => { c.stdout!.once('data', () => r()); c.once('exit', () => r()); });
          return { c, exited, ready };
        });
        // Let them get going (node start ≈ 100–200 ms), then kill each at its own random instant.
        await Promise.all(kids.map(async ({ c, exited, ready }) => {
          // Kill at a random instant after the store is open (the machine may be loaded: node
          // start-up time varies a lot, so the clock starts at "ready").
          await ready;
          await new Promise((r) => setTimeout(r, Math.random() * 1200));
          if (c.exitCode === null && c.signalCode === null && c.kill('SIGKILL')) kills++;
          await exited;
        }));
        if (stderr.length) break; // a worker failed on its own: reported below
        const t0 = Date.now();
        const store = await openStore(dir);
        const problems = await store.verify();
        expect(problems, `round ${round}`).toEqual([]);
        expect(await readdir(join(dir, 'tmp')), `round ${round}: tmp swept`).toEqual([]);
        const names = await checkComplete(store);
        maxRefs = Math.max(maxRefs, names.length);
        writerTags += names.filter((n) => n.startsWith('img')).length;
        await store.close();
        if (process.env.TSB_CRASH_DEBUG) console.log(`round ${round}: verify+check ${Date.now() - t0} ms, ${kills} kills`);
      }
      // Workers only ever fail by being killed; any error they printed is a bug.
      expect(stderr.filter((s) => !/^\s*$/.test(s))).toEqual([]);
      expect(kills).toBeGreaterThanOrEqual(ROUNDS * MODES.length * 0.95);
      expect(writerTags).toBeGreaterThan(0); // the killed writers did get to tag things
      console.log(`crash test: ${kills} SIGKILLs, up to ${maxRefs} tags checked per round`);
    } finally {
      await cleanup();
    }
  }, 600_000);
});
