/**
 * The output and registry list, end to end through the real CLI (`tsbuild build …` in
 * process): every --output type and option, -o DIR, --push / type=registry, and FROM resolution
 * with --pull=always|missing|never against a real docker-registry. No RUN: FROM scratch/COPY only,
 * so no sandbox is needed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runMain } from '../helpers/cli.js';
import { MediaType } from '../../src/oci/image.js';
import { registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempStore, type TempStore } from './fixtures.js';

let t: TempStore;
let ctxDir: string;
beforeAll(async () => {
  t = await tempStore();
  ctxDir = join(t.dir, 'ctx');
  mkdirSync(ctxDir);
  writeFileSync(join(ctxDir, 'a.txt'), 'hello from the context\n');
  // Compressible enough that gzip levels 1 and 9 give different bytes.
  writeFileSync(join(ctxDir, 'big.txt'), Array.from({ length: 20000 }, (_, i) => `line ${i} ${(i * 7919) % 1000} the quick brown fox\n`).join(''));
  writeFileSync(join(ctxDir, 'Dockerfile'), 'FROM scratch\nCOPY a.txt big.txt /\nCMD ["/a"]\n');
});
afterAll(async () => { await t.cleanup(); });

async function cli(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  const r = await runMain(['--store', t.root, ...argv], { cwd: t.dir, env: { ...process.env, HOME: t.dir, DOCKER_CONFIG: join(t.dir, 'docker'), ...env } });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

async function build(args: string[], dockerfile?: string, env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  if (dockerfile !== undefined) writeFileSync(join(ctxDir, 'Dockerfile'), dockerfile);
  return cli(['build', ctxDir, '--progress', 'quiet', ...args], env);
}

function tarFile(archive: string, name: string): Buffer {
  return execFileSync('tar', ['-xOf', archive, name], { maxBuffer: 64 << 20 });
}

/** The single image manifest of an OCI-layout tar (through index.json). */
function ociManifest(archive: string): { index: { manifests: { digest: string; annotations?: Record<string, string> }[] }; manifest: { mediaType?: string; layers: { mediaType: string; digest: string }[]; config: { digest: string } } } {
  const index = JSON.parse(tarFile(archive, 'index.json').toString()) as ReturnType<typeof ociManifest>['index'];
  const manifest = JSON.parse(tarFile(archive, `blobs/sha256/${index.manifests[0]!.digest.slice(7)}`).toString()) as ReturnType<typeof ociManifest>['manifest'];
  return { index, manifest };
}

const hasSkopeo = spawnSync('skopeo', ['--version']).status === 0;

