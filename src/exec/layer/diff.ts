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
 *   When one name of such an inode is emitted, every name of it in the upper is (an `ln` of a lower
 *   file copies the file up unchanged: dropping that copy would split the link, BuildKit keeps it).
 * - Names are bytes: directories are read as Buffers and decoded byte-exactly (names.ts), so
 *   non-UTF-8 names reach the tar as their raw bytes.
 * - Xattrs: keepXattr() (security.capability, user.*, POSIX ACLs); overlay's own never.
 * - Copy-ups that changed nothing (same type, mode, owner, size, mtime, xattrs, link target /
 *   device AND content as the entry visible in `lowers`) are dropped. A
 *   directory is emitted when it is new, changed, opaque, or an ancestor of anything emitted
 *   (Docker emits the parents of every change). The layer root itself is never emitted.
 * - Output is in walk order (the LayerWriter sorts again anyway); mtimes are whole seconds,
 *   clamped by the writer when SOURCE_DATE_EPOCH is set. No change at all → undefined (no layer).
 * Known gap: a changed mode/owner of the root directory itself is not recorded (no `./` entry).
 *
 * commitUpperdir can then KEEP the upper as the new layer's snapshot (DiffOptions.keepAsSnapshot):
 * what the layer does not carry (no-op copy-ups, sockets, overlay's and other unkept xattrs) is
 * removed first, so the snapshot is what unpacking the layer would give, except that timestamps
 * keep their nanoseconds, as in BuildKit's overlay snapshots (later RUNs, `find -newer`, make).
 */
import { closeSync, lstatSync, openSync, readSync, readdirSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { BlobStore, Digest, Snapshots } from '../../../store/types.js';
import { type LayerEntry, compareLayerPaths, keepXattr } from './entry.js';
import { LayerCodes, fsError, layerError } from './errors.js';
import { entryFromStat, readLinkName, readXattrs, statType } from './fsentry.js';
import { forgetExactMtimes } from './mtimes.js';
import { decodeName, fsPath } from './names.js';
import { lgetxattr } from './native.js';
import { chainIds, keepUpperAsSnapshot } from './snapshot.js';
import { MergedView } from './view.js';
import { type LayerResult, LayerWriter } from './writer.js';

export interface DiffOptions {
  /** The overlay's lowerdirs, bottom first (snapshot dirs). Used to drop no-op copy-ups. */
  lowers?: readonly string[];
  /** SOURCE_DATE_EPOCH for the written layer (commitUpperdir). */
  sourceDateEpoch?: number | undefined;
  /**
   * commitUpperdir only: after writing the layer, MOVE the upper dir into the store as the
   * snapshot of the new layer (chain id of `lowerDiffIds` + the new diff_id), instead of leaving
   * the next step to unpack the tar (which rounds mtimes to seconds). The upper dir is gone
   * afterwards (or left as is when that snapshot already exists). `lowerDiffIds` are the diff_ids
   * of the layers whose snapshots are `lowers`, bottom first.
   */
  keepAsSnapshot?: { snapshots: Pick<Snapshots, 'ensure'>; lowerDiffIds: readonly Digest[] } | undefined;
  /**
   * commitUpperdir only: no change still makes a layer, the empty tar (EMPTY_LAYER: 1024 zero
   * bytes, what LayerWriter writes for no entries), as a BuildKit RUN always does. It is put as
   * one buffer, so a store that has it already only touches it (no rewrite, no fsync), and with
   * keepAsSnapshot the (emptied) upper becomes its snapshot, so the next step does not unpack it.
   */
  emptyLayer?: boolean | undefined;
}

/** The empty layer tar: two zero blocks (end of archive), no entries. */
export const EMPTY_LAYER: Uint8Array = new Uint8Array(1024);

/** What diffUpper found: the layer entries plus what a snapshot made from the upper must lose. */
export interface UpperDiff {
  entries: LayerEntry[];
  /** Upper paths the layer does not carry (no-op copy-ups, sockets); a dropped dir covers its subtree. */
  dropped: string[];
  /** Upper paths with xattrs a layer never carries (overlay's origin/impure, selinux labels …). */
  stripXattrs: Array<{ path: string; names: string[] }>;
}

function checkOverlayFeatures(names: string[], rel: string): void {
  for (const n of names) {
    if (/^(trusted|user)\.overlay\.(redirect|metacopy)$/.test(n)) {
      throw layerError(LayerCodes.UPPER_UNSUPPORTED, `overlay upperdir entry /${rel} uses ${n}, which a layer cannot express`,
        'Mount the overlay with redirect_dir=off,metacopy=off (the tsbuild sandbox does).');
    }
  }
}

const OPAQUE_XATTR = 'trusted.overlay.opaque';

function isOpaqueDir(host: string): boolean {
  const v = lgetxattr(host, OPAQUE_XATTR) ?? lgetxattr(host, 'user.overlay.opaque');
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
  if (st.isSymbolicLink() && readLinkName(host) !== readLinkName(lower.hostPath)) return false;
  if (!sameXattrs(x, readXattrs(lower.hostPath).kept)) return false;
  // Same metadata: only then read the bytes (a program may restore mtimes after writing, e.g.
  // `cp -p` or tar over a same-size file; skipping such a file would lose a change).
  return !st.isFile() || sameContent(host, lower.hostPath, st.size);
}

function sameContent(a: string, b: string, size: number): boolean {
  const fa = openSync(fsPath(a), 'r');
  try {
    const fb = openSync(fsPath(b), 'r');
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

/** One upper entry as the walk saw it; emission is decided afterwards (hardlink groups first). */
interface Node {
  rel: string;
  kind: 'whiteout' | 'socket' | 'dir' | 'other';
  entry?: LayerEntry;
  opaque?: boolean;
  /** Same as the lower entry it shadows (a no-op copy-up). */
  same: boolean;
  children?: Node[];
  /** dev:ino of regular files with nlink > 1. */
  inode?: string;
}

/**
 * The OCI diff of an overlay upperdir against its lowers (bottom first), plus what a snapshot
 * kept from this upper must drop. See the module contract.
 */
export function diffUpper(upperdir: string, lowers: readonly string[] = []): UpperDiff {
  const view = lowers.length ? new MergedView(lowers) : undefined;
  const stripXattrs: UpperDiff['stripXattrs'] = [];
  const groups = new Map<string, Node[]>(); // dev:ino → names in walk order

  const walk = (rel: string, lowerVisible: boolean): Node[] => {
    const dirHost = rel === '' ? upperdir : join(upperdir, rel);
    let raw: Buffer[];
    try { raw = readdirSync(fsPath(dirHost), { encoding: 'buffer' }); } catch (e) { throw fsError('readdir', dirHost, e); }
    const names = raw.map((b) => decodeName(b)).sort(compareLayerPaths);
    const nodes: Node[] = [];
    for (const name of names) {
      const childRel = rel ? `${rel}/${name}` : name;
      const host = join(dirHost, name);
      let st: Stats;
      try { st = lstatSync(fsPath(host)); } catch (e) { throw fsError('lstat', host, e); }
      const type = statType(st);
      if (type === 'socket' || type === undefined) { nodes.push({ rel: childRel, kind: 'socket', same: true }); continue; }
      if (type === 'char' && st.rdev === 0) { nodes.push({ rel: childRel, kind: 'whiteout', same: false }); continue; }
      const { kept, names: xnames } = readXattrs(host);
      checkOverlayFeatures(xnames, childRel);
      // The opaque marks stay: that is how a snapshot spells an opaque directory.
      const unkept = xnames.filter((n) => !keepXattr(n) && n !== OPAQUE_XATTR && n !== 'user.overlay.opaque');
      if (unkept.length) stripXattrs.push({ path: childRel, names: unkept });
      const lower = lowerVisible && view ? view.entry('/' + childRel, { follow: false }) : undefined;
      const entry = entryFromStat(childRel, host, st, kept);
      if (type === 'dir') {
        const opaque = isOpaqueDir(host);
        const lowerDir = !opaque && lower !== undefined && lower.stat.isDirectory();
        const same = lowerDir && unchanged(st, host, kept, lower);
        nodes.push({ rel: childRel, kind: 'dir', entry, opaque, same, children: walk(childRel, lowerDir) });
        continue;
      }
      const node: Node = { rel: childRel, kind: 'other', entry, same: lower !== undefined && unchanged(st, host, kept, lower) };
      if (type === 'file' && st.nlink > 1) {
        node.inode = `${st.dev}:${st.ino}`;
        const g = groups.get(node.inode);
        if (g) g.push(node); else groups.set(node.inode, [node]);
      }
      nodes.push(node);
    }
    return nodes;
  };
  const top = walk('', view !== undefined);

  // A hardlink group is emitted whole or not at all.
  for (const g of groups.values()) {
    if (g.length > 1 && g.some((n) => !n.same)) for (const n of g) n.same = false;
  }

  const entries: LayerEntry[] = [];
  const dropped: string[] = [];
  const first = new Map<string, string>(); // dev:ino → first emitted path
  const emit = (nodes: Node[]): boolean => {
    let any = false;
    for (const n of nodes) {
      if (n.kind === 'socket') { dropped.push(n.rel); continue; }
      if (n.kind === 'whiteout') { entries.push({ path: n.rel, type: 'whiteout' }); any = true; continue; }
      if (n.kind === 'dir') {
        const idx = entries.length, mark = dropped.length;
        const below = emit(n.children!);
        if (n.opaque || !n.same || below) {
          const add: LayerEntry[] = [n.entry!];
          if (n.opaque) add.push({ path: n.rel, type: 'opaque' });
          entries.splice(idx, 0, ...add);
          any = true;
        } else {
          dropped.length = mark; // the whole subtree goes
          dropped.push(n.rel);
        }
        continue;
      }
      if (n.same) { dropped.push(n.rel); continue; }
      any = true;
      if (n.inode !== undefined) {
        const f = first.get(n.inode);
        if (f !== undefined) {
          entries.push({ ...n.entry!, type: 'hardlink', linkname: f, source: undefined, size: undefined });
          continue;
        }
        first.set(n.inode, n.rel);
      }
      entries.push(n.entry!);
    }
    return any;
  };
  emit(top);
  return { entries, dropped, stripXattrs };
}

/**
 * The OCI diff of an overlay upperdir against its lowers (bottom first). See the module contract.
 * Returns undefined when the upper holds no change.
 */
export function diffUpperdir(upperdir: string, lowers: readonly string[] = [], _opts: DiffOptions = {}): LayerEntry[] | undefined {
  const { entries } = diffUpper(upperdir, lowers);
  return entries.length ? entries : undefined;
}

/**
 * diffUpperdir + LayerWriter + store.blobs.put: the layer a RUN step produced, streamed into the
 * store. Returns undefined when the step changed nothing (no layer, as Docker records none),
 * unless opts.emptyLayer (then the empty tar).
 * With opts.keepAsSnapshot the upper then becomes the layer's snapshot (see DiffOptions).
 */
export async function commitUpperdir(store: { blobs: Pick<BlobStore, 'put'> }, upperdir: string, opts: DiffOptions & { emptyLayer: true }): Promise<LayerResult>;
export async function commitUpperdir(store: { blobs: Pick<BlobStore, 'put'> }, upperdir: string, opts?: DiffOptions): Promise<LayerResult | undefined>;
export async function commitUpperdir(store: { blobs: Pick<BlobStore, 'put'> }, upperdir: string, opts: DiffOptions = {}): Promise<LayerResult | undefined> {
  const diff = diffUpper(upperdir, opts.lowers ?? []);
  let res: LayerResult;
  if (!diff.entries.length) {
    if (!opts.emptyLayer) return undefined;
    const { digest, size } = await store.blobs.put(EMPTY_LAYER);
    res = { diffId: digest, size };
  } else {
    const w = new LayerWriter({ sourceDateEpoch: opts.sourceDateEpoch });
    for (const e of diff.entries) w.add(e);
    res = await w.commit(store.blobs);
  }
  const keep = opts.keepAsSnapshot;
  if (keep) {
    const chain = chainIds([...keep.lowerDiffIds, res.diffId]).at(-1)!;
    await keepUpperAsSnapshot(keep.snapshots, upperdir, chain, diff);
    forgetExactMtimes(res.diffId); // the upper has them all
  }
  return res;
}
