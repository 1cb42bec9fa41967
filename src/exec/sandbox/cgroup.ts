/**
 * cgroup v1 per sandbox: /sys/fs/cgroup/<controller>/tsbuild/<id> for
 *   pids    always (limit when asked; its cgroup.procs is how we find and kill every process),
 *   devices always (Docker's device allow-list: CAP_MKNOD may create nodes, only the harmless
 *           ones can be opened),
 *   memory  when a memory limit is set (OOM kills show in memory.oom_control's oom_kill counter,
 *           not in the exit status of `unshare`),
 *   cpu     when a CPU limit is set (CFS quota).
 * The init joins them (writes 0 to cgroup.procs) just before execve.
 *
 * The id starts with the owning tsbuild's PID so `cleanupStaleCgroups()` can tell a crashed
 * run's leftovers (owner dead) from a concurrent build's (owner alive).
 *
 * Known gap: cgroup v2 (unified) hosts are not handled yet: limits are then refused (TSB4103)
 * and the sandbox runs without a cgroup (abort still works: killing PID 1 empties the PID ns).
 */
import { existsSync, readdirSync, readFileSync, rmdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { TsbError } from '../../errors.js';
import type { SandboxLimits } from './types.js';

const ROOT = '/sys/fs/cgroup';
const PARENT = 'tsbuild';

export function cgroupV1Available(): boolean {
  return existsSync(`${ROOT}/pids/cgroup.procs`) && existsSync(`${ROOT}/devices/devices.allow`);
}

/** Docker's default device rules (mknod anything, open only these). */
const DEVICE_RULES = [
  'c *:* m', 'b *:* m',
  'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm',
  'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm', 'c 136:* rwm', 'c 10:200 rwm',
];

export class SandboxCgroup {
  readonly dirs: Map<string, string> = new Map();
  readonly memoryLimit: number | undefined;

  private constructor(readonly id: string, memoryLimit: number | undefined) {
    this.memoryLimit = memoryLimit;
  }

  /** Create the cgroups and apply limits. On failure nothing is left behind. */
  static create(id: string, limits: SandboxLimits, insecure: boolean): SandboxCgroup {
    const cg = new SandboxCgroup(id, limits.memoryBytes);
    const controllers = ['pids', 'devices'];
    if (limits.memoryBytes !== undefined) controllers.push('memory');
    if (limits.cpus !== undefined) controllers.push('cpu');
    try {
      for (const ctl of controllers) {
        const parent = `${ROOT}/${ctl}/${PARENT}`;
        mkdirSync(parent, { recursive: true });
        const dir = `${parent}/${id}`;
        mkdirSync(dir);
        cg.dirs.set(ctl, dir);
      }
      if (!insecure) {
        const d = cg.dirs.get('devices')!;
        writeFileSync(`${d}/devices.deny`, 'a');
        for (const rule of DEVICE_RULES) writeFileSync(`${d}/devices.allow`, rule);
      }
      if (limits.pids !== undefined) writeFileSync(`${cg.dirs.get('pids')}/pids.max`, String(Math.max(1, Math.floor(limits.pids))));
      if (limits.memoryBytes !== undefined) {
        const d = cg.dirs.get('memory')!;
        const bytes = String(Math.floor(limits.memoryBytes));
        writeFileSync(`${d}/memory.limit_in_bytes`, bytes);
        // No swap beyond the limit when swap accounting exists (so an OOM is an OOM).
        if (existsSync(`${d}/memory.memsw.limit_in_bytes`)) writeFileSync(`${d}/memory.memsw.limit_in_bytes`, bytes);
        if (existsSync(`${d}/memory.swappiness`)) { try { writeFileSync(`${d}/memory.swappiness`, '0'); } catch { /* root cgroup only */ } }
      }
      if (limits.cpus !== undefined) {
        const d = cg.dirs.get('cpu')!;
        writeFileSync(`${d}/cpu.cfs_period_us`, '100000');
        writeFileSync(`${d}/cpu.cfs_quota_us`, String(Math.max(1000, Math.round(limits.cpus * 100000))));
      }
    } catch (e) {
      cg.removeSync();
      throw new TsbError('TSB4103', `cannot set up the sandbox's cgroups: ${(e as Error).message}`, {
        cause: e, hint: 'tsbuild needs root and cgroup v1 (memory, pids, cpu, devices) for RUN limits.',
      });
    }
    return cg;
  }

  /** cgroup.procs files the init must join. */
  procsFiles(): string[] {
    return [...this.dirs.values()].map((d) => `${d}/cgroup.procs`);
  }

  pids(): number[] {
    const d = this.dirs.get('pids');
    if (!d) return [];
    try {
      return readFileSync(`${d}/cgroup.procs`, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch { return []; }
  }

  /** SIGKILL every process in the sandbox (killing its PID 1 empties the whole PID namespace). */
  killAll(): void {
    for (const pid of this.pids()) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
  }

  memoryStats(): { oomKilled: boolean; limitBytes: number; maxUsageBytes: number; failcnt: number } | undefined {
    const d = this.dirs.get('memory');
    if (!d || this.memoryLimit === undefined) return undefined;
    const read = (f: string): string => { try { return readFileSync(`${d}/${f}`, 'utf8'); } catch { return ''; } };
    const oomKill = /(?:^|\n)oom_kill (\d+)/.exec(read('memory.oom_control'));
    // With swap accounting the memsw limit may be the one that trips.
    const failcnt = Math.max(Number(read('memory.failcnt').trim() || 0), Number(read('memory.memsw.failcnt').trim() || 0));
    const max = Number(read('memory.max_usage_in_bytes').trim() || 0);
    return {
      oomKilled: oomKill ? Number(oomKill[1]) > 0 : false,
      limitBytes: this.memoryLimit,
      maxUsageBytes: max,
      failcnt,
    };
  }

  /** rmdir every cgroup, killing stragglers and retrying while the kernel finishes exits. */
  async remove(): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      if (this.removeSync()) return;
      this.killAll();
      await sleep(attempt < 10 ? 5 : 50);
    }
  }

  /** True when every dir is gone. */
  removeSync(): boolean {
    let ok = true;
    for (const [ctl, d] of this.dirs) {
      try { rmdirSync(d); this.dirs.delete(ctl); } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') this.dirs.delete(ctl);
        else ok = false;
      }
    }
    return ok;
  }
}

/** Whether the tsbuild that made `id` (`<pid>-…`) still runs (a zombie counts as dead). */
export function ownerAlive(id: string): boolean {
  const pid = Number(/^(\d+)-/.exec(id)?.[1]);
  if (!pid) return false;
  if (pid === process.pid) return true;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch { return false; }
}

/**
 * Remove cgroups left by a tsbuild that died (its PID is gone), killing whatever still runs in
 * them. Returns the ids removed. Safe to run while other tsbuilds run (their owners are alive).
 */
export async function cleanupStaleCgroups(): Promise<string[]> {
  const removed = new Set<string>();
  for (const ctl of ['pids', 'devices', 'memory', 'cpu']) {
    const parent = `${ROOT}/${ctl}/${PARENT}`;
    let ids: string[];
    try { ids = readdirSync(parent, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name); } catch { continue; }
    for (const id of ids) {
      if (ownerAlive(id)) continue;
      const dir = `${parent}/${id}`;
      for (let attempt = 0; attempt < 50; attempt++) {
        try { rmdirSync(dir); removed.add(id); break; } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') break;
          try {
            for (const pid of readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)) {
              try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
            }
          } catch { /* unreadable */ }
          await sleep(20);
        }
      }
    }
  }
  return [...removed];
}
