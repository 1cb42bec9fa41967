/**
 * Error codes of the layer machinery (src/exec/layer). They live in the TSB44xx block of the exec
 * range (TSB4xxx) so the sandbox and RUN code (other TSB4xxx blocks) cannot collide with them.
 * A code, once shipped, keeps its meaning.
 */
import { TsbError, errnoCode } from '../../errors.js';

export const LayerCodes = {
  /** Archive entry name escapes the target (`..` above the root). */
  PATH_ESCAPE: 'TSB4401',
  /** Symlink (relative, escaping) or hardlink target outside the target directory. */
  LINK_ESCAPE: 'TSB4402',
  /** An entry would be created through a symlink (or a non-directory) inside the target. */
  THROUGH_SYMLINK: 'TSB4403',
  /** Device node in an archive where devices are not allowed (or mknod not permitted). */
  DEVICE_NOT_ALLOWED: 'TSB4404',
  /** Malformed / truncated tar. */
  BAD_TAR: 'TSB4405',
  /** Tar entry type we do not support (sparse, multi-volume, unknown). */
  UNSUPPORTED_ENTRY: 'TSB4406',
  /** Hardlink whose target is not in this layer (nor in the given lowers). */
  HARDLINK_TARGET_MISSING: 'TSB4407',
  /** Compressed stream could not be decompressed. */
  DECOMPRESS: 'TSB4408',
  /** Layer content did not hash to the diff_id it was unpacked as. */
  DIFFID_MISMATCH: 'TSB4409',
  /** USER names a user absent from /etc/passwd (or passwd missing for a name). */
  UNKNOWN_USER: 'TSB4410',
  /** USER names a group absent from /etc/group. */
  UNKNOWN_GROUP: 'TSB4411',
  /** The caller handed the LayerWriter an invalid entry (bad path, duplicate, missing size). */
  BAD_ENTRY: 'TSB4412',
  /** Merged view lookup failed: not found, not a directory, symlink loop. */
  VIEW_LOOKUP: 'TSB4413',
  /** A filesystem operation failed while unpacking / diffing / copying (errno in cause). */
  FS_ERROR: 'TSB4414',
  /** Overlay upperdir uses a feature a layer cannot express (redirect_dir, metacopy). */
  UPPER_UNSUPPORTED: 'TSB4415',
  /** A file changed size while it was being written into a layer. */
  FILE_CHANGED: 'TSB4416',
} as const;

export function layerError(code: string, message: string, hint?: string, cause?: unknown): TsbError {
  return new TsbError(code, message, { hint, cause });
}

/** Wraps a Node system error (errno) from filesystem work into TSB4414 naming the path. */
export function fsError(op: string, path: string, e: unknown): TsbError {
  if (e instanceof TsbError) return e;
  const code = errnoCode(e) ?? 'error';
  return new TsbError(LayerCodes.FS_ERROR, `${op} ${path}: ${code}`, {
    cause: e,
    hint: code === 'ENOSPC' ? 'Free disk space in the store filesystem and retry.'
      : code === 'EPERM' || code === 'EACCES' ? 'tsbuild needs root (or the right capabilities) for this operation.'
      : 'Check the path and the filesystem, then retry.',
  });
}
