/**
 * Disk full and read-only file systems, for real: the store lives on a small tmpfs (needs root and
 * mount(2); skipped with a message otherwise). A failed write is a coded error with a hint and
 * leaves nothing half-written visible.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TsbError } from '../../store/errors.js';
import { openStore } from '../../store/index.js';
import { makeImage } from './image.js';

let mnt = '';
let mounted = false;
beforeAll(async () => {
  mnt = await mkdtemp(join(tmpdir(), 'tsb-tmpfs-'));
  mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]).status === 0;
  if (!mounted) console.log('fs-errors: cannot mount a tmpfs here (not root?); skipping');
});
afterAll(async () => {
  if (mounted) spawnSync('umount', [mnt]);
  await rm(mnt, { recursive: true, force: true });
});

async function failure(p: Promise<unknown>): Promise<TsbError> {
  try { await p; } catch (e) { if (e instanceof TsbError) return e; throw e; }
  throw new Error('expected a failure');
}

describe('file-system errors', () => {
  it('ENOSPC is TSB5003 with a hint; nothing is left behind; verify stays clean', async (ctx) => {
    if (!mounted) { ctx.skip(); return; }
    const root = join(mnt, 'store');
    const store = await openStore(root);
    await makeImage(store, 'small:1', [{ a: '1' }]);
    const big = Readable.from((function* () { for (let i = 0; i < 48; i++) yield Buffer.alloc(64 * 1024, i); })());
    const e = await failure(store.blobs.put(big));
    expect(e.code).toBe('TSB5003');
    expect(e.message).toMatch(/disk full/);
    expect(e.hint).toMatch(/free space/);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
    expect((await readdir(join(root, 'blobs', 'sha256'))).length).toBe(3);
    const e2 = await failure(store.blobs.put(Buffer.alloc(3 << 20, 1)));
    expect(e2.code).toBe('TSB5003');
    expect(await store.verify()).toEqual([]);
    expect(await store.refs.get('small:1')).toBeDefined();
  });
  it('a read-only store is TSB5004 with a hint, and reads still work', async (ctx) => {
    if (!mounted) { ctx.skip(); return; }
    const root = join(mnt, 'store');
    const store = await openStore(root);
    expect(spawnSync('mount', ['-o', 'remount,ro', mnt]).status).toBe(0);
    try {
      const e = await failure(store.blobs.put('new content'));
      expect(e.code).toBe('TSB5004');
      expect(e.hint).toMatch(/read-only/);
      const e2 = await failure(store.refs.set('x:1', (await store.refs.get('small:1'))!));
      expect(e2.code).toBe('TSB5004');
      expect((await store.refs.list()).map((r) => r.name)).toEqual(['small:1']);
    } finally {
      spawnSync('mount', ['-o', 'remount,rw', mnt]);
    }
  });
});
