/**
 * COPY/ADD of what `cp -a` / `tar -x` as root keep and a plain file copy loses: fifos, device
 * nodes, hardlinks (COPY --from a stage), symlinks inside an ADDed archive (followed inside the
 * destination only), and context names that cannot be sent (non-UTF-8). Real builds through the
 * CLI into a temp store; the results are read back from the image's layer tars.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { cli, readImageFromStore, tmp, writeTree } from '../../build/helpers.js';
import { busyboxMissing, busyboxRootfsTar } from '../../helpers/busybox.js';

interface TarEnt { name: string; type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device' | 'block-device'; data?: string; linkname?: string; mode?: number; uid?: number; gid?: number; devmajor?: number; devminor?: number }

async function makeTar(file: string, ents: TarEnt[]): Promise<void> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((res) => p.on('end', () => res()));
  for (const e of ents) {
    const h = { name: e.name, type: e.type ?? 'file', mode: e.mode ?? (e.type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: new Date(1_700_000_000_000), linkname: e.linkname, devmajor: e.devmajor, devminor: e.devminor };
    await new Promise<void>((res, rej) => {
      if ((e.type ?? 'file') === 'file') p.entry({ ...h, size: Buffer.byteLength(e.data ?? '') }, Buffer.from(e.data ?? ''), (err) => (err ? rej(err) : res()));
      else p.entry(h, (err) => (err ? rej(err) : res()));
    });
  }
  p.finalize();
  await done;
  writeFileSync(file, Buffer.concat(chunks));
}

const SPECIAL: TarEnt[] = [
  { name: 'd/', type: 'directory' },
  { name: 'd/ff', type: 'fifo', mode: 0o640, uid: 7, gid: 8 },
  { name: 'd/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 },
  { name: 'd/loop9', type: 'block-device', mode: 0o660, devmajor: 7, devminor: 9 },
  { name: 'd/t', data: 'target\n' },
  { name: 'd/hl', type: 'link', linkname: 'd/t' },
  { name: 'd/sl', type: 'symlink', linkname: 't' },
];

async function build(ctx: string, store: string, tag: string) {
  return cli(['build', ctx, '-t', tag, '--store', store, '--progress', 'plain']);
}

describe('COPY copies every file type like cp -a as root', () => {
  it('COPY --from a stage keeps fifos, char/block devices and hardlinks (stage made by ADD of a tar)', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    await makeTar(join(ctx, 'special.tar'), SPECIAL);
    writeFileSync(join(ctx, 'Dockerfile'), [
      'FROM scratch AS src', 'ADD special.tar /s/',
      'FROM scratch', 'COPY --from=src / /copyroot/', 'COPY --from=src /s/d /chd', 'COPY --from=src /s/d/ff /s/d/null /single/', '',
    ].join('\n'));
    const r = await build(ctx, store, 'special:1');
    expect(r.code, r.stderr).toBe(0);
    const { fs } = readImageFromStore(store, 'special:1');
    // The stage itself (ADD unpacked the devices and the fifo).
    for (const root of ['copyroot/s/d', 'chd']) {
      expect(fs.raw(`${root}/ff`)).toMatchObject({ type: 'fifo', mode: 0o640, uid: 7, gid: 8 });
      expect(fs.raw(`${root}/null`)).toMatchObject({ type: 'char', mode: 0o666, devmajor: 1, devminor: 3 });
      // BuildKit 0.25's copy makes a block device a char device with the same numbers (matched).
      expect(fs.raw(`${root}/loop9`)).toMatchObject({ type: 'char', mode: 0o660, devmajor: 7, devminor: 9 });
      expect(fs.raw(`${root}/sl`)).toMatchObject({ type: 'symlink', linkname: 't' });
      // One inode in the stage → one inode in the copy: the second name is a tar hardlink to the first.
      const names = [fs.raw(`${root}/hl`)!, fs.raw(`${root}/t`)!];
      const links = names.filter((e) => e.type === 'hardlink');
      expect(links).toHaveLength(1);
      expect([`${root}/hl`, `${root}/t`]).toContain(links[0]!.linkname);
      expect(fs.readFileSync(`${root}/hl`)?.toString()).toBe('target\n');
    }
    expect(fs.raw('single/ff')?.type).toBe('fifo');
    expect(fs.raw('single/null')?.type).toBe('char');
  });

  it('ADD keeps the archive\'s block device; hardlinks are kept within one source match only', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    await makeTar(join(ctx, 'special.tar'), SPECIAL);
    writeFileSync(join(ctx, 'Dockerfile'), [
      'FROM scratch AS src', 'ADD special.tar /s/',
      'FROM src', 'COPY --from=src /s/d/t /s/d/hl /two/', 'COPY --from=src /s/d/* /glob/', 'COPY --from=src /s/d /tree/', '',
    ].join('\n'));
    const r = await build(ctx, store, 'scope:1');
    expect(r.code, r.stderr).toBe(0);
    const { fs } = readImageFromStore(store, 'scope:1');
    expect(fs.raw('s/d/loop9')).toMatchObject({ type: 'block', devmajor: 7, devminor: 9 });
    // Each named source (and each wildcard match) is its own copy, as in BuildKit: no link between them.
    for (const root of ['two', 'glob']) {
      expect(fs.raw(`${root}/t`)?.type).toBe('file');
      expect(fs.raw(`${root}/hl`)?.type).toBe('file');
    }
    expect([fs.raw('tree/t')!.type, fs.raw('tree/hl')!.type].sort()).toEqual(['file', 'hardlink']);
  });

  it('COPY of a context fifo makes a fifo (devices need a root-made context, fifos do not)', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    writeTree(ctx, { 'Dockerfile': 'FROM scratch\nCOPY . /ctx/\n', 'dir/a.txt': 'a' });
    execFileSync('mkfifo', ['-m', '0620', join(ctx, 'dir', 'pipe')]);
    const r = await build(ctx, store, 'ctxfifo:1');
    expect(r.code, r.stderr).toBe(0);
    const { fs } = readImageFromStore(store, 'ctxfifo:1');
    expect(fs.raw('ctx/dir/pipe')).toMatchObject({ type: 'fifo', mode: 0o620, uid: 0, gid: 0 });
    expect(fs.raw('ctx/dir/a.txt')?.type).toBe('file');
  });
});

describe('ADD of a tar with entries below an archive symlink', () => {
  it('follows the archive\'s symlinks chroot-style inside the destination, never outside it', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    await makeTar(join(ctx, 'through.tar'), [
      { name: 'linkdir', type: 'symlink', linkname: '/etc' },
      { name: 'linkdir/through.txt', data: 'via link\n' },
      { name: 'lib', type: 'symlink', linkname: 'usr/lib' },
      { name: 'usr/lib/', type: 'directory' },
      { name: 'lib/libx.so', data: 'lib\n' },
      { name: 'rel', type: 'symlink', linkname: 'real' },
      { name: 'real/', type: 'directory', mode: 0o750 },
      { name: 'rel/in-real.txt', data: 'r\n' },
    ]);
    writeTree(ctx, { 'passwd': 'root:x:0:0:root:/root:/bin/sh\n' });
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY passwd /etc/passwd\nADD through.tar /s/\n');
    const r = await build(ctx, store, 'through:1');
    expect(r.code, r.stderr).toBe(0);
    const { fs } = readImageFromStore(store, 'through:1');
    expect(fs.raw('s/linkdir')).toMatchObject({ type: 'symlink', linkname: '/etc' });
    expect(fs.readFileSync('s/etc/through.txt')?.toString()).toBe('via link\n');
    expect(fs.raw('s/etc')).toMatchObject({ type: 'dir', mode: 0o755 });
    expect(fs.raw('etc/through.txt')).toBeUndefined();
    expect(fs.readFileSync('s/usr/lib/libx.so')?.toString()).toBe('lib\n');
    expect(fs.raw('s/lib')).toMatchObject({ type: 'symlink', linkname: 'usr/lib' });
    expect(fs.readFileSync('s/real/in-real.txt')?.toString()).toBe('r\n');
    expect(fs.raw('s/real')).toMatchObject({ type: 'dir', mode: 0o750 });
    expect(fs.readFileSync('etc/passwd')?.toString()).toMatch(/^root:/);
  });

  it.each([
    ['a `../` entry', [{ name: '../escape.txt', data: 'x' }]],
    // BuildKit 0.25: `statat d/up: path escapes from parent` (case errors-add-tar-symlink-escape).
    ['an entry through a relative link that climbs out of the destination', [
      { name: 'd/', type: 'directory' }, { name: 'd/up', type: 'symlink', linkname: '../../..' }, { name: 'd/up/x.txt', data: 'x' },
    ]],
  ] as [string, TarEnt[]][])('%s stays rejected with a code', async (_what, ents) => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    await makeTar(join(ctx, 'bad.tar'), ents);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nADD bad.tar /s/\n');
    const r = await build(ctx, store, 'bad:1');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TSB4\d{3}/);
    expect(r.stderr).not.toMatch(/TSB0000|internal error/);
  });
});

describe('non-UTF-8 names in the build context', () => {
  const latin = Buffer.concat([Buffer.from('latin'), Buffer.from([0xe9])]);
  it('are refused with TSB3023 and a hint (BuildKit refuses them too), not an internal error', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    writeTree(ctx, { 'Dockerfile': 'FROM scratch\nCOPY . /ctx/\n', 'ok.txt': 'ok' });
    writeFileSync(Buffer.concat([Buffer.from(ctx + '/'), latin]), 'x');
    const r = await build(ctx, store, 'latin:1');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TSB3023/);
    expect(r.stderr).toMatch(/not valid UTF-8/);
    expect(r.stderr).toMatch(/hint:.*dockerignore/);
    expect(r.stderr).not.toMatch(/TSB0000|internal error/);
  });
  it('build when .dockerignore excludes them', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    writeTree(ctx, { 'Dockerfile': 'FROM scratch\nCOPY . /ctx/\n', 'ok.txt': 'ok', '.dockerignore': 'latin*\n' });
    writeFileSync(Buffer.concat([Buffer.from(ctx + '/'), latin]), 'x');
    const r = await build(ctx, store, 'latin:2');
    expect(r.code, r.stderr).toBe(0);
    const { fs } = readImageFromStore(store, 'latin:2');
    expect(fs.readFileSync('ctx/ok.txt')?.toString()).toBe('ok');
  });
});

const noBusybox = busyboxMissing();
describe.skipIf(noBusybox !== undefined)('with a busybox rootfs', () => {
  if (noBusybox) console.log(noBusybox);
  it('COPY --from a stage whose RUN made a fifo and a hardlink keeps both', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    copyFileSync(await busyboxRootfsTar(), join(ctx, 'rootfs.tar'));
    writeFileSync(join(ctx, 'Dockerfile'), [
      'FROM scratch AS base', 'ADD rootfs.tar /',
      'FROM base AS src', 'RUN mkdir /s && mkfifo -m 0600 /s/fifo && echo t > /s/t && ln /s/t /s/hard && ln /bin/busybox /hardbb',
      'FROM scratch', 'COPY --from=src /s /copied', 'COPY --from=src /hardbb /bin/busybox /bb/', 'COPY --from=src / /rootcopy/', '',
    ].join('\n'));
    const r = await build(ctx, store, 'runspecial:1');
    expect(r.code, r.stderr).toBe(0);
    const { fs } = readImageFromStore(store, 'runspecial:1');
    expect(fs.raw('copied/fifo')).toMatchObject({ type: 'fifo', mode: 0o600 });
    expect([fs.raw('copied/hard')!.type, fs.raw('copied/t')!.type].sort()).toEqual(['file', 'hardlink']);
    // Linked inside one copied tree; two named sources are two copies (BuildKit 0.25, case copy-hardlink-scope).
    expect([fs.raw('rootcopy/hardbb')!.type, fs.raw('rootcopy/bin/busybox')!.type].sort()).toEqual(['file', 'hardlink']);
    expect([fs.raw('bb/hardbb')!.type, fs.raw('bb/busybox')!.type]).toEqual(['file', 'file']);
  });

  it('RUN --mount=type=bind,from=STAGE|IMAGE,source=/subdir shows that directory (and a file source)', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    copyFileSync(await busyboxRootfsTar(), join(ctx, 'rootfs.tar'));
    writeFileSync(join(ctx, 'Dockerfile'), [
      'FROM scratch AS base', 'ADD rootfs.tar /',
      'FROM base AS data', 'RUN mkdir -p /out/sub && echo one > /out/sub/f && echo two > /out/g',
      'FROM base',
      'RUN --mount=type=bind,from=data,source=/out/sub,target=/m cat /m/f > /from-stage',
      'RUN --mount=type=bind,from=base,source=/etc,target=/other cat /other/group | head -1 > /from-etc',
      'RUN --mount=type=bind,from=data,source=out/g,target=/one.txt cat /one.txt > /from-file',
      '',
    ].join('\n'));
    const r = await build(ctx, store, 'subbind:1');
    expect(r.code, r.stderr).toBe(0);
    const { fs } = readImageFromStore(store, 'subbind:1');
    expect(fs.readFileSync('from-stage')?.toString()).toBe('one\n');
    expect(fs.readFileSync('from-etc')?.toString()).toMatch(/^root:/);
    expect(fs.readFileSync('from-file')?.toString()).toBe('two\n');
    expect(fs.raw('m/f')).toBeUndefined();
  });

  it('RUN --mount=type=bind,from=STAGE,source=… follows the stage\'s own symlinks, never the host\'s', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    copyFileSync(await busyboxRootfsTar(), join(ctx, 'rootfs.tar'));
    writeFileSync(join(ctx, 'Dockerfile'), [
      'FROM scratch AS base', 'ADD rootfs.tar /',
      // /hostetc -> /etc is absolute: on the host it would name the host's /etc.
      'FROM base AS data', 'RUN mkdir -p /real/sub /etc/only-in-stage && echo one > /real/sub/f && ln -s /real /link && ln -s real/sub /rel && ln -s f /real/sub/flink && ln -s /etc /hostetc',
      'FROM base',
      'RUN --mount=type=bind,from=data,source=/link/sub,target=/m cat /m/f > /via-abs-link',
      'RUN --mount=type=bind,from=data,source=rel,target=/m cat /m/f > /via-rel-link',
      'RUN --mount=type=bind,from=data,source=/real/sub/flink,target=/one cat /one > /via-file-link',
      'RUN --mount=type=bind,from=data,source=/hostetc,target=/e ls /e > /etc-listing',
      '',
    ].join('\n'));
    const r = await build(ctx, store, 'linkbind:1');
    expect(r.code, r.stderr).toBe(0);
    const { fs } = readImageFromStore(store, 'linkbind:1');
    for (const f of ['via-abs-link', 'via-rel-link', 'via-file-link']) expect(fs.readFileSync(f)?.toString()).toBe('one\n');
    const listing = fs.readFileSync('etc-listing')!.toString().split('\n');
    expect(listing).toContain('only-in-stage');
    expect(listing).not.toContain('os-release');
  });
});

describe('destination directories', () => {
  it('--chmod=OCTAL: directories the COPY creates get the mode as mkdir under umask 022 (1777 → 0755, 0751 kept); files get it whole', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    writeTree(ctx, { 'dir/f': 'f', 'Dockerfile': 'FROM scratch\nCOPY --chmod=1777 dir /d5/\nCOPY --chmod=0751 dir/f /p/q/f\nCOPY --chmod=2775 dir /d8\nCOPY --chmod=u=rwx,go= dir /sym/\n' });
    const r = await build(ctx, store, 'chmoddir:1');
    expect(r.code, r.stderr).toBe(0);
    const { fs } = readImageFromStore(store, 'chmoddir:1');
    expect(fs.raw('d5')?.mode).toBe(0o755);
    expect(fs.raw('d5/f')?.mode).toBe(0o1777);
    expect(fs.raw('p')?.mode).toBe(0o751);
    expect(fs.raw('p/q')?.mode).toBe(0o751);
    expect(fs.raw('p/q/f')?.mode).toBe(0o751);
    expect(fs.raw('d8')?.mode).toBe(0o755);
    expect(fs.raw('d8/f')?.mode).toBe(0o2775);
    expect(fs.raw('sym')?.mode).toBe(0o755);
    expect(fs.raw('sym/f')?.mode).toBe(0o700);
  });

  it('a heredoc onto an existing directory (no trailing slash) lands inside it, as a file source does', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    writeTree(ctx, { 'a.txt': 'a', 'Dockerfile': 'FROM scratch\nCOPY a.txt /existing/\nCOPY <<EOT /existing\nhello\nEOT\nCOPY <<EOT /newfile\nnew\nEOT\n' });
    const r = await build(ctx, store, 'hddir:1');
    expect(r.code, r.stderr).toBe(0);
    const { fs } = readImageFromStore(store, 'hddir:1');
    expect(fs.raw('existing')?.type).toBe('dir');
    expect(fs.readFileSync('existing/EOT')?.toString()).toBe('hello\n');
    expect(fs.readFileSync('existing/a.txt')?.toString()).toBe('a');
    expect(fs.readFileSync('newfile')?.toString()).toBe('new\n');
  });
});

describe('destination parents', () => {
  it('a parent that is a file in the image is TSB4013 (BuildKit: mkdir /etc/passwd: not a directory), never replaced', async () => {
    const ctx = tmp(); const store = tmp('tsb-store-');
    writeTree(ctx, { 'a.txt': 'a', 'passwd': 'root:x:0:0::/root:/bin/sh\n', 'Dockerfile': 'FROM scratch\nCOPY passwd /etc/passwd\nCOPY a.txt /etc/passwd/x\n' });
    const r = await build(ctx, store, 'underfile:1');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/TSB4013: mkdir \/etc\/passwd: not a directory/);
    expect(r.stderr).toMatch(/Dockerfile:3:1/);
  });
});
