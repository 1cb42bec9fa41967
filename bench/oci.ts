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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** Median and the individual runs, e.g. "1.23 (1.10 1.23 1.40)". */
function fmt(xs: number[]): string {
  return `${median(xs).toFixed(2)} (${xs.map((x) => x.toFixed(2)).join(' ')})`;
}

/** Median of per-pair ratios a[i]/b[i] with the pairs listed. */
function ratios(a: number[], b: number[]): string {
  const r = a.map((x, i) => x / b[i]!);
  return `median ${median(r).toFixed(2)}× (pairs ${r.map((x) => x.toFixed(2)).join(' ')})`;
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
    const rounds = Math.max(1, Number(process.env.TSBUILD_BENCH_OCI_ROUNDS ?? 3));
    // The machine is shared: every comparison is made in pairs (tsbuild then the peer, back to
    // back) `rounds` times, and the medians of both and of the per-pair ratios are reported.
    const layout = join(dir, 'layout');
    await exportImage(store, d, parseOutputSpec(`type=oci,dest=${layout},tar=false,name=bench:1`));
    const warm: number[] = []; const skExp: number[] = [];
    for (let r = 0; r < rounds; r++) {
      warm.push((await time(() => exportImage(store, d, parseOutputSpec(`type=oci,dest=${archive},name=bench:1`))))[0]);
      if (haveSkopeo) {
        await rm(join(dir, 'skopeo.tar'), { force: true });
        skExp.push((await time(() => run('skopeo', ['copy', '-q', `oci:${layout}:1`, `oci-archive:${join(dir, 'skopeo.tar')}:1`])))[0]);
      }
    }
    report(`export type=oci (warm: compressed blobs reused): median ${fmt(warm)} s`);
    if (haveSkopeo) {
      // Cold pairs: every layer gzipped again (force-compression=true) vs skopeo compressing the
      // same uncompressed layout into an OCI archive (--dest-compress, gzip).
      const ulayout = join(dir, 'ulayout');
      await exportImage(store, d, parseOutputSpec(`type=oci,dest=${ulayout},tar=false,name=bench:1,compression=uncompressed`));
      const cold: number[] = []; const skCold: number[] = [];
      for (let r = 0; r < rounds; r++) {
        cold.push((await time(() => exportImage(store, d, parseOutputSpec(`type=oci,dest=${archive},name=bench:1,force-compression=true`))))[0]);
        await rm(join(dir, 'skopeo-cold.tar'), { force: true });
        skCold.push((await time(() => run('skopeo', ['copy', '-q', '--dest-compress', '--dest-compress-format', 'gzip', `oci:${ulayout}:1`, `oci-archive:${join(dir, 'skopeo-cold.tar')}:1`])))[0]);
      }
      report(`export type=oci,force-compression=true (gzip every layer): median ${fmt(cold)} s; skopeo copy --dest-compress (gzip) median ${fmt(skCold)} s; tsbuild / skopeo = ${ratios(cold, skCold)}`);
      await rm(ulayout, { recursive: true, force: true });
    }
    if (haveSkopeo) report(`skopeo copy oci: → oci-archive: (no recompression): median ${fmt(skExp)} s; tsbuild warm export / skopeo = ${ratios(warm, skExp)} (goal ≤ 1×)`);
    if (!haveReg) { report('docker-registry missing: push/pull bench skipped'); return; }
    const dist = await distributionImage(store, await readImage(store, d), {});
    const push: number[] = []; const skPush: number[] = []; const pull: number[] = []; const skPull: number[] = [];
    let again = 0;
    for (let r = 0; r < rounds; r++) {
      // Fresh, empty registries each round, so every push uploads every blob.
      const regA = await registry(dir);
      const regB = await registry(dir);
      try {
        push.push((await time(() => pushImage(store, dist, `${regA.host}/bench/tsbuild:1`)))[0]);
        if (haveSkopeo) skPush.push((await time(() => run('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}:1`, `docker://${regB.host}/bench/skopeo:1`])))[0]);
        if (r === 0) again = (await time(() => pushImage(store, dist, `${regA.host}/bench/tsbuild:1`)))[0];
        // Pull into an empty store (download, verify, keep compressed + decompress to diff_ids).
        const pullStore = await openStore(join(dir, `pull-store-${r}`));
        try {
          pull.push((await time(() => pullImage(pullStore, `${regA.host}/bench/tsbuild:1`)))[0]);
        } finally { await pullStore.close(); }
        await rm(join(dir, `pull-store-${r}`), { recursive: true, force: true });
        if (haveSkopeo) {
          skPull.push((await time(() => run('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${regA.host}/bench/tsbuild:1`, `oci:${join(dir, `skopeo-pulled-${r}`)}:1`])))[0]);
          await rm(join(dir, `skopeo-pulled-${r}`), { recursive: true, force: true });
        }
      } finally {
        await regA.stop();
        await regB.stop();
      }
    }
    report(`tsbuild push (compressed blobs reused, empty registry): median ${fmt(push)} s (${(totalMB / median(push)).toFixed(0)} MB/s uncompressed-equivalent)`);
    if (haveSkopeo) report(`skopeo copy oci: → docker:// (same blobs, empty registry): median ${fmt(skPush)} s; tsbuild push / skopeo = ${ratios(push, skPush)} (goal ≤ 1×)`);
    report(`tsbuild push again (all blobs present: HEAD only): ${again.toFixed(3)} s`);
    report(`tsbuild pull (empty store; writes compressed + uncompressed, fsync each): median ${fmt(pull)} s`);
    if (haveSkopeo) report(`skopeo copy docker:// → oci: (compressed only): median ${fmt(skPull)} s; tsbuild pull / skopeo = ${ratios(pull, skPull)}`);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
