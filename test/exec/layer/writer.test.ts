import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, test } from 'vitest';
import { LayerWriter } from '../../../src/exec/layer/writer.js';
import { readTar } from '../../../src/exec/layer/tar.js';
import { compareLayerPaths } from '../../../src/exec/layer/entry.js';
import { cleanup, collect, sha256, streamOf, tmp } from './helpers.js';

afterAll(cleanup);

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // cap_net_raw, VFS_CAP_REVISION_2

function sample(): LayerWriter {
  const w = new LayerWriter();
  w.add({ path: 'usr/bin/ping', type: 'file', mode: 0o4755, uid: 0, gid: 0, mtime: 1700000000, source: { buffer: Buffer.from('ping!') }, xattrs: { 'security.capability': CAP, 'trusted.overlay.origin': Buffer.from('x') } });
  w.add({ path: 'usr', type: 'dir', mode: 0o755, mtime: 1700000000 });
  w.add({ path: 'usr/bin', type: 'dir', mode: 0o755, mtime: 1700000000 });
  w.add({ path: 'usr/bin/sh', type: 'symlink', linkname: '/bin/busybox', mtime: 1700000000 });
  w.add({ path: 'a-c', type: 'file', source: { buffer: Buffer.from('x') } });
  w.add({ path: 'a', type: 'dir', mode: 0o1777 });
  w.add({ path: 'a/b', type: 'file', mode: 0o2755, uid: 1000, gid: 50 });
  w.add({ path: 'gone', type: 'whiteout' });
  w.add({ path: 'a', type: 'opaque' });
  return w;
}

