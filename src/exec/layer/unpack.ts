/**
 * Extracting layer tars: into an overlay LOWERDIR snapshot (one layer alone, whiteouts kept as
 * overlay whiteouts) or FLAT onto a merged tree (whiteouts applied). Plus decompression by magic.
 *
 * Both unpackers take the tar as a byte stream (compressed or not: they call decompressStream),
 * treat it as hostile (see TreeWriter in tree.ts for the safety contract) and write nothing
 * outside `dir`. Errors are TsbError TSB44xx naming the entry.
 *
 * Symlinks the archive itself placed are never followed (TSB4403; flat mode with
 * followArchiveSymlinks follows them inside `dir`, for ADD). Symlinks that were there
 * before it (earlier layers: in `lowers` for a snapshot, in `dir` for flat) are followed like
 * containerd does, but chroot-style, inside the root. Hardlinks may name a file of this layer, or
 * (snapshot with lowers) of a lower layer, which is then copied up first, as overlayfs does.
 * Entries may come in any order; directory modes/mtimes are applied at the end.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { TsbError } from '../../errors.js';
import { OPAQUE_MARKER, WHITEOUT_PREFIX, baseOf, normalizeLayerPath, parentOf } from './entry.js';
import { readLinkName, readXattrs } from './fsentry.js';
import { fsPath } from './names.js';
import { MergedView } from './view.js';
import { LayerCodes, layerError } from './errors.js';
import { readTar, type TarHeader } from './tar.js';
import { type NodeMeta, TreeWriter, type TreeWriterOptions } from './tree.js';

export type Compression = 'none' | 'gzip' | 'bzip2' | 'xz' | 'zstd';

/** Compression format from the first bytes (at least 6 for xz). */
export function detectCompression(head: Uint8Array): Compression {
  const b = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 3 && b.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

type Source = Readable | AsyncIterable<Uint8Array>;

async function* prefixed(head: Buffer[], it: AsyncIterator<Uint8Array>): AsyncGenerator<Buffer> {
  for (const h of head) yield h;
  for (;;) {
    const r = await it.next();
    if (r.done) return;
    yield Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
  }
}

function decompressError(format: Compression, detail: string, cause?: unknown): TsbError {
  return layerError(LayerCodes.DECOMPRESS, `cannot decompress ${format} stream: ${detail}`,
    'The archive is corrupt or truncated; re-download or re-create it.', cause);
}

async function* viaProcess(cmd: string, format: Compression, input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const child = spawn(cmd, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; err?: Error }>((res) => {
    child.on('error', (err) => res({ code: null, err }));
    child.on('close', (code) => res({ code }));
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { if (stderr.length < 4096) stderr += d.toString(); });
  child.stdin.on('error', () => { /* EPIPE when the decompressor quits early: reported via its exit code */ });
  const feed = (async () => {
    try {
      for await (const c of input) {
        if (!child.stdin.write(c)) await new Promise<void>((r) => { child.stdin.once('drain', r); child.once('close', r); });
        if (child.exitCode !== null) break;
      }
    } finally { child.stdin.end(); }
  })();
  let feedErr: unknown;
  feed.catch((e) => { feedErr = e; child.kill(); });
  let complete = false;
  try {
    for await (const c of child.stdout) yield c as Buffer;
    complete = true;
  } finally {
    // Only a consumer that stops early (or an error) kills the decompressor; after EOF on stdout
    // the process is merely about to exit.
    if (!complete && child.exitCode === null && child.signalCode === null) child.kill();
  }
  const { code, err } = await exited;
  await feed.catch(() => undefined);
  if (feedErr) throw feedErr;
  if (err) throw decompressError(format, `cannot run ${cmd} (${err.message})`, err);
  if (code !== 0) throw decompressError(format, `${cmd} exited ${code}: ${stderr.trim()}`);
}

async function* viaGunzip(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const gz = createGunzip();
  const src = Readable.from(input);
  src.on('error', (e) => gz.destroy(e));
  src.pipe(gz);
  try {
    for await (const c of gz) yield c as Buffer;
  } catch (e) {
    if (e instanceof TsbError) throw e;
    throw decompressError('gzip', e instanceof Error ? e.message : String(e), e);
  }
}

/**
 * Detects the compression by magic bytes and returns the decompressed bytes (gzip via zlib;
 * bzip2/xz/zstd by spawning `bzip2 -dc` / `xz -dc` / `zstd -dc`). Uncompressed input is passed
 * through. Decompression failures (corrupt, truncated, tool missing) surface as TSB4408 errors on
 * the returned stream.
 */
export async function openDecompressed(src: Source): Promise<{ format: Compression; stream: Readable }> {
  const it = (src as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let n = 0;
  while (n < 6) {
    const r = await it.next();
    if (r.done) break;
    const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    head.push(c);
    n += c.length;
  }
  const format = detectCompression(Buffer.concat(head));
  const input = prefixed(head, it);
  const gen = format === 'none' ? input
    : format === 'gzip' ? viaGunzip(input)
    : viaProcess(format === 'bzip2' ? 'bzip2' : format === 'xz' ? 'xz' : 'zstd', format, input);
  return { format, stream: Readable.from(gen, { objectMode: false }) };
}

/** openDecompressed() without the format: what the OCI helper and ADD of local archives call. */
export async function decompressStream(src: Source): Promise<Readable> {
  return (await openDecompressed(src)).stream;
}

export interface UnpackOptions extends TreeWriterOptions {
  /** When set, the uncompressed tar must hash to this (sha256:…) else TSB4409 after unpacking. */
  expectDiffId?: string | undefined;
  /**
   * Snapshot mode only: the snapshots of the layers below (bottom first). With them, the snapshot
   * reproduces what containerd/Docker get by applying the layer onto the tree below: a parent
   * the layer has no header for copies its metadata from the lower directory it shadows, and an
   * entry below a path that is a symlink in the lowers (e.g. `bin/x` on a usr-merged base) lands
   * where that symlink resolves INSIDE the image root. Without lowers, parents are 0755 root
   * and such entries create a real directory over the lower symlink. `[]` means "base layer":
   * whiteouts that hide nothing in the lowers are not materialized.
   */
  lowers?: readonly string[] | undefined;
  /**
   * Flat mode only: also follow symlinks THIS archive placed, chroot-style inside `dir`, as
   * BuildKit's ADD extracts a local tar (`linkdir -> /etc` then `linkdir/f` lands at `etc/f` of the
   * destination, never outside it). Default false: layers and `load` reject writing through an
   * archive's own symlink (TSB4403).
   */
  followArchiveSymlinks?: boolean | undefined;
  /** Exact mtimes (layer path → ns) to set instead of the tar's whole seconds (mtimes.ts). */
  exactMtimes?: ReadonlyMap<string, bigint> | undefined;
}

export interface UnpackResult {
  /** sha256 of the uncompressed tar. */
  diffId: string;
  entries: number;
  /** Bytes of file content written. */
  bytes: number;
}

function metaOf(h: TarHeader): NodeMeta {
  return { mode: h.mode, uid: h.uid, gid: h.gid, mtime: Math.trunc(h.mtime), xattrs: h.xattrs };
}

async function* hashing(src: AsyncIterable<Uint8Array>, hash: Hash): AsyncGenerator<Buffer> {
  for await (const c of src) {
    const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
    hash.update(b);
    yield b;
  }
}

type Mode = 'snapshot' | 'flat';

async function unpack(src: Source, dir: string, mode: Mode, opts: UnpackOptions): Promise<UnpackResult> {
  const lowerView = mode === 'snapshot' && opts.lowers?.length ? new MergedView(opts.lowers) : undefined;
  const implicit = lowerView ? (rel: string): NodeMeta | undefined => {
    const e = lowerView.entry('/' + rel, { follow: false });
    if (!e || !e.stat.isDirectory()) return undefined;
    return { mode: e.stat.mode & 0o7777, uid: e.stat.uid, gid: e.stat.gid, mtime: Math.floor(e.stat.mtimeMs / 1000), xattrs: readXattrs(e.hostPath).kept };
  } : undefined;
  const tree = new TreeWriter(dir, opts, implicit);
  const hash = createHash('sha256');
  const { stream } = await openDecompressed(src);
  const written = new Set<string>(); // paths this layer created (whiteouts must not hit them)

  /**
   * containerd semantics for parents that are symlinks NOT placed by this archive (in the lowers,
   * or already in a flat target): follow them, chroot-style, inside the root. Symlinks this archive
   * placed are never followed (TreeWriter rejects writing through them: TSB4403).
   */
  const redirect = (rel: string, label: string, depth = 0): string => {
    const comps = rel.split('/');
    let prefix = '';
    for (let i = 0; i < comps.length - 1; i++) {
      const next = prefix ? `${prefix}/${comps[i]}` : comps[i]!;
      let target: string | undefined;
      if ((!written.has(next) || (mode === 'flat' && opts.followArchiveSymlinks)) && !tree.isKnownDir(next)) {
        const st = tree.lstatEntry(next, label);
        if (mode === 'flat') {
          if (st?.isSymbolicLink()) target = new MergedView([dir]).rootPath('/' + next);
        } else if (!st && lowerView) {
          const le = lowerView.entry('/' + next, { follow: false });
          if (le?.stat.isSymbolicLink()) target = lowerView.rootPath('/' + next);
        }
      }
      if (target !== undefined) {
        if (depth > 40) {
          throw layerError(LayerCodes.THROUGH_SYMLINK, `archive entry ${JSON.stringify(label)}: too many levels of symbolic links`, 'The image has a symlink loop.');
        }
        const out = [target.slice(1), ...comps.slice(i + 1)].filter((c) => c !== '').join('/');
        return redirect(out, label, depth + 1);
      }
      prefix = next;
    }
    return rel;
  };
  /**
   * A hardlink to a file of a LOWER layer: do what overlayfs does for `ln` (copy the target up
   * into this layer, then link), so both names share an inode in the merged view.
   */
  const copyUp = async (t: string, label: string): Promise<void> => {
    const le = lowerView!.entry('/' + t, { follow: false });
    if (!le) return; // tree.hardlink reports the missing target
    const st = le.stat;
    const meta: NodeMeta = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), xattrs: readXattrs(le.hostPath).kept };
    if (st.isFile()) await tree.file(t, meta, createReadStream(fsPath(le.hostPath)), label, st.size);
    else if (st.isSymbolicLink()) tree.symlinkUnchecked(t, readLinkName(le.hostPath), meta, label);
  };
  let entries = 0, bytes = 0;
  const sawOpaqueFor = new Set<string>();
  const opaqueDirs = new Set<string>(); // snapshot mode
  let rootOpaque = false;
  const whiteouts: string[] = []; // snapshot mode: overlay whiteouts made
  for await (const { header: h, body } of readTar(hashing(stream, hash))) {
    entries++;
    const label = h.name;
    const layerPath = tree.clean(h.name, label);
    const rel = redirect(layerPath, label);
    const base = rel === '' ? '' : baseOf(rel);
    if (base === OPAQUE_MARKER) {
      const d = parentOf(rel);
      if (mode === 'snapshot' && d === '') {
        rootOpaque = true; // overlayfs ignores opaque on a layer root: translated at the end
      } else if (mode === 'snapshot') {
        tree.ensureDir(d, label);
        tree.rawXattr(d, 'trusted.overlay.opaque', Buffer.from('y'));
        opaqueDirs.add(d);
      } else if (!sawOpaqueFor.has(d)) {
        sawOpaqueFor.add(d);
        for (const name of tree.list(d, label)) {
          const child = d ? `${d}/${name}` : name;
          // Keep what this layer already wrote (also below a headerless parent: marker order varies).
          if (written.has(child) || [...written].some((w) => w.startsWith(child + '/'))) continue;
          tree.remove(child);
        }
      }
      continue;
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const name = base.slice(WHITEOUT_PREFIX.length);
      if (name === '' || name === '.' || name === '..' || name.startsWith(WHITEOUT_PREFIX)) {
        throw layerError(LayerCodes.PATH_ESCAPE, `archive whiteout ${JSON.stringify(label)} names no valid entry`, 'The archive is corrupt or hostile.');
      }
      const target = parentOf(rel) ? `${parentOf(rel)}/${name}` : name;
      if (mode === 'snapshot') {
        // An entry of the same layer wins over its whiteout (either hides the lower one). With
        // known lowers, a whiteout that hides nothing is dropped: the kernel lists whiteouts in a
        // directory no lower layer merges with (readdir shows a name that lookup then denies).
        const hidesNothing = opts.lowers !== undefined && !lowerView?.entry('/' + target, { follow: false });
        if (!written.has(target) && !hidesNothing) { tree.overlayWhiteout(target, label); whiteouts.push(target); }
      } else if (!written.has(target)) {
        const st = tree.lstatEntry(target, label);
        if (st) tree.remove(target);
      }
      continue;
    }
    const meta = metaOf(h);
    // Nanoseconds: this process's own note of the layer (mtimes.ts), else a PAX mtime's fraction.
    meta.mtimeNs = opts.exactMtimes?.get(layerPath) ?? h.mtimeNs;
    switch (h.type) {
      case 'file':
        await tree.file(rel, meta, body, label, h.size);
        bytes += h.size;
        break;
      case 'dir': tree.dir(rel, meta, label); break;
      case 'symlink': tree.symlink(rel, h.linkname, meta, label); break;
      case 'hardlink': {
        const t0 = normalizeLayerPath(h.linkname);
        const t = t0 === undefined || t0 === '' ? h.linkname : redirect(t0, label);
        if (lowerView && t0 !== undefined && t0 !== '' && !written.has(t) && !tree.lstatEntry(t, label)) await copyUp(t, label);
        tree.hardlink(rel, t, label);
        break;
      }
      case 'char': case 'block': case 'fifo':
        tree.device(rel, h.type, h.devmajor, h.devminor, meta, label);
        break;
    }
    written.add(rel);
  }
  // Root opaque (a layer replacing the whole tree): the kernel ignores opaque on a lowerdir's
  // root, so hide every lower top-level name this layer does not have, and make the top-level
  // directories it does have opaque. Without known lowers this cannot be expressed (gap).
  if (rootOpaque && lowerView) {
    for (const name of lowerView.readdir('/')) {
      const st = tree.lstatEntry(name, name);
      if (!st) { tree.overlayWhiteout(name, name); continue; }
      if (st.isDirectory()) {
        tree.rawXattr(name, 'trusted.overlay.opaque', Buffer.from('y'));
        opaqueDirs.add(name);
      }
    }
  }
  // A whiteout below an opaque directory of the same layer hides nothing (the lower contents are
  // hidden already) and the kernel would list it (an opaque dir is not merged): drop it.
  for (const w of whiteouts) {
    let p = w;
    while (p.includes('/')) {
      p = parentOf(p);
      if (opaqueDirs.has(p)) { tree.remove(w); break; }
    }
  }
  tree.finish();
  const diffId = `sha256:${hash.digest('hex')}`;
  if (opts.expectDiffId && opts.expectDiffId !== diffId) {
    throw layerError(LayerCodes.DIFFID_MISMATCH, `layer content hashes to ${diffId}, expected diff_id ${opts.expectDiffId}`,
      'The image config and the layer blob disagree: the image is corrupt; pull or build it again.');
  }
  return { diffId, entries, bytes };
}

/**
 * Extracts ONE layer into `dir` (normally an empty temp dir from store.snapshots.ensure) in
 * overlay LOWERDIR form, so that stacking the snapshots of an image's layers as lowerdirs (bottom
 * first = rightmost) reproduces the image: `.wh.NAME` → char device 0/0 (mode 0) named NAME,
 * `.wh..wh..opq` → xattr trusted.overlay.opaque=y on its directory. Owners (when root), modes
 * (incl. setuid/setgid/sticky), mtimes, symlinks, hardlinks within the layer, xattrs (keepXattr
 * policy; trusted.overlay.* / user.overlay.* from the archive are dropped) and devices (mknod)
 * are reproduced. Compressed input is accepted.
 */
export function unpackLayerToSnapshot(tar: Source, dir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  return unpack(tar, dir, 'snapshot', opts);
}

/**
 * Applies a layer ONTO a merged tree in `dir` (for `--output type=local` and import): a whiteout
 * deletes the named path, an opaque marker empties its directory of everything this layer did not
 * itself write; other entries are created/replaced as in unpackLayerToSnapshot.
 */
export function unpackLayerFlat(tar: Source, dir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  return unpack(tar, dir, 'flat', opts);
}
