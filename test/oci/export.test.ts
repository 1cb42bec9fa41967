import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { exportImage, parseOutputSpec, splitCsv } from '../../src/oci/export.js';
import { loadArchive } from '../../src/oci/archive.js';
import { MediaType, readImage } from '../../src/oci/image.js';
import { isTsbError } from '../../src/errors.js';
import { makeImage, tempStore, type TempStore } from './fixtures.js';
import { importRootfs } from '../../src/oci/import.js';
import { busyboxMissing, busyboxRootfsTar } from '../helpers/busybox.js';

let t: TempStore;
beforeAll(async () => { t = await tempStore(); });
afterAll(async () => { await t.cleanup(); });

const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

describe('parseOutputSpec', () => {
  it('parses the forms docker and BuildKit accept', () => {
    expect(parseOutputSpec('out')).toMatchObject({ type: 'local', dest: 'out' });
    expect(parseOutputSpec('-')).toMatchObject({ type: 'tar', dest: '-' });
    expect(parseOutputSpec('type=oci,dest=x.tar,compression=zstd,compression-level=5')).toMatchObject({ type: 'oci', dest: 'x.tar', compression: 'zstd', compressionLevel: 5 });
    expect(parseOutputSpec('type=registry,name=localhost:5000/a:1')).toMatchObject({ type: 'image', push: true, names: ['localhost:5000/a:1'] });
    expect(parseOutputSpec('type=docker,dest=-,"name=a:1,b:2",oci-mediatypes=true')).toMatchObject({ names: ['docker.io/library/a:1', 'docker.io/library/b:2'], ociMediaTypes: true });
    expect(parseOutputSpec('type=oci,dest=d,tar=false').tar).toBe(false);
    expect(splitCsv('a="x,y",b')).toEqual(['a=x,y', 'b']);
  });
  it('rejects bad specs with TSB6110', () => {
    for (const bad of ['type=nope,dest=x', 'dest=x', 'type=oci', 'type=oci,dest=x,compression=lz4', 'type=oci,dest=x,compression-level=99',
      'type=oci,dest=x,bogus=1', 'type=local,dest=-', 'type=oci,dest=x,oci-mediatypes=maybe', 'type=docker,dest=x,name=UPPER:1', '', 'type="oci']) {
      let err: unknown;
      try { parseOutputSpec(bad); } catch (e) { err = e; }
      expect(isTsbError(err) ? err.code : err, bad).toBe('TSB6110');
    }
  });
});

