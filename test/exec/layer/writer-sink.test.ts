// The layer writer's fast path (Stager → BlobSink, encodeHeaderInto, taps) must give exactly the
// bytes the plain composition of encodeHeader + data + padding gives, whatever the source kinds,
// sizes (around the 512-byte block and the 256 KiB buffer), names and headers.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, readlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, test } from 'vitest';
import { openStore } from '../../../store/store.js';
import { LayerWriter, type FileTap } from '../../../src/exec/layer/writer.js';
import { compareLayerPaths, type LayerEntry } from '../../../src/exec/layer/entry.js';
import { END_OF_ARCHIVE, encodeHeader, encodeHeaderInto, padding, type TarHeader } from '../../../src/exec/layer/tar.js';
import { cleanup, collect, sha256, tmp } from './helpers.js';

afterAll(cleanup);

const hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** The tar as the writer's plan() describes it, composed from the codec's own parts. */
function reference(w: LayerWriter, files: Map<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const p of w.plan()) {
    const e = p.entry;
    const marker = e.type === 'whiteout' || e.type === 'opaque';
    const xattrs: Record<string, Buffer> = {};
    if (!marker && e.xattrs) for (const k of Object.keys(e.xattrs).sort()) if (k.startsWith('user.') || k === 'security.capability') xattrs[k] = e.xattrs[k]!;
    const data = p.type === 'file' && !marker && e.source ? files.get(p.tarName)! : undefined;
    const h: TarHeader = {
      name: p.type === 'dir' ? (p.tarName === '' ? './' : p.tarName + '/') : p.tarName,
      type: p.type,
      mode: marker ? 0 : (e.mode ?? (p.type === 'dir' ? 0o755 : p.type === 'symlink' ? 0o777 : 0o644)) & 0o7777,
      uid: marker ? 0 : e.uid ?? 0, gid: marker ? 0 : e.gid ?? 0, size: data?.length ?? 0,
      mtime: marker ? 0 : Math.max(0, Math.trunc(e.mtime ?? 0)),
      linkname: p.type === 'symlink' || p.type === 'hardlink' ? p.linkname : '', uname: '', gname: '',
      devmajor: e.devmajor ?? 0, devminor: e.devminor ?? 0, xattrs,
    };
    parts.push(encodeHeader(h));
    if (data) parts.push(data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

describe('encodeHeaderInto', () => {
  test('writes exactly the block encodeHeader makes, or declines (PAX needed)', () => {
    const names = ['a', 'dir/', 'x'.repeat(100), 'x'.repeat(101), 'é', 'a\u0001b', 'p/' + 'q'.repeat(98)];
    const nums = [0, 1, 7, 8, 0o7777777, 0o7777777 + 1, 2 ** 33, 0o77777777777, 0o77777777777 + 1];
    let fast = 0, slow = 0;
    const buf = Buffer.alloc(4096, 0xee);
    for (const name of names) {
      for (const n of nums) {
        for (const type of ['file', 'dir', 'symlink', 'char'] as const) {
          const h: TarHeader = {
            name, type, mode: 0o4755 | 0o170000, uid: n, gid: Math.min(n, 5), size: type === 'file' ? n : 0, mtime: n === 8 ? 1.9 : n,
            linkname: type === 'symlink' ? (n > 8 ? 'l'.repeat(101) : '/bin/busybox') : '', uname: '', gname: '',
            devmajor: type === 'char' ? n : 0, devminor: type === 'char' ? 3 : 0, xattrs: {},
          };
          const want = encodeHeader(h);
          if (encodeHeaderInto(h, buf, 1024)) {
            fast++;
            expect(want.length).toBe(512);
            expect(buf.subarray(1024, 1536).equals(want)).toBe(true);
          } else {
            slow++;
            expect(want.length).toBeGreaterThan(512); // declined only when a PAX header is needed
          }
        }
      }
    }
    expect(buf.subarray(0, 1024).every((b) => b === 0xee)).toBe(true);
    expect(buf.subarray(1536).every((b) => b === 0xee)).toBe(true);
    expect(fast).toBeGreaterThan(50);
    expect(slow).toBeGreaterThan(50);
    const withXattr: TarHeader = { name: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0, xattrs: { 'user.a': Buffer.from('b') } };
    expect(encodeHeaderInto(withXattr, buf, 0)).toBe(false);
  });
});

describe('LayerWriter order', () => {
  test('plan() order is compareLayerPaths order, with and without names beyond U+D7FF', () => {
    const alphabet = ['a', 'b', '-', '.', '0', 'Z', '_', ' ', 'é', '\u00ff', '\u4e2d'];
    for (const extra of [[], ['x/\u{1F600}', 'x/\uDCE9raw', 'x/\uE000']]) {
      const w = new LayerWriter();
      const dirs = new Set<string>(['x']);
      const files = new Set<string>();
      let seed = 7;
      const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
      const comp = () => {
        let c = '';
        for (let k = 0, len = 1 + rnd(3); k < len; k++) c += alphabet[rnd(alphabet.length)];
        return c === '.' || c === '..' ? c + 'a' : c;
      };
      for (let i = 0; i < 300; i++) {
        const d = `x/${comp()}`;
        dirs.add(d);
        files.add(`${d}/${comp()}`); // component order: x/a/b before x/a-c
      }
      for (const n of extra) dirs.add(n);
      for (const d of dirs) w.add({ path: d, type: 'dir' });
      for (const f of files) w.add({ path: f, type: 'file' });
      const names = [...dirs, ...files];
      const got = w.plan().map((p) => p.tarName);
      expect(got).toEqual([...names].sort(compareLayerPaths));
    }
  });
});

describe('LayerWriter commit through a BlobSink', () => {
  test('same bytes as the reference composition and as stream(), for every source kind and size', async () => {
    const d = tmp();
    const store = await openStore(join(d, 'store'));
    const sizes = [0, 1, 511, 512, 513, 100_000, 131_071, 131_072, 200_000, 262_143, 262_144, 262_145, 300_000, 786_432, 1_048_593];
    const files = new Map<string, Buffer>();
    const w = new LayerWriter();
    w.add({ path: 'src', type: 'dir', mode: 0o755, mtime: 1 });
    w.add({ path: 'src/' + 'long'.repeat(40), type: 'dir' });
    sizes.forEach((n, i) => {
      const data = randomBytes(n);
      const kind = i % 3;
      const path = `src/${['buf', 'path', 'stream'][kind]}-${n}`;
      files.set(path, data);
      let e: LayerEntry;
      if (kind === 0) e = { path, type: 'file', source: { buffer: data }, mtime: 1700000000 + i };
      else if (kind === 1) { const f = join(d, `f${i}`); writeFileSync(f, data); e = { path, type: 'file', source: { path: f }, mtime: 1700000000 };}
      else {
        // Uneven chunks, some large (written as they are), some tiny (copied).
        const chunks: Buffer[] = [];
        for (let at = 0, k = 0; at < n; k++) { const len = [7, 150_000, 1, 4096][k % 4]!; chunks.push(data.subarray(at, at + len)); at += len; }
        e = { path, type: 'file', size: n, source: { stream: () => Readable.from(chunks) } };
      }
      w.add(e);
    });
    const longFile = 'src/' + 'long'.repeat(40) + '/é-' + 'n'.repeat(90);
    files.set(longFile, Buffer.from('pax named'));
    w.add({ path: longFile, type: 'file', source: { buffer: Buffer.from('pax named') }, uid: 3_000_000, xattrs: { 'user.k': Buffer.from([0, 1, 255]) } });
    w.add({ path: 'src/link', type: 'symlink', linkname: 'buf-0' });
    w.add({ path: 'src/gone', type: 'whiteout' });
    w.add({ path: 'src/hl', type: 'hardlink', linkname: 'src/buf-512' });
    w.add({ path: 'dev', type: 'char', devmajor: 1, devminor: 3 });

    const ref = reference(w, files);
    const streamed = await collect(w.stream());
    expect(streamed.equals(ref)).toBe(true);
    const r = await w.commit(store.blobs);
    expect(r).toEqual({ diffId: `sha256:${hex(ref)}`, size: ref.length });
    expect(readFileSync(store.blobs.path(r.diffId)).equals(ref)).toBe(true);
    // Nothing left in tmp/.
    expect(readdirSync(join(d, 'store', 'tmp')).filter((n) => n.startsWith('blob.'))).toEqual([]);
  });

  test('taps see each content-carrying file exactly once, whole, in layer order; a changed file fails its tap', async () => {
    const d = tmp();
    const store = await openStore(join(d, 'store'));
    const big = randomBytes(700_001), small = Buffer.from('small');
    writeFileSync(join(d, 'big'), big);
    writeFileSync(join(d, 'small'), small);
    const events: string[] = [];
    const taps = new Map<string, Buffer[]>();
    const tapFor = (name: string): FileTap => {
      const got: Buffer[] = [];
      taps.set(name, got);
      return { update: (c) => got.push(Buffer.from(c)), end: () => events.push(`end ${name}`), fail: () => events.push(`fail ${name}`) };
    };
    const w = new LayerWriter({ tap: (_src, name) => tapFor(name) });
    w.add({ path: 'b', type: 'file', source: { path: join(d, 'big') } });
    w.add({ path: 'a', type: 'file', source: { path: join(d, 'small') } });
    w.add({ path: 'c', type: 'file', source: { buffer: Buffer.from('buffered') } });
    w.add({ path: 'd', type: 'hardlink', linkname: 'a' });
    await w.commit(store.blobs);
    expect(events).toEqual(['end a', 'end b', 'end c']);
    expect(sha256(Buffer.concat(taps.get('b')!))).toBe(sha256(big));
    expect(Buffer.concat(taps.get('a')!).toString()).toBe('small');

    events.length = 0;
    const bad = new LayerWriter({ tap: (_src, name) => tapFor(name) });
    bad.add({ path: 'b', type: 'file', size: big.length, source: { path: join(d, 'big') } });
    truncateSync(join(d, 'big'), 1000);
    await expect(bad.commit(store.blobs)).rejects.toMatchObject({ code: 'TSB4416' });
    expect(events).toEqual(['fail b']);
    expect(readdirSync(join(d, 'store', 'tmp')).filter((n) => n.startsWith('blob.'))).toEqual([]);
  });

  test('a destroyed stream() stops the writer (no hang, files closed)', async () => {
    const d = tmp();
    writeFileSync(join(d, 'big'), randomBytes(3 << 20));
    const w = new LayerWriter();
    w.add({ path: 'big', type: 'file', source: { path: join(d, 'big') } });
    const s = w.stream();
    for await (const _ of s) break; // destroys the stream
    expect(s.destroyed).toBe(true);
    const openOnBig = () => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`) === join(d, 'big'); } catch { return false; } }).length;
    for (let i = 0; i < 50 && openOnBig() > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(openOnBig()).toBe(0);
  });
});

describe('BlobSink', () => {
  test('buffers reused once the next write resolves give the right blob; abort leaves nothing', async () => {
    const d = tmp();
    const store = await openStore(join(d, 'store'));
    const data = randomBytes(5 << 20);
    const sink = await store.blobs.openSink();
    const bufs = [Buffer.alloc(65536), Buffer.alloc(65536)];
    for (let at = 0, i = 0; at < data.length; at += 65536, i++) {
      const b = bufs[i % 2]!;
      data.copy(b, 0, at, at + 65536);
      await sink.write(b);
      // The other buffer is free now: scribble on it (a producer refilling it early must be safe).
      bufs[(i + 1) % 2]!.fill(0xab);
    }
    const r = await sink.end();
    expect(r).toEqual({ digest: `sha256:${hex(data)}`, size: data.length });
    expect(sha256(readFileSync(store.blobs.path(r.digest)))).toBe(sha256(data));

    const s2 = await store.blobs.openSink();
    await s2.write(Buffer.from('partial'));
    await s2.abort();
    expect(readdirSync(join(d, 'store', 'tmp')).filter((n) => n.startsWith('blob.'))).toEqual([]);

    const s3 = await store.blobs.openSink({ expectSize: 3 });
    await s3.write(Buffer.from('four'));
    await expect(s3.end()).rejects.toMatchObject({ code: expect.stringMatching(/^TSB5/) });
    expect(readdirSync(join(d, 'store', 'tmp')).filter((n) => n.startsWith('blob.'))).toEqual([]);
  });
});
