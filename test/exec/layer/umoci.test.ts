/**
 * Acceptance of our layer tars by an independent implementation: umoci unpacks a two-layer OCI
 * layout made of LayerWriter layers (whiteout, opaque dir, hardlink, device, setuid, capability
 * xattr, symlink) to the tree we expect. Skips when umoci is not installed. (Full image/registry
 * interop is tested in test/oci.)
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { LayerWriter } from '../../../src/exec/layer/writer.js';
import { lgetxattr } from '../../../src/exec/layer/native.js';
import { cleanup, collect, describeTree, tmp } from './helpers.js';

afterAll(cleanup);

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex');

test('umoci unpacks an image made of our layers as expected', async (ctx) => {
  if (!['/usr/bin/umoci', '/usr/local/bin/umoci'].some((p) => existsSync(p))) { ctx.skip('umoci not installed: skipping'); return; }
  if (process.getuid?.() !== 0) { ctx.skip('not root: skipping (devices, owners)'); return; }
  const d = join(tmp('umoci'), 'layout');
  mkdirSync(join(d, 'blobs/sha256'), { recursive: true });
  const put = (b: Buffer): string => {
    const h = createHash('sha256').update(b).digest('hex');
    writeFileSync(join(d, 'blobs/sha256', h), b);
    return `sha256:${h}`;
  };
  const l1 = new LayerWriter()
    .add({ path: 'etc', type: 'dir' }).add({ path: 'etc/a', type: 'file', source: { buffer: Buffer.from('a') } })
    .add({ path: 'etc/b', type: 'hardlink', linkname: 'etc/a' }).add({ path: 'etc/c', type: 'hardlink', linkname: 'etc/a' })
    .add({ path: 'bin', type: 'dir' })
    .add({ path: 'bin/ping', type: 'file', mode: 0o4755, uid: 0, gid: 0, xattrs: { 'security.capability': CAP }, source: { buffer: Buffer.from('p') } })
    .add({ path: 'dev', type: 'dir' }).add({ path: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 })
    .add({ path: 'old', type: 'dir' }).add({ path: 'old/x', type: 'file' })
    .add({ path: 'home', type: 'dir' }).add({ path: 'home/app', type: 'dir', uid: 1000, gid: 1000, mode: 0o750 })
    .add({ path: 'sh', type: 'symlink', linkname: '/bin/busybox' });
  const l2 = new LayerWriter()
    .add({ path: 'etc', type: 'dir' }).add({ path: 'etc/a', type: 'whiteout' })
    .add({ path: 'old', type: 'dir' }).add({ path: 'old', type: 'opaque' }).add({ path: 'old/y', type: 'file' });
  const t1 = await collect(l1.stream()), t2 = await collect(l2.stream());
  const d1 = put(t1), d2 = put(t2);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [d1, d2] } }));
  const dc = put(config);
  const layer = (digest: string, size: number) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size });
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: dc, size: config.length },
    layers: [layer(d1, t1.length), layer(d2, t2.length)],
  }));
  const dm = put(manifest);
  writeFileSync(join(d, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(d, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: dm, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'x' } }] }));
  const bundle = join(tmp('umoci'), 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${d}:x`, bundle], { stdio: 'ignore' });
  const root = join(bundle, 'rootfs');
  const tree = describeTree(root);
  expect(Object.keys(tree).sort()).toEqual(['bin', 'bin/ping', 'dev', 'dev/null', 'etc', 'etc/b', 'etc/c', 'home', 'home/app', 'old', 'old/y', 'sh']);
  expect(tree['bin/ping']).toMatchObject({ mode: '4755', content: expect.any(String) });
  expect(lgetxattr(join(root, 'bin/ping'), 'security.capability')?.equals(CAP)).toBe(true);
  expect(tree['dev/null']).toMatchObject({ type: 'char', dev: '1:3', mode: '666' });
  expect(tree['etc/b']!.link).toBe(tree['etc/c']!.link);
  expect(tree['home/app']).toMatchObject({ uid: 1000, gid: 1000, mode: '750' });
  expect(tree.sh).toMatchObject({ type: 'symlink', target: '/bin/busybox' });
});
