/**
 * Limits (cgroup v1) and the sandbox's lifecycle: OOM reported, fork bombs bounded, CPU quota
 * applied, and nothing left behind (process, mount, cgroup, scratch dir) after an abort or after
 * tsbuild itself is SIGKILLed.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cleanupStale, runSandbox } from '../../../src/exec/sandbox/index.js';
import { busyboxRootfs } from '../../helpers/busybox.js';
import { freshUpper, listTree, scratchDir, sh, skipReason, transpiledSandbox } from './helpers.js';

const CG = '/sys/fs/cgroup';
const hasCgroupV1 = existsSync(`${CG}/memory/memory.limit_in_bytes`) && existsSync(`${CG}/pids/cgroup.procs`);

function processesWith(token: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try { if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(token)) out.push(Number(p)); } catch { /* gone */ }
  }
  return out;
}

function cgroupsOf(pid: number): string[] {
  const out: string[] = [];
  for (const ctl of ['pids', 'devices', 'memory', 'cpu']) {
    try { for (const d of readdirSync(`${CG}/${ctl}/tsbuild`)) if (d.startsWith(`${pid}-`)) out.push(`${ctl}/tsbuild/${d}`); } catch { /* none */ }
  }
  return out;
}

function scratchDirsOf(pid: number): string[] {
  const out: string[] = [];
  for (const base of ['/run/tsbuild/sandbox', `${tmpdir()}/tsbuild-sandbox`]) {
    try { for (const d of readdirSync(base)) if (d.startsWith(`${pid}-`)) out.push(`${base}/${d}`); } catch { /* none */ }
  }
  return out;
}

async function until(cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) { if (cond()) return true; await new Promise((r) => setTimeout(r, 50)); }
  return cond();
}

