/** Archives written by other tools (skopeo) loaded by tsbuild; layout directories; old-style docker archives. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { createHash } from 'node:crypto';
import { loadArchive } from '../../src/oci/archive.js';
import { exportImage, parseOutputSpec } from '../../src/oci/export.js';
import { readImage, MediaType } from '../../src/oci/image.js';
import { makeImage, tempStore, type TempStore } from './fixtures.js';

let t: TempStore;
beforeAll(async () => { t = await tempStore(); });
afterAll(async () => { await t.cleanup(); });

const hasSkopeo = spawnSync('sh', ['-c', 'command -v skopeo']).status === 0;
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe.skipIf(!hasSkopeo)('archives written by skopeo', () => {
  it('loads an OCI layout directory and an old-style docker-archive written by skopeo', async () => {
    const d = await makeImage(t.store, { layers: [{ 'one.txt': '1' }, { 'two.txt': '2' }] });
    const diffIds = (await readImage(t.store, d)).config.rootfs.diff_ids;
    const archive = join(t.dir, 'src.tar');
    await exportImage(t.store, d, parseOutputSpec(`type=oci,dest=${archive},name=src:1`));
    const layoutDir = join(t.dir, 'skopeo-layout');
    execFileSync('skopeo', ['copy', '-q', `oci-archive:${archive}:1`, `oci:${layoutDir}:v1`]);
    const dockerArchive = join(t.dir, 'skopeo-docker.tar');
    execFileSync('skopeo', ['copy', '-q', `oci-archive:${archive}:1`, `docker-archive:${dockerArchive}:example.com/sk/img:7`]);
    // Old style: <hex>.tar layers + <hex>.json config + manifest.json, no index.json.
    const names = execFileSync('tar', ['-tf', dockerArchive], { encoding: 'utf8' });
    expect(names).toContain('manifest.json');
    expect(names).not.toContain('index.json');

    const t2 = await tempStore();
    try {
      const r1 = await loadArchive(t2.store, { dir: layoutDir });
      expect(r1.images).toHaveLength(1);
      const im1 = await readImage(t2.store, r1.images[0]!.descriptor);
      expect(im1.config.rootfs.diff_ids).toEqual(diffIds);
      const r2 = await loadArchive(t2.store, createReadStream(dockerArchive));
      expect(r2.images[0]!.names).toEqual(['example.com/sk/img:7']);
      const im2 = await readImage(t2.store, 'example.com/sk/img:7');
      expect(im2.config.rootfs.diff_ids).toEqual(diffIds);
      expect(im2.manifest.mediaType).toBe(MediaType.DOCKER_MANIFEST);
      // `docker save | gzip` (and zstd) archives load too.
      const gz = join(t2.dir, 'archive.tar.gz');
      execFileSync('sh', ['-c', `gzip -c "${dockerArchive}" > "${gz}"`]);
      const r3 = await loadArchive(t2.store, createReadStream(gz));
      expect(r3.images[0]!.names).toEqual(['example.com/sk/img:7']);
      const zs = join(t2.dir, 'archive.tar.zst');
      execFileSync('zstd', ['-q', '-f', dockerArchive, '-o', zs]);
      expect((await loadArchive(t2.store, createReadStream(zs))).images[0]!.descriptor.digest).toBe(r3.images[0]!.descriptor.digest);
      // And it exports again as a valid OCI archive skopeo reads.
      const again = join(t2.dir, 'again.tar');
      await exportImage(t2.store, im2.descriptor, parseOutputSpec(`type=oci,dest=${again},name=again:1`));
      const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${again}:1`], { encoding: 'utf8' }));
      expect(info.Layers).toHaveLength(2);
    } finally { await t2.cleanup(); }
  });
});

describe('old-style docker archive with symlinked layers', () => {
  it('resolves a layer.tar symlink inside the archive (docker save dedup)', async () => {
    const p0 = tar.pack();
    const chunks0: Buffer[] = [];
    const c0 = (async () => { for await (const c of p0 as AsyncIterable<Buffer>) chunks0.push(c); })();
    p0.entry({ name: 'same.txt', size: 4 }, Buffer.from('same'));
    p0.finalize(); await c0;
    const layer = Buffer.concat(chunks0);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer), sha(layer)] } }));
    const p = tar.pack();
    const chunks: Buffer[] = [];
    const c = (async () => { for await (const x of p as AsyncIterable<Buffer>) chunks.push(x); })();
    const add = (h: Parameters<typeof p.entry>[0], b?: Buffer) => new Promise<void>((res, rej) => (b ? p.entry(h, b, (e) => (e ? rej(e) : res())) : p.entry(h, (e) => (e ? rej(e) : res()))));
    await add({ name: 'aaa/', type: 'directory' });
    await add({ name: 'aaa/layer.tar', size: layer.length }, layer);
    await add({ name: 'bbb/', type: 'directory' });
    await add({ name: 'bbb/layer.tar', type: 'symlink', linkname: '../aaa/layer.tar' });
    await add({ name: 'cfg.json', size: config.length }, config);
    const mj = Buffer.from(JSON.stringify([{ Config: 'cfg.json', RepoTags: ['dup:1'], Layers: ['aaa/layer.tar', 'bbb/layer.tar'] }]));
    await add({ name: 'manifest.json', size: mj.length }, mj);
    p.finalize(); await c;
    const r = await loadArchive(t.store, Readable.from([Buffer.concat(chunks)]));
    expect(r.images[0]!.names).toEqual(['docker.io/library/dup:1']);
    const im = await readImage(t.store, 'dup:1');
    expect(im.manifest.layers.map((l) => l.digest)).toEqual([sha(layer), sha(layer)]);
    // The config bytes are kept as they were (its digest is docker's image ID).
    expect(im.manifest.config.digest).toBe(sha(config));
  });
});

describe('zstd program missing', () => {
  it('is a coded error naming the Debian package', async () => {
    const d = await makeImage(t.store, { layers: [{ 'nz.txt': 'no zstd here' }] });
    const saved = process.env.PATH;
    process.env.PATH = join(t.dir, 'empty-bin');
    let err: unknown;
    try {
      await exportImage(t.store, d, parseOutputSpec(`type=oci,dest=${join(t.dir, 'nz.tar')},compression=zstd,force-compression=true`));
    } catch (e) { err = e; } finally { process.env.PATH = saved; }
    expect(err).toMatchObject({ code: 'TSB6130', hint: expect.stringContaining('apt-get install zstd') });
  });
});
