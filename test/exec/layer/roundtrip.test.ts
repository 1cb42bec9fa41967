/**
 * tree → LayerWriter tar → unpackLayerToSnapshot → MergedView shows the tree; multi-layer stacks
 * checked against the KERNEL's overlayfs mount of the same snapshots.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, lutimesSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { LayerWriter } from '../../../src/exec/layer/writer.js';
import { unpackLayerFlat, unpackLayerToSnapshot } from '../../../src/exec/layer/unpack.js';
import { MergedView } from '../../../src/exec/layer/view.js';
import { lgetxattr, lsetxattr, mknod, S_IFCHR } from '../../../src/exec/layer/native.js';
import { exportRootfs, copyViewToDir } from '../../../src/exec/layer/flatten.js';
import { cleanup, describeTree, describeView, mountOverlay, overlayMissing, streamOf, tmp, umount, collect } from './helpers.js';
import type { LayerEntry } from '../../../src/exec/layer/entry.js';

afterAll(cleanup);

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const T = 1_600_000_000;

/** A source tree with every kind of entry. */
function makeTree(root: string): void {
  mkdirSync(join(root, 'bin'), { recursive: true });
  writeFileSync(join(root, 'bin/busybox'), 'BUSYBOX'.repeat(1000));
  chmodSync(join(root, 'bin/busybox'), 0o755);
  symlinkSync('busybox', join(root, 'bin/sh'));
  linkSync(join(root, 'bin/busybox'), join(root, 'bin/hard'));
  writeFileSync(join(root, 'bin/ping'), 'ping');
  chmodSync(join(root, 'bin/ping'), 0o4711);
  lsetxattr(join(root, 'bin/ping'), 'security.capability', CAP);
  lsetxattr(join(root, 'bin/ping'), 'user.note', Buffer.from('hello'));
  mkdirSync(join(root, 'tmp'));
  chmodSync(join(root, 'tmp'), 0o1777);
  mkdirSync(join(root, 'home/app'), { recursive: true });
  chownSync(join(root, 'home/app'), 1000, 1000);
  writeFileSync(join(root, 'home/app/.profile'), 'export A=1\n');
  chownSync(join(root, 'home/app/.profile'), 1000, 1000);
  chmodSync(join(root, 'home/app/.profile'), 0o2640);
  mkdirSync(join(root, 'dev'));
  mknod(join(root, 'dev/null'), S_IFCHR, 0o666, 1, 3);
  execFileSync('mkfifo', ['-m', '0600', join(root, 'dev/fifo')]);
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'ünïcødé name'), 'u');
  symlinkSync('/etc/../../../../etc/passwd', join(root, 'abs-link'));
  for (const p of ['bin/busybox', 'bin/ping', 'tmp', 'home/app/.profile', 'home/app', 'home', 'bin', 'dev', 'empty', 'ünïcødé name']) {
    lutimesSync(join(root, p), T, T);
  }
  lutimesSync(join(root, 'dev/fifo'), T, T);
  lutimesSync(join(root, 'dev/null'), T, T);
}

/** Host tree → entries (what a COPY of a directory would do). */
function entriesOf(root: string): LayerEntry[] {
  const view = new MergedView([root]);
  const w = new LayerWriter();
  exportRootfs(view, w);
  return w.plan().map((p) => p.entry);
}

async function layerFrom(entries: LayerEntry[], epoch?: number): Promise<Buffer> {
  const w = new LayerWriter({ sourceDateEpoch: epoch });
  for (const e of entries) w.add(e);
  return collect(w.stream());
}