describe.skipIf(skipReason !== undefined || !hasCgroupV1)('sandbox: limits', () => {
  it('an OOM kill under a memory limit is reported as such, with the limit', async () => {
    const r = await sh('x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived ${#x}', { limits: { memoryBytes: 32 << 20 } });
    expect(r.oomKilled).toBe(true);
    expect(r.memory?.limitBytes).toBe(32 << 20);
    expect(r.memory!.maxUsageBytes).toBeGreaterThan(16 << 20);
    // (memory.failcnt is not counted by every kernel: 6.x v1 leaves it at 0 even after an OOM kill)
    expect(r.stdout).not.toMatch(/survived 200000000/);
  });

  it('no OOM, no report: a command within its limit', async () => {
    const r = await sh('x=$(head -c 1000000 /dev/zero | tr "\\0" a); echo ${#x}', { limits: { memoryBytes: 64 << 20 } });
    expect(r).toMatchObject({ exitCode: 0, oomKilled: false, stdout: '1000000\n' });
  });

  it('a fork bomb is bounded by the pids limit and cleaned up with PID 1', async () => {
    // ash exits (status 2, "can't fork") at the first fork the pids limit refuses.
    const r = await sh('i=0; while [ $i -lt 60 ]; do sleep 1000 & i=$((i+1)); echo $i; done', { limits: { pids: 12 } });
    const spawned = Number(r.stdout.trim().split('\n').pop());
    expect(spawned).toBeGreaterThan(5);
    expect(spawned).toBeLessThan(12); // sh itself is one of the 12
    expect(r.stderr).toMatch(/can't fork/);
    expect(r.exitCode).toBe(2);
    expect(processesWith('sleep 1000')).toEqual([]);
    expect(cgroupsOf(process.pid)).toEqual([]);
  });

  it('applies the CPU quota while the command runs', async () => {
    const dir = scratchDir();
    let quota = '';
    const r = await sh('echo go; while [ ! -e /sig/done ]; do sleep 0.05; done', {
      limits: { cpus: 0.5 },
      mounts: [{ type: 'bind', source: dir, target: '/sig' }],
      onStdout: () => {
        try {
          const cg = cgroupsOf(process.pid).find((c) => c.startsWith('cpu/'));
          quota = cg ? readFileSync(`${CG}/${cg}/cpu.cfs_quota_us`, 'utf8').trim() : 'none';
        } finally { writeFileSync(join(dir, 'done'), ''); }
      },
    });
    expect(r.exitCode).toBe(0);
    expect(quota).toBe('50000');
  });
});

describe.skipIf(skipReason !== undefined)('sandbox: nothing left behind', () => {
  it('abort kills everything and leaves no process, mount, cgroup or scratch dir', async () => {
    const token = '987654';
    const ac = new AbortController();
    const up = freshUpper();
    const p = runSandbox({
      root: { lowerdirs: [await busyboxRootfs()], upperdir: up.upperdir, workdir: up.workdir },
      argv: ['/bin/sh', '-c', `sleep ${token}1 & echo ready; exec sleep ${token}`],
      env: ['PATH=/bin'], limits: hasCgroupV1 ? { pids: 50 } : {},
      onStdout: (b) => { if (b.toString().includes('ready')) ac.abort(); },
      signal: ac.signal,
    });
    await expect(p).rejects.toMatchObject({ code: 'TSB4101' });
    expect(processesWith(token)).toEqual([]);
    expect(cgroupsOf(process.pid)).toEqual([]);
    expect(scratchDirsOf(process.pid)).toEqual([]);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(up.base);
    expect(listTree(up.upperdir)).toEqual([]); // mount points taken out even on abort
  });

  it('an already-aborted signal runs nothing', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(sh('echo no', { signal: ac.signal })).rejects.toMatchObject({ code: 'TSB4101' });
  });

  it('tsbuild SIGKILLed mid-RUN: the sandbox dies with it; cleanupStale() removes its cgroups and dirs', async () => {
    // Run the sandbox in a separate Node process (the sandbox modules, transpiled), then SIGKILL it.
    const out = await transpiledSandbox('tsbuild-sandbox-test');
    const token = '876543';
    writeFileSync(join(out, 'runner.js'), `
      import { runSandbox } from './${relative(out, join(out, 'src/exec/sandbox/index.js'))}';
      await runSandbox({ root: { dir: ${JSON.stringify(await busyboxRootfs())}, readonly: true },
        argv: ['/bin/sh', '-c', 'sleep ${token}1 & echo ready; exec sleep ${token}'], env: ['PATH=/bin'],
        limits: ${hasCgroupV1 ? '{ pids: 50, memoryBytes: 64 << 20 }' : '{}'},
        onStdout: (b) => process.stdout.write(b) });
    `);
    const child = spawn(process.execPath, [join(out, 'runner.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((res, rej) => {
      child.stdout.on('data', (b: Buffer) => { if (b.toString().includes('ready')) res(); });
      child.on('exit', (c) => rej(new Error(`runner exited ${c}`)));
    });
    expect(processesWith(token).length).toBeGreaterThan(0);
    const pid = child.pid!;
    const exited = new Promise((res) => child.on('exit', res));
    child.kill('SIGKILL');
    await exited;
    expect(await until(() => processesWith(token).length === 0)).toBe(true);
    if (hasCgroupV1) expect(cgroupsOf(pid).length).toBeGreaterThan(0); // left behind by the dead tsbuild…
    expect(scratchDirsOf(pid).length).toBe(1);
    const cleaned = await cleanupStale(); // …and removed by the next run's cleanupStale
    expect(cgroupsOf(pid)).toEqual([]);
    expect(scratchDirsOf(pid)).toEqual([]);
    expect(cleaned.dirs.some((d) => d.startsWith(`${pid}-`))).toBe(true);
  });

  it('cleanupStale leaves a live owner\'s cgroups alone', async () => {
    if (!hasCgroupV1) return;
    const mine = `${CG}/pids/tsbuild/${process.pid}-999999-live`;
    const dead = `${CG}/pids/tsbuild/999999999-1-dead`;
    mkdirSync(mine, { recursive: true });
    mkdirSync(dead, { recursive: true });
    try {
      const r = await cleanupStale();
      expect(r.cgroups).toContain('999999999-1-dead');
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(mine)).toBe(true);
    } finally {
      (await import('node:fs')).rmdirSync(mine);
    }
  });
});
