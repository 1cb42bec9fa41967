/**
 * Hostile archives (also what `tsbuild load` meets): each is rejected with a coded TsbError naming
 * the entry, and NOTHING is written outside the target directory.
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { unpackLayerFlat, unpackLayerToSnapshot } from '../../../src/exec/layer/unpack.js';
import { readTar } from '../../../src/exec/layer/tar.js';
import { cleanup, describeTree, rawTar, streamOf, tmp } from './helpers.js';

afterAll(cleanup);

/** base/target is the unpack dir; base/outside and base/outside.txt must stay untouched. */
function arena(): { base: string; target: string; outside: string } {
  const base = tmp('hostile');
  const target = join(base, 'target'), outside = join(base, 'outside');
  mkdirSync(target);
  mkdirSync(outside);
  writeFileSync(join(base, 'outside.txt'), 'original');
  return { base, target, outside };
}

function untouched(a: { base: string; outside: string }): void {
  expect(readdirSync(a.base).sort()).toEqual(['outside', 'outside.txt', 'target']);
  expect(readdirSync(a.outside)).toEqual([]);
  expect(readFileSync(join(a.base, 'outside.txt'), 'utf8')).toBe('original');
}

const cases: Array<{ name: string; code: string; tar: () => Buffer; mentions: string }> = [
  { name: '../ escape', code: 'TSB4401', mentions: '../outside.txt', tar: () => rawTar([{ name: '../outside.txt', data: Buffer.from('pwned') }]) },
  { name: 'nested ../ escape', code: 'TSB4401', mentions: 'a/../../outside/x', tar: () => rawTar([{ name: 'a/', type: 'dir' }, { name: 'a/../../outside/x', data: Buffer.from('pwned') }]) },
  { name: 'symlink then write through it', code: 'TSB4403', mentions: 'esc/x', tar: () => rawTar([
    { name: 'esc', type: 'symlink', linkname: '/' }, // absolute: allowed as data, must never be followed
    { name: 'esc/x', data: Buffer.from('pwned') },
  ]) },
  { name: 'symlink to a dir then a dir entry through it', code: 'TSB4403', mentions: 'link/sub/', tar: () => rawTar([
    { name: 'd/', type: 'dir' },
    { name: 'link', type: 'symlink', linkname: 'd' },
    { name: 'link/sub/', type: 'dir' },
  ]) },
  { name: 'relative symlink escaping the root', code: 'TSB4402', mentions: 'a/up', tar: () => rawTar([{ name: 'a/', type: 'dir' }, { name: 'a/up', type: 'symlink', linkname: '../../outside' }]) },
  { name: 'hardlink to outside', code: 'TSB4402', mentions: 'h', tar: () => rawTar([{ name: 'h', type: 'hardlink', linkname: '../outside.txt' }]) },
  { name: 'hardlink through a symlink', code: 'TSB4403', mentions: 'h', tar: () => rawTar([
    { name: 's', type: 'symlink', linkname: '/etc' },
    { name: 'h', type: 'hardlink', linkname: 's/passwd' },
  ]) },
  { name: 'hardlink to a missing target', code: 'TSB4407', mentions: 'h', tar: () => rawTar([{ name: 'h', type: 'hardlink', linkname: 'nothere' }]) },
  { name: 'whiteout of ..', code: 'TSB4401', mentions: 'a/.wh..', tar: () => rawTar([{ name: 'a/.wh..', data: Buffer.alloc(0) }]) },
  { name: 'bad checksum', code: 'TSB4405', mentions: 'checksum', tar: () => { const t = rawTar([{ name: 'x', data: Buffer.from('x') }]); t[0] ^= 1; return t; } },
  { name: 'truncated body', code: 'TSB4405', mentions: 'truncated', tar: () => rawTar([{ name: 'x', data: Buffer.alloc(4096, 1) }]).subarray(0, 1500) },
];