describe('round trip', () => {
  test('tree → tar → snapshot → view reproduces types, modes, owners, content, links, devices, xattrs, mtimes', async () => {
    const src = tmp(), snap = tmp();
    makeTree(src);
    const tar = await layerFrom(entriesOf(src));
    const res = await unpackLayerToSnapshot(streamOf(tar), snap);
    expect(res.entries).toBeGreaterThan(10);
    const want = describeTree(src, { mtime: true });
    expect(describeTree(snap, { mtime: true })).toEqual(want);
    const view = new MergedView([snap]);
    expect(describeView(view, { mtime: true })).toEqual(want);
    expect(want['bin/ping']!.mode).toBe('4711');
    expect(want['bin/ping']!.xattrs!['security.capability']).toBe(CAP.toString('hex'));
    expect(want['bin/hard']!.link).toBe(want['bin/busybox']!.link);
    expect(want['dev/null']!.dev).toBe('1:3');
    // The view reads through symlinks inside its root only.
    expect(view.readFile('/bin/sh').toString()).toBe('BUSYBOX'.repeat(1000));
    expect(view.realpath('/bin/sh')).toBe('/bin/busybox');
    expect(view.realpath('/bin/../bin/./sh')).toBe('/bin/busybox');
    // A dangling (even '..'-laden absolute) link resolves inside the root, never to the host.
    expect(view.entry('/abs-link', { follow: true })).toBeUndefined();
    expect(() => view.realpath('/abs-link')).toThrow(expect.objectContaining({ code: 'TSB4413' }));
    expect(view.rootPath('/abs-link')).toBe('/etc/passwd');
    expect(view.rootPath('/bin/sh/../../x/y')).toBe('/x/y');
    expect(view.lstat('/abs-link').isSymbolicLink()).toBe(true);
    expect(view.readlink('/abs-link')).toBe('/etc/../../../../etc/passwd');
  });

  test('a stack with deletions, replaced and opaque dirs: the view equals the kernel overlay mount', async (ctx) => {
    const why = overlayMissing();
    if (why) { ctx.skip(why); return; }
    const l1: LayerEntry[] = [
      { path: 'etc', type: 'dir', mode: 0o755, mtime: T },
      { path: 'etc/passwd', type: 'file', source: { buffer: Buffer.from('root:x:0:0::/root:/bin/sh\n') }, mtime: T },
      { path: 'etc/keep', type: 'file', source: { buffer: Buffer.from('keep') }, mtime: T },
      { path: 'opt', type: 'dir', mtime: T },
      { path: 'opt/old', type: 'dir', mtime: T },
      { path: 'opt/old/a', type: 'file', source: { buffer: Buffer.from('a') }, mtime: T },
      { path: 'opt/old/b', type: 'file', source: { buffer: Buffer.from('b') }, mtime: T },
      { path: 'var', type: 'dir', mtime: T },
      { path: 'var/file-then-dir', type: 'file', mtime: T },
      { path: 'var/lnk', type: 'symlink', linkname: '../etc', mtime: T },
      { path: 'gone', type: 'file', mtime: T },
    ];
    const l2: LayerEntry[] = [
      { path: 'etc', type: 'dir', mode: 0o755, mtime: T + 1 },
      { path: 'etc/passwd', type: 'file', source: { buffer: Buffer.from('root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n') }, mtime: T + 1 },
      { path: 'gone', type: 'whiteout' },
      { path: 'opt', type: 'dir', mtime: T },
      { path: 'opt/old', type: 'dir', mode: 0o700, mtime: T + 1 },
      { path: 'opt/old', type: 'opaque' },
      { path: 'opt/old/c', type: 'file', source: { buffer: Buffer.from('c') }, mtime: T + 1 },
      { path: 'var', type: 'dir', mtime: T },
      { path: 'var/file-then-dir', type: 'dir', mtime: T + 1 },
      { path: 'var/file-then-dir/x', type: 'file', mtime: T + 1 },
      { path: 'var/lnk', type: 'whiteout' },
    ];
    const l3: LayerEntry[] = [
      { path: 'etc', type: 'dir', mode: 0o755, mtime: T + 2 },
      { path: 'etc/keep', type: 'whiteout' },
      { path: 'gone', type: 'dir', mtime: T + 2 }, // re-created after its deletion
      { path: 'gone/again', type: 'file', mtime: T + 2 },
    ];
    const snaps: string[] = [];
    for (const l of [l1, l2, l3]) {
      const s = tmp();
      await unpackLayerToSnapshot(streamOf(await layerFrom(l)), s);
      snaps.push(s);
    }
    // opaque marker became the overlay xattr, whiteouts char 0/0
    expect(lgetxattr(join(snaps[1]!, 'opt/old'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(describeTree(snaps[1]!).gone).toMatchObject({ type: 'char', dev: '0:0' });
    const view = new MergedView(snaps);
    const base = tmp();
    const { mnt } = mountOverlay(base, snaps);
    let kernel;
    try { kernel = describeTree(mnt, { mtime: true }); } finally { umount(mnt); }
    const mine = describeView(view, { mtime: true });
    expect(mine).toEqual(kernel);
    expect(Object.keys(mine).sort()).toEqual(['etc', 'etc/passwd', 'gone', 'gone/again', 'opt', 'opt/old', 'opt/old/c', 'var', 'var/file-then-dir', 'var/file-then-dir/x']);
    expect(view.readdir('/opt/old')).toEqual(['c']);
    expect(view.readFile('/etc/passwd').toString()).toContain('app:x:1000');
    expect(view.exists('/etc/keep')).toBe(false);

    // Flat application of the same layers gives the same tree (type=local / import path).
    const flat = tmp();
    for (const l of [l1, l2, l3]) await unpackLayerFlat(streamOf(await layerFrom(l)), flat);
    expect(describeTree(flat, { mtime: true })).toEqual(kernel);

    // copyViewToDir and exportRootfs give the same tree again.
    const copied = tmp();
    await copyViewToDir(view, copied);
    expect(describeTree(copied, { mtime: true })).toEqual(kernel);
    const w = new LayerWriter();
    exportRootfs(view, w);
    const out = tmp();
    await unpackLayerToSnapshot(w.stream(), out);
    expect(describeTree(out, { mtime: true })).toEqual(kernel);
  });

  test('flat unpack: a whiteout does not delete what the same layer wrote; opaque keeps same-layer entries', async () => {
    const d = tmp();
    await unpackLayerFlat(streamOf(await layerFrom([
      { path: 'd', type: 'dir' }, { path: 'd/old', type: 'file' }, { path: 'x', type: 'file' },
    ])), d);
    const { rawTar } = await import('./helpers.js');
    // Hand-ordered: new child BEFORE the opaque marker, whiteout AFTER a same-named entry.
    await unpackLayerFlat(streamOf(rawTar([
      { name: 'd/', type: 'dir', mode: 0o755 },
      { name: 'd/new', data: Buffer.from('n') },
      { name: 'd/sub/deep', data: Buffer.from('n') }, // headerless parent, before the marker
      { name: 'd/.wh..wh..opq' },
      { name: 'y', data: Buffer.from('y') },
      { name: '.wh.y' },
      { name: '.wh.x' },
    ])), d);
    expect(Object.keys(describeTree(d)).sort()).toEqual(['d', 'd/new', 'd/sub', 'd/sub/deep', 'y']);
  });

  test('snapshot with lowers: headerless parents keep the lower metadata, entries below a lower symlink follow it inside the root', async (ctx) => {
    const why = overlayMissing();
    if (why) { ctx.skip(why); return; }
    const { rawTar } = await import('./helpers.js');
    const l1 = rawTar([
      { name: 'usr/', type: 'dir', mode: 0o755, mtime: T },
      { name: 'usr/bin/', type: 'dir', mode: 0o750, gid: 50, mtime: T },
      { name: 'usr/bin/old', data: Buffer.from('old'), mtime: T },
      { name: 'usr/bin/lowfile', data: Buffer.from('low'), mode: 0o4755, mtime: T },
      { name: 'bin', type: 'symlink', linkname: 'usr/bin', mtime: T },
      { name: 'etc/', type: 'dir', mode: 0o700, mtime: T },
      { name: 'abs', type: 'symlink', linkname: '/../../usr', mtime: T },
    ]);
    const l2 = rawTar([
      { name: 'bin/foo', data: Buffer.from('foo'), mode: 0o755, mtime: T },
      { name: 'etc/conf', data: Buffer.from('c'), mtime: T },
      { name: 'bin/.wh.old' },
      { name: 'abs/lib/x', data: Buffer.from('x'), mtime: T },
      { name: 'bin2/hl', type: 'hardlink', linkname: 'bin/foo' },
      { name: 'lowlink', type: 'hardlink', linkname: 'usr/bin/lowfile' }, // target only in the lower layer
    ]);
    const s1 = tmp(), s2 = tmp();
    await unpackLayerToSnapshot(streamOf(l1), s1);
    await unpackLayerToSnapshot(streamOf(l2), s2, { lowers: [s1] });
    const view = new MergedView([s1, s2]);
    const got = describeView(view, { mtime: true });
    expect(got.bin).toMatchObject({ type: 'symlink', target: 'usr/bin' });
    expect(got['usr/bin']).toMatchObject({ type: 'dir', mode: '750', gid: 50, mtime: T });
    expect(got.etc).toMatchObject({ mode: '700', mtime: T });
    expect(got['usr/bin/foo']).toMatchObject({ type: 'file', mode: '755' });
    expect(got['usr/bin/old']).toBeUndefined();
    expect(got['usr/lib/x']).toMatchObject({ type: 'file' });
    expect(got['bin2/hl']!.link).toBe(got['usr/bin/foo']!.link);
    expect(got.lowlink).toMatchObject({ type: 'file', mode: '4755', content: got['usr/bin/lowfile']!.content });
    expect(got.lowlink!.link).toBe(got['usr/bin/lowfile']!.link);
    expect(got.lowlink!.link).not.toBe(got['bin2/hl']!.link);
    // The kernel agrees with the view, and flat application (containerd's apply) gives the same tree.
    const { mnt } = mountOverlay(tmp(), [s1, s2]);
    let kernel;
    try { kernel = describeTree(mnt); } finally { umount(mnt); }
    expect(describeView(view)).toEqual(kernel);
    const flat = tmp();
    await unpackLayerFlat(streamOf(l1), flat);
    await unpackLayerFlat(streamOf(l2), flat);
    expect(describeTree(flat)).toEqual(kernel);
  });

  test('walk of a sub-path through a symlinked dir; copyViewToDir merges into an existing dir', async () => {
    const { rawTar } = await import('./helpers.js');
    const s1 = tmp();
    await unpackLayerToSnapshot(streamOf(rawTar([
      { name: 'usr/', type: 'dir' }, { name: 'usr/lib/', type: 'dir' },
      { name: 'usr/lib/b', data: Buffer.from('b') }, { name: 'usr/lib/a', data: Buffer.from('a') },
      { name: 'usr/lib/sub/', type: 'dir' }, { name: 'usr/lib/sub/c', data: Buffer.from('c') },
      { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
    ])), s1, { lowers: [] });
    const view = new MergedView([s1]);
    expect([...view.walk('/lib')].map((e) => e.path)).toEqual(['/usr/lib', '/usr/lib/a', '/usr/lib/b', '/usr/lib/sub', '/usr/lib/sub/c']);
    expect(view.stat('/lib').isDirectory()).toBe(true);
    expect(view.lstat('/lib').isSymbolicLink()).toBe(true);
    expect(view.readdir('/lib')).toEqual(['a', 'b', 'sub']);
    expect((await collect(view.createReadStream('/lib/sub/c'))).toString()).toBe('c');
    expect(() => view.readFile('/lib')).toThrow(expect.objectContaining({ code: 'TSB4413' }));
    expect(() => view.readdir('/nope')).toThrow(expect.objectContaining({ code: 'TSB4413' }));
    const dest = tmp();
    mkdirSync(join(dest, 'usr/lib'), { recursive: true });
    writeFileSync(join(dest, 'usr/lib/a'), 'old');
    writeFileSync(join(dest, 'keep'), 'k');
    await copyViewToDir(view, dest);
    expect(Object.keys(describeTree(dest)).sort()).toEqual(['keep', 'lib', 'usr', 'usr/lib', 'usr/lib/a', 'usr/lib/b', 'usr/lib/sub', 'usr/lib/sub/c']);
    expect(describeTree(dest)['usr/lib/a']).toEqual(describeTree(s1)['usr/lib/a']);
  });

  test('whiteouts below an opaque dir of the same layer are dropped (the kernel would list them)', async (ctx) => {
    const why = overlayMissing();
    if (why) { ctx.skip(why); return; }
    const { rawTar } = await import('./helpers.js');
    const s1 = tmp(), s2 = tmp();
    await unpackLayerToSnapshot(streamOf(rawTar([{ name: 'd/', type: 'dir' }, { name: 'd/x', data: Buffer.from('x') }, { name: 'd/-y', data: Buffer.from('y') }])), s1, { lowers: [] });
    // '.wh.-y' sorts before the opaque marker: order must not matter
    await unpackLayerToSnapshot(streamOf(rawTar([{ name: 'd/', type: 'dir' }, { name: 'd/.wh.-y' }, { name: 'd/.wh..wh..opq' }, { name: 'd/.wh.x' }, { name: 'd/n', data: Buffer.from('n') }])), s2, { lowers: [s1] });
    const { mnt } = mountOverlay(tmp(), [s1, s2]);
    let kernel;
    try { kernel = describeTree(mnt); } finally { umount(mnt); }
    expect(Object.keys(kernel).sort()).toEqual(['d', 'd/n']);
    expect(describeView(new MergedView([s1, s2]))).toEqual(kernel);
  });

  test('a root opaque marker (layer replacing the whole tree) becomes whiteouts + opaque top dirs', async (ctx) => {
    const why = overlayMissing();
    if (why) { ctx.skip(why); return; }
    const { rawTar } = await import('./helpers.js');
    const s1 = tmp(), s2 = tmp();
    await unpackLayerToSnapshot(streamOf(rawTar([
      { name: 'etc/', type: 'dir' }, { name: 'etc/passwd', data: Buffer.from('p') }, { name: 'etc/shadow', data: Buffer.from('s') },
      { name: 'bin/', type: 'dir' }, { name: 'bin/sh', data: Buffer.from('sh') }, { name: 'top', data: Buffer.from('t') },
    ])), s1, { lowers: [] });
    await unpackLayerToSnapshot(streamOf(rawTar([
      { name: './', type: 'dir' }, { name: '.wh..wh..opq' },
      { name: 'etc/', type: 'dir' }, { name: 'etc/hosts', data: Buffer.from('h') }, { name: 'etc/.wh.shadow' },
      { name: 'new', data: Buffer.from('n') },
    ])), s2, { lowers: [s1] });
    const { mnt } = mountOverlay(tmp(), [s1, s2]);
    let kernel;
    try { kernel = describeTree(mnt); } finally { umount(mnt); }
    expect(Object.keys(kernel).sort()).toEqual(['etc', 'etc/hosts', 'new']);
    expect(describeView(new MergedView([s1, s2]))).toEqual(kernel);
    const flat = tmp();
    await unpackLayerFlat(streamOf(rawTar([{ name: 'etc/', type: 'dir' }, { name: 'etc/passwd', data: Buffer.from('p') }, { name: 'bin/', type: 'dir' }])), flat);
    await unpackLayerFlat(streamOf(rawTar([{ name: '.wh..wh..opq' }, { name: 'etc/', type: 'dir' }, { name: 'etc/hosts', data: Buffer.from('h') }, { name: 'new', data: Buffer.from('n') }])), flat);
    expect(Object.keys(describeTree(flat)).sort()).toEqual(['etc', 'etc/hosts', 'new']);
  });
});