describe('LayerWriter', () => {
  test('sorts into walk order (parents first, bytewise by component) regardless of add order', async () => {
    const names: string[] = [];
    for await (const e of readTar(sample().stream())) names.push(e.header.name);
    expect(names).toEqual(['.wh.gone', 'a/', 'a/.wh..wh..opq', 'a/b', 'a-c', 'usr/', 'usr/bin/', 'usr/bin/ping', 'usr/bin/sh']);
    expect(compareLayerPaths('a/b', 'a-c')).toBeLessThan(0);
    expect(compareLayerPaths('a', 'a/b')).toBeLessThan(0);
    expect(compareLayerPaths('Z', 'a')).toBeLessThan(0);
  });

  test('headers: modes incl. setuid/setgid/sticky, numeric owners, empty uname, binary xattrs, overlay xattrs dropped', async () => {
    const got = new Map<string, { mode: number; uid: number; gid: number; uname: string; xattrs: Record<string, Buffer>; body: Buffer; linkname: string; type: string }>();
    for await (const e of readTar(sample().stream())) {
      got.set(e.header.name, { ...e.header, body: await collect(e.body) });
    }
    const ping = got.get('usr/bin/ping')!;
    expect(ping.mode).toBe(0o4755);
    expect(ping.body.toString()).toBe('ping!');
    expect(Object.keys(ping.xattrs)).toEqual(['security.capability']);
    expect(ping.xattrs['security.capability']!.equals(CAP)).toBe(true);
    expect(got.get('a/')!.mode).toBe(0o1777);
    expect(got.get('a/b')).toMatchObject({ mode: 0o2755, uid: 1000, gid: 50, uname: '' });
    expect(got.get('usr/bin/sh')).toMatchObject({ type: 'symlink', linkname: '/bin/busybox' });
    expect(got.get('.wh.gone')).toMatchObject({ type: 'file', mode: 0 });
  });

  test('GNU tar reads the output (listing, xattrs, long and non-ASCII names, big ids)', () => {
    const d = tmp();
    const w = sample();
    const long = 'd'.repeat(150) + '/' + 'é'.repeat(60);
    w.add({ path: 'd'.repeat(150), type: 'dir' });
    w.add({ path: long, type: 'file', uid: 3_000_000, gid: 2_500_000, source: { buffer: Buffer.from('long') } });
    w.add({ path: 'lnk', type: 'symlink', linkname: 't'.repeat(200) });
    return (async () => {
      writeFileSync(join(d, 'l.tar'), await collect(w.stream()));
      const list = execFileSync('tar', ['--numeric-owner', '-tvf', join(d, 'l.tar')], { encoding: 'utf8' });
      expect(list).toContain('-rwsr-xr-x 0/0');
      expect(list).toContain('drwxrwxrwt 0/0');
      expect(list).toContain(`3000000/2500000`);
      expect(list).toContain(long);
      expect(list).toContain('lnk -> ' + 't'.repeat(200));
      expect(list).toContain('usr/bin/sh -> /bin/busybox');
      const x = join(d, 'x');
      execFileSync('mkdir', [x]);
      execFileSync('tar', ['--xattrs', '--xattrs-include=*', '-xpf', join(d, 'l.tar'), '-C', x]);
      expect(execFileSync('cat', [join(x, long)], { encoding: 'utf8' })).toBe('long');
    })();
  });

  test('deterministic: same entries in any order → same diff_id; mtimes clamped by SOURCE_DATE_EPOCH', async () => {
    const entries = [
      { path: 'b', type: 'file' as const, mtime: 2_000_000_000, source: { buffer: Buffer.from('b') } },
      { path: 'a', type: 'dir' as const, mtime: 5 },
      { path: 'a/x', type: 'file' as const, mtime: 1_800_000_000.7, source: { buffer: Buffer.from('x') } },
    ];
    const w1 = new LayerWriter({ sourceDateEpoch: 1_000_000 });
    const w2 = new LayerWriter({ sourceDateEpoch: 1_000_000 });
    entries.forEach((e) => w1.add(e));
    [...entries].reverse().forEach((e) => w2.add({ ...e, mtime: e.mtime === 5 ? 5 : 1_900_000_000 }));
    const t1 = await collect(w1.stream()), t2 = await collect(w2.stream());
    expect(sha256(t1)).toBe(sha256(t2));
    // Each stream() call regenerates identical bytes.
    expect(sha256(await collect(w1.stream()))).toBe(sha256(t1));
    const mt: Record<string, number> = {};
    for await (const e of readTar(streamOf(t1))) mt[e.header.name] = e.header.mtime;
    expect(mt).toEqual({ 'a/': 5, 'a/x': 1_000_000, b: 1_000_000 });
    const w3 = new LayerWriter();
    entries.forEach((e) => w3.add(e));
    expect(sha256(await collect(w3.stream()))).not.toBe(sha256(t1));
  });

  test('hardlink whose target sorts later: roles swapped so the first name carries the content', async () => {
    const w = new LayerWriter();
    w.add({ path: 'z', type: 'file', source: { buffer: Buffer.from('data') }, mode: 0o755 });
    w.add({ path: 'a', type: 'hardlink', linkname: 'z' });
    w.add({ path: 'm', type: 'hardlink', linkname: 'a' });
    const seen: Array<[string, string, string, string]> = [];
    for await (const e of readTar(w.stream())) seen.push([e.header.name, e.header.type, e.header.linkname, (await collect(e.body)).toString()]);
    expect(seen).toEqual([['a', 'file', '', 'data'], ['m', 'hardlink', 'a', ''], ['z', 'hardlink', 'a', '']]);
  });

  test('path and stream sources are streamed; a size mismatch is TSB4416', async () => {
    const d = tmp();
    writeFileSync(join(d, 'f'), 'from a path');
    const w = new LayerWriter();
    w.add({ path: 'p', type: 'file', source: { path: join(d, 'f') } });
    w.add({ path: 's', type: 'file', size: 6, source: { stream: () => Readable.from([Buffer.from('str'), Buffer.from('eam')]) } });
    const bodies: Record<string, string> = {};
    for await (const e of readTar(w.stream())) bodies[e.header.name] = (await collect(e.body)).toString();
    expect(bodies).toEqual({ p: 'from a path', s: 'stream' });
    const bad = new LayerWriter();
    bad.add({ path: 's', type: 'file', size: 10, source: { stream: () => Readable.from([Buffer.from('short')]) } });
    await expect(collect(bad.stream())).rejects.toMatchObject({ code: 'TSB4416' });
    const bad2 = new LayerWriter();
    bad2.add({ path: 'p', type: 'file', size: 3, source: { path: join(d, 'f') } });
    await expect(collect(bad2.stream())).rejects.toMatchObject({ code: 'TSB4416' });
  });

  test('invalid entries are TSB4412: unnormalized path, duplicate, .wh. names, dangling hardlink', async () => {
    const w = new LayerWriter();
    expect(() => w.add({ path: '/abs', type: 'dir' })).toThrow(expect.objectContaining({ code: 'TSB4412' }));
    expect(() => w.add({ path: 'a/../b', type: 'dir' })).toThrow(expect.objectContaining({ code: 'TSB4412' }));
    expect(() => w.add({ path: 'x/.wh.y', type: 'file' })).toThrow(expect.objectContaining({ code: 'TSB4412' }));
    w.add({ path: 'a', type: 'dir' });
    expect(() => w.add({ path: 'a', type: 'file' })).toThrow(expect.objectContaining({ code: 'TSB4412' }));
    w.add({ path: 'h', type: 'hardlink', linkname: 'nope' });
    await expect(collect(w.stream())).rejects.toMatchObject({ code: 'TSB4412' });
    const w2 = new LayerWriter().add({ path: 'f', type: 'file' }).add({ path: 'f/below', type: 'file' });
    expect(() => w2.plan()).toThrow(expect.objectContaining({ code: 'TSB4412' }));
  });
});
