/**
 * commitUpperdir with keepAsSnapshot: the RUN's real overlay upper dir becomes the new layer's
 * snapshot. It must equal what unpacking the layer gives (same tree, same union over the lowers)
 * except that mtimes keep their nanoseconds; no-op copy-ups, sockets and overlay's own xattrs must
 * not survive in it. Also: hardlinks a RUN makes to LOWER files stay links in the layer.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, linkSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { openStore } from '../../../store/index.js';
import { commitUpperdir, diffUpper, diffUpperdir } from '../../../src/exec/layer/diff.js';
import { chainIds, keepUpperAsSnapshot } from '../../../src/exec/layer/snapshot.js';
import { unpackLayerToSnapshot } from '../../../src/exec/layer/unpack.js';
import { MergedView } from '../../../src/exec/layer/view.js';
import { LayerWriter } from '../../../src/exec/layer/writer.js';
import { llistxattr, lsetxattr, lutimesNs } from '../../../src/exec/layer/native.js';
import type { Digest } from '../../../store/types.js';
import { cleanup, describeTree, describeView, mountOverlay, overlayMissing, tmp, umount } from './helpers.js';

afterAll(cleanup);

const T = 1_600_000_000;
const skip = overlayMissing();

function lower(root: string): void {
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'var/lib'), { recursive: true });
  writeFileSync(join(root, 'bin/busybox'), 'BUSYBOX');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  writeFileSync(join(root, 'etc/same'), 'unchanged');
  writeFileSync(join(root, 'var/lib/keep'), 'k');
  execFileSync('find', [root, '-exec', 'touch', '-h', '-d', '@' + T, '{}', '+']);
}

function ns(p: string): bigint {
  return lstatSync(p, { bigint: true }).mtimeNs;
}

async function listen(path: string): Promise<() => Promise<void>> {
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(path, res));
  return () => new Promise<void>((res) => srv.close(() => res()));
}

describe.skipIf(skip)('RUN upper kept as the layer snapshot', () => {
  test('hardlink to a lower file: both names in the layer, one inode after unpacking', async () => {
    const base = tmp('keep');
    const low = join(base, 'lower');
    lower(low);
    const { mnt, upper } = mountOverlay(base, [low]);
    try {
      linkSync(join(mnt, 'bin/busybox'), join(mnt, 'bb'));
    } finally { umount(mnt); }
    const entries = diffUpperdir(upper, [low])!;
    const byPath = Object.fromEntries(entries.map((e) => [e.path, e]));
    // 'bb' sorts before 'bin': it carries the content, the copied-up busybox links to it.
    expect(byPath['bb']?.type).toBe('file');
    expect(byPath['bin/busybox']).toMatchObject({ type: 'hardlink', linkname: 'bb' });
    expect(byPath['bin']?.type).toBe('dir');

    const store = await openStore(join(base, 'store'));
    try {
      const r = (await commitUpperdir(store, upper, { lowers: [low] }))!;
      const snap = join(base, 'snap');
      mkdirSync(snap);
      await unpackLayerToSnapshot(store.blobs.open(r.diffId), snap, { lowers: [low] });
      const v = describeView(new MergedView([low, snap]));
      expect(v['bb']?.link).toBeDefined();
      expect(v['bb']?.link).toBe(v['bin/busybox']?.link);
    } finally { await store.close(); }
  });

  test('an unchanged copy-up of a multi-link file is not emitted when no name changed', () => {
    const base = tmp('keep');
    const low = join(base, 'lower');
    lower(low);
    linkSync(join(low, 'etc/group'), join(low, 'etc/group2'));
    const { mnt, upper } = mountOverlay(base, [low]);
    try {
      chownSync(join(mnt, 'etc/same'), 0, 0); // copy-up, nothing changes
    } finally { umount(mnt); }
    expect(diffUpperdir(upper, [low])).toBeUndefined();
  });

  test('snapshot = fresh unpack except nanosecond mtimes; no-op copy-ups, sockets, overlay xattrs gone', async () => {
    const base = tmp('keep');
    const low = join(base, 'lower');
    lower(low);
    const { mnt, upper } = mountOverlay(base, [low]);
    let closeSock: (() => Promise<void>) | undefined;
    const A = BigInt(T + 100) * 1_000_000_000n + 123_456_789n;
    const D = BigInt(T + 50) * 1_000_000_000n + 987_654_321n;
    try {
      writeFileSync(join(mnt, 'etc/group'), 'root:x:0:\napp:x:1000:\n');
      lutimesNs(join(mnt, 'etc/group'), A);
      chownSync(join(mnt, 'etc/same'), 0, 0); // no-op copy-up next to a real change
      chownSync(join(mnt, 'var/lib/keep'), 0, 0); // no-op copy-up alone: var, var/lib not in the layer
      writeFileSync(join(mnt, 'new'), 'n');
      lutimesNs(join(mnt, 'new'), A + 1n);
      closeSock = await listen(join(mnt, 'sock'));
      execFileSync('rm', ['-rf', join(mnt, 'bin')]);
      mkdirSync(join(mnt, 'bin'));
      writeFileSync(join(mnt, 'bin/sh'), 'sh');
      lutimesNs(join(mnt, 'bin'), D);
      lutimesNs(join(mnt, 'etc'), D);
    } finally {
      await closeSock?.();
      umount(mnt);
    }
    // The kernel put its own bookkeeping in the upper; a snapshot must not carry it.
    const plan = diffUpper(upper, [low]);
    expect(plan.dropped).toEqual(expect.arrayContaining(['etc/same', 'var']));
    expect(plan.dropped).not.toContain('etc/group');
    expect(plan.stripXattrs.map((x) => x.path)).toContain('etc/group'); // trusted.overlay.origin of the copy-up

    const store = await openStore(join(base, 'store'));
    try {
      const lowId = `sha256:${'1'.repeat(64)}` as Digest;
      const r = (await commitUpperdir(store, upper, { lowers: [low], keepAsSnapshot: { snapshots: store.snapshots, lowerDiffIds: [lowId] } }))!;
      const chain = chainIds([lowId, r.diffId])[1]!;
      const kept = store.snapshots.path(chain);
      expect(existsSync(kept)).toBe(true);
      expect(existsSync(upper)).toBe(false);

      const fresh = join(base, 'fresh');
      mkdirSync(fresh);
      await unpackLayerToSnapshot(store.blobs.open(r.diffId), fresh, { lowers: [low], expectDiffId: r.diffId });
      // Same tree (whole-second mtimes compared), same union over the lower.
      expect(describeTree(kept, { mtime: true })).toEqual(describeTree(fresh, { mtime: true }));
      expect(describeView(new MergedView([low, kept]), { mtime: true })).toEqual(describeView(new MergedView([low, fresh]), { mtime: true }));
      // …but the nanoseconds are kept, where the tar has whole seconds.
      expect(ns(join(kept, 'etc/group'))).toBe(A);
      expect(ns(join(kept, 'new'))).toBe(A + 1n);
      expect(ns(join(kept, 'bin'))).toBe(D);
      expect(ns(join(kept, 'etc'))).toBe(D); // restored after removing the no-op etc/same
      expect(ns(join(fresh, 'etc/group'))).toBe(BigInt(T + 100) * 1_000_000_000n);
      expect(existsSync(join(kept, 'etc/same'))).toBe(false);
      expect(existsSync(join(kept, 'sock'))).toBe(false);
      expect(existsSync(join(kept, 'var'))).toBe(false);
      // Only the opaque marker of overlay's xattrs is left.
      const overlayX = (p: string): string[] => llistxattr(p).filter((n) => n.startsWith('trusted.overlay.'));
      expect(overlayX(join(kept, 'bin'))).toEqual(['trusted.overlay.opaque']);
      expect(overlayX(join(kept, 'etc/group'))).toEqual([]);
      expect(overlayX(join(kept, 'etc'))).toEqual([]);
      expect((lstatSync(kept).mode & 0o7777).toString(8)).toBe('755');
      expect(llistxattr(kept)).toEqual([]); // overlay marked the upper root impure

      // A later "RUN" through the kept snapshot sees the nanoseconds.
      const base2 = tmp('keep');
      const m2 = mountOverlay(base2, [low, kept]);
      try {
        expect(ns(join(m2.mnt, 'etc/group'))).toBe(A);
        expect(existsSync(join(m2.mnt, 'bin/busybox'))).toBe(false);
        expect(existsSync(join(m2.mnt, 'var/lib/keep'))).toBe(true);
      } finally { umount(m2.mnt); }
    } finally { await store.close(); }
  });

  test('emptyLayer: no change still makes the empty tar (put as one buffer), and the emptied upper is its snapshot', async () => {
    const base = tmp('keep');
    const low = join(base, 'lower');
    lower(low);
    const { mnt, upper } = mountOverlay(base, [low]);
    try {
      // A no-op copy-up (same bytes, same mtime) and a socket: nothing a layer records.
      writeFileSync(join(mnt, 'etc/same'), 'unchanged');
      execFileSync('touch', ['-h', '-d', '@' + T, join(mnt, 'etc/same'), join(mnt, 'etc')]);
    } finally { umount(mnt); }
    expect(existsSync(join(upper, 'etc/same'))).toBe(true);
    const store = await openStore(join(base, 'store'));
    try {
      const lowId = `sha256:${'3'.repeat(64)}` as Digest;
      // Without the option: no layer, nothing written, the upper is the caller's.
      expect(await commitUpperdir({ blobs: { put: () => { throw new Error('must not write'); } } }, upper, { lowers: [low] })).toBeUndefined();
      const puts: unknown[] = [];
      const blobs = { put: (d: Parameters<typeof store.blobs.put>[0]) => { puts.push(d); return store.blobs.put(d); } };
      const r = await commitUpperdir({ blobs }, upper, { lowers: [low], emptyLayer: true, keepAsSnapshot: { snapshots: store.snapshots, lowerDiffIds: [lowId] } });
      // The same bytes LayerWriter writes for no entries (Docker's well-known empty layer).
      const chunks: Buffer[] = [];
      for await (const c of new LayerWriter().stream()) chunks.push(c as Buffer);
      const empty = Buffer.concat(chunks);
      expect(r.size).toBe(empty.length);
      expect(r.diffId).toBe(`sha256:${createHash('sha256').update(empty).digest('hex')}`);
      expect(r.diffId).toBe('sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef');
      expect(puts.length).toBe(1);
      expect(puts[0]).toBeInstanceOf(Uint8Array); // one buffer: a store that has it only touches it
      expect(Buffer.from(await store.blobs.read(r.diffId)).equals(empty)).toBe(true);
      // The upper became the snapshot, emptied: what unpacking the empty tar gives.
      const kept = store.snapshots.path(chainIds([lowId, r.diffId])[1]!);
      expect(existsSync(upper)).toBe(false);
      expect(describeTree(kept)).toEqual({});
      expect(readdirSync(kept)).toEqual([]);
      expect((lstatSync(kept).mode & 0o7777).toString(8)).toBe('755');
      expect(llistxattr(kept)).toEqual([]);
    } finally { await store.close(); }
  });

  test('an existing snapshot wins: the upper is left for the caller, the snapshot untouched', async () => {
    const base = tmp('keep');
    const store = await openStore(join(base, 'store'));
    try {
      const id = `sha256:${'2'.repeat(64)}` as Digest;
      const first = join(base, 'u1');
      mkdirSync(first);
      writeFileSync(join(first, 'one'), '1');
      const p = await keepUpperAsSnapshot(store.snapshots, first, id, { dropped: [], stripXattrs: [] });
      expect(existsSync(join(p, 'one'))).toBe(true);
      const second = join(base, 'u2');
      mkdirSync(second);
      writeFileSync(join(second, 'two'), '2');
      expect(await keepUpperAsSnapshot(store.snapshots, second, id, { dropped: [], stripXattrs: [] })).toBe(p);
      expect(existsSync(join(second, 'two'))).toBe(true);
      expect(existsSync(join(p, 'two'))).toBe(false);
    } finally { await store.close(); }
  });

  test('user xattrs survive, unkept ones are stripped', async () => {
    const base = tmp('keep');
    const store = await openStore(join(base, 'store'));
    try {
      const up = join(base, 'u');
      mkdirSync(up);
      writeFileSync(join(up, 'f'), 'f');
      lsetxattr(join(up, 'f'), 'user.keep', Buffer.from('1'));
      lsetxattr(join(up, 'f'), 'trusted.overlay.origin', Buffer.from('x'));
      lsetxattr(join(up, 'f'), 'trusted.private', Buffer.from('y'));
      const plan = diffUpper(up, []);
      expect(plan.stripXattrs).toEqual([{ path: 'f', names: expect.arrayContaining(['trusted.overlay.origin', 'trusted.private']) }]);
      const p = await keepUpperAsSnapshot(store.snapshots, up, `sha256:${'3'.repeat(64)}` as Digest, plan);
      expect(llistxattr(join(p, 'f')).sort()).toEqual(['user.keep']);
    } finally { await store.close(); }
  });
});
