import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';

// Async on purpose: the token server runs in this process, so a blocking exec would deadlock skopeo.
const run = async (cmd: string, args: string[]) => (await promisify(execFile)(cmd, args, { encoding: 'utf8' })).stdout;
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pullImage, pushImage, resolveBaseImage, CHUNK_THRESHOLD } from '../../src/oci/registry.js';
import { exportImage, parseOutputSpec, distributionImage } from '../../src/oci/export.js';
import { MediaType, layerDescriptor, readImage, writeImage } from '../../src/oci/image.js';
import { registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, makeLayer, tempStore, type TempStore } from './fixtures.js';

const missing = registryMissing();
const hasSkopeo = spawnSync('sh', ['-c', 'command -v skopeo']).status === 0;
if (missing) console.warn(missing);

async function authFile(dir: string, reg: TestRegistry): Promise<string> {
  const p = join(dir, `auth-${reg.port}.json`);
  await writeFile(p, JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from(`${reg.username}:${reg.password}`).toString('base64') } } }));
  return p;
}

for (const mode of ['none', 'basic', 'token'] as const) {
  const why = registryMissing(mode);
  if (why && mode !== 'none') console.warn(why);
  describe.skipIf(!!why)(`registry (${mode} auth)`, () => {
    let reg: TestRegistry;
    let t: TempStore;
    let auth: string;
    beforeAll(async () => {
      reg = await startRegistry({ auth: mode });
      t = await tempStore();
      auth = await authFile(t.dir, reg);
    });
    afterAll(async () => { await reg?.stop(); await t?.cleanup(); });

    it('push then pull keeps every digest', async () => {
      const d = await makeImage(t.store, { layers: [{ 'a.txt': 'alpha\n' }, { 'b/c.txt': 'gamma\n'.repeat(1000) }] });
      const im = await readImage(t.store, d);
      const dist = await distributionImage(t.store, im, { mediaTypes: 'oci' });
      const name = `${reg.host}/team/app:1`;
      const r = await pushImage(t.store, dist, name, { authFile: auth });
      expect(r.uploaded).toBe(3);
      // A second push uploads nothing.
      const again = await pushImage(t.store, dist, name, { authFile: auth });
      expect(again).toMatchObject({ uploaded: 0, skipped: 3 });
      const t2 = await tempStore();
      try {
        const p = await pullImage(t2.store, name, { authFile: auth });
        expect(p.descriptor.digest).toBe(dist.digest);
        const pulled = await readImage(t2.store, name);
        const distIm = await readImage(t.store, dist);
        expect(pulled.manifest).toEqual(distIm.manifest);
        expect(pulled.config.rootfs.diff_ids).toEqual(im.config.rootfs.diff_ids);
        for (const id of pulled.config.rootfs.diff_ids) expect(await t2.store.blobs.has(id)).toBe(true);
        // Push the pulled image to another repository: same manifest digest, blobs mounted.
        const back = await pushImage(t2.store, p.descriptor, `${reg.host}/other/copy:2`, { authFile: auth });
        expect(back.digest).toBe(dist.digest);
        expect(back.uploaded).toBe(0);
        expect(back.mounted + back.skipped).toBe(3);
      } finally { await t2.cleanup(); }
      if (mode === 'token') expect(reg.tokensIssued()).toBeGreaterThan(0);
    });

    if (mode !== 'none') {
      it('refuses without credentials with TSB6140', async () => {
        const t2 = await tempStore();
        try {
          await expect(pullImage(t2.store, `${reg.host}/team/app:1`, { authFile: join(t2.dir, 'none.json') })).rejects.toMatchObject({ code: 'TSB6140' });
          await writeFile(join(t2.dir, 'bad.json'), JSON.stringify({ auths: { [reg.host]: { auth: Buffer.from('tester:wrong').toString('base64') } } }));
          await expect(pullImage(t2.store, `${reg.host}/team/app:1`, { authFile: join(t2.dir, 'bad.json') })).rejects.toMatchObject({ code: 'TSB6140' });
        } finally { await t2.cleanup(); }
      });
    }

    it('reports a missing tag as TSB6142 naming it', async () => {
      const t2 = await tempStore();
      try {
        await expect(pullImage(t2.store, `${reg.host}/team/app:nope`, { authFile: auth })).rejects.toMatchObject({ code: 'TSB6142', message: expect.stringContaining('team/app') });
      } finally { await t2.cleanup(); }
    });

    it.skipIf(!hasSkopeo)('interoperates with skopeo both ways', async () => {
      const creds = mode === 'none' ? [] : ['--creds', `${reg.username}:${reg.password}`];
      // tsbuild → registry → skopeo
      const d = await makeImage(t.store, { layers: [{ 'sk.txt': 'skopeo\n' }] });
      await exportImage(t.store, d, parseOutputSpec(`type=registry,name=${reg.host}/sk/one:1`), { registry: { authFile: auth } });
      const info = JSON.parse(await run('skopeo', ['inspect', '--tls-verify=false', ...creds, `docker://${reg.host}/sk/one:1`]));
      expect(info.Layers).toHaveLength(1);
      // skopeo → registry → tsbuild (an OCI layout made by tsbuild, copied by skopeo)
      const layout = join(t.dir, `sklayout-${mode}`);
      const d2 = await makeImage(t.store, { layers: [{ 'from-skopeo.txt': 'x\n' }, { 'y.txt': 'y\n' }] });
      await exportImage(t.store, d2, parseOutputSpec(`type=oci,dest=${layout},tar=false,name=sk:2`));
      await run('skopeo', ['copy', '--dest-tls-verify=false', ...(mode === 'none' ? [] : ['--dest-creds', `${reg.username}:${reg.password}`]), `oci:${layout}:2`, `docker://${reg.host}/sk/two:2`]);
      const digest = (await run('skopeo', ['inspect', '--tls-verify=false', ...creds, '--format', '{{.Digest}}', `docker://${reg.host}/sk/two:2`])).trim();
      const t2 = await tempStore();
      try {
        const p = await pullImage(t2.store, `${reg.host}/sk/two:2`, { authFile: auth });
        expect(p.descriptor.digest).toBe(digest);
        const im = await readImage(t2.store, `${reg.host}/sk/two:2`);
        expect(im.config.rootfs.diff_ids).toEqual((await readImage(t.store, d2)).config.rootfs.diff_ids);
        const dest = join(t2.dir, 'fs');
        await mkdir(dest);
        await exportImage(t2.store, p.descriptor, parseOutputSpec(dest));
        expect(execFileSync('cat', [join(dest, 'from-skopeo.txt')], { encoding: 'utf8' })).toBe('x\n');
      } finally { await t2.cleanup(); }
    });
  });
}

