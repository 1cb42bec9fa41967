/**
 * The layer machinery inside a real build (CLI in-process, real sandbox, real overlayfs), for the
 * BuildKit 0.25 differences it fixed (differential cases run-mtime-precision, run-metadata-only,
 * run-nonutf8-name):
 * - a later RUN sees the nanosecond mtimes of files earlier RUN and COPY steps made (the tar
 *   keeps whole seconds);
 * - `ln` of a lower file gives both names as one inode in the image;
 * - a RUN may create non-UTF-8 names; the layer holds their raw bytes.
 * Skipped with a message when busybox-static or the sandbox is missing.
 */
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { busyboxMissing, busyboxRootfsTar } from '../../helpers/busybox.js';
import { cli, readImageFromStore, tmp } from '../../build/helpers.js';
import { lutimesNs } from '../../../src/exec/layer/native.js';
import { readTar } from '../../../src/exec/layer/tar.js';
import { createReadStream } from 'node:fs';

const why = busyboxMissing() ?? (process.getuid?.() !== 0 ? 'not root' : existsSync('src/exec/run-step.ts') ? undefined : 'no sandbox');
if (why) console.warn(`build-e2e: skipping: ${why}`);

describe.skipIf(!!why)('layers in a real build', () => {
  test('ns mtimes in later RUNs, hardlinks to lower files, non-UTF-8 names', async () => {
    const dir = tmp();
    copyFileSync(await busyboxRootfsTar(), join(dir, 'rootfs.tar'));
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src/f.txt'), 'f');
    lutimesNs(join(dir, 'src/f.txt'), 1_600_000_000_123_456_789n);
    writeFileSync(join(dir, 'Dockerfile'), [
      'FROM scratch',
      'ADD rootfs.tar /',
      'COPY src/f.txt /f.txt',
      'RUN touch /a',
      'RUN stat -c %y /a > /a-time && stat -c %y /f.txt > /f-time',
      'RUN ln /bin/busybox /bb && touch "$(printf \'/latin\\351\')"',
      '',
    ].join('\n'));
    const store = tmp('tsb-store-');
    const r = await cli(['build', dir, '-t', 'e2e:1', '--store', store, '--progress', 'plain']);
    expect(r.code, r.stderr).toBe(0);
    const img = readImageFromStore(store, 'e2e:1');
    const text = (p: string): string => img.fs.readFileSync(p)!.toString().trim();
    expect(text('a-time')).not.toMatch(/\.000000000 /);
    expect(text('f-time')).toBe('2020-09-13 12:26:40.123456789 +0000');

    const last = join(store, 'blobs', 'sha256', img.layers[img.layers.length - 1]!.slice(7));
    const entries: Array<{ name: string; type: string; linkname: string }> = [];
    for await (const { header } of readTar(createReadStream(last))) entries.push({ name: header.name, type: header.type, linkname: header.linkname });
    const bb = entries.find((e) => e.name === 'bb'), busybox = entries.find((e) => e.name === 'bin/busybox');
    expect(bb?.type).toBe('file');
    expect(busybox).toMatchObject({ type: 'hardlink', linkname: 'bb' });
    expect(entries.map((e) => e.name)).toContain('latin\udce9');
  });
});
