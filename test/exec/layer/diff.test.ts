/**
 * Diff of a REAL overlay upperdir: mount overlayfs, change things through the mount, unmount,
 * diff, and check the entries exactly; then check the resulting layer, stacked on the lower,
 * reproduces what the mount showed.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, linkSync, lutimesSync, mkdirSync, symlinkSync, writeFileSync, appendFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { commitUpperdir, diffUpperdir } from '../../../src/exec/layer/diff.js';
import { LayerWriter } from '../../../src/exec/layer/writer.js';
import { readTar } from '../../../src/exec/layer/tar.js';
import { unpackLayerToSnapshot } from '../../../src/exec/layer/unpack.js';
import { MergedView } from '../../../src/exec/layer/view.js';
import { lsetxattr, mknod, S_IFCHR } from '../../../src/exec/layer/native.js';
import { cleanup, collect, describeTree, describeView, mountOverlay, overlayMissing, sha256, tmp, umount } from './helpers.js';
import type { LayerEntry } from '../../../src/exec/layer/entry.js';

afterAll(cleanup);

const T = 1_600_000_000;
const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex');

function makeLower(root: string): void {
  const f = (p: string, s: string, mode = 0o644): void => {
    mkdirSync(join(root, p, '..'), { recursive: true });
    writeFileSync(join(root, p), s);
    chmodSync(join(root, p), mode);
  };
  f('etc/passwd', 'root:x:0:0::/root:/bin/sh\n');
  f('etc/hosts', '127.0.0.1 localhost\n');
  f('etc/keep', 'keep');
  f('usr/bin/tool', 'tool', 0o755);
  f('usr/bin/other', 'other', 0o755);
  f('data/dir1/a', 'A');
  f('data/dir1/b', 'B');
  f('olddir/x', 'x');
  f('olddir/y', 'y');
  f('touched/file', 'same');
  execFileSync('find', [root, '-exec', 'touch', '-h', '-d', '@' + T, '{}', '+']);
}

/** The RUN-like changes, made through the overlay mount. */
function changeThrough(m: string): void {
  writeFileSync(join(m, 'new.txt'), 'new file');
  appendFileSync(join(m, 'etc/passwd'), 'app:x:1000:1000::/home/app:/bin/sh\n');
  rmSync(join(m, 'etc/hosts'));
  execFileSync('mv', [join(m, 'data/dir1'), join(m, 'data/dir2')]); // EXDEV with redirect_dir=off: copy + delete
  chmodSync(join(m, 'usr/bin/tool'), 0o4755);
  chownSync(join(m, 'usr/bin/other'), 1000, 1000);
  linkSync(join(m, 'new.txt'), join(m, 'new-link'));
  symlinkSync('/etc/passwd', join(m, 'pw'));
  rmSync(join(m, 'olddir'), { recursive: true });
  mkdirSync(join(m, 'olddir'));
  writeFileSync(join(m, 'olddir/z'), 'z');
  writeFileSync(join(m, 'usr/bin/cap'), 'cap');
  lsetxattr(join(m, 'usr/bin/cap'), 'security.capability', CAP);
  lsetxattr(join(m, 'usr/bin/cap'), 'user.mark', Buffer.from('m'));
  execFileSync('mkfifo', [join(m, 'fifo')]);
  mknod(join(m, 'null'), S_IFCHR, 0o666, 1, 3);
  chmodSync(join(m, 'null'), 0o666); // mknod honours the umask
  execFileSync('python3', ['-c', `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(join(m, 'sock'))})`]);
  chownSync(join(m, 'touched/file'), 0, 0); // copy-up that changes nothing
}

async function tarRows(entries: LayerEntry[], epoch?: number): Promise<string[]> {
  const w = new LayerWriter({ sourceDateEpoch: epoch });
  entries.forEach((e) => w.add(e));
  const rows: string[] = [];
  for await (const e of readTar(w.stream())) {
    const h = e.header;
    const body = (await collect(e.body)).toString();
    let r = `${h.type} ${h.name} ${h.mode.toString(8)} ${h.uid}:${h.gid}`;
    if (h.linkname) r += ` -> ${h.linkname}`;
    if (h.type === 'char') r += ` ${h.devmajor}:${h.devminor}`;
    if (body) r += ` ${JSON.stringify(body)}`;
    const x = Object.keys(h.xattrs);
    if (x.length) r += ` [${x.join(',')}]`;
    rows.push(r);
  }
  return rows;
}