describe.skipIf(!!missing)('registry: large blobs and FROM resolution', () => {
  let reg: TestRegistry;
  let t: TempStore;
  beforeAll(async () => { reg = await startRegistry(); t = await tempStore(); });
  afterAll(async () => { await reg?.stop(); await t?.cleanup(); });

  it('uploads a blob over the chunk threshold in chunks and pulls it back', async () => {
    const big = Buffer.alloc(CHUNK_THRESHOLD + 1024 * 1024);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE((i * 2654435761) >>> 0, i);
    const d = await makeImage(t.store, { layers: [{ 'big.bin': big }] });
    const dist = await distributionImage(t.store, await readImage(t.store, d), { compression: 'uncompressed' });
    const chunks: string[] = [];
    const r = await pushImage(t.store, dist, `${reg.host}/big/one:1`, { asIs: true, onProgress: (ev) => { if (/ chunk /.test(ev.detail)) chunks.push(ev.detail); } });
    expect(r.uploaded).toBe(2);
    expect(chunks.length).toBe(Math.ceil((big.length + 10240) / (32 << 20)));
    const t2 = await tempStore();
    try {
      const p = await pullImage(t2.store, `${reg.host}/big/one:1`);
      expect(p.descriptor.digest).toBe(dist.digest);
    } finally { await t2.cleanup(); }
  });

  it('pulls docker v2 schema 2 manifests by tag and by digest, unpacking the layers to their diff_ids', async () => {
    const d = await makeImage(t.store, { layers: [{ 'd.txt': 'docker typed\n'.repeat(300) }, { 'e.txt': 'second\n' }] });
    const src = await readImage(t.store, d);
    const dist = await distributionImage(t.store, src, { mediaTypes: 'docker' });
    const pushed = await pushImage(t.store, dist, `${reg.host}/dock/v2:1`, { asIs: true });
    const t2 = await tempStore();
    try {
      const byTag = await pullImage(t2.store, `${reg.host}/dock/v2:1`);
      expect(byTag.descriptor).toMatchObject({ mediaType: MediaType.DOCKER_MANIFEST, digest: pushed.digest });
      const im = await readImage(t2.store, byTag.descriptor);
      expect(im.manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.DOCKER_LAYER_GZIP, MediaType.DOCKER_LAYER_GZIP]);
      for (const diffId of src.config.rootfs.diff_ids) expect(await t2.store.blobs.has(diffId)).toBe(true);
      const t3 = await tempStore();
      try {
        const byDigest = await pullImage(t3.store, `${reg.host}/dock/v2@${pushed.digest}`);
        expect(byDigest.descriptor.digest).toBe(pushed.digest);
        expect(byDigest.downloaded).toBe(3);
        // Pulling again downloads nothing.
        expect((await pullImage(t3.store, `${reg.host}/dock/v2@${pushed.digest}`)).downloaded).toBe(0);
      } finally { await t3.cleanup(); }
    } finally { await t2.cleanup(); }
  });

  it('compresses an uncompressed (built) manifest on push unless asIs', async () => {
    const d = await makeImage(t.store, { layers: [{ 'built.txt': 'built '.repeat(500) }] });
    const r = await pushImage(t.store, d, `${reg.host}/built/img:1`);
    expect(r.digest).not.toBe(d.digest);
    const t2 = await tempStore();
    try {
      await pullImage(t2.store, `${reg.host}/built/img:1`);
      const im = await readImage(t2.store, `${reg.host}/built/img:1`);
      expect(im.manifest.layers[0]!.mediaType).toBe(MediaType.OCI_LAYER_GZIP);
      expect(im.config.rootfs.diff_ids).toEqual((await readImage(t.store, d)).config.rootfs.diff_ids);
    } finally { await t2.cleanup(); }
    const raw = await pushImage(t.store, d, `${reg.host}/built/raw:1`, { asIs: true });
    expect(raw.digest).toBe(d.digest);
  });

  it('a built image on a pulled base pushes only its own layer: base layers reuse the pulled compressed blobs', async () => {
    const base = await makeImage(t.store, { layers: [{ 'base1.txt': 'b1 '.repeat(3000) }, { 'base2.txt': 'b2 '.repeat(3000) }] });
    const baseDist = await distributionImage(t.store, await readImage(t.store, base), { compression: 'gzip', compressionLevel: 1, force: true });
    await pushImage(t.store, baseDist, `${reg.host}/lib/base:1`);
    const t2 = await tempStore();
    try {
      const pulled = await pullImage(t2.store, `${reg.host}/lib/base:1`);
      const bi = await readImage(t2.store, pulled.descriptor);
      // What the engine writes: every layer uncompressed (diff_id), base layers included.
      const own = await makeLayer(t2.store, { 'app.txt': 'app' });
      const diffIds = [...bi.config.rootfs.diff_ids, own.digest];
      const sizes = await Promise.all(bi.config.rootfs.diff_ids.map(async (d) => (await t2.store.blobs.size(d))!));
      const child = await writeImage(t2.store, {
        config: { ...bi.config, rootfs: { type: 'layers', diff_ids: diffIds } },
        layers: [...bi.config.rootfs.diff_ids.map((d, i) => layerDescriptor(d, sizes[i]!)), own],
      });
      const r = await pushImage(t2.store, child, `${reg.host}/app/child:1`);
      expect(r.uploaded).toBe(2); // the new layer and the config
      expect(r.mounted + r.skipped).toBe(2); // base layers: mounted from lib/base, never uploaded
      const pushed = await readImage(t2.store, r.digest);
      // Same bytes as the registry's base layers (level 1 gzip from the base push, not our level 6).
      expect(pushed.manifest.layers.slice(0, 2).map((l) => l.digest)).toEqual(bi.manifest.layers.map((l) => l.digest));
    } finally { await t2.cleanup(); }
  });

  it('a pulled image survives gc whole (compressed and uncompressed layers), so FROM still works', async () => {
    const d = await makeImage(t.store, { layers: [{ 'gc.txt': 'gc' }] });
    await pushImage(t.store, d, `${reg.host}/gc/img:1`);
    const t2 = await tempStore();
    try {
      await pullImage(t2.store, `${reg.host}/gc/img:1`);
      const im = await readImage(t2.store, `${reg.host}/gc/img:1`);
      await new Promise((r) => setTimeout(r, 2500)); // past the store's in-use slack
      await t2.store.gc();
      for (const l of im.manifest.layers) expect(await t2.store.blobs.has(l.digest)).toBe(true);
      for (const id of im.config.rootfs.diff_ids) expect(await t2.store.blobs.has(id)).toBe(true);
      const again = await resolveBaseImage(t2.store, `${reg.host}/gc/img:1`, { pull: 'never' });
      expect(again.image.descriptor.digest).toBe(im.descriptor.digest);
    } finally { await t2.cleanup(); }
  });

  it('resolveBaseImage: store first for digests and pull=never, registry otherwise', async () => {
    const d = await makeImage(t.store, { layers: [{ 'base.txt': 'base\n' }] });
    const dist = await distributionImage(t.store, await readImage(t.store, d), {});
    await pushImage(t.store, dist, `${reg.host}/base/img:1`);
    const t2 = await tempStore();
    try {
      await expect(resolveBaseImage(t2.store, `${reg.host}/base/img:1`, { pull: 'never' })).rejects.toMatchObject({ code: 'TSB6104' });
      const a = await resolveBaseImage(t2.store, `${reg.host}/base/img:1`);
      expect(a.source).toBe('registry');
      expect(a.image.descriptor.digest).toBe(dist.digest);
      const b = await resolveBaseImage(t2.store, `${reg.host}/base/img:1`);
      expect(b.source).toBe('store');
      const c = await resolveBaseImage(t2.store, `${reg.host}/base/img@${dist.digest}`, { pull: 'never' });
      expect(c.source).toBe('store');
      expect(c.image.manifest.layers[0]!.mediaType).toBe(MediaType.OCI_LAYER_GZIP);
      // The stored image is linux/amd64: asking for arm64 does not take it from the store.
      await expect(resolveBaseImage(t2.store, `${reg.host}/base/img:1`, { pull: 'never', platform: { os: 'linux', architecture: 'arm64' } })).rejects.toMatchObject({ code: 'TSB6103' });
      await expect(resolveBaseImage(t2.store, `${reg.host}/base/img:1`, { platform: { os: 'linux', architecture: 'arm64' } })).resolves.toMatchObject({ source: 'registry' });
    } finally { await t2.cleanup(); }
  });
});