describe('build --output', () => {
  it('type=oci: gzip layers by default, name= in the index, accepted by skopeo', async () => {
    const dest = join(t.dir, 'o.tar');
    const r = await build(['-t', 'out:1', '--output', `type=oci,dest=${dest},name=example.com/out:2`]);
    expect(r.code, r.err).toBe(0);
    const { index, manifest } = ociManifest(dest);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([MediaType.OCI_LAYER_GZIP]);
    expect(index.manifests[0]!.annotations?.['org.opencontainers.image.ref.name']).toBe('2');
    expect(index.manifests[0]!.annotations?.['io.containerd.image.name']).toBe('example.com/out:2');
    if (hasSkopeo) {
      const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${dest}`]).toString()) as { Layers: string[] };
      expect(info.Layers).toEqual([manifest.layers[0]!.digest]);
    }
  });

  // As BuildKit: compression-level applies when a compressed blob is made; a layer already
  // compressed (remembered by the store) is reused unless force-compression=true.
  it('compression=zstd|uncompressed, compression-level with force-compression, remembered blobs otherwise', async () => {
    const kinds: Record<string, string> = {};
    for (const [opt, mt] of [['compression=gzip', MediaType.OCI_LAYER_GZIP], ['compression=zstd', MediaType.OCI_LAYER_ZSTD], ['compression=uncompressed', MediaType.OCI_LAYER],
      ['compression=gzip,compression-level=1,force-compression=true', MediaType.OCI_LAYER_GZIP], ['compression=gzip,compression-level=9,force-compression=true', MediaType.OCI_LAYER_GZIP],
      ['compression=gzip,compression-level=1', MediaType.OCI_LAYER_GZIP]] as const) {
      const dest = join(t.dir, `c-${opt.replace(/[=,]/g, '_')}.tar`);
      const r = await build(['--output', `type=oci,dest=${dest},${opt}`]);
      expect(r.code, `${opt}: ${r.err}`).toBe(0);
      const { manifest } = ociManifest(dest);
      expect(manifest.layers[0]!.mediaType, opt).toBe(mt);
      kinds[opt] = manifest.layers[0]!.digest;
      const blob = tarFile(dest, `blobs/sha256/${manifest.layers[0]!.digest.slice(7)}`);
      if (opt.includes('zstd')) expect([...blob.subarray(0, 4)]).toEqual([0x28, 0xb5, 0x2f, 0xfd]);
      if (opt.includes('uncompressed')) expect(blob.subarray(257, 262).toString()).toBe('ustar');
    }
    expect(kinds['compression=gzip,compression-level=1,force-compression=true']).not.toBe(kinds['compression=gzip,compression-level=9,force-compression=true']);
    expect(kinds['compression=gzip,compression-level=1,force-compression=true']).not.toBe(kinds['compression=gzip']);
    // Without force the blob made last (level 9) is reused.
    expect(kinds['compression=gzip,compression-level=1']).toBe(kinds['compression=gzip,compression-level=9,force-compression=true']);
    expect(new Set(Object.values(kinds)).size).toBe(5);
  });

  it('load -i takes the OCI archives back whatever their layer compression (gzip, zstd, plain)', async () => {
    for (const opt of ['compression=gzip', 'compression=zstd', 'compression=uncompressed']) {
      const dest = join(t.dir, `c-${opt.replace(/[=,]/g, '_')}.tar`);
      expect(existsSync(dest), dest).toBe(true);
      const t2 = await tempStore();
      try {
        const { code, stderr: err } = await runMain(['--store', t2.root, 'load', '-i', dest], { cwd: t.dir });
        expect(code, `${opt}: ${err}`).toBe(0);
        // Unnamed archive (no name=): nothing is tagged, the image is in the store by digest.
        const { index, manifest } = ociManifest(dest);
        expect(await t2.store.blobs.has(index.manifests[0]!.digest as `sha256:${string}`), opt).toBe(true);
        const config = JSON.parse((await t2.store.blobs.read(manifest.config.digest as `sha256:${string}`)).toString()) as { rootfs: { diff_ids: `sha256:${string}`[] } };
        for (const diffId of config.rootfs.diff_ids) expect(await t2.store.blobs.has(diffId), opt).toBe(true);
      } finally { await t2.cleanup(); }
    }
  });

  it('type=docker: manifest.json + docker media types; oci-mediatypes=true switches to OCI types', async () => {
    const dest = join(t.dir, 'd.tar');
    expect((await build(['--output', `type=docker,dest=${dest},name=dock:1`])).code).toBe(0);
    const mj = JSON.parse(tarFile(dest, 'manifest.json').toString()) as { RepoTags: string[]; Layers: string[] }[];
    expect(mj[0]!.RepoTags).toEqual(['dock:1']);
    expect(ociManifest(dest).manifest.mediaType).toBe(MediaType.DOCKER_MANIFEST);
    expect(ociManifest(dest).manifest.layers[0]!.mediaType).toBe(MediaType.DOCKER_LAYER_GZIP);
    const dest2 = join(t.dir, 'd2.tar');
    expect((await build(['--output', `type=docker,dest=${dest2},name=dock:1,oci-mediatypes=true`])).code).toBe(0);
    expect(ociManifest(dest2).manifest.layers[0]!.mediaType).toBe(MediaType.OCI_LAYER_GZIP);
    // And it loads back into a fresh store under its name.
    const t2 = await tempStore();
    try {
      const { code, stdout: out } = await runMain(['--store', t2.root, 'load', '-i', dest], { cwd: t.dir });
      expect(code).toBe(0);
      expect(out).toContain('dock:1');
    } finally { await t2.cleanup(); }
  });

  it('type=local,dest=DIR, -o DIR (short form) and type=tar,dest=FILE write the final filesystem', async () => {
    const local = join(t.dir, 'local');
    expect((await build(['--output', `type=local,dest=${local}`])).code).toBe(0);
    expect(readFileSync(join(local, 'a.txt'), 'utf8')).toBe('hello from the context\n');
    const short = join(t.dir, 'short');
    expect((await build(['-o', short])).code).toBe(0);
    expect(readFileSync(join(short, 'a.txt'), 'utf8')).toBe('hello from the context\n');
    const flat = join(t.dir, 'flat.tar');
    expect((await build(['--output', `type=tar,dest=${flat}`])).code).toBe(0);
    expect(tarFile(flat, 'a.txt').toString()).toBe('hello from the context\n');
  });

  it('rewrite-timestamp=true with SOURCE_DATE_EPOCH clamps file mtimes in the layer and sets created', async () => {
    const dest = join(t.dir, 'ts.tar');
    const r = await build(['--build-arg', 'SOURCE_DATE_EPOCH=1000000000', '--output', `type=oci,dest=${dest},rewrite-timestamp=true`]);
    expect(r.code, r.err).toBe(0);
    const { manifest } = ociManifest(dest);
    const layerTar = join(t.dir, 'ts-layer.tar.gz');
    writeFileSync(layerTar, tarFile(dest, `blobs/sha256/${manifest.layers[0]!.digest.slice(7)}`));
    const listing = execFileSync('tar', ['--full-time', '-tvzf', layerTar], { env: { ...process.env, TZ: 'UTC' } }).toString();
    expect(listing).toMatch(/2001-09-09 01:46:40 a\.txt/);
    const config = JSON.parse(tarFile(dest, `blobs/sha256/${manifest.config.digest.slice(7)}`).toString()) as { created: string };
    expect(config.created).toBe('2001-09-09T01:46:40Z');
  });

  it('refuses a bad output spec with a coded usage error', async () => {
    const r = await build(['--output', 'type=oci,dest=x.tar,compression=lz4']);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('TSB6110');
  });
});

const regMissing = registryMissing();
describe.skipIf(!!regMissing)('build with a registry: --push, type=registry, FROM --pull=always|missing|never', () => {
  let reg: TestRegistry;
  beforeAll(async () => { reg = await startRegistry(); });
  afterAll(async () => { await reg?.stop(); });

  it('pushes with --push and type=registry, and resolves FROM by the pull policy', async () => {
    const base = `${reg.host}/base/img:1`;
    writeFileSync(join(ctxDir, 'a.txt'), 'base v1\n');
    let r = await build(['-t', base, '--push'], 'FROM scratch\nCOPY a.txt /base.txt\n');
    expect(r.code, r.err).toBe(0);
    const tags = JSON.parse(execFileSync('curl', ['-s', `http://${reg.host}/v2/base/img/tags/list`]).toString()) as { tags: string[] };
    expect(tags.tags).toEqual(['1']);
    // type=registry pushes the name= of the output.
    r = await build(['--output', `type=registry,name=${reg.host}/other/img:7`], 'FROM scratch\nCOPY a.txt /o.txt\n');
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(execFileSync('curl', ['-s', `http://${reg.host}/v2/other/img/tags/list`]).toString())).toMatchObject({ tags: ['7'] });

    // A second store that has never seen the base: --pull=never refuses, missing pulls.
    const t2 = await tempStore();
    const inT2 = async (args: string[], df: string) => {
      writeFileSync(join(ctxDir, 'Dockerfile'), df);
      const { code, stderr: err } = await runMain(['--store', t2.root, 'build', ctxDir, '--progress', 'quiet', ...args], { cwd: t.dir });
      return { code, err };
    };
    try {
      const df = `FROM ${base}\nCOPY a.txt /child.txt\n`;
      const out = (n: string) => join(t.dir, `pull-${n}`);
      let x = await inT2(['--pull=never', '-o', out('never')], df);
      expect(x.code).toBe(1);
      expect(x.err).toContain('TSB6104');
      x = await inT2(['--pull=missing', '-o', out('missing1')], df);
      expect(x.code, x.err).toBe(0);
      expect(readFileSync(join(out('missing1'), 'base.txt'), 'utf8')).toBe('base v1\n');
      // The registry's base moves on; missing keeps using the stored one, always fetches the new one.
      writeFileSync(join(ctxDir, 'a.txt'), 'base v2\n');
      r = await build(['-t', base, '--push'], 'FROM scratch\nCOPY a.txt /base.txt\n');
      expect(r.code, r.err).toBe(0);
      x = await inT2(['--pull=missing', '-o', out('missing2')], df);
      expect(x.code, x.err).toBe(0);
      expect(readFileSync(join(out('missing2'), 'base.txt'), 'utf8')).toBe('base v1\n');
      x = await inT2(['--pull=always', '-o', out('always')], df);
      expect(x.code, x.err).toBe(0);
      expect(readFileSync(join(out('always'), 'base.txt'), 'utf8')).toBe('base v2\n');
      expect(existsSync(join(out('always'), 'child.txt'))).toBe(true);
      // never now uses what the store has (v2 after the always pull).
      x = await inT2(['--pull=never', '-o', out('never2')], df);
      expect(x.code, x.err).toBe(0);
      expect(readFileSync(join(out('never2'), 'base.txt'), 'utf8')).toBe('base v2\n');
    } finally {
      await t2.cleanup();
      writeFileSync(join(ctxDir, 'a.txt'), 'hello from the context\n');
    }
  });
});