describe('hostile archives', () => {
  for (const mode of ['snapshot', 'flat'] as const) {
    for (const c of cases) {
      test(`${mode}: ${c.name} → ${c.code}`, async () => {
        const a = arena();
        const unpack = mode === 'snapshot' ? unpackLayerToSnapshot : unpackLayerFlat;
        const err = await unpack(streamOf(c.tar()), a.target).then(() => undefined, (e: unknown) => e);
        expect(err).toMatchObject({ name: 'TsbError', code: c.code });
        expect((err as Error).message).toContain(c.mentions);
        expect((err as { hint?: string }).hint).toBeTruthy();
        untouched(a);
      });
    }
  }

  test('absolute names are neutralized (leading / stripped), not written at the host path', async () => {
    const a = arena();
    await unpackLayerToSnapshot(streamOf(rawTar([{ name: join(a.base, 'outside.txt'), data: Buffer.from('pwned') }, { name: '/etc/x', data: Buffer.from('ok') }])), a.target);
    untouched(a);
    expect(readFileSync(join(a.target, a.base.slice(1), 'outside.txt'), 'utf8')).toBe('pwned');
    expect(readFileSync(join(a.target, 'etc/x'), 'utf8')).toBe('ok');
  });

  test('a pre-existing symlink in a flat target (an earlier layer\'s) is followed only INSIDE the target, chroot-style', async () => {
    const a = arena();
    symlinkSync(a.outside, join(a.target, 'pre')); // absolute host path: means target/<that path>
    symlinkSync('../../../..', join(a.target, 'up'));
    await unpackLayerFlat(streamOf(rawTar([{ name: 'pre/x', data: Buffer.from('in') }, { name: 'up/y', data: Buffer.from('in') }])), a.target);
    untouched(a);
    expect(readFileSync(join(a.target, a.outside, 'x'), 'utf8')).toBe('in');
    expect(readFileSync(join(a.target, 'y'), 'utf8')).toBe('in');
  });

  test('ADD (flat, followArchiveSymlinks): the archive\'s own symlinks are followed INSIDE the target only', async () => {
    const a = arena();
    await unpackLayerFlat(streamOf(rawTar([
      { name: 'linkdir', type: 'symlink', linkname: '/etc' }, // as BuildKit 0.25: lands at <target>/etc/f
      { name: 'linkdir/through-link.txt', data: Buffer.from('through') },
      { name: 'esc', type: 'symlink', linkname: '/' },
      { name: 'esc/x', data: Buffer.from('root of the target') },
      { name: 'hostabs', type: 'symlink', linkname: a.outside },
      { name: 'hostabs/y', data: Buffer.from('still inside') },
      { name: 'h', type: 'hardlink', linkname: 'linkdir/through-link.txt' },
    ])), a.target, { followArchiveSymlinks: true });
    untouched(a);
    const t = describeTree(a.target);
    expect(t.linkdir).toMatchObject({ type: 'symlink', target: '/etc' });
    expect(t.etc).toMatchObject({ type: 'dir', mode: '755', uid: 0 });
    expect(readFileSync(join(a.target, 'etc/through-link.txt'), 'utf8')).toBe('through');
    expect(readFileSync(join(a.target, 'x'), 'utf8')).toBe('root of the target');
    expect(readFileSync(join(a.target, a.outside, 'y'), 'utf8')).toBe('still inside');
    expect(t.h!.link).toBe(t['etc/through-link.txt']!.link);
    // Escaping relative links are still refused (nothing to follow out of the target).
    const b = arena();
    await expect(unpackLayerFlat(streamOf(rawTar([{ name: 'up', type: 'symlink', linkname: '../../outside' }, { name: 'up/z', data: Buffer.from('x') }])), b.target, { followArchiveSymlinks: true }))
      .rejects.toMatchObject({ code: 'TSB4402' });
    untouched(b);
  });

  test('a file entry replacing an archive symlink replaces the link, not its target', async () => {
    const a = arena();
    await unpackLayerToSnapshot(streamOf(rawTar([
      { name: 'f', type: 'symlink', linkname: '/' + join(a.base, 'outside.txt').slice(1) },
      { name: 'f', data: Buffer.from('new') },
    ])), a.target);
    untouched(a);
    expect(describeTree(a.target).f).toMatchObject({ type: 'file' });
  });

  test('devices: refused with allowDevices:false (TSB4404); overlay xattrs from the archive are dropped', async () => {
    const a = arena();
    const err = await unpackLayerToSnapshot(streamOf(rawTar([{ name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 }])), a.target, { allowDevices: false })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TSB4404' });
    expect((err as Error).message).toContain('dev/sda');
    expect(existsSync(join(a.target, 'dev/sda'))).toBe(false);
    untouched(a);
    // Fifos are not devices; trusted.overlay.* in an archive must not reach the snapshot.
    const b = arena();
    await unpackLayerToSnapshot(streamOf(rawTar([
      { name: 'p', type: 'fifo' },
      { name: 'd/', type: 'dir', xattrs: { 'trusted.overlay.opaque': Buffer.from('y'), 'user.ok': Buffer.from('1') } },
    ])), b.target, { allowDevices: false });
    expect(describeTree(b.target).p).toMatchObject({ type: 'fifo' });
    expect(describeTree(b.target).d!.xattrs).toEqual({ 'user.ok': Buffer.from('1').toString('hex') });
  });

  test('unsupported entry types are TSB4406 (GNU sparse)', async () => {
    const t = rawTar([{ name: 'x', data: Buffer.from('x') }]);
    t[156] = 'S'.charCodeAt(0);
    // fix checksum
    t.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += t[i]!;
    t.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    await expect((async () => { for await (const _ of readTar(streamOf(t))) { /* */ } })()).rejects.toMatchObject({ code: 'TSB4406' });
  });

  test('diff_id verification: content that does not match the expected diff_id is TSB4409', async () => {
    const a = arena();
    await expect(unpackLayerToSnapshot(streamOf(rawTar([{ name: 'x', data: Buffer.from('x') }])), a.target, { expectDiffId: 'sha256:' + '0'.repeat(64) }))
      .rejects.toMatchObject({ code: 'TSB4409' });
  });
});
