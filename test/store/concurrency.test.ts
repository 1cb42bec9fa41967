/**
 * Concurrency test: 8 processes write images, tag (a unique name each step plus one shared name),
 * record and delete cache entries, untag, and run gc on one store at once. The final state must be
 * exactly what the sequence of operations implies: no tag update or cache record lost, nothing
 * deleted that was not asked for, verify clean.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../store/index.js';
import { buildWorker } from './build-worker.js';
import { tempStoreDir } from './image.js';

const PROCS = 8;
const STEPS = 15;

let worker: string;
let cleanupWorker: () => Promise<void>;
beforeAll(async () => { ({ worker, cleanup: cleanupWorker } = await buildWorker()); });
afterAll(async () => { await cleanupWorker?.(); });

describe('8 processes on one store', () => {
  it('lose no update', async () => {
    const { dir, cleanup } = await tempStoreDir();
    try {
      await (await openStore(dir)).close();
      const results = await Promise.all(Array.from({ length: PROCS }, (_, id) => new Promise<{ code: number | null; out: string; err: string }>((res) => {
        const c = spawn(process.execPath, [worker, dir, 'conc', String(id), String(STEPS)]);
        let out = ''; let err = '';
        c.stdout.on('data', (d: Buffer) => { out += d; });
        c.stderr.on('data', (d: Buffer) => { err += d; });
        c.on('exit', (code) => res({ code, out, err }));
      })));
      for (const r of results) expect(r.err).toBe('');
      expect(results.map((r) => r.code)).toEqual(Array(PROCS).fill(0));
      const store = await openStore(dir);
      const want = new Set<string>(['shared:latest']);
      const wantKeys = new Set<string>();
      for (let id = 0; id < PROCS; id++) {
        for (let j = 0; j < STEPS; j++) if (j % 3 !== 0) { want.add(`w${id}:${j}`); wantKeys.add(`v1:${id}:${j}`); }
      }
      const names = (await store.refs.list()).map((e) => e.name);
      expect(names.length).toBe(new Set(names).size);
      expect(new Set(names)).toEqual(want);
      expect(new Set((await store.cache.list()).map((r) => r.key))).toEqual(wantKeys);
      // The shared tag holds the image of the globally last set: the last one some worker set.
      const shared = await store.refs.get('shared:latest');
      const lasts = results.map((r) => (JSON.parse(r.out) as { lastShared: string }).lastShared);
      expect(lasts).toContain(shared!.digest);
      expect(await store.verify()).toEqual([]);
      await store.close();
    } finally {
      await cleanup();
    }
  }, 300_000);
});
