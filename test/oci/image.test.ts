import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import {
  MediaType, canonicalConfig, canonicalIndex, parsePlatform, readImage, validateManifest, writeImage, type ImageConfig,
} from '../../src/oci/image.js';
import { isTsbError } from '../../src/errors.js';
import { makeImage, makeLayer, tempStore, type TempStore } from './fixtures.js';

let t: TempStore;
beforeAll(async () => { t = await tempStore(); });
afterAll(async () => { await t.cleanup(); });

describe('canonical JSON', () => {
  it('orders keys as BuildKit writes them and escapes like Go', () => {
    const cfg = {
      rootfs: { diff_ids: ['sha256:' + 'a'.repeat(64)], type: 'layers' },
      os: 'linux', architecture: 'amd64', created: '2024-01-01T00:00:00Z',
      config: { Cmd: ['sh'], Env: ['A=1'], User: 'app', Labels: { z: '1', a: '<&>' }, ArgsEscaped: false, OnBuild: [] },
      history: [{ empty_layer: true, created_by: 'CMD ["sh"]', created: '2024-01-01T00:00:00Z' }],
    } as unknown as ImageConfig;
    const s = canonicalConfig(cfg).toString();
    expect(s).toBe('{"architecture":"amd64","config":{"User":"app","Env":["A=1"],"Cmd":["sh"],"Labels":{"a":"\\u003c\\u0026\\u003e","z":"1"}},'
      + '"created":"2024-01-01T00:00:00Z","history":[{"created":"2024-01-01T00:00:00Z","created_by":"CMD [\\"sh\\"]","empty_layer":true}],'
      + '"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:' + 'a'.repeat(64) + '"]}}');
    // Same content, other key order → same bytes.
    const again = canonicalConfig(JSON.parse(JSON.stringify({ ...cfg, os: 'linux' })) as ImageConfig);
    expect(again.equals(canonicalConfig(cfg))).toBe(true);
  });

  it('writes an index with descriptor fields in spec order', () => {
    const s = canonicalIndex({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [{ size: 3, digest: 'sha256:' + 'b'.repeat(64), mediaType: MediaType.OCI_MANIFEST, annotations: { z: '1', a: '2' } }] }).toString();
    expect(s).toBe(`{"schemaVersion":2,"mediaType":"${MediaType.OCI_INDEX}","manifests":[{"mediaType":"${MediaType.OCI_MANIFEST}","digest":"sha256:${'b'.repeat(64)}","size":3,"annotations":{"a":"2","z":"1"}}]}`);
  });
});

describe('writeImage / readImage', () => {
  it('round-trips and is deterministic', async () => {
    const a = await makeImage(t.store, { name: 'docker.io/library/app:1' });
    const b = await makeImage(t.store);
    expect(a.digest).toBe(b.digest);
    expect(a.mediaType).toBe(MediaType.OCI_MANIFEST);
    const bytes = await t.store.blobs.read(a.digest);
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`).toBe(a.digest);
    const im = await readImage(t.store, 'app:1');
    expect(im.descriptor.digest).toBe(a.digest);
    expect(im.config.config?.Cmd).toEqual(['/bin/sh']);
    expect(im.manifest.layers).toHaveLength(2);
    expect(im.manifest.layers[0]!.mediaType).toBe(MediaType.OCI_LAYER);
  });

  it('resolves an index to linux/amd64 or the asked platform', async () => {
    const amd = await makeImage(t.store, { layers: [{ a: 'amd64' }] });
    const cfgArm: ImageConfig = { architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } };
    const arm = await writeImage(t.store, { config: cfgArm, layers: [] });
    const idx = canonicalIndex({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [
      { ...arm, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
      { ...amd, platform: { architecture: 'amd64', os: 'linux' } },
    ] });
    const put = await t.store.blobs.put(idx);
    const d = { mediaType: MediaType.OCI_INDEX, digest: put.digest, size: put.size };
    expect((await readImage(t.store, d)).descriptor.digest).toBe(amd.digest);
    expect((await readImage(t.store, d, { platform: parsePlatform('linux/arm64') })).descriptor.digest).toBe(arm.digest);
    await expect(readImage(t.store, d, { platform: parsePlatform('linux/s390x') })).rejects.toMatchObject({ code: 'TSB6103' });
  });

  it('rejects a missing name, bad manifests and mismatched diff_ids with codes', async () => {
    await expect(readImage(t.store, 'nope:1')).rejects.toMatchObject({ code: 'TSB6104' });
    for (const bad of [{}, { schemaVersion: 1 }, { schemaVersion: 2, config: { mediaType: 'x', digest: 'sha256:zz', size: 1 }, layers: [] },
      { schemaVersion: 2, config: { mediaType: 'x', digest: 'sha256:' + 'a'.repeat(64), size: 1 }, layers: [{ mediaType: 'text/plain', digest: 'sha256:' + 'a'.repeat(64), size: 1 }] }]) {
      let err: unknown;
      try { validateManifest(bad); } catch (e) { err = e; }
      expect(isTsbError(err) && /^TSB610[12]$/.test(err.code)).toBe(true);
    }
    const l = await makeLayer(t.store, { x: 'y' });
    await expect(writeImage(t.store, { config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }, layers: [l] })).rejects.toMatchObject({ code: 'TSB6106' });
  });
});
