/**
 * The image listing snapshot (store/refs.ts, refs-listing.v1): `images` reads it instead of the
 * whole index.json; it must always agree with index.json, and be ignored whenever it does not fit.
 */
import { readFile, rename, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type FsStore } from '../../store/index.js';
import { A_CONFIG, A_CREATED, A_SIZE, REF_NAME, listingTableOf, type RefListingTable } from '../../store/refs.js';
import { makeImage, tempStoreDir, type TestImage } from './image.js';

let dir: string;
let cleanup: () => Promise<void>;
let store: FsStore;
let a: TestImage;
let b: TestImage;

beforeEach(async () => {
  ({ dir, cleanup } = await tempStoreDir());
  store = await openStore(dir);
  a = await makeImage(store, undefined, [{ a: '1' }], { created: '2024-01-01T00:00:00Z' });
  b = await makeImage(store, undefined, [{ b: '2' }], { created: '2025-06-01T00:00:00Z' });
});
afterEach(async () => { await store.close(); await cleanup(); });

const snapshot = () => join(dir, 'tsbuild', 'v1', 'refs-listing.v1');

/** Ground truth from index.json itself, row by row. */
async function truth(): Promise<unknown[]> {
  const listed = (await store.refs.readIndex()).manifests.flatMap((m) => {
    const a = m.annotations ?? {};
    const name = a[REF_NAME];
    return name === undefined ? [] : [{ name, digest: m.digest, config: a[A_CONFIG], created: a[A_CREATED], size: Number(a[A_SIZE] ?? 0) }];
  });
  const rows = listed.sort((x, y) => ((x.created ?? '') < (y.created ?? '') ? 1 : (x.created ?? '') > (y.created ?? '') ? -1 : x.name < y.name ? -1 : 1));
  return rows.map((r) => ({ name: r.name, digest: r.digest, config: r.config ?? null, created: r.created ?? null, size: r.size }));
}

function rows(t: RefListingTable): unknown[] {
  return t.names.map((name, i) => { const k = t.image[i]!; return { name, digest: t.digest[k], config: t.config[k], created: t.created[k], size: t.size[k] }; });
}

describe('image listing snapshot', () => {
  it('lists what index.json holds, newest image first then by name, one entry per distinct image', async () => {
    await store.refs.setMany([
      { name: 'docker.io/library/z:1', descriptor: a.manifest },
      { name: 'docker.io/library/a:1', descriptor: a.manifest },
      { name: 'docker.io/library/m:2', descriptor: b.manifest },
    ]);
    const t = await store.refs.listingTable();
    expect(rows(t)).toEqual(await truth());
    expect(t.names).toEqual(['docker.io/library/m:2', 'docker.io/library/a:1', 'docker.io/library/z:1']);
    expect(t.digest.length).toBe(2);
    expect((await readFile(snapshot(), 'utf8')).split('\n')[0]).toMatch(/^tsbuild-refs-listing\t1\t\d+\t\d+\t[\d.]+\t[0-9a-f]+\t3$/);
    // Read back from the snapshot: the same table.
    expect(await store.refs.listingTable()).toEqual(t);
  });

  it('follows every change of index.json (tag, retag, delete)', async () => {
    await store.refs.set('docker.io/library/x:1', a.manifest);
    expect(rows(await store.refs.listingTable())).toEqual(await truth());
    await store.refs.set('docker.io/library/y:1', b.manifest);
    expect(rows(await store.refs.listingTable())).toEqual(await truth());
    await store.refs.set('docker.io/library/x:1', b.manifest);
    expect(rows(await store.refs.listingTable())).toEqual(await truth());
    await store.refs.delete('docker.io/library/y:1');
    const t = await store.refs.listingTable();
    expect(rows(t)).toEqual(await truth());
    expect(t.names).toEqual(['docker.io/library/x:1']);
  });

  it('is used only while it names the same index.json: a forged snapshot for another state is ignored', async () => {
    await store.refs.set('docker.io/library/x:1', a.manifest);
    await store.refs.listingTable();
    const snap = await readFile(snapshot(), 'utf8');
    const [head, body] = snap.split('\n');
    // The right stamp with other contents IS used (it is a cache: this shows the stamp is what decides).
    const forged = JSON.parse(body!) as RefListingTable;
    forged.names = ['docker.io/library/forged:1'];
    await writeFile(snapshot(), `${head}\n${JSON.stringify(forged)}\n`);
    expect((await store.refs.listingTable()).names).toEqual(['docker.io/library/forged:1']);
    // index.json replaced (new inode), or the same file touched (mtime): the snapshot is ignored and rewritten.
    const index = join(dir, 'index.json');
    await writeFile(`${index}.new`, await readFile(index));
    await rename(`${index}.new`, index);
    expect((await store.refs.listingTable()).names).toEqual(['docker.io/library/x:1']);
    await writeFile(snapshot(), `${(await readFile(snapshot(), 'utf8')).split('\n')[0]}\n${JSON.stringify(forged)}\n`);
    const st = await stat(index);
    await utimes(index, st.atime, new Date(st.mtimeMs + 5000));
    expect((await store.refs.listingTable()).names).toEqual(['docker.io/library/x:1']);
    // Torn, foreign or with a wrong count: ignored.
    for (const bad of [snap.slice(0, snap.length - 10), 'hello\n', snap.replace(/\t1\n/, '\t2\n')]) {
      await writeFile(snapshot(), bad);
      await utimes(index, st.atime, new Date(st.mtimeMs + 5000)); // keep the stamp the real one
      expect(rows(await store.refs.listingTable())).toEqual(await truth());
    }
  });

  it('an empty store lists nothing', async () => {
    expect((await store.refs.listingTable()).names).toEqual([]);
    expect((await store.refs.listingTable()).names).toEqual([]);
  });

  it('listingTableOf keeps names without a created date last and unnamed entries out', () => {
    const t = listingTableOf({ schemaVersion: 2, manifests: [
      { mediaType: 'm', digest: 'sha256:1', size: 1, annotations: { 'org.opencontainers.image.ref.name': 'n1' } },
      { mediaType: 'm', digest: 'sha256:2', size: 1 },
      { mediaType: 'm', digest: 'sha256:3', size: 1, annotations: { 'org.opencontainers.image.ref.name': 'n3', 'org.opencontainers.image.created': '2020-01-01T00:00:00Z', 'dev.tsbuild.image.size': '7' } },
    ] });
    expect(t.names).toEqual(['n3', 'n1']);
    expect(rows(t)).toEqual([
      { name: 'n3', digest: 'sha256:3', config: null, created: '2020-01-01T00:00:00Z', size: 7 },
      { name: 'n1', digest: 'sha256:1', config: null, created: null, size: 0 },
    ]);
  });
});
