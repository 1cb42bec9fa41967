import { execFileSync } from 'node:child_process';
import { lstatSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { busyboxMissing, busyboxRootfs, busyboxRootfsTar } from '../../helpers/busybox.js';

const skip = busyboxMissing();
if (skip) console.warn(skip);

describe.skipIf(skip !== undefined)('busybox fixture', () => {
  it('has busybox, applet links, users and a sticky /tmp', async () => {
    const root = await busyboxRootfs();
    expect(statSync(join(root, 'bin/busybox')).mode & 0o777).toBe(0o755);
    expect(readlinkSync(join(root, 'bin/sh'))).toBe('busybox');
    expect(lstatSync(join(root, 'bin/id')).isSymbolicLink()).toBe(true);
    expect(statSync(join(root, 'tmp')).mode & 0o7777).toBe(0o1777);
    expect(statSync(join(root, 'home/app')).uid).toBe(1000);
    expect(await busyboxRootfs()).toBe(root); // cached
  });
  it('tars the same tree', async () => {
    const tar = await busyboxRootfsTar();
    const list = execFileSync('tar', ['-tvf', tar], { encoding: 'utf8' });
    expect(list).toMatch(/ bin\/busybox\n/);
    expect(list).toMatch(/bin\/sh -> busybox/);
    expect(list).toMatch(/drwxrwxrwt .* tmp\/\n/);
    expect(list).toMatch(/1000\/1000 .* home\/app\/\n/);
  });
});
