/**
 * Hostile input: image archives and registries that lie. Each must be rejected with a coded error
 * and nothing may be written outside the store (or the export destination).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { readdir, readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { loadArchive } from '../../src/oci/archive.js';
import { exportImage, parseOutputSpec, distributionImage } from '../../src/oci/export.js';
import { canonicalConfig, canonicalIndex, canonicalManifest, MediaType, readImage, type ImageConfig } from '../../src/oci/image.js';
import { pullImage, pushImage } from '../../src/oci/registry.js';
import { isTsbError } from '../../src/errors.js';
import { registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, tempStore, type TempStore } from './fixtures.js';

let t: TempStore;
beforeAll(async () => { t = await tempStore(); });
afterAll(async () => { await t.cleanup(); });

type Entry = { name: string; type?: 'file' | 'symlink' | 'link' | 'character-device' | 'directory'; data?: Buffer; linkname?: string };

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => { for await (const c of p as AsyncIterable<Buffer>) chunks.push(c); })();
  for (const e of entries) {
    await new Promise<void>((res, rej) => {
      const h = { name: e.name, type: e.type ?? 'file', mode: 0o644, ...(e.linkname ? { linkname: e.linkname } : {}), ...(e.type === 'character-device' ? { devmajor: 1, devminor: 3 } : {}) };
      if ((e.type ?? 'file') === 'file') p.entry({ ...h, size: e.data?.length ?? 0 }, e.data ?? Buffer.alloc(0), (err) => (err ? rej(err) : res()));
      else p.entry(h, (err) => (err ? rej(err) : res()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A valid OCI archive's entries (one uncompressed layer), for tampering. */
