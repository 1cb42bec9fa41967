/**
 * Per-RUN overhead of the sandbox: `true` in a fresh overlay over a busybox-like root, with
 * network default and none; median (and p90) of N runs. Skips (reports why) without root/busybox.
 * Also: a 200-layer stack.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, copyFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSandbox, sandboxInitKind, sandboxUnavailable } from '../src/exec/sandbox/index.js';

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
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}
