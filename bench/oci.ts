/**
 * OCI bench: a ~200 MB image (4 layers of mixed compressible/incompressible files) is
 *   1. exported as an OCI archive (cold: layers gzip-compressed; warm: compressed blobs reused),
 *   2. pushed to a local docker-registry by tsbuild,
 * and, side by side in the same run, the same image is copied by `skopeo copy` from the OCI
 * layout tsbuild wrote (already compressed, like tsbuild's warm push) to a second, empty registry,
 * and skopeo's own OCI archive write (oci: → oci-archive:) is timed against tsbuild's export.
 * Goal: tsbuild ≤ 1× skopeo's time. Skips (reporting why) when docker-registry or skopeo is missing.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openStore } from '../store/index.js';
import type { Descriptor, Store } from '../store/types.js';
import { LayerWriter } from '../src/exec/layer/writer.js';
import { layerDescriptor, readImage, writeImage } from '../src/oci/image.js';
import { distributionImage, exportImage, parseOutputSpec } from '../src/oci/export.js';
import { pullImage, pushImage } from '../src/oci/registry.js';

const run = promisify(execFile);
const MB = 1 << 20;

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => { const p = (s.address() as net.AddressInfo).port; s.close(() => res(p)); });
  });
}

async function registry(dir: string): Promise<{ host: string; stop: () => Promise<void> }> {
  const port = await freePort();
  const cfg = join(dir, `reg-${port}.yml`);
  await writeFile(cfg, ['version: 0.1', 'log:', '  level: error', '  accesslog:', '    disabled: true', 'storage:', '  filesystem:',
    `    rootdirectory: ${join(dir, `reg-${port}`)}`, 'http:', `  addr: 127.0.0.1:${port}`, '  secret: bench'].join('\n'));
  const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', cfg], { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((r) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/v2/', agent: false }, (res) => { res.resume(); r(true); });
      req.on('error', () => r(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host: `127.0.0.1:${port}`, stop: async () => { child.kill('SIGTERM'); await new Promise((r) => setTimeout(r, 200)); } };
}

/** Deterministic pseudo-random bytes (xorshift), half of each file text-like (compressible). */
function fileBytes(seed: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  let x = seed | 1;
  const half = size >> 1;
  for (let i = 0; i < half; i += 4) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b.writeInt32LE(x | 0, i);
  }
  const text = Buffer.from(`line ${seed} the quick brown fox jumps over the lazy dog 0123456789\n`);
  for (let i = half; i < size; i += text.length) text.copy(b, i, 0, Math.min(text.length, size - i));
  return b;
}

async function makeBigImage(store: Store, totalMB: number): Promise<Descriptor> {
  const layers: Descriptor[] = [];
  const perLayer = totalMB / 4;
  for (let l = 0; l < 4; l++) {
    const w = new LayerWriter();
    w.add({ path: `data${l}`, type: 'dir', mode: 0o755 });
    for (let f = 0; f < perLayer; f++) {
      const buf = fileBytes(l * 1000 + f + 1, MB);
      w.add({ path: `data${l}/f${f}.bin`, type: 'file', mode: 0o644, source: { buffer: buf }, size: buf.length });
    }
    const r = await w.commit(store.blobs);
    layers.push(layerDescriptor(r.diffId, r.size));
  }
  return writeImage(store, {
    config: { architecture: 'amd64', os: 'linux', created: '2024-01-01T00:00:00Z', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } },
    layers,
  });
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  return [Number(process.hrtime.bigint() - t0) / 1e9, r];
}

export default async function bench(report: (line: string) => void): Promise<void> {
  const haveReg = existsSync('/usr/bin/docker-registry');
  const haveSkopeo = await run('skopeo', ['--version']).then(() => true, () => false);
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-bench-oci-'));
  const store = await openStore(join(dir, 'store'));
  try {
    const totalMB = Number(process.env.TSBUILD_BENCH_OCI_MB ?? 200);
    const [tMake, d] = await time(() => makeBigImage(store, totalMB));
    report(`image: ${totalMB} MB in 4 layers, made in ${tMake.toFixed(2)} s`);
    const archive = join(dir, 'img.tar');
    const [tCold] = await time(() => exportImage(store, d, parseOutputSpec(`type=oci,dest=${archive},name=bench:1`)));
    report(`export type=oci (cold: gzip every layer): ${tCold.toFixed(2)} s (${(totalMB / tCold).toFixed(0)} MB/s)`);
    const [tWarm] = await time(() => exportImage(store, d, parseOutputSpec(`type=oci,dest=${archive},name=bench:1`)));
    report(`export type=oci (warm: compressed blobs reused): ${tWarm.toFixed(2)} s`);
    const layout = join(dir, 'layout');
    await exportImage(store, d, parseOutputSpec(`type=oci,dest=${layout},tar=false,name=bench:1`));
    if (haveSkopeo) {
      const [tSk] = await time(() => run('skopeo', ['copy', '-q', `oci:${layout}:1`, `oci-archive:${join(dir, 'skopeo.tar')}:1`]));
      report(`skopeo copy oci: → oci-archive: (no recompression): ${tSk.toFixed(2)} s; tsbuild warm export / skopeo = ${(tWarm / tSk).toFixed(2)}×`);
    }
    if (!haveReg) { report('docker-registry missing: push bench skipped'); return; }
    const regA = await registry(dir);
    const regB = await registry(dir);
    try {
      const dist = await distributionImage(store, await readImage(store, d), {});
      const [tPush] = await time(() => pushImage(store, dist, `${regA.host}/bench/tsbuild:1`));
      report(`tsbuild push (compressed blobs reused, empty registry): ${tPush.toFixed(2)} s (${(totalMB / tPush).toFixed(0)} MB/s uncompressed-equivalent)`);
      if (haveSkopeo) {
        const [tSkPush] = await time(() => run('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:1`, `docker://${regB.host}/bench/skopeo:1`]));
        report(`skopeo copy oci: → docker:// (same blobs, empty registry): ${tSkPush.toFixed(2)} s; tsbuild / skopeo = ${(tPush / tSkPush).toFixed(2)}× (goal ≤ 1×)`);
      } else report('skopeo missing: side-by-side skipped');
      const [tRe] = await time(() => pushImage(store, dist, `${regA.host}/bench/tsbuild:1`));
      report(`tsbuild push again (all blobs present: HEAD only): ${tRe.toFixed(3)} s`);
      // Pull into an empty store (download, verify, keep compressed + decompress to diff_ids).
      const pullStore = await openStore(join(dir, 'pull-store'));
      try {
        const [tPull] = await time(() => pullImage(pullStore, `${regA.host}/bench/tsbuild:1`));
        report(`tsbuild pull (empty store; stores compressed + uncompressed): ${tPull.toFixed(2)} s`);
        if (haveSkopeo) {
          const [tSkPull] = await time(() => run('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${regA.host}/bench/tsbuild:1`, `oci:${join(dir, 'skopeo-pulled')}:1`]));
          report(`skopeo copy docker:// → oci: (compressed only): ${tSkPull.toFixed(2)} s; tsbuild / skopeo = ${(tPull / tSkPull).toFixed(2)}×`);
        }
      } finally { await pullStore.close(); }
    } finally {
      await regA.stop();
      await regB.stop();
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
