/**
 * Layer snapshots: each layer unpacked ALONE in overlay lowerdir form (unpackLayerToSnapshot),
 * files keeping their nanosecond mtimes when this process wrote the layer (mtimes.ts), or a RUN's
 * upper dir kept as is (keepUpperAsSnapshot),
 * stored by the store under its chain id, created once (store.snapshots.ensure fills a temp dir
 * and renames it into place; concurrent callers wait for one fill).
 *
 * A snapshot holds one layer (whiteouts as overlay whiteouts), unpacked against the snapshots
 * below it (implicit parents take the lower metadata, lower symlinks are followed inside the
 * root, as containerd applies layers), so it is keyed by CHAIN id: the same diff_id on another
 * base is another snapshot.
 */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, lchownSync, lstatSync, renameSync, rmSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode } from '../../errors.js';
import type { Digest, Snapshots, Store } from '../../../store/types.js';
import { parentOf } from './entry.js';
import { fsError } from './errors.js';
import { exactMtimesOf } from './mtimes.js';
import { fsPath } from './names.js';
import { llistxattr, lremovexattr, lutimesNs } from './native.js';
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

/**
 * Snapshots this process already ensured, per store.snapshots object: chain id → dir. Why: every
 * RUN asks for the snapshot of every layer below it, and ensure() touches each one (a utimes per
 * layer per step, in sequence). One touch per process is enough: the store takes its process
 * lease before the first ensure, and gc keeps whatever was touched after the oldest live lease
 * was taken. A remembered dir is still checked to exist (something may have removed it by hand).
 */
const ensuredBy = new WeakMap<object, Map<string, string>>();

/** The snapshot dir (overlay lowerdir) for one layer, unpacking blob → snapshot on first use. */
export async function ensureLayerSnapshot(
  store: Pick<Store, 'blobs' | 'snapshots'>, diffId: Digest, chainId: Digest, opts: SnapshotOptions = {},
): Promise<string> {
  let memo = ensuredBy.get(store.snapshots);
  const known = memo?.get(chainId);
  if (known !== undefined && existsSync(known)) return known;
  const dir = await store.snapshots.ensure(chainId, async (tmp) => {
    await unpackLayerToSnapshot(store.blobs.open(opts.blob ?? diffId), tmp, {
      expectDiffId: diffId, allowDevices: opts.allowDevices, chown: opts.chown, lowers: opts.lowers,
      // Layers this process wrote (COPY/ADD) keep their files' nanoseconds in the snapshot.
      exactMtimes: exactMtimesOf(diffId),
    });
  });
  if (!memo) ensuredBy.set(store.snapshots, memo = new Map());
  memo.set(chainId, dir);
  return dir;
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

/**
 * Moves a RUN step's overlay upper dir into the store as the snapshot `chainId` of the layer that
 * was just written from it (commitUpperdir with keepAsSnapshot), instead of unpacking that tar
 * later. Why: the tar rounds mtimes to whole seconds, BuildKit's snapshots do not, and later RUNs
 * compare times (`find -newer`, make). Also much cheaper than an unpack: one rename.
 *
 * Contract: the result equals what unpackLayerToSnapshot of that layer (with the same lowers) would
 * give, except that mtimes keep their nanoseconds (and files keep their holes). To get there:
 * - `dropped` paths (no-op copy-ups and sockets the layer does not carry) are removed, and the
 *   mtimes of their parent directories put back to the nanosecond (the removal bumped them);
 * - `stripXattrs` (overlay's trusted.overlay.origin/impure, labels … never in a layer) are removed;
 *   trusted.overlay.opaque stays (that is how a snapshot spells an opaque directory);
 * - the root gets the fresh-snapshot root's mode/owner (0755, root) and no xattrs, as an unpack
 *   leaves it (the layer never records the root).
 * Whiteouts (char 0/0) are already in overlay form. Crash safety is store.snapshots.ensure's: the
 * tree is prepared in place and renamed to a temp dir inside fill(), which ensure renames into
 * place only when fill returns. When the snapshot exists already (same layer built before), the
 * upper is left untouched for the caller to remove.
 */
export async function keepUpperAsSnapshot(
  snapshots: Pick<Snapshots, 'ensure'>, upperdir: string, chainId: Digest,
  plan: { dropped: readonly string[]; stripXattrs: ReadonlyArray<{ path: string; names: readonly string[] }> },
): Promise<string> {
  return snapshots.ensure(chainId, async (tmp) => {
    const host = (rel: string): string => (rel === '' ? upperdir : join(upperdir, rel));
    const parents = new Map<string, bigint>();
    for (const d of plan.dropped) {
      const p = parentOf(d);
      if (p === '' || parents.has(p)) continue;
      try { parents.set(p, lstatSync(fsPath(host(p)), { bigint: true }).mtimeNs); } catch (e) { throw fsError('lstat', host(p), e); }
    }
    for (const d of plan.dropped) {
      try { rmSync(fsPath(host(d)), { recursive: true, force: true }); } catch (e) { throw fsError('remove', host(d), e); }
    }
    for (const { path, names } of plan.stripXattrs) {
      for (const n of names) {
        try { lremovexattr(host(path), n); } catch (e) {
          if (errnoCode(e) === 'ENOENT') break; // below a dropped directory
          throw fsError(`removexattr ${n}`, host(path), e);
        }
      }
    }
    for (const [p, ns] of parents) {
      try { lutimesNs(host(p), ns); } catch (e) { throw fsError('utimensat', host(p), e); }
    }
    try {
      rmdirSync(tmp);
      renameSync(upperdir, tmp);
      chmodSync(tmp, 0o755);
      if (process.getuid?.() === 0) lchownSync(tmp, 0, 0);
      // The root is not part of the layer (overlay's trusted.overlay.impure lands here).
      for (const n of llistxattr(tmp)) lremovexattr(tmp, n);
    } catch (e) { throw fsError('rename', upperdir, e); }
  });
}
