/**
 * Test helper: builds a real (small) OCI image into a store: layer tars made with tar-stream,
 * a config with rootfs.diff_ids and history, an OCI manifest, and a tag.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import type { Descriptor, Store } from '../../store/index.js';

export async function layerTar(files: Record<string, string>): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((res, rej) => { p.on('end', res); p.on('error', rej); });
  const dirs = new Set<string>();
  for (const name of Object.keys(files).sort()) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = parts.slice(0, i).join('/') + '/';
      if (!dirs.has(d)) { dirs.add(d); p.entry({ name: d, type: 'directory', mode: 0o755, mtime: new Date(0) }); }
    }
    p.entry({ name, mode: 0o644, mtime: new Date(0) }, files[name]!);
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export interface TestImage { manifest: Descriptor; config: string; layers: Descriptor[] }

export async function makeImage(store: Store, name: string | undefined, layers: Record<string, string>[], opts: { created?: string; cmd?: string[] } = {}): Promise<TestImage> {
  const descs: Descriptor[] = [];
  for (const files of layers) {
    const r = await store.blobs.put(await layerTar(files));
    descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: r.digest, size: r.size });
  }
  const created = opts.created ?? '2024-01-02T03:04:05Z';
  const config = {
    created, architecture: 'amd64', os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: opts.cmd ?? ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: descs.map((d) => d.digest) },
    history: descs.map((_, i) => ({ created, created_by: `/bin/sh -c echo layer ${i}`, comment: i === 0 ? 'base' : undefined })),
  };
  const c = await store.blobs.put(JSON.stringify(config));
  const manifest = {
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: c.digest, size: c.size },
    layers: descs,
  };
  const m = await store.blobs.put(JSON.stringify(manifest));
  const md: Descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: m.digest, size: m.size };
  if (name !== undefined) await store.refs.set(name, md);
  return { manifest: md, config: c.digest, layers: descs };
}

export async function tempStoreDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tsb-store-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}
