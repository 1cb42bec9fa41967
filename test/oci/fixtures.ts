/** Test images for the OCI tests: real layer tars (LayerWriter) in a real temp store. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../store/index.js';
import type { Descriptor, Store } from '../../store/types.js';
import { LayerWriter } from '../../src/exec/layer/writer.js';
import { layerDescriptor, writeImage, type ImageConfig } from '../../src/oci/image.js';

export interface TempStore { store: Store; root: string; dir: string; cleanup(): Promise<void> }

export async function tempStore(): Promise<TempStore> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-oci-test-'));
  const root = join(dir, 'store');
  const store = await openStore(root);
  return { store, root, dir, cleanup: async () => { await store.close(); await rm(dir, { recursive: true, force: true }); } };
}

/** files: path → content (dirs are made for parents). */
export async function makeLayer(store: Store, files: Record<string, string | Buffer>, mtime = 1_700_000_000): Promise<Descriptor> {
  const w = new LayerWriter();
  const dirs = new Set<string>();
  for (const p of Object.keys(files)) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of dirs) w.add({ path: d, type: 'dir', mode: 0o755, mtime });
  for (const [p, c] of Object.entries(files)) {
    const buf = Buffer.isBuffer(c) ? c : Buffer.from(c);
    w.add({ path: p, type: 'file', mode: 0o644, mtime, source: { buffer: buf }, size: buf.length });
  }
  const r = await w.commit(store.blobs);
  return layerDescriptor(r.diffId, r.size);
}

export interface MakeImageOptions {
  layers?: Record<string, string | Buffer>[];
  cmd?: string[];
  name?: string;
  created?: string;
}

export async function makeImage(store: Store, opts: MakeImageOptions = {}): Promise<Descriptor> {
  const layers: Descriptor[] = [];
  for (const files of opts.layers ?? [{ 'hello.txt': 'hello\n' }, { 'etc/app.conf': 'a=1\n' }]) layers.push(await makeLayer(store, files));
  const config: ImageConfig = {
    architecture: 'amd64', os: 'linux',
    created: opts.created ?? '2024-01-01T00:00:00Z',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: opts.cmd ?? ['/bin/sh'], Labels: { 'b.z': '2', 'a.y': '<1>' } },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    history: layers.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `layer ${i}` })),
  };
  const d = await writeImage(store, { config, layers });
  if (opts.name) await store.refs.set(opts.name, d);
  return d;
}
