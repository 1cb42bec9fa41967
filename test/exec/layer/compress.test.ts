import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { decompressStream, detectCompression, openDecompressed, unpackLayerFlat } from '../../../src/exec/layer/unpack.js';
import { cleanup, collect, rawTar, streamOf, tmp } from './helpers.js';

afterAll(cleanup);

describe('decompressStream', () => {
  const payload = Buffer.concat(Array.from({ length: 2000 }, (_, i) => Buffer.from(`line ${i} of some compressible text\n`)));
  const tools: Array<[string, string[], string]> = [
    ['gzip', ['gzip', '-kn'], '.gz'],
    ['bzip2', ['bzip2', '-k'], '.bz2'],
    ['xz', ['xz', '-k'], '.xz'],
    ['zstd', ['zstd', '-q'], '.zst'],
  ];
  for (const [fmt, cmd, ext] of tools) {
    test(`${fmt}: detected by magic and decompressed`, async () => {
      const d = tmp('cz');
      writeFileSync(join(d, 'p'), payload);
      execFileSync(cmd[0]!, [...cmd.slice(1), join(d, 'p')]);
      const packed = readFileSync(join(d, 'p' + ext));
      expect(detectCompression(packed.subarray(0, 8))).toBe(fmt);
      // delivered in tiny chunks: detection must not depend on chunking
      const chunks = Array.from({ length: Math.ceil(packed.length / 3) }, (_, i) => packed.subarray(i * 3, i * 3 + 3));
      const { format, stream } = await openDecompressed((async function* () { yield* chunks; })());
      expect(format).toBe(fmt);
      expect((await collect(stream)).equals(payload)).toBe(true);
    });
  }

  test('plain input passes through', async () => {
    expect((await collect(await decompressStream(streamOf(payload)))).equals(payload)).toBe(true);
  });

  test('corrupt gzip and truncated xz are TSB4408', async () => {
    const d = tmp('cz');
    writeFileSync(join(d, 'p'), payload);
    execFileSync('gzip', ['-kn', join(d, 'p')]);
    execFileSync('xz', ['-k', join(d, 'p')]);
    const gz = readFileSync(join(d, 'p.gz'));
    gz[gz.length - 6] ^= 0xff; // CRC
    await expect(collect(await decompressStream(streamOf(gz)))).rejects.toMatchObject({ code: 'TSB4408' });
    const xz = readFileSync(join(d, 'p.xz'));
    await expect(collect(await decompressStream(streamOf(xz.subarray(0, xz.length >> 1))))).rejects.toMatchObject({ code: 'TSB4408' });
  });

  test('unpack accepts a compressed layer directly', async () => {
    const d = tmp('cz');
    writeFileSync(join(d, 'l.tar'), rawTar([{ name: 'hello', data: Buffer.from('world') }]));
    execFileSync('zstd', ['-q', join(d, 'l.tar')]);
    const out = tmp('out');
    await unpackLayerFlat(streamOf(readFileSync(join(d, 'l.tar.zst'))), out);
    expect(readFileSync(join(out, 'hello'), 'utf8')).toBe('world');
  });
});
