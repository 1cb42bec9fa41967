// A cold COPY of a context with many large files takes the speculative path (the layer is written
// first and hashes the large files as it reads them; their keys are taken after it). The keys must
// be exactly what an ordinary read gives, and the layer must hold the files.
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore } from '../../../store/store.js';
import { cli, listing, readImageFromStore, tmp, writeTree } from '../../build/helpers.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('cold COPY of large files (one read per file)', () => {
  it('keys name each file by the digest of its bytes; the layer holds them; a rebuild is cached', async () => {
    const dir = tmp();
    const files = new Map<string, Buffer>();
    // 20 MiB in files of 1 MiB (over the 16 MiB / 256 KiB speculation thresholds) plus small ones.
    for (let i = 0; i < 20; i++) files.set(`big/b${i}.bin`, randomBytes((1 << 20) + i));
    for (let i = 0; i < 30; i++) files.set(`small/s${i}.txt`, Buffer.from(`small ${i}\n`.repeat(i)));
    writeTree(dir, { Dockerfile: 'FROM scratch\nCOPY . /data\n' });
    for (const [p, b] of files) { writeTree(dir, { [p]: '' }); writeFileSync(join(dir, p), b); }
    const store = tmp('tsb-store-');
    const build = () => cli(['build', dir, '-t', 'cold:1', '--store', store, '--progress', 'plain']);

    const r1 = await build();
    expect(r1.code, r1.stderr).toBe(0);
    const s = await openStore(store);
    const rec = (await s.cache.list()).find((x) => x.instruction.startsWith('COPY'));
    expect(rec).toBeDefined();
    for (const [p, b] of files) {
      const perm = (lstatSync(join(dir, p)).mode & 0o7777).toString(8).padStart(4, '0');
      expect(rec!.inputs[`file:${p}`], p).toBe(`file ${perm} 0:0 sha256:${sha(b)}`);
    }
    const img = readImageFromStore(store, 'cold:1');
    const lines = await listing(img.fs);
    for (const [p, b] of files) {
      expect(lines.find((l) => l.startsWith(`/data/${p} file `)), p).toMatch(new RegExp(`sha256:${sha(b).slice(0, 16)}$`));
    }

    const r2 = await build();
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stderr).toMatch(/COPY \. \/data\n#\d+ CACHED/);
    expect(readImageFromStore(store, 'cold:1').manifestDigest).toBe(img.manifestDigest);
  }, 60_000);
});