async function validEntries(layerTar?: Buffer): Promise<{ entries: Entry[]; manifest: Buffer; config: Buffer; layer: Buffer }> {
  const layer = layerTar ?? await tarOf([{ name: 'hello.txt', data: Buffer.from('hi\n') }]);
  const cfg: ImageConfig = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] } };
  const config = canonicalConfig(cfg);
  const manifest = canonicalManifest({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, digest: sha(config), size: config.length },
    layers: [{ mediaType: MediaType.OCI_LAYER, digest: sha(layer), size: layer.length }] });
  const index = canonicalIndex({ schemaVersion: 2, manifests: [{ mediaType: MediaType.OCI_MANIFEST, digest: sha(manifest), size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/library/h:1' } }] });
  const blob = (b: Buffer) => ({ name: `blobs/sha256/${sha(b).slice(7)}`, data: b });
  return { entries: [{ name: 'oci-layout', data: Buffer.from('{"imageLayoutVersion":"1.0.0"}') }, { name: 'index.json', data: index }, blob(manifest), blob(config), blob(layer)], manifest, config, layer };
}

async function loadBuf(buf: Buffer): Promise<unknown> {
  try { await loadArchive(t.store, Readable.from([buf])); return undefined; } catch (e) { return e; }
}

function code(e: unknown): string { return isTsbError(e) ? e.code : `not a TsbError: ${String(e)}`; }

describe('hostile archives', () => {
  it('loads the untampered archive (control)', async () => {
    const v = await validEntries();
    expect(await loadBuf(await tarOf(v.entries))).toBeUndefined();
    expect((await readImage(t.store, 'h:1')).config.rootfs.diff_ids).toEqual([sha(v.layer)]);
  });

  it('rejects ../, absolute names, links leading outside and device nodes with TSB6121', async () => {
    const v = await validEntries();
    const cases: Entry[] = [
      { name: '../evil', data: Buffer.from('x') },
      { name: 'blobs/../../evil', data: Buffer.from('x') },
      { name: '/tmp/evil-abs', data: Buffer.from('x') },
      { name: 'blobs/sha256/' + 'a'.repeat(64), type: 'symlink', linkname: '../../../etc/passwd' },
      { name: 'blobs/sha256/' + 'b'.repeat(64), type: 'symlink', linkname: '/etc/passwd' },
      { name: 'x', type: 'link', linkname: '../outside' },
      { name: 'dev-null', type: 'character-device' },
      { name: 'blobs/sha256/not-a-digest', data: Buffer.from('x') },
    ];
    for (const c of cases) {
      const e = await loadBuf(await tarOf([...v.entries.slice(0, 2), c, ...v.entries.slice(2)]));
      expect(code(e), c.name).toBe('TSB6121');
    }
    expect(existsSync(join(t.dir, '..', 'evil'))).toBe(false);
    expect(existsSync('/tmp/evil-abs')).toBe(false);
  });

  it('rejects a wrong-digest blob (TSB6105) and keeps nothing of it', async () => {
    const v = await validEntries();
    const fake = Buffer.from('not what the name says');
    const name = `blobs/sha256/${'c'.repeat(64)}`;
    const e = await loadBuf(await tarOf([...v.entries, { name, data: fake }]));
    expect(code(e)).toBe('TSB6105');
    expect(await t.store.blobs.has(`sha256:${'c'.repeat(64)}`)).toBe(false);
    expect(await t.store.blobs.has(sha(fake))).toBe(false);
  });

  it('rejects truncated archives and missing blobs (TSB6122)', async () => {
    const v = await validEntries(await tarOf([{ name: 'big.bin', data: Buffer.alloc(200_000, 1) }]));
    const full = await tarOf(v.entries);
    for (const cut of [full.length - 1500, Math.floor(full.length / 2), 700]) {
      const e = await loadBuf(full.subarray(0, cut));
      expect(['TSB6122', 'TSB6105'], `cut at ${cut}: ${code(e)}`).toContain(code(e));
    }
    const e = await loadBuf(await tarOf(v.entries.slice(0, 4))); // layer blob left out
    expect(code(e)).toBe('TSB6122');
  });

  it('rejects a layer that is not the config diff_id (TSB6106)', async () => {
    const v = await validEntries();
    const other = await tarOf([{ name: 'other.txt', data: Buffer.from('other') }]);
    const cfg = canonicalConfig({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(other)] } });
    const manifest = canonicalManifest({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST,
      config: { mediaType: MediaType.OCI_CONFIG, digest: sha(cfg), size: cfg.length },
      layers: [{ mediaType: MediaType.OCI_LAYER, digest: sha(v.layer), size: v.layer.length }] });
    const index = canonicalIndex({ schemaVersion: 2, manifests: [{ mediaType: MediaType.OCI_MANIFEST, digest: sha(manifest), size: manifest.length }] });
    const e = await loadBuf(await tarOf([{ name: 'index.json', data: index }, { name: `blobs/sha256/${sha(manifest).slice(7)}`, data: manifest },
      { name: `blobs/sha256/${sha(cfg).slice(7)}`, data: cfg }, { name: `blobs/sha256/${sha(v.layer).slice(7)}`, data: v.layer }]));
    expect(code(e)).toBe('TSB6106');
  });

  it('a layer with ../ entries loads (it is content) but never escapes on export', async () => {
    const evilLayer = await tarOf([{ name: 'ok.txt', data: Buffer.from('ok') }, { name: '../../escaped.txt', data: Buffer.from('pwned') }]);
    const v = await validEntries(evilLayer);
    expect(await loadBuf(await tarOf(v.entries))).toBeUndefined();
    const dest = join(t.dir, 'evil-out', 'rootfs');
    await mkdir(dest, { recursive: true });
    let err: unknown;
    try { await exportImage(t.store, (await readImage(t.store, 'h:1')).descriptor, parseOutputSpec(dest)); } catch (e) { err = e; }
    expect(isTsbError(err)).toBe(true);
    expect(existsSync(join(t.dir, 'escaped.txt'))).toBe(false);
    expect(existsSync(join(t.dir, 'evil-out', 'escaped.txt'))).toBe(false);
  });

  it('rejects a non-archive and an archive without index.json or manifest.json (TSB6120/6122)', async () => {
    expect(code(await loadBuf(Buffer.from('hello, I am not a tar file at all '.repeat(40))))).toMatch(/^TSB612[02]$/);
    expect(code(await loadBuf(await tarOf([{ name: 'README', data: Buffer.from('x') }])))).toBe('TSB6120');
  });
});

const missing = registryMissing();
describe.skipIf(!!missing)('hostile registry (real docker-registry with corrupted storage)', () => {
  let reg: TestRegistry;
  beforeAll(async () => { reg = await startRegistry(); });
  afterAll(async () => { await reg?.stop(); });

  async function blobData(digest: string): Promise<string> {
    return join(reg.storage, 'docker/registry/v2/blobs/sha256', digest.slice(7, 9), digest.slice(7), 'data');
  }

  it('rejects a manifest whose content does not match its digest (TSB6147), storing nothing', async () => {
    const d = await makeImage(t.store, { layers: [{ 'm.txt': 'manifest test' }] });
    const dist = await distributionImage(t.store, await readImage(t.store, d), {});
    await pushImage(t.store, dist, `${reg.host}/evil/manifest:1`);
    const p = await blobData(dist.digest);
    const bytes = await readFile(p);
    await writeFile(p, Buffer.from(bytes.toString('utf8').replace('"schemaVersion":2', '"schemaVersion":2 ')));
    const t2 = await tempStore();
    try {
      for (const ref of [`${reg.host}/evil/manifest:1`, `${reg.host}/evil/manifest@${dist.digest}`]) {
        let err: unknown;
        try { await pullImage(t2.store, ref); } catch (e) { err = e; }
        expect(code(err), ref).toBe('TSB6147');
      }
      expect(await t2.store.refs.list()).toEqual([]);
      expect(await readdir(join(t2.root, 'blobs', 'sha256'))).toEqual([]);
    } finally { await t2.cleanup(); }
  });

  it('rejects a layer blob whose bytes do not match (TSB6105)', async () => {
    const d = await makeImage(t.store, { layers: [{ 'l.txt': 'layer test '.repeat(100) }] });
    const dist = await distributionImage(t.store, await readImage(t.store, d), {});
    await pushImage(t.store, dist, `${reg.host}/evil/layer:1`);
    const m = JSON.parse(readFileSync(t.store.blobs.path(dist.digest), 'utf8'));
    const p = await blobData(m.layers[0].digest);
    const bytes = await readFile(p);
    bytes[bytes.length - 5] ^= 0xff;
    await writeFile(p, bytes);
    const t2 = await tempStore();
    try {
      let err: unknown;
      try { await pullImage(t2.store, `${reg.host}/evil/layer:1`); } catch (e) { err = e; }
      expect(['TSB6105', 'TSB6106', 'TSB6131']).toContain(code(err));
      expect(await t2.store.blobs.has(m.layers[0].digest)).toBe(false);
      expect(await t2.store.refs.list()).toEqual([]);
    } finally { await t2.cleanup(); }
  });
  it('a layer download cut off mid-body is a coded error (never a hang) and keeps no layer', async () => {
    const d = await makeImage(t.store, { layers: [{ 'big.bin': createHash('sha512').update('x').digest('hex').repeat(40000) }] });
    const dist = await distributionImage(t.store, await readImage(t.store, d), {});
    await pushImage(t.store, dist, `${reg.host}/evil/cut:1`);
    const m = JSON.parse(readFileSync(t.store.blobs.path(dist.digest), 'utf8'));
    const layerDigest: string = m.layers[0].digest;
    // A loopback proxy in front of the registry that sends a layer's headers and half its body, then drops the connection.
    const http = await import('node:http');
    const [rh, rp] = reg.host.split(':');
    const cutter = http.createServer((req, res) => {
      const up = http.request({ host: rh, port: Number(rp), path: req.url, method: req.method, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        if (req.method === 'GET' && req.url?.includes(layerDigest)) {
          const half = Math.floor(Number(ur.headers['content-length']) / 2);
          let sent = 0;
          ur.on('data', (c: Buffer) => {
            if (sent >= half) return;
            const part = c.subarray(0, half - sent);
            sent += part.length;
            res.write(part);
            if (sent >= half) setTimeout(() => { res.socket?.destroy(); ur.destroy(); }, 20);
          });
        } else ur.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => cutter.listen(0, '127.0.0.1', r));
    const port = (cutter.address() as { port: number }).port;
    const t2 = await tempStore();
    try {
      let err: unknown;
      try { await pullImage(t2.store, `127.0.0.1:${port}/evil/cut:1`, { attempts: 1 }); } catch (e) { err = e; }
      expect(isTsbError(err), String(err)).toBe(true);
      expect(['TSB6145', 'TSB6122', 'TSB6131']).toContain(code(err));
      expect(await t2.store.blobs.has(layerDigest)).toBe(false);
      expect(await t2.store.blobs.has((await readImage(t.store, d)).config.rootfs.diff_ids[0]!)).toBe(false);
      expect(await t2.store.refs.list()).toEqual([]);
    } finally {
      await t2.cleanup();
      await new Promise((r) => cutter.close(r));
    }
  });

  it('a zstd layer with corrupt compressed data that still has the right size fails (TSB6105) and keeps nothing', async () => {
    const d = await makeImage(t.store, { layers: [{ 'z.txt': 'zstd layer '.repeat(5000) }] });
    const dist = await distributionImage(t.store, await readImage(t.store, d), { compression: 'zstd' });
    await pushImage(t.store, dist, `${reg.host}/evil/zstd:1`, { asIs: true });
    // An intact zstd pull first (the split download path for zstd).
    const ok = await tempStore();
    try {
      await pullImage(ok.store, `${reg.host}/evil/zstd:1`);
      const im = await readImage(ok.store, `${reg.host}/evil/zstd:1`);
      expect(await ok.store.blobs.has(im.config.rootfs.diff_ids[0]!)).toBe(true);
      expect(im.manifest.layers[0]!.mediaType).toBe(MediaType.OCI_LAYER_ZSTD);
    } finally { await ok.cleanup(); }
    const m = JSON.parse(readFileSync(t.store.blobs.path(dist.digest), 'utf8'));
    const p = await blobData(m.layers[0].digest);
    const bytes = await readFile(p);
    bytes[Math.floor(bytes.length / 2)] ^= 0xff;
    await writeFile(p, bytes);
    const t2 = await tempStore();
    try {
      let err: unknown;
      try { await pullImage(t2.store, `${reg.host}/evil/zstd:1`); } catch (e) { err = e; }
      expect(['TSB6105', 'TSB6106', 'TSB6131']).toContain(code(err));
      expect(await t2.store.blobs.has(m.layers[0].digest)).toBe(false);
      expect(await t2.store.refs.list()).toEqual([]);
    } finally { await t2.cleanup(); }
  });
  void createReadStream;
});

describe('hostile OCI layout directories', () => {
  it('refuses a blob that is a symlink (it could point anywhere) and a missing blob', async () => {
    const { symlink, mkdir: mk, writeFile: wf } = await import('node:fs/promises');
    const v = await validEntries();
    const dir = join(t.dir, 'evil-layout');
    await mk(join(dir, 'blobs', 'sha256'), { recursive: true });
    for (const e of v.entries) {
      if (e.name.startsWith('blobs/') && e.data === v.layer) continue;
      await wf(join(dir, e.name), e.data!);
    }
    const secret = join(t.dir, 'secret-outside');
    await wf(secret, v.layer);
    await symlink(secret, join(dir, 'blobs', 'sha256', sha(v.layer).slice(7)));
    const t2 = await tempStore();
    try {
      let err: unknown;
      try { await loadArchive(t2.store, { dir }); } catch (e) { err = e; }
      expect(code(err)).toBe('TSB6121');
      const { rm: rmf } = await import('node:fs/promises');
      await rmf(join(dir, 'blobs', 'sha256', sha(v.layer).slice(7)));
      err = undefined;
      try { await loadArchive(t2.store, { dir }); } catch (e) { err = e; }
      expect(code(err)).toBe('TSB6122');
      expect(await t2.store.refs.list()).toEqual([]);
    } finally { await t2.cleanup(); }
  });
});
