/**
 * Non-UTF-8 file names (Linux names are bytes): the byte-exact codec, the differ reading them
 * from an upper dir, the tar bytes (raw bytes in PAX path/linkpath; the ustar field as Go's
 * toASCII, the PAX header named and shaped as Go writes it: what BuildKit 0.25 emitted for
 * `touch "$(printf '/latin\351')"`), and unpacking them back to the same bytes.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { diffUpperdir } from '../../../src/exec/layer/diff.js';
import { compareLayerPaths } from '../../../src/exec/layer/entry.js';
import { decodeName, encodeName, fsPath } from '../../../src/exec/layer/names.js';
import { readTar } from '../../../src/exec/layer/tar.js';
import { unpackLayerToSnapshot } from '../../../src/exec/layer/unpack.js';
import { MergedView } from '../../../src/exec/layer/view.js';
import { LayerWriter } from '../../../src/exec/layer/writer.js';
import { cleanup, collect, streamOf, tmp } from './helpers.js';

afterAll(cleanup);

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('name codec', () => {
  test('valid UTF-8 is an ordinary string; invalid bytes become U+DC80..U+DCFF and come back exactly', () => {
    expect(decodeName(Buffer.from('héllo/ü€😀', 'utf8'))).toBe('héllo/ü€😀');
    expect(decodeName(b('latin\xe9'))).toBe('latin\udce9');
    expect(encodeName('latin\udce9').equals(b('latin\xe9'))).toBe(true);
    // A genuine U+FFFD stays one.
    expect(decodeName(Buffer.from('a\ufffdb', 'utf8'))).toBe('a\ufffdb');
    // Overlong, surrogate-in-UTF-8, truncated sequences: byte by byte.
    for (const raw of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0xff]]) {
      const buf = Buffer.from(raw);
      const s = decodeName(buf);
      expect([...s].every((c) => c.charCodeAt(0) >= 0xdc80 && c.charCodeAt(0) <= 0xdcff)).toBe(true);
      expect(encodeName(s).equals(buf)).toBe(true);
    }
  });

  test('round trip of random bytes (no NUL, no "/")', () => {
    for (let i = 0; i < 2000; i++) {
      const raw = Buffer.from(randomBytes(1 + (i % 40)).filter((c) => c !== 0 && c !== 0x2f));
      if (!raw.length) continue;
      expect(encodeName(decodeName(raw)).equals(raw)).toBe(true);
    }
  });

  test('fsPath gives strings for UTF-8 and Buffers only for escaped names', () => {
    expect(fsPath('/a/ü')).toBe('/a/ü');
    expect(Buffer.isBuffer(fsPath('/a/\udcff'))).toBe(true);
  });

  test('walk order compares raw bytes', () => {
    // UTF-8 é starts with 0xc3, the raw latin-1 é byte is 0xe9: both after 'z', UTF-8 first.
    const names = ['latin\udce9', 'latinz', 'latin\u00e9', 'latin'];
    expect(names.sort(compareLayerPaths)).toEqual(['latin', 'latinz', 'latin\u00e9', 'latin\udce9']);
  });
});

/** Raw 512-byte headers of a tar, in order, with their PAX data. */
function headers(tar: Buffer): Array<{ block: Buffer; pax?: Buffer }> {
  const out: Array<{ block: Buffer; pax?: Buffer }> = [];
  for (let off = 0; off + 512 <= tar.length;) {
    const h = tar.subarray(off, off + 512);
    if (h.every((c) => c === 0)) break;
    const size = parseInt(h.subarray(124, 136).toString('ascii').replace(/\0.*$/, '').trim() || '0', 8);
    const type = String.fromCharCode(h[156]!);
    out.push({ block: h, ...(type === 'x' ? { pax: tar.subarray(off + 512, off + 512 + size) } : {}) });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

const field = (h: Buffer, off: number, len: number): Buffer => {
  const f = h.subarray(off, off + len);
  const z = f.indexOf(0);
  return z < 0 ? f : f.subarray(0, z);
};

describe('non-UTF-8 names through the differ, the tar and the unpacker', () => {
  test('an upper dir with byte names → BuildKit-shaped tar → unpacked with the same bytes', async () => {
    const base = tmp('names');
    const up = join(base, 'upper');
    mkdirSync(up);
    writeFileSync(Buffer.concat([b(up + '/latin\xe9')]), '');
    mkdirSync(Buffer.concat([b(up + '/dir\xff')]));
    writeFileSync(Buffer.concat([b(up + '/dir\xff/f')]), 'x\n');
    symlinkSync(b('/target\xfe'), Buffer.concat([b(up + '/ln')]));
    const entries = diffUpperdir(up)!;
    expect(entries.map((e) => e.path).sort()).toEqual(['dir\udcff', 'dir\udcff/f', 'latin\udce9', 'ln'].sort());
    expect(entries.find((e) => e.path === 'ln')!.linkname).toBe('/target\udcfe');

    const w = new LayerWriter();
    for (const e of entries) w.add({ ...e, mtime: 0 });
    const tar = await collect(w.stream());
    const hs = headers(tar);
    const names = hs.map((h) => field(h.block, 0, 100).toString('latin1'));
    // Exactly the header sequence BuildKit 0.25 wrote for the same RUN (etc/ aside).
    expect(names).toEqual(['dir/PaxHeaders.0', 'dir/', 'dir/PaxHeaders.0/f', 'dir/f', 'PaxHeaders.0/latin', 'latin', 'PaxHeaders.0/ln', 'ln']);
    expect(hs[0]!.pax!.equals(b('14 path=dir\xff/\n'))).toBe(true);
    expect(hs[2]!.pax!.equals(b('15 path=dir\xff/f\n'))).toBe(true);
    expect(hs[4]!.pax!.equals(b('15 path=latin\xe9\n'))).toBe(true);
    expect(hs[6]!.pax!.equals(b('21 linkpath=/target\xfe\n'))).toBe(true);
    expect(field(hs[7]!.block, 157, 100).toString('latin1')).toBe('/target');
    // PAX headers as Go writes them: mode 0, no device numbers.
    expect(field(hs[0]!.block, 100, 8).toString()).toBe('0000000');
    expect(field(hs[0]!.block, 329, 8).length).toBe(0);
    expect(field(hs[1]!.block, 329, 8).toString()).toBe('0000000');

    const read: string[] = [];
    for await (const { header } of readTar(streamOf(tar))) read.push(header.name);
    expect(read).toEqual(['dir\udcff/', 'dir\udcff/f', 'latin\udce9', 'ln']);

    const snap = join(base, 'snap');
    mkdirSync(snap);
    await unpackLayerToSnapshot(streamOf(tar), snap);
    const top = readdirSync(snap, { encoding: 'buffer' }).map((n) => n.toString('latin1')).sort();
    expect(top).toEqual(['dir\xff', 'latin\xe9', 'ln']);
    expect(readFileSync(Buffer.concat([b(snap + '/dir\xff/f')]), 'utf8')).toBe('x\n');
    expect(readlinkSync(Buffer.concat([b(snap + '/ln')]), { encoding: 'buffer' }).equals(b('/target\xfe'))).toBe(true);

    // A later diff (against that snapshot as the lower) and a view read the names too.
    const view = new MergedView([snap]);
    expect(view.readdir('/dir\udcff')).toEqual(['f']);
    expect(view.readFile('/dir\udcff/f').toString()).toBe('x\n');
    expect(view.readlink('/ln')).toBe('/target\udcfe');
  });
});
