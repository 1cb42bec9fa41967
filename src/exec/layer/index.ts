/**
 * The layer machinery's public API (src/exec/layer): file trees ⇄ OCI layer tars.
 *   LayerWriter                      entries → layer tar → store (writer.ts)
 *   diffUpperdir / commitUpperdir    overlay upperdir → entries / layer (diff.ts); with
 *                                    keepAsSnapshot the upper becomes the layer's snapshot
 *                                    (nanosecond mtimes kept, as BuildKit's snapshots)
 *   unpackLayerToSnapshot / unpackLayerFlat / decompressStream   (unpack.ts)
 *   chainIds / ensureLayerSnapshot / snapshotsForImage / keepUpperAsSnapshot   (snapshot.ts)
 *   decodeName / encodeName / fsPath  byte-exact (non-UTF-8) file names as strings (names.ts)
 *   MergedView / lookupUser          read-only union of snapshots (view.ts, user.ts)
 *   exportRootfs / copyViewToDir     flatten a view (flatten.ts)
 * Error codes: LayerCodes (TSB44xx, errors.ts).
 */
export * from './entry.js';
export { LayerCodes } from './errors.js';
export { LayerWriter, tarNameOf, type LayerResult, type LayerWriterOptions, type Planned } from './writer.js';
export { diffUpperdir, diffUpper, commitUpperdir, type DiffOptions, type UpperDiff } from './diff.js';
export {
  unpackLayerToSnapshot, unpackLayerFlat, decompressStream, openDecompressed, detectCompression,
  type Compression, type UnpackOptions, type UnpackResult,
} from './unpack.js';
export { chainIds, ensureLayerSnapshot, snapshotsForImage, keepUpperAsSnapshot, type SnapshotOptions } from './snapshot.js';
export { decodeName, encodeName, fsPath } from './names.js';
export { MergedView, type ViewEntry } from './view.js';
export { lookupUser, type ExecUser } from './user.js';
export { exportRootfs, copyViewToDir } from './flatten.js';
export { readTar, encodeHeader, type TarEntry, type TarHeader, type TarType } from './tar.js';
export type { TreeWriterOptions } from './tree.js';