describe('diffUpperdir on a real overlay', () => {
  test('create/modify/delete/rename-dir/chmod/chown/hardlink/symlink/opaque/xattr/fifo/device/socket', async (ctx) => {
    const why = overlayMissing();
    if (why) { ctx.skip(why); return; }
    const base = tmp('diff'), lower = join(base, 'lower');
    mkdirSync(lower);
    makeLower(lower);
    const { mnt, upper } = mountOverlay(base, [lower]);
    let merged;
    try {
      changeThrough(mnt);
      merged = describeTree(mnt);
    } finally { umount(mnt); }
    const entries = diffUpperdir(upper, [lower]);
    expect(entries).toBeDefined();
    expect(await tarRows(entries!)).toEqual([
      'dir data/ 755 0:0',
      'file data/.wh.dir1 0 0:0',
      'dir data/dir2/ 755 0:0',
      'file data/dir2/a 644 0:0 "A"',
      'file data/dir2/b 644 0:0 "B"',
      'dir etc/ 755 0:0',
      'file etc/.wh.hosts 0 0:0',
      'file etc/passwd 644 0:0 "root:x:0:0::/root:/bin/sh\\napp:x:1000:1000::/home/app:/bin/sh\\n"',
      'fifo fifo 644 0:0',
      'file new-link 644 0:0 "new file"',
      'hardlink new.txt 644 0:0 -> new-link',
      'char null 666 0:0 1:3',
      'dir olddir/ 755 0:0',
      'file olddir/.wh..wh..opq 0 0:0',
      'file olddir/z 644 0:0 "z"',
      'symlink pw 777 0:0 -> /etc/passwd',
      'dir usr/ 755 0:0',
      'dir usr/bin/ 755 0:0',
      'file usr/bin/cap 644 0:0 "cap" [security.capability,user.mark]',
      'file usr/bin/other 755 1000:1000 "other"',
      'file usr/bin/tool 4755 0:0 "tool"',
    ]);
    // The layer, unpacked as a snapshot and stacked on the lower, shows what the mount showed.
    expect(merged!.sock).toMatchObject({ type: 'other' });
    delete merged!.sock; // sockets are not layer content (Docker skips them)
    const snap = tmp('snap');
    const w = new LayerWriter();
    entries!.forEach((e) => w.add(e));
    await unpackLayerToSnapshot(w.stream(), snap);
    expect(describeView(new MergedView([lower, snap]))).toEqual(merged);
  });

  test('an upper with only no-op copy-ups gives no layer', async (ctx) => {
    const why = overlayMissing();
    if (why) { ctx.skip(why); return; }
    const base = tmp('noop'), lower = join(base, 'lower');
    mkdirSync(lower);
    makeLower(lower);
    const { mnt, upper } = mountOverlay(base, [lower]);
    try {
      chownSync(join(mnt, 'touched/file'), 0, 0);
      chmodSync(join(mnt, 'etc/keep'), 0o644);
    } finally { umount(mnt); }
    // Same size and mtime restored after a write (cp -p style): still a change.
    const base2 = tmp('noop2');
    const m2 = mountOverlay(base2, [lower]);
    try {
      writeFileSync(join(m2.mnt, 'etc/keep'), 'KEEP');
      lutimesSync(join(m2.mnt, 'etc/keep'), T, T);
    } finally { umount(m2.mnt); }
    expect(diffUpperdir(m2.upper, [lower])?.map((e) => e.path)).toEqual(['etc', 'etc/keep']);
    expect(describeTree(upper)).toHaveProperty('touched/file'); // the copy-up really happened
    expect(diffUpperdir(upper, [lower])).toBeUndefined();
    expect(await commitUpperdir({ blobs: { put: () => { throw new Error('must not write'); } } }, upper, { lowers: [lower] })).toBeUndefined();
    // Without lowers every copy-up counts (nothing to compare with).
    expect(diffUpperdir(upper, [])).toBeDefined();
  });

  test('reproducible: the same changes made at different times give the same diff_id with SOURCE_DATE_EPOCH', async (ctx) => {
    const why = overlayMissing();
    if (why) { ctx.skip(why); return; }
    const digests: string[] = [];
    const digestsNoEpoch: string[] = [];
    for (let i = 0; i < 2; i++) {
      const base = tmp('repro'), lower = join(base, 'lower');
      mkdirSync(lower);
      makeLower(lower);
      const { mnt, upper } = mountOverlay(base, [lower]);
      try {
        changeThrough(mnt);
        // different wall-clock mtimes on each run
        lutimesSync(join(mnt, 'new.txt'), T + 1000 + i, T + 1000 + i);
      } finally { umount(mnt); }
      const entries = diffUpperdir(upper, [lower])!;
      const w = new LayerWriter({ sourceDateEpoch: T });
      entries.forEach((e) => w.add(e));
      digests.push(sha256(await collect(w.stream())));
      const w2 = new LayerWriter();
      entries.forEach((e) => w2.add(e));
      digestsNoEpoch.push(sha256(await collect(w2.stream())));
    }
    expect(digests[0]).toBe(digests[1]);
    expect(digestsNoEpoch[0]).not.toBe(digestsNoEpoch[1]);
  });

  test('an upper made with redirect_dir would be refused (TSB4415)', () => {
    const up = tmp('redir');
    mkdirSync(join(up, 'moved'));
    lsetxattr(join(up, 'moved'), 'trusted.overlay.redirect', Buffer.from('/orig'));
    expect(() => diffUpperdir(up, [])).toThrow(expect.objectContaining({ code: 'TSB4415' }));
  });
});
