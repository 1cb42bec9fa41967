/**
 * `type=local` (the image's final filesystem into a directory) and `type=tar` (the same as one
 * flattened tar). Layers are applied with the layers helper's hostile-archive-safe flat unpacker
 * (src/exec/layer/unpack.ts): whiteouts applied, nothing written outside the destination.
 * type=tar goes through a temp tree in the store's filesystem and the LayerWriter (sorted entries,
 * deterministic bytes); the temp tree is removed afterwards.
 */
import { mkdir, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { TsbError, isTsbError } from '../errors.js';
import type { Store } from '../../store/types.js';
import type { ReadImage } from './image.js';
import { unpackLayerFlat } from '../exec/layer/unpack.js';
import { commitUpperdir } from '../exec/layer/diff.js';
import { atomicFileFrom } from './archive.js';

export interface RootfsOptions { stdout?: NodeJS.WritableStream; signal?: AbortSignal }

async function applyLayers(store: Store, image: ReadImage, dir: string, signal?: AbortSignal): Promise<void> {
  for (const diffId of image.config.rootfs.diff_ids) {
    if (signal?.aborted) throw new TsbError('TSB6123', 'interrupted', { cause: signal.reason });
    await unpackLayerFlat(store.blobs.open(diffId), dir, { expectDiffId: diffId });
  }
}

export async function exportFilesystem(store: Store, image: ReadImage, type: 'local' | 'tar', dest: string, opts: RootfsOptions = {}): Promise<void> {
  if (type === 'local') {
    try { await mkdir(dest, { recursive: true }); } catch (e) {
      throw new TsbError('TSB6123', `cannot create the output directory ${dest}`, { cause: e });
    }
    await applyLayers(store, image, dest, opts.signal);
    return;
  }
  const tmp = await store.snapshots.tempDir('export-rootfs');
  try {
    await applyLayers(store, image, tmp, opts.signal);
    const layer = await commitUpperdir(store, tmp);
    const write = async (w: NodeJS.WritableStream) => {
      if (!layer) { w.write(Buffer.alloc(1024)); return; }
      const src = store.blobs.open(layer.diffId);
      src.pipe(w, { end: false });
      await finished(src);
    };
    if (dest === '-') await write(opts.stdout ?? process.stdout);
    else await atomicFileFrom(dest, write);
  } catch (e) {
    if (isTsbError(e)) throw e;
    throw new TsbError('TSB6123', `could not write ${dest}`, { cause: e });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
