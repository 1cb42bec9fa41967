/**
 * Diff of an overlayfs UPPERDIR into OCI layer entries (what a RUN step changed).
 *
 * Contract:
 * - Mount requirement: the overlay was mounted with redirect_dir=off and metacopy=off (the sandbox
 *   does so), so the upperdir is self-contained. An upper carrying trusted/user.overlay.redirect or
 *   .metacopy throws TSB4415 rather than producing a wrong layer.
 * - Overlay whiteouts (char 0/0) → whiteout entries (`.wh.NAME`); a directory with
 *   trusted.overlay.opaque=y (or user.overlay.opaque=y) → its entry plus an opaque marker
 *   (`.wh..wh..opq`), and all of its contents (nothing below an opaque dir is compared to lower).
 * - Files, symlinks, devices and fifos are emitted as Docker does; sockets are skipped (Docker skips
 *   them). Regular files sharing an inode inside the upper become tar hardlinks (first in walk
 *   order carries the content); whiteouts never count as links (overlay shares one whiteout inode).
 * - Xattrs: keepXattr() (security.capability, user.*, POSIX ACLs); overlay's own never.
 * - Copy-ups that changed nothing (same type, mode, owner, size, mtime, xattrs, link target /
 *   device AND content as the entry visible in `lowers`) are dropped. A
 *   directory is emitted when it is new, changed, opaque, or an ancestor of anything emitted
 *   (Docker emits the parents of every change). The layer root itself is never emitted.
 * - Output is in walk order (the LayerWriter sorts again anyway); mtimes are whole seconds,
 *   clamped by the writer when SOURCE_DATE_EPOCH is set. No change at all → undefined (no layer).
 * Known gap: a changed mode/owner of the root directory itself is not recorded (no `./` entry).
 */
import { closeSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { BlobStore } from '../../../store/types.js';
import { type LayerEntry, compareLayerPaths } from './entry.js';
import { LayerCodes, fsError, layerError } from './errors.js';
import { entryFromStat, readXattrs, statType } from './fsentry.js';
import { lgetxattr } from './native.js';
import { MergedView } from './view.js';
import { type LayerResult, LayerWriter } from './writer.js';

export interface DiffOptions {
  /** The overlay's lowerdirs, bottom first (snapshot dirs). Used to drop no-op copy-ups. */
  lowers?: readonly string[];
  /** SOURCE_DATE_EPOCH for the written layer (commitUpperdir). */
  sourceDateEpoch?: number | undefined;
}

function checkOverlayFeatures(names: string[], rel: string): void {
  for (const n of names) {
    if (/^(trusted|user)\.overlay\.(redirect|metacopy)$/.test(n)) {
      throw layerError(LayerCodes.UPPER_UNSUPPORTED, `overlay upperdir entry /${rel} uses ${n}, which a layer cannot express`,
        'Mount the overlay with redirect_dir=off,metacopy=off (the tsbuild sandbox does).');
    }
  }
}

function isOpaqueDir(host: string): boolean {
  const v = lgetxattr(host, 'trusted.overlay.opaque') ?? lgetxattr(host, 'user.overlay.opaque');
  return v !== undefined && v.toString() === 'y';
}

function sameXattrs(a: Record<string, Buffer>, b: Record<string, Buffer>): boolean {
  const ka = Object.keys(a), kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => b[k] !== undefined && a[k]!.equals(b[k]!));
}

/** Same as the lower entry in everything a layer records (mtime to the nanosecond as stat gives). */
function unchanged(st: Stats, host: string, x: Record<string, Buffer>, lower: { stat: Stats; hostPath: string }): boolean {
  const l = lower.stat;
  if (statType(st) !== statType(l)) return false;
  if ((st.mode & 0o7777) !== (l.mode & 0o7777) || st.uid !== l.uid || st.gid !== l.gid) return false;
  if (st.mtimeMs !== l.mtimeMs) return false;
  if (!st.isDirectory() && st.size !== l.size) return false;
  if ((st.isCharacterDevice() || st.isBlockDevice()) && st.rdev !== l.rdev) return false;
  if (st.isSymbolicLink() && readlinkSync(host) !== readlinkSync(lower.hostPath)) return false;
  if (!sameXattrs(x, readXattrs(lower.hostPath).kept)) return false;
  // Same metadata: only then read the bytes (a program may restore mtimes after writing, e.g.
  // `cp -p` or tar over a same-size file; skipping such a file would lose a change).
  return !st.isFile() || sameContent(host, lower.hostPath, st.size);
}

