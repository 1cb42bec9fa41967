/**
 * Interop with GNU tar in both directions: archives GNU tar writes (gnu and posix formats, long
 * names, gzip) unpack to the same tree; the busybox fixture tar round-trips.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, symlinkSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { unpackLayerToSnapshot } from '../../../src/exec/layer/unpack.js';
import { MergedView } from '../../../src/exec/layer/view.js';
import { LayerWriter } from '../../../src/exec/layer/writer.js';
import { exportRootfs } from '../../../src/exec/layer/flatten.js';
import { lsetxattr } from '../../../src/exec/layer/native.js';
import { busyboxMissing, busyboxRootfs, busyboxRootfsTar } from '../../helpers/busybox.js';
import { cleanup, collect, describeTree, describeView, streamOf, tmp } from './helpers.js';

afterAll(cleanup);

function gnuTree(root: string): void {
  const deep = join(root, 'x'.repeat(60), 'y'.repeat(60), 'z'.repeat(60));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'n'.repeat(120)), 'deep');
  writeFileSync(join(root, 'f'), 'f');
  execFileSync('chmod', ['4755', join(root, 'f')]);
  linkSync(join(root, 'f'), join(root, 'f2'));
  symlinkSync('t'.repeat(150), join(root, 'longlink'));
  writeFileSync(join(root, 'capfile'), 'c');
  lsetxattr(join(root, 'capfile'), 'user.k', Buffer.from([0, 1, 2, 255]));
  execFileSync('find', [root, '-exec', 'touch', '-h', '-d', '@1500000000', '{}', '+']);
}

describe('GNU tar interop', () => {
  for (const [fmt, extra] of [['gnu', []], ['posix', ['--xattrs', '--xattrs-include=user.*']], ['posix-gz', ['--xattrs', '--xattrs-include=user.*', '-z']]] as const) {
    test(`GNU tar --format=${fmt.replace('-gz', '')}${fmt.endsWith('gz') ? ' | gzip' : ''} unpacks to the same tree`, async () => {
      const src = tmp('gsrc'), out = tmp('gout'), d = tmp('gt');
      gnuTree(src);
      const tarPath = join(d, 't.tar');
      execFileSync('tar', ['-C', src, `--format=${fmt.replace('-gz', '')}`, '--numeric-owner', ...extra, '-cf', tarPath, '.']);
      await unpackLayerToSnapshot(streamOf(readFileSync(tarPath)), out);
      const want = describeTree(src, { mtime: true });
      if (fmt === 'gnu') delete want.capfile!.xattrs; // the gnu format has no xattrs
      const got = describeTree(out, { mtime: true });
      expect(got).toEqual(want);
    });
  }

  test('GNU base-256 ids and PAX records (global header, multibyte path) are read', async () => {
    const src = tmp('b256'), d = tmp('b256t');
    writeFileSync(join(src, 'f'), 'x');
    execFileSync('tar', ['-C', src, '--format=gnu', '--owner=3000000', '--group=4000000', '--numeric-owner', '-cf', join(d, 'g.tar'), 'f']);
    const { readTar } = await import('../../../src/exec/layer/tar.js');
    const hs = [];
    for await (const e of readTar(streamOf(readFileSync(join(d, 'g.tar'))))) hs.push(e.header);
    expect(hs[0]).toMatchObject({ name: 'f', uid: 3000000, gid: 4000000 });
    // POSIX format with a global header and a non-ASCII name GNU tar writes as PAX path
    const name = 'Ωmega-' + '日本'.repeat(40);
    writeFileSync(join(src, name), 'y');
    execFileSync('tar', ['-C', src, '--format=posix', '--pax-option=globexthdr.name=g,comment=hello', '-cf', join(d, 'p.tar'), name]);
    const names = [];
    for await (const e of readTar(streamOf(readFileSync(join(d, 'p.tar'))))) names.push(e.header.name);
    expect(names).toEqual([name]);
  });

  test('busybox fixture tar → snapshot equals the fixture dir; our export of it lists in GNU tar', async (ctx) => {
    const why = busyboxMissing();
    if (why) { ctx.skip(why); return; }
    const dir = await busyboxRootfs();
    const tarPath = await busyboxRootfsTar();
    const snap = tmp('bb');
    await unpackLayerToSnapshot(streamOf(readFileSync(tarPath)), snap);
    expect(describeTree(snap)).toEqual(describeTree(dir));
    const view = new MergedView([snap]);
    expect(describeView(view)).toEqual(describeTree(dir));
    const w = new LayerWriter({ sourceDateEpoch: 0 });
    exportRootfs(view, w);
    const d = tmp('bbx');
    writeFileSync(join(d, 'x.tar'), await collect(w.stream()));
    const list = execFileSync('tar', ['-tf', join(d, 'x.tar')], { encoding: 'utf8' }).trim().split('\n');
    expect(list).toContain('bin/busybox');
    expect(list).toContain('tmp/');
    const x = tmp('bbxx');
    execFileSync('tar', ['-C', x, '--numeric-owner', '-xpf', join(d, 'x.tar')]);
    expect(describeTree(x)).toEqual(describeTree(dir));
  });
});