describe('build --insecure-registry', () => {
  it('FROM and --push talk plain HTTP to a host named by --insecure-registry, HTTPS otherwise', async () => {
    // A proxy that only records how it is asked: an absolute http:// URL (plain HTTP) or CONNECT (TLS).
    const seen: string[] = [];
    const proxy = http.createServer((req, res) => { seen.push(`${req.method} ${req.url}`); res.writeHead(502).end(); });
    proxy.on('connect', (req, sock) => { seen.push(`CONNECT ${req.url}`); sock.end('HTTP/1.1 502 Bad Gateway\r\n\r\n'); });
    const port = await new Promise<number>((r) => proxy.listen(0, '127.0.0.1', () => r((proxy.address() as AddressInfo).port)));
    const env = { ...process.env, HTTP_PROXY: `http://127.0.0.1:${port}`, HTTPS_PROXY: `http://127.0.0.1:${port}`, NO_PROXY: '', HOME: t.dir, DOCKER_CONFIG: join(t.dir, 'docker') };
    const ctx = join(t.dir, 'ctx-insecure');
    mkdirSync(ctx, { recursive: true });
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM reg.example:5000/base:1\n');
    try {
      const build = (...extra: string[]) => runMain(['--store', t.root, 'build', ctx, '--progress', 'quiet', ...extra], { cwd: t.dir, env });
      let r = await build('--insecure-registry', 'reg.example:5000');
      expect(r.code).toBe(1);
      expect(seen.some((s) => s.startsWith('GET http://reg.example:5000/v2/')), seen.join('\n')).toBe(true);
      expect(seen.some((s) => s.startsWith('CONNECT'))).toBe(false);
      seen.length = 0;
      r = await build();
      expect(r.code).toBe(1);
      expect(seen.some((s) => s === 'CONNECT reg.example:5000'), seen.join('\n')).toBe(true);
      // --push goes through the same options.
      writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY Dockerfile /\n');
      seen.length = 0;
      r = await build('-t', 'reg.example:5000/app:1', '--push', '--insecure-registry', 'reg.example:5000');
      expect(r.code).toBe(1);
      expect(seen.some((s) => s.startsWith('GET http://reg.example:5000/v2/') || s.startsWith('HEAD http://reg.example:5000/v2/') || s.startsWith('POST http://reg.example:5000/v2/')), seen.join('\n')).toBe(true);
      expect(seen.some((s) => s.startsWith('CONNECT'))).toBe(false);
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });
});
