/**
 * Per-RUN overhead of the sandbox: `true` in a fresh overlay over a busybox-like root, with
 * network default and none; median (and p90) of N runs. Skips (reports why) without root/busybox.
 * Also: a 200-layer stack. Then the measure, side by side with Docker BuildKit 0.25
 * (../shared/peers/modern-build.sh; started with start-modern-buildkit.sh if needed): per-RUN
 * overhead = (time(10× `RUN true`) − time(1× `RUN true`)) / 9, whole builds with --no-cache, FROM
 * busybox, network default and none; medians of BENCH_ROUNDS (default 3) rounds and the ratio.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSandbox, sandboxInitKind, sandboxUnavailable } from '../src/exec/sandbox/index.js';
import { PEERS, REPO, WORK, peerEnv } from '../scripts/peers.js';

function rootfs(dir: string): void {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
  execFileSync('chmod', ['755', join(dir, 'bin/busybox')]);
  for (const a of ['sh', 'true', 'ls']) symlinkSync('busybox', join(dir, 'bin', a));
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\n');
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)]!, p90: s[Math.floor(s.length * 0.9)]!, min: s[0]! };
};

export default async function (report: (line: string) => void): Promise<void> {
  const why = sandboxUnavailable() ?? (existsSync('/bin/busybox') ? undefined : '/bin/busybox missing');
  if (why) { report(`skipped: ${why}`); return; }
  const base = mkdtempSync(join(tmpdir(), 'tsb-bench-sbx-'));
  try {
    const lower = join(base, 'lower');
    rootfs(lower);
    const N = Number(process.env.BENCH_N ?? 20);
    const once = async (network: 'default' | 'none', lowers: string[]) => {
      const d = mkdtempSync(join(base, 'run-'));
      mkdirSync(join(d, 'u')); mkdirSync(join(d, 'w'));
      const t0 = process.hrtime.bigint();
      const r = await runSandbox({ root: { lowerdirs: lowers, upperdir: join(d, 'u'), workdir: join(d, 'w') }, argv: ['/bin/true'], env: [], network });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
      rmSync(d, { recursive: true, force: true });
      return ms;
    };
    await once('default', [lower]); // warm-up (cleanupStale, compiling the C init, page cache)
    report(`init: ${await sandboxInitKind()}${process.env.TSBUILD_SANDBOX_UNSHARE === 'util-linux' ? ' behind setpriv+unshare' : ''}; load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)}`);
    for (const network of ['default', 'none'] as const) {
      const xs: number[] = [];
      for (let i = 0; i < N; i++) xs.push(await once(network, [lower]));
      const s = stats(xs);
      report(`RUN true, network=${network}: median ${s.median.toFixed(1)} ms, p90 ${s.p90.toFixed(1)} ms, min ${s.min.toFixed(1)} ms (N=${N})`);
    }
    const deep: string[] = [lower];
    for (let i = 0; i < 199; i++) { const d = join(base, `l${i}`); mkdirSync(d); writeFileSync(join(d, `f${i}`), ''); deep.push(d); }
    const xs: number[] = [];
    for (let i = 0; i < Math.max(3, N / 4); i++) xs.push(await once('default', deep));
    report(`RUN true over 200 lowers: median ${stats(xs).median.toFixed(1)} ms`);
    await versusBuildkit(report, base);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

async function versusBuildkit(report: (line: string) => void, base: string): Promise<void> {
  const peers = PEERS;
  if (!existsSync(join(peers, 'modern-build.sh'))) { report('vs BuildKit: skipped (../shared/peers absent)'); return; }
  const st = spawnSync('bash', [join(peers, 'start-modern-buildkit.sh')], { encoding: 'utf8', timeout: 300_000, env: peerEnv() });
  if (st.status !== 0) { report(`vs BuildKit: skipped (start-modern-buildkit.sh: ${(st.stderr || st.stdout).trim().split('\n').pop()})`); return; }
  const store = process.env.BENCH_STORE ?? join(WORK, 'store'); // the differential harness's store (busybox:latest)
  const tsb = join(REPO, 'bin/tsbuild.js');
  if (spawnSync('node', [tsb, 'inspect', 'busybox:latest', '--store', store]).status !== 0) {
    report(`vs BuildKit: skipped (busybox:latest not in ${store}; run the differential harness once)`); return;
  }
  const ctx = (n: number, net: string) => {
    const d = mkdtempSync(join(base, 'ctx-'));
    const flag = net === 'none' ? '--network=none ' : '';
    writeFileSync(join(d, 'Dockerfile'), `FROM busybox\n${Array.from({ length: n }, (_, i) => `RUN ${flag}true # ${i}`).join('\n')}\n`);
    return d;
  };
  const time = (cmd: string, args: string[], env?: NodeJS.ProcessEnv): number => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${(r.stderr || '').slice(-400)}`);
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };
  const builders = {
    tsbuild: (d: string) => time('node', [tsb, 'build', d, '-t', 'bench-sbx:1', '--store', store, '--no-cache', '--progress', 'quiet']),
    buildkit: (d: string) => time('bash', [join(peers, 'modern-build.sh'), d, 'bench-sbx:1', '--no-cache'], peerEnv({ PROGRESS: 'quiet' })),
  };
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  report(`vs BuildKit: load average ${(await import('node:os')).loadavg()[0]!.toFixed(1)}`);
  for (const net of ['default', 'none']) {
    const one = ctx(1, net), ten = ctx(10, net);
    // Warm-up, not counted: the first tsbuild run after a build of tsbuild makes its fast-load
    // pack and compiles the C init; BuildKit's first may pull or warm its own caches.
    for (const b of Object.values(builders)) b(one);
    const per: Record<string, number[]> = { tsbuild: [], buildkit: [] };
    for (let r = 0; r < rounds; r++) {
      for (const [name, b] of Object.entries(builders)) per[name]!.push((b(ten) - b(one)) / 9);
    }
    const t = med(per.tsbuild!), k = med(per.buildkit!);
    report(`per-RUN overhead, network=${net}: tsbuild ${(t * 1000).toFixed(0)} ms, BuildKit ${(k * 1000).toFixed(0)} ms, ratio ${(t / k).toFixed(2)}× `
      + `(goal ≤ 100 ms and ≤ 0.25×; medians of ${rounds}: tsbuild ${per.tsbuild!.map((x) => (x * 1000).toFixed(0)).join('/')}, BuildKit ${per.buildkit!.map((x) => (x * 1000).toFixed(0)).join('/')})`);
  }
}