function sameContent(a: string, b: string, size: number): boolean {
  const fa = openSync(a, 'r');
  try {
    const fb = openSync(b, 'r');
    try {
      const CH = 1 << 20;
      const ba = Buffer.allocUnsafe(Math.min(CH, Math.max(size, 1))), bb = Buffer.allocUnsafe(ba.length);
      for (let pos = 0; pos < size;) {
        const n = Math.min(ba.length, size - pos);
        const ra = readSync(fa, ba, 0, n, pos), rb = readSync(fb, bb, 0, n, pos);
        if (ra !== rb || ra === 0 || !ba.subarray(0, ra).equals(bb.subarray(0, rb))) return false;
        pos += ra;
      }
      return true;
    } finally { closeSync(fb); }
  } finally { closeSync(fa); }
}

/**
 * The OCI diff of an overlay upperdir against its lowers (bottom first). See the module contract.
 * Returns undefined when the upper holds no change.
 */
export function diffUpperdir(upperdir: string, lowers: readonly string[] = [], _opts: DiffOptions = {}): LayerEntry[] | undefined {
  const view = lowers.length ? new MergedView(lowers) : undefined;
  const out: LayerEntry[] = [];
  const inodes = new Map<string, string>(); // dev:ino → first path (hardlink grouping)

  const visit = (rel: string, lowerVisible: boolean): boolean => {
    const dirHost = rel === '' ? upperdir : join(upperdir, rel);
    let names: string[];
    try { names = readdirSync(dirHost); } catch (e) { throw fsError('readdir', dirHost, e); }
    names.sort((a, b) => compareLayerPaths(a, b));
    let emitted = false;
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const host = join(dirHost, name);
      let st: Stats;
      try { st = lstatSync(host); } catch (e) { throw fsError('lstat', host, e); }
      const type = statType(st);
      if (type === 'socket' || type === undefined) continue;
      if (type === 'char' && st.rdev === 0) {
        out.push({ path: childRel, type: 'whiteout' });
        emitted = true;
        continue;
      }
      const { kept, names: xnames } = readXattrs(host);
      checkOverlayFeatures(xnames, childRel);
      const lower = lowerVisible && view ? view.entry('/' + childRel, { follow: false }) : undefined;
      const base = entryFromStat(childRel, host, st, kept);
      if (type === 'dir') {
        const opaque = isOpaqueDir(host);
        const idx = out.length;
        const lowerDir = !opaque && lower !== undefined && lower.stat.isDirectory();
        const same = lowerDir && unchanged(st, host, kept, lower);
        const below = visit(childRel, lowerDir);
        if (opaque || !same || below) {
          const add: LayerEntry[] = [base];
          if (opaque) add.push({ path: childRel, type: 'opaque' });
          out.splice(idx, 0, ...add);
          emitted = true;
        }
        continue;
      }
      if (lower && unchanged(st, host, kept, lower)) continue;
      if (type === 'file' && st.nlink > 1) {
        const key = `${st.dev}:${st.ino}`;
        const first = inodes.get(key);
        if (first !== undefined) {
          out.push({ ...base, type: 'hardlink', linkname: first, source: undefined, size: undefined });
          emitted = true;
          continue;
        }
        inodes.set(key, childRel);
      }
      out.push(base);
      emitted = true;
    }
    return emitted;
  };
  visit('', view !== undefined);
  return out.length ? out : undefined;
}

/**
 * diffUpperdir + LayerWriter + store.blobs.put: the layer a RUN step produced, streamed into the
 * store. Returns undefined when the step changed nothing (no layer, as Docker records none).
 */
export async function commitUpperdir(store: { blobs: Pick<BlobStore, 'put'> }, upperdir: string, opts: DiffOptions = {}): Promise<LayerResult | undefined> {
  const entries = diffUpperdir(upperdir, opts.lowers ?? [], opts);
  if (!entries) return undefined;
  const w = new LayerWriter({ sourceDateEpoch: opts.sourceDateEpoch });
  for (const e of entries) w.add(e);
  return w.commit(store.blobs);
}