describe('OCI archive output', () => {
  it('is accepted by skopeo, oci-image-tool and umoci, and is reproducible', async () => {
    const d = await makeImage(t.store, { layers: [{ 'hello.txt': 'hello\n' }, { 'etc/app.conf': 'a=1\n', 'bin/x': Buffer.alloc(100000, 7) }] });
    const out = join(t.dir, 'img.tar');
    await exportImage(t.store, d, parseOutputSpec(`type=oci,dest=${out},name=example.com/app:1.0`));
    const out2 = join(t.dir, 'img2.tar');
    await exportImage(t.store, d, parseOutputSpec(`type=oci,dest=${out2},name=example.com/app:1.0`));
    expect(readFileSync(out).equals(readFileSync(out2))).toBe(true);
    const dir = join(t.dir, 'layout');
    await mkdir(dir);
    execFileSync('tar', ['-xf', out, '-C', dir]);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    expect(index.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe('1.0');
    const manifest = JSON.parse(await readFile(join(dir, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    expect(manifest.layers.map((l: { mediaType: string }) => l.mediaType)).toEqual([MediaType.OCI_LAYER_GZIP, MediaType.OCI_LAYER_GZIP]);
    // gzip header: no mtime, no file name (deterministic).
    const layer = readFileSync(join(dir, 'blobs/sha256', manifest.layers[0].digest.slice(7)));
    expect([...layer.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
    expect(gunzipSync(layer).length).toBeGreaterThan(0);
    if (has('skopeo')) {
      const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${out}:1.0`], { encoding: 'utf8' }));
      expect(info.Layers).toEqual(manifest.layers.map((l: { digest: string }) => l.digest));
      expect(info.Architecture).toBe('amd64');
    } else console.warn('skopeo missing: skipped skopeo inspect');
    if (has('oci-image-tool')) {
      execFileSync('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=1.0', dir], { encoding: 'utf8' });
    } else console.warn('oci-image-tool missing: skipped validate');
    if (has('umoci')) {
      const bundle = join(t.dir, 'bundle');
      execFileSync('umoci', ['unpack', '--image', `${dir}:1.0`, bundle], { encoding: 'utf8' });
      expect(readFileSync(join(bundle, 'rootfs', 'hello.txt'), 'utf8')).toBe('hello\n');
      expect(readFileSync(join(bundle, 'rootfs', 'etc', 'app.conf'), 'utf8')).toBe('a=1\n');
    } else console.warn('umoci missing: skipped unpack');
  });

  it('compresses a layer once and reuses it', async () => {
    const d = await makeImage(t.store, { layers: [{ 'once.txt': 'x'.repeat(5000) }] });
    const im = await readImage(t.store, d);
    const diffId = im.config.rootfs.diff_ids[0]!;
    expect(await t.store.compressed.get(diffId, MediaType.OCI_LAYER_GZIP)).toBeUndefined();
    await exportImage(t.store, d, parseOutputSpec(`type=oci,dest=${join(t.dir, 'once.tar')}`));
    const c = await t.store.compressed.get(diffId, MediaType.OCI_LAYER_GZIP);
    expect(c).toBeDefined();
    const before = (await stat(t.store.blobs.path(c!.digest))).mtimeMs;
    await exportImage(t.store, d, parseOutputSpec(`type=docker,dest=${join(t.dir, 'once-docker.tar')}`));
    expect((await stat(t.store.blobs.path(c!.digest))).mtimeMs).toBe(before);
  });

  it('writes zstd layers that skopeo reads and load decompresses', async () => {
    if (!has('zstd')) return console.warn('zstd missing: skipped');
    const d = await makeImage(t.store, { layers: [{ 'z.txt': 'zstd layer\n'.repeat(100) }] });
    const out = join(t.dir, 'z.tar');
    await exportImage(t.store, d, parseOutputSpec(`type=oci,dest=${out},compression=zstd,name=zz:1`));
    const t2 = await tempStore();
    try {
      const r = await loadArchive(t2.store, createReadStream(out));
      expect(r.images[0]!.names).toEqual(['docker.io/library/zz:1']);
      const im = await readImage(t2.store, 'zz:1');
      expect(im.manifest.layers[0]!.mediaType).toBe(MediaType.OCI_LAYER_ZSTD);
      expect(await t2.store.blobs.has(im.config.rootfs.diff_ids[0]!)).toBe(true);
      expect(im.config.rootfs.diff_ids).toEqual((await readImage(t.store, d)).config.rootfs.diff_ids);
    } finally { await t2.cleanup(); }
  });
});

describe('docker archive output and load', () => {
  it('writes manifest.json + repositories and loads back with the same digests', async () => {
    const d = await makeImage(t.store, { layers: [{ 'a.txt': 'A' }, { 'b.txt': 'B' }] });
    const out = join(t.dir, 'docker.tar');
    await exportImage(t.store, d, parseOutputSpec(`type=docker,dest=${out},name=myapp:2`));
    const dir = join(t.dir, 'dockerx');
    await mkdir(dir);
    execFileSync('tar', ['-xf', out, '-C', dir]);
    const mj = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
    expect(mj[0].RepoTags).toEqual(['myapp:2']);
    expect(mj[0].Layers).toHaveLength(2);
    expect(JSON.parse(await readFile(join(dir, 'repositories'), 'utf8'))).toHaveProperty('myapp');
    if (has('skopeo')) {
      // skopeo's docker-archive reader is docker load's format (manifest.json).
      const info = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${out}`], { encoding: 'utf8' }));
      expect(info.RepoTags ?? []).toBeDefined();
      expect(info.Layers).toHaveLength(2);
    }
    expect((await readdir(join(dir, 'blobs', 'sha256'))).length).toBe(4);
    const t2 = await tempStore();
    try {
      const r = await loadArchive(t2.store, createReadStream(out));
      expect(r.images).toHaveLength(1);
      const im = await readImage(t2.store, 'myapp:2');
      expect(im.manifest.mediaType).toBe(MediaType.DOCKER_MANIFEST);
      expect(im.config.rootfs.diff_ids).toEqual((await readImage(t.store, d)).config.rootfs.diff_ids);
      // The loaded manifest is byte-identical to the exported one.
      const idx = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
      expect(im.descriptor.digest).toBe(idx.manifests[0].digest);
    } finally { await t2.cleanup(); }
  });

  it('exports the final filesystem (local) and a flattened tar', async () => {
    const d = await makeImage(t.store, { layers: [{ 'a.txt': 'one', 'keep.txt': 'k' }, { 'a.txt': 'two' }] });
    const dest = join(t.dir, 'rootfs-out');
    await exportImage(t.store, d, parseOutputSpec(dest));
    expect(readFileSync(join(dest, 'a.txt'), 'utf8')).toBe('two');
    expect(readFileSync(join(dest, 'keep.txt'), 'utf8')).toBe('k');
    const tarOut = join(t.dir, 'flat.tar');
    await exportImage(t.store, d, parseOutputSpec(`type=tar,dest=${tarOut}`));
    const list = execFileSync('tar', ['-tf', tarOut], { encoding: 'utf8' }).split('\n').filter(Boolean).sort();
    expect(list).toEqual(['a.txt', 'keep.txt']);
    expect(execFileSync('tar', ['-xOf', tarOut, 'a.txt'], { encoding: 'utf8' })).toBe('two');
  });

  it('applies rewrite-timestamp with SOURCE_DATE_EPOCH', async () => {
    const d = await makeImage(t.store, { layers: [{ 'ts.txt': 'time' }], created: '2030-01-01T00:00:00Z' });
    const out = join(t.dir, 'ts');
    await exportImage(t.store, d, parseOutputSpec(`type=oci,dest=${out},tar=false,compression=uncompressed,rewrite-timestamp=true`), { sourceDateEpoch: 1000 });
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8'));
    const m = JSON.parse(await readFile(join(out, 'blobs/sha256', index.manifests[0].digest.slice(7)), 'utf8'));
    const cfg = JSON.parse(await readFile(join(out, 'blobs/sha256', m.config.digest.slice(7)), 'utf8'));
    expect(cfg.created).toBe('1970-01-01T00:16:40Z');
    const listing = execFileSync('tar', ['--full-time', '-tvf', join(out, 'blobs/sha256', m.layers[0].digest.slice(7))], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
    expect(listing).toContain('1970-01-01 00:16:40');
    expect(m.layers[0].digest).toBe(cfg.rootfs.diff_ids[0]);
  });
  void existsSync;
});

describe('podman (when installed)', () => {
  const why = !has('podman') ? 'podman is not installed: skipping the podman run check' : busyboxMissing();
  if (why) console.warn(why);
  it.skipIf(!!why)('loads the OCI and docker archives and runs the image', async () => {
    const d = await importRootfs(t.store, createReadStream(await busyboxRootfsTar()), 'docker.io/library/tsbuild-podman-test:1', { changes: ['CMD ["/bin/echo", "hello from tsbuild"]'] });
    for (const type of ['oci', 'docker']) {
      const out = join(t.dir, `podman-${type}.tar`);
      await exportImage(t.store, d, parseOutputSpec(`type=${type},dest=${out},name=tsbuild-podman-test:1`));
      execFileSync('podman', ['load', '-i', out], { encoding: 'utf8' });
      // Flags this kind of host needs (../shared/peers README): crun refuses hybrid cgroups (runc
      // works), and podman's default 1048576 open files exceeds a hard limit without CAP_SYS_RESOURCE.
      const runArgs = [...(has('runc') ? ['--runtime', 'runc'] : []), 'run', '--rm', '--network', 'none',
        '--ulimit', 'nofile=16384:16384', '--ulimit', 'nproc=16384:16384', 'tsbuild-podman-test:1'];
      expect(execFileSync('podman', runArgs, { encoding: 'utf8' })).toBe('hello from tsbuild\n');
      execFileSync('podman', ['rmi', '-f', 'tsbuild-podman-test:1']);
    }
  });
});

describe('dest=- (stdout)', () => {
  it('streams the same archive bytes as a file export', async () => {
    const d = await makeImage(t.store, { layers: [{ 'std.txt': 'stdout' }] });
    const file = join(t.dir, 'std-file.tar');
    await exportImage(t.store, d, parseOutputSpec(`type=oci,dest=${file},name=std:1`));
    const { PassThrough } = await import('node:stream');
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    await exportImage(t.store, d, parseOutputSpec('type=oci,dest=-,name=std:1'), { stdout: out });
    expect(Buffer.concat(chunks).equals(readFileSync(file))).toBe(true);
  });
});
