/**
 * Layer snapshots: each layer unpacked ALONE in overlay lowerdir form (unpackLayerToSnapshot),
 * stored by the store under its chain id, created once (store.snapshots.ensure fills a temp dir
 * and renames it into place; concurrent callers wait for one fill).
 *
 * A snapshot holds one layer (whiteouts as overlay whiteouts), unpacked against the snapshots
 * below it (implicit parents take the lower metadata, lower symlinks are followed inside the
 * root, as containerd applies layers), so it is keyed by CHAIN id: the same diff_id on another
 * base is another snapshot.
 */
import { createHash } from 'node:crypto';
import type { Digest, Store } from '../../../store/types.js';
import { type UnpackOptions, unpackLayerToSnapshot } from './unpack.js';

/** OCI image spec: ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)). */
export function chainIds(diffIds: readonly Digest[]): Digest[] {
  const out: Digest[] = [];
  for (const d of diffIds) {
    const prev = out[out.length - 1];
    out.push(prev === undefined ? d : `sha256:${createHash('sha256').update(`${prev} ${d}`).digest('hex')}`);
  }
  return out;
}

export interface SnapshotOptions extends Pick<UnpackOptions, 'allowDevices' | 'chown'> {
  /**
   * The stored blob holding the layer when it is not the uncompressed tar itself (a pulled
   * gzip/zstd blob). Default: the diff_id (tsbuild stores built layers uncompressed). Either way
   * the uncompressed bytes must hash to diffId (TSB4409).
   */
  blob?: Digest | undefined;
  /**
   * Snapshot dirs of the layers below, bottom first (see UnpackOptions.lowers): the snapshot is
   * then exactly what applying the layer onto them gives. snapshotsForImage passes them; the
   * chain-id key covers them (a chain id names the whole stack below).
   */
  lowers?: readonly string[] | undefined;
}

/** The snapshot dir (overlay lowerdir) for one layer, unpacking blob → snapshot on first use. */
export function ensureLayerSnapshot(
  store: Pick<Store, 'blobs' | 'snapshots'>, diffId: Digest, chainId: Digest, opts: SnapshotOptions = {},
): Promise<string> {
  return store.snapshots.ensure(chainId, async (tmp) => {
    await unpackLayerToSnapshot(store.blobs.open(opts.blob ?? diffId), tmp, {
      expectDiffId: diffId, allowDevices: opts.allowDevices, chown: opts.chown, lowers: opts.lowers,
    });
  });
}

/**
 * Lowerdir paths for an image's layers, BOTTOM FIRST (index 0 = base layer). Note overlayfs'
 * `lowerdir=` option lists the TOP layer first: reverse this list when mounting.
 * `blobs[i]`, when given, is the stored blob of layer i (see SnapshotOptions.blob).
 */
export async function snapshotsForImage(
  store: Pick<Store, 'blobs' | 'snapshots'>, diffIds: readonly Digest[], opts: { blobs?: readonly (Digest | undefined)[]; allowDevices?: boolean } = {},
): Promise<string[]> {
  const chains = chainIds(diffIds);
  const out: string[] = [];
  // Sequential: unpacking is disk-bound and there are 2 cores shared with RUN steps.
  for (let i = 0; i < diffIds.length; i++) {
    out.push(await ensureLayerSnapshot(store, diffIds[i]!, chains[i]!, { blob: opts.blobs?.[i], allowDevices: opts.allowDevices, lowers: [...out] }));
  }
  return out;
}
