/**
 * The cache listing snapshot (store/cache.ts, listing.v2): `cache ls` reads it plus the log's tail;
 * it must always agree with the log itself, and be ignored whenever it does not fit the log.
 */
import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type FsStore } from '../../store/index.js';
import { makeImage, tempStoreDir, type TestImage } from './image.js';

let dir: string;
let cleanup: () => Promise<void>;
let store: FsStore;
let img: TestImage;

beforeEach(async () => {
  ({ dir, cleanup } = await tempStoreDir());
  store = await openStore(dir);
  img = await makeImage(store, undefined, [{ a: '1' }]);
});
afterEach(async () => { await store.close(); await cleanup(); });

const key = (i: number) => `v1:sha256:${i.toString(16).padStart(64, '0')}`;
const listing = () => join(dir, 'tsbuild', 'v1', 'cache', 'listing.v2');

async function putN(from: number, n: number): Promise<void> {
  await store.cache.putMany(Array.from({ length: n }, (_, k) => ({
    key: key(from + k), instruction: `RUN step\t${from + k} "quoted" ünïcode`, source: { file: 'Dockerfile', line: from + k },
    inputs: {}, layer: img.layers[0], config: img.config,
  })));
}

/** Ground truth: the full records, in the listing's order. */
async function truth(): Promise<unknown[]> {
  const recs = await store.cache.list();
  return recs.map((r) => ({ key: r.key, lastUsed: r.lastUsed, hits: r.hits, created: r.created, size: r.layer?.size ?? 0, source: `${r.source!.file}:${r.source!.line}`, instruction: r.instruction }))
    .sort((a, b) => (a.lastUsed < b.lastUsed ? 1 : a.lastUsed > b.lastUsed ? -1 : a.key < b.key ? -1 : 1));
}

describe('cache listing snapshot', () => {
  it('is written once there are enough records, then reused with the log tail applied', async () => {
    await putN(0, 50);
    expect(await store.cache.summaries()).toEqual(await truth());
    await expect(stat(listing())).rejects.toThrow(); // too few records to bother
    await putN(50, 250);
    expect(await store.cache.summaries()).toEqual(await truth());
    const first = await readFile(listing(), 'utf8');
    expect(first.split('\n')[0]).toMatch(/^tsbuild-cache-listing\t2\t\d+\t\d+\t[0-9a-f]+\t[0-9a-f]+\t300$/);
    // Changes after the snapshot: a hit, a replaced record, a removal, a new record.
    await store.cache.touch(key(3));
    await store.cache.put({ key: key(7), instruction: 'RUN changed', inputs: {}, source: { file: 'Dockerfile', line: 1 }, layer: img.layers[0], config: img.config });
    await store.cache.delete([key(9)]);
    await putN(1000, 1);
    const got = await store.cache.summaries();
    expect(got).toEqual(await truth());
    expect(got.length).toBe(300);
    expect(got.find((s) => s.key === key(3))!.hits).toBe(1);
    expect(await readFile(listing(), 'utf8')).toBe(first); // a short tail does not rewrite it
  });

  it('is ignored when it does not fit the log: other file (compaction), same inode with other bytes, torn', async () => {
    await putN(0, 300);
    await store.cache.summaries();
    const snap = await readFile(listing(), 'utf8');
    const header = snap.split('\n')[0]!.split('\t');
    // Same inode and length, other content: the fingerprint catches it.
    const ino = (await stat(store.cache.file)).ino;
    expect(Number(header[2])).toBe(ino);
    await writeFile(listing(), [header.slice(0, 4).join('\t'), '00'.repeat(64), header[5], header[6]].join('\t') + '\n' + snap.slice(snap.indexOf('\n') + 1));
    await store.cache.delete([key(1)]);
    expect(await store.cache.summaries()).toEqual(await truth());
    // Torn snapshot (a reader killed while writing cannot leave one: temp + rename; external damage can).
    const good = await readFile(listing(), 'utf8');
    expect(good.split('\n')[0]).toMatch(/\t299$/);
    await truncate(listing(), Math.floor(good.length / 2));
    await store.cache.delete([key(2)]);
    expect(await store.cache.summaries()).toEqual(await truth());
    // Compaction replaces the log file: the snapshot is then for another file, and is rewritten.
    await store.cache.delete(Array.from({ length: 250 }, (_, i) => key(i + 10)));
    await store.cache.holding(() => (store.cache as unknown as { compact(): Promise<void> }).compact());
    const left = await store.cache.summaries(); // 48 left: the old snapshot is not trusted
    expect(left).toEqual(await truth());
    expect(left.length).toBe(48);
    await putN(2000, 300);
    expect(await store.cache.summaries()).toEqual(await truth());
    expect((await readFile(listing(), 'utf8')).split('\n')[0]).toMatch(/\t348$/);
  });

  it('summaryColumns() (what cache ls reads) is summaries() in columns, with and without a tail', async () => {
    await putN(0, 300);
    const cols = (c: Awaited<ReturnType<typeof store.cache.summaryColumns>>) => c.key.map((k, i) => ({
      key: k, lastUsed: new Date(c.lastUsed[i] as number).toISOString(), hits: c.hits[i], created: new Date(c.created[i] as number).toISOString(),
      size: c.size[i], source: c.source[i], instruction: c.instruction[i],
    }));
    const first = await store.cache.summaryColumns(); // from the log (writes the snapshot)
    expect(typeof first.lastUsed[0]).toBe('number'); // tsbuild's own ISO dates travel as milliseconds
    expect(cols(first)).toEqual(await truth());
    expect(cols(await store.cache.summaryColumns())).toEqual(await truth()); // from the snapshot
    await store.cache.touch(key(5));
    await store.cache.delete([key(6)]);
    const tailed = await store.cache.summaryColumns(); // snapshot + tail
    expect(cols(tailed)).toEqual(await truth());
    expect(tailed.key[0]).toBe(key(5));
  });

  it('a long tail makes the reader rewrite it', async () => {
    await putN(0, 300);
    await store.cache.summaries();
    const before = await readFile(listing(), 'utf8');
    for (let i = 0; i < 6; i++) await putN(10_000 + i * 100, 100);
    expect(await store.cache.summaries()).toEqual(await truth());
    const after = await readFile(listing(), 'utf8');
    expect(after).not.toBe(before);
    expect(after.split('\n')[0]).toMatch(/\t900$/);
  });
});
