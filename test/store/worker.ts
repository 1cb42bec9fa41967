/**
 * Child process for the crash and concurrency tests (compiled by build-worker.ts, run with node).
 *   node worker.js STORE MODE ID [N]
 * Crash modes loop until killed: writer (lease → image → tag → cache record), tagger (retag and
 * untag existing names), gc (gc + rmi). `conc` does a fixed sequence and prints what it did as
 * JSON, so the parent can check that no update was lost.
 */
import { randomBytes } from 'node:crypto';
import { openStore } from '../../store/index.js';
import { TsbError } from '../../store/errors.js';
import { E } from '../../store/fsutil.js';
import { makeImage } from './image.js';

const [dir, mode, idArg, nArg] = process.argv.slice(2);
const id = Number(idArg ?? 0);
const n = Number(nArg ?? 20);
const pick = <T>(a: T[]): T | undefined => a[Math.floor(Math.random() * a.length)];

async function main(): Promise<void> {
  const store = await openStore(dir!);
  if (mode !== 'conc') process.stdout.write('ready\n'); // the crash test starts its kill timer now
  if (mode === 'writer') {
    for (let i = 0; ; i++) {
      const lease = await store.lease(`writer ${id}`);
      const big = Math.random() < 0.1 ? randomBytes(1 << 20).toString('base64') : '';
      const img = await makeImage(store, undefined, [{ base: 'same in every image' }, { [`f${i}`]: randomBytes(64).toString('hex') + big }]);
      await lease.add(img.manifest.digest, img.config, ...img.layers.map((l) => l.digest));
      await store.refs.set(`img${id}:${i % 5}`, img.manifest);
      await store.cache.put({ key: `v1:${id}:${i}`, instruction: `RUN step ${i}`, source: { file: 'Dockerfile', line: 1 + (i % 7) }, inputs: { i: String(i) }, layer: img.layers[1], config: img.config });
      if (i % 3 === 0) await store.cache.touch(`v1:${id}:${i}`);
      await lease.release();
    }
  } else if (mode === 'tagger') {
    for (let i = 0; ; i++) {
      const refs = await store.refs.list();
      const r = pick(refs);
      // gc may delete that name and sweep its image between list() and set(): the store then
      // refuses the tag (INCOMPLETE) instead of tagging a hole; that refusal is the contract.
      if (r) await store.refs.set(`copy${id}:${i % 7}`, r.descriptor).catch((e: unknown) => {
        if (!(e instanceof TsbError && e.code === E.INCOMPLETE)) throw e;
      });
      const d = pick(refs.filter((x) => x.name.startsWith('copy')));
      if (d && Math.random() < 0.3) await store.refs.delete(d.name);
      if (!refs.length) await new Promise((res) => setTimeout(res, 5));
    }
  } else if (mode === 'gc') {
    for (;;) {
      const refs = await store.refs.list();
      const d = pick(refs);
      if (d && Math.random() < (d.name.startsWith('copy') ? 0.5 : 0.05)) await store.refs.delete(d.name);
      const recs = await store.cache.list();
      if (recs.length > 20) await store.cache.delete(recs.slice(0, 10).map((r) => r.key));
      await store.gc();
      await new Promise((res) => setTimeout(res, 30));
    }
  } else if (mode === 'conc') {
    // Each step's outcome is known in advance, so the parent can compute the exact final state.
    const lease = await store.lease(`conc ${id}`);
    let lastShared = '';
    for (let j = 0; j < n; j++) {
      const img = await makeImage(store, undefined, [{ shared: 'x' }, { [`w${id}-${j}`]: String(j) }]);
      await store.refs.set(`w${id}:${j}`, img.manifest);
      await store.refs.set('shared:latest', img.manifest);
      lastShared = img.manifest.digest;
      await store.cache.put({ key: `v1:${id}:${j}`, instruction: `RUN ${j}`, inputs: {}, layer: img.layers[1], config: img.config });
      if (j % 3 === 0) {
        await store.refs.delete(`w${id}:${j}`);
        await store.cache.delete([`v1:${id}:${j}`]);
      }
      if (j % 5 === 4) await store.gc();
    }
    await lease.release();
    process.stdout.write(JSON.stringify({ id, done: n, lastShared }) + '\n');
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`worker ${id} (${mode}): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
