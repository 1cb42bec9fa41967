/**
 * Build engine bench (issue 4 goals): cold build and fully cached no-op rebuild of
 *   small: a 1,000-file context (COPY . /app)
 *   big:   a 200 MB context (COPY . /data)
 * through tsbuild (a child process, as a user runs it) and, in the same run, Docker BuildKit via
 * ../shared/peers/docker-build.sh when it is available (else skipped with a message). Prints
 * medians and the tsbuild/BuildKit ratios; peak RSS of tsbuild from /usr/bin/time.
 * Goals: no-op ≤ 0.5× BuildKit, cold ≤ 0.5× BuildKit, peak RSS < 200 MB on the 200 MB context.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = join(repo, 'bin', 'tsbuild.js');
const peers = resolve(repo, '..', 'shared', 'peers');

function makeSmall(dir: string): void {
  for (let i = 0; i < 1000; i++) {
    const d = join(dir, `d${i % 20}`, `e${i % 7}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, `f${i}.txt`), `file ${i}\n`.repeat(20));
  }
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /app\n');
}

function makeBig(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < 20; i++) writeFileSync(join(dir, `blob${i}.bin`), randomBytes(10 << 20));
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /data\n');
}

interface Run { s: number; rssMB: number }

function timeTsbuild(ctx: string, store: string): Run {
  const r = spawnSync('/usr/bin/time', ['-f', '%e %M', process.execPath, bin, 'build', ctx, '-t', 'bench:x', '--store', store, '--progress', 'quiet'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tsbuild failed: ${r.stderr}`);
  const last = r.stderr.trim().split('\n').pop()!.split(' ');
  return { s: Number(last[0]), rssMB: Number(last[1]) / 1024 };
}

function timeCmd(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr.slice(-2000)}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

function buildkitAvailable(): string | undefined {
  if (!existsSync(join(peers, 'docker-build.sh'))) return `${peers} is absent`;
  if (!existsSync('/usr/bin/docker') || !existsSync('/usr/sbin/dockerd')) return 'docker.io (/usr/bin/docker, /usr/sbin/dockerd) is not installed';
  const r = spawnSync('bash', [join(peers, 'start-dockerd.sh')], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) return `start-dockerd.sh failed: ${(r.stderr || '').slice(-300)}`;
  return undefined;
}

export default async function (report: (line: string) => void): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'tsb-bench-build-'));
  const runs = Number(process.env.BENCH_RUNS ?? 3);
  try {
    const cases = [
      { name: 'small (1,000 files)', dir: join(root, 'small'), make: makeSmall },
      { name: 'big (200 MB)', dir: join(root, 'big'), make: makeBig },
    ];
    const bkWhy = buildkitAvailable();
    if (bkWhy) report(`BuildKit skipped: ${bkWhy}`);
    for (const c of cases) {
      mkdirSync(c.dir, { recursive: true });
      c.make(c.dir);
      const cold: Run[] = []; const noop: Run[] = [];
      for (let i = 0; i < runs; i++) {
        const store = join(root, `store-${i}`);
        rmSync(store, { recursive: true, force: true });
        spawnSync('sync');
        cold.push(timeTsbuild(c.dir, store));
        for (let k = 0; k < 2; k++) noop.push(timeTsbuild(c.dir, store));
        rmSync(store, { recursive: true, force: true });
      }
      const ts = { cold: median(cold.map((r) => r.s)), noop: median(noop.map((r) => r.s)), rss: Math.max(...cold.map((r) => r.rssMB), ...noop.map((r) => r.rssMB)) };
      report(`${c.name}: tsbuild cold ${ts.cold.toFixed(2)} s, no-op ${ts.noop.toFixed(2)} s, peak RSS ${ts.rss.toFixed(0)} MB`);
      if (!bkWhy) {
        const bcold: number[] = []; const bnoop: number[] = [];
        for (let i = 0; i < runs; i++) {
          spawnSync('bash', [join(peers, 'reset-cache.sh'), 'docker']);
          spawnSync('sync');
          bcold.push(timeCmd('bash', [join(peers, 'docker-build.sh'), c.dir, 'tsbbench:x', '-q'], { PEERS_NO_ENSURE: '1' }));
          bnoop.push(timeCmd('bash', [join(peers, 'docker-build.sh'), c.dir, 'tsbbench:x', '-q'], { PEERS_NO_ENSURE: '1' }));
        }
        const bk = { cold: median(bcold), noop: median(bnoop) };
        report(`${c.name}: BuildKit cold ${bk.cold.toFixed(2)} s, no-op ${bk.noop.toFixed(2)} s`);
        report(`${c.name}: ratio tsbuild/BuildKit cold ${(ts.cold / bk.cold).toFixed(2)}× (goal ≤ 0.5), no-op ${(ts.noop / bk.noop).toFixed(2)}× (goal ≤ 0.5)`);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
