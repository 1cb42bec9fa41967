/**
 * runSandbox: run one command in the RUN sandbox (contract: ./types.ts).
 *
 * Why this shape. Node is multi-threaded, so it cannot unshare(CLONE_NEWUSER/NEWNS) itself
 * usefully. The parent spawns
 *     setpriv --pdeathsig KILL -- unshare --pid --fork --mount --uts --ipc [--net] --kill-child
 *             --propagation private -- node -e <init source>
 * so that (a) tsbuild dying (even SIGKILL) kills `unshare` (pdeathsig), (b) `unshare` dying kills
 * PID 1 of the sandbox (--kill-child), and (c) PID 1 dying empties the PID namespace, whose end
 * drops the mount namespace and every mount in it. The init does the mounts, pivot_root, user
 * switch, capabilities, seccomp and execve()s the command as PID 1. Two interchangeable inits
 * receive the same InitSpec: a small C program (./init-c.ts, compiled once with the host's cc;
 * ~10x less overhead per RUN) and, when no compiler is available, Node + koffi (./init.ts).
 * The spec travels on fd 3 (never in argv: it can hold secrets).
 *
 * After the command exits: cgroups are read (OOM) and removed, the mount points the sandbox had
 * to create are taken out of the writable layer (./mountpoints.ts), the scratch dir is removed.
 * `cleanupStale()` removes what a crashed tsbuild left (runSandbox calls it once per process).
 *
 * Errors (TsbError): TSB4101 interrupted (signal aborted), TSB4102 sandbox unavailable (not root,
 * no unshare/setpriv), TSB4103 cgroup setup, TSB4104 sandbox setup failed (mount, …),
 * TSB4105 USER not found, TSB4106 WORKDIR unusable, TSB4107 bad spec.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { ReadStream as TtyReadStream } from 'node:tty';
import { writeSync } from 'node:fs';
import { TsbError } from '../../errors.js';
import { cgroupV1Available, cleanupStaleCgroups, ownerAlive, SandboxCgroup } from './cgroup.js';
import { koffiPath, openPty, pipe } from './host.js';
import { cInitBinary } from './init-c.js';
import { sandboxInit, type CreatedEntry, type InitSpec } from './init.js';
import { removeCreatedMountpoints } from './mountpoints.js';
import { resolveUser, secureJoin } from './resolve.js';
import { seccompProgram } from './seccomp.js';
import type { SandboxFile, SandboxResult, SandboxSpec } from './types.js';

export type * from './types.js';
export { resolveUser, secureJoin } from './resolve.js';

/** Docker's default capability set (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP). */
export const DEFAULT_CAPS: readonly number[] = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31];

/**
 * The masked paths of BuildKit 0.25's RUN spec (containerd's oci defaults, which runc 1.3 applies;
 * files: /dev/null over them; dirs: an empty read-only tmpfs). Not Docker's `docker run` list: that
 * one adds /proc/interrupts, which a BuildKit RUN can read (diff-findings §7).
 */
export const MASKED_PATHS: readonly string[] = [
  '/proc/asound', '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS: readonly string[] = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export const DEFAULT_HOSTNAME = 'buildkitsandbox';

function findTool(name: string): string | undefined {
  for (const d of ['/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    try { accessSync(`${d}/${name}`, constants.X_OK); return `${d}/${name}`; } catch { /* next */ }
  }
  return undefined;
}

/** Why the sandbox cannot run here, or undefined. (Tests skip with this message.) */
export function sandboxUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'the RUN sandbox needs Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'the RUN sandbox needs root (rootless mode is not implemented)';
  if (!findTool('unshare') || !findTool('setpriv')) return 'the RUN sandbox needs util-linux unshare and setpriv';
  if (process.arch !== 'x64' && process.arch !== 'arm64') return `the RUN sandbox supports x86_64 and arm64, not ${process.arch}`;
  return undefined;
}

function scratchBase(): string {
  for (const base of ['/run/tsbuild/sandbox', `${tmpdir()}/tsbuild-sandbox`]) {
    try { mkdirSync(base, { recursive: true, mode: 0o700 }); accessSync(base, constants.W_OK); return base; } catch { /* next */ }
  }
  throw new TsbError('TSB4102', 'no writable directory for the sandbox scratch space', { hint: 'tsbuild needs /run or $TMPDIR writable.' });
}

let seq = 0;
/** The seccomp filter never changes within a process: assembled once. */
let seccompB64: string | undefined;
let staleDone: Promise<unknown> | undefined;

/**
 * Remove cgroups and scratch dirs left by tsbuild processes that died (their PID is gone).
 * Processes still running in such cgroups are killed first. Safe alongside live builds.
 */
export async function cleanupStale(): Promise<{ cgroups: string[]; dirs: string[] }> {
  const cgroups = await cleanupStaleCgroups();
  const dirs: string[] = [];
  for (const base of ['/run/tsbuild/sandbox', `${tmpdir()}/tsbuild-sandbox`]) {
    let names: string[];
    try { names = readdirSync(base); } catch { continue; }
    for (const n of names) {
      if (ownerAlive(n)) continue;
      // Only ever an empty mount point on the host (the tmpfs lived in the dead mount namespace).
      try { rmdirSync(`${base}/${n}`); dirs.push(n); } catch {
        try { rmSync(`${base}/${n}`, { recursive: true, force: true }); dirs.push(n); } catch { /* next time */ }
      }
    }
  }
  return { cgroups, dirs };
}

/** Which init runSandbox uses in this process: the compiled C one, or Node + koffi (fallback). */
export async function sandboxInitKind(): Promise<'c' | 'node'> {
  return (await cInitBinary()) ? 'c' : 'node';
}

let initSource: string | undefined;
function initCode(): string {
  initSource ??= `(${sandboxInit.toString()})(require, ${secureJoin.toString()}, ${resolveUser.toString()});`;
  return initSource;
}

function defaultFiles(spec: SandboxSpec, hostname: string): SandboxFile[] {
  const have = new Set((spec.files ?? []).map((f) => f.target.replace(/\/+$/, '')));
  const out: SandboxFile[] = [];
  if (!have.has('/etc/hosts')) {
    out.push({ target: '/etc/hosts', content: `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n` });
  }
  if (!have.has('/etc/resolv.conf')) {
    let conf = '';
    let mtimeSec: number | undefined;
    try { conf = readFileSync('/etc/resolv.conf', 'utf8'); mtimeSec = Math.floor(statSync('/etc/resolv.conf').mtimeMs / 1000); } catch { /* none */ }
    if (spec.network === 'none' || conf.trim() === '') conf = conf || 'nameserver 8.8.8.8\nnameserver 8.8.4.4\n';
    // BuildKit's resolv.conf is a copy made once per daemon, so it is older than what a RUN writes
    // (`find -newer` in a RUN skips it; debian-admin): carry the host file's mtime, not "now".
    out.push({ target: '/etc/resolv.conf', content: conf, ...(mtimeSec !== undefined ? { mtimeSec } : {}) });
  }
  // BuildKit's RUN has no /etc/hostname mount (the name is only set via UTS); `docker run` has one.
  if (spec.etcHostname === true && !have.has('/etc/hostname')) out.push({ target: '/etc/hostname', content: `${hostname}\n` });
  return out;
}

function validate(spec: SandboxSpec): void {
  const bad = (msg: string) => new TsbError('TSB4107', `invalid sandbox spec: ${msg}`);
  if (!Array.isArray(spec.argv) || spec.argv.length === 0) throw bad('argv is empty');
  if (spec.cwd !== undefined && !spec.cwd.startsWith('/')) throw bad(`cwd must be absolute, not "${spec.cwd}"`);
  for (const m of spec.mounts ?? []) if (!m.target.startsWith('/')) throw bad(`mount target must be absolute, not "${m.target}"`);
  for (const f of spec.files ?? []) if (!f.target.startsWith('/')) throw bad(`file target must be absolute, not "${f.target}"`);
  if ('lowerdirs' in spec.root && spec.root.lowerdirs.length > 499) throw bad(`${spec.root.lowerdirs.length} layers: overlayfs stacks at most 500 directories`);
  for (const a of [...spec.argv, ...spec.env]) if (a.includes('\0')) throw bad('argv/env contain a NUL byte');
}

const SIGNALS: Record<string, number> = {
  SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGILL: 4, SIGTRAP: 5, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGKILL: 9, SIGUSR1: 10,
  SIGSEGV: 11, SIGUSR2: 12, SIGPIPE: 13, SIGALRM: 14, SIGTERM: 15, SIGSTKFLT: 16, SIGCHLD: 17, SIGCONT: 18, SIGSTOP: 19,
  SIGTSTP: 20, SIGTTIN: 21, SIGTTOU: 22, SIGURG: 23, SIGXCPU: 24, SIGXFSZ: 25, SIGVTALRM: 26, SIGPROF: 27, SIGWINCH: 28,
  SIGIO: 29, SIGPWR: 30, SIGSYS: 31,
};

/**
 * A spare C init, spawned ahead of need. Why: spawning from Node forks the whole Node process
 * (page tables in proportion to its RSS: ~10-20 ms for a build process on a 2-core VM, on the main
 * thread) and then execs the init (~4 ms more). The C init is generic until it reads its spec from
 * fd 3 (argv `--unshare PID`, an empty env, fresh pipes), so the next RUN's init is spawned while
 * the current RUN's command runs (the main thread is idle then), and the next runSandbox only
 * writes the spec to it. Only for the default stdio (no tty, stdin the empty pipe) and the C init
 * started directly. At most one spare; it is unref'd (never keeps Node alive), dies with Node
 * (PR_SET_PDEATHSIG in the init), and is dropped after SPARE_IDLE_MS unused (closing its control
 * socket makes it exit: "the parent closed the control socket before sending the spec").
 * Its mount namespace is a copy of the host's mount table as it was when it started: a spare is
 * used only while the host's table (/proc/self/mountinfo) is still the same as before it was
 * spawned, so a file system mounted since (a store, a context, a bind source) is never missed.
 */
function hostMounts(): string {
  try { return readFileSync('/proc/self/mountinfo', 'utf8'); } catch { return ''; }
}

interface Spare { child: ChildProcess; out: Socket; err: Socket; ctl: Socket; bin: string; timer: NodeJS.Timeout; mounts: string }
let spare: Spare | undefined;
const SPARE_IDLE_MS = 3000;

function dropSpare(s: Spare): void {
  if (spare === s) spare = undefined;
  clearTimeout(s.timer);
  s.ctl.destroy(); s.out.destroy(); s.err.destroy();
  try { s.child.kill('SIGKILL'); } catch { /* gone */ }
}

function makeSpare(bin: string): void {
  if (spare !== undefined || sandboxUnavailable() !== undefined) return;
  const fds: number[] = [];
  const mounts = hostMounts();
  let child: ChildProcess;
  let outR: number, errR: number;
  try {
    const [oR, oW] = pipe(); fds.push(oR, oW);
    const [eR, eW] = pipe(); fds.push(eR, eW);
    const [inR, inW] = pipe(); fds.push(inR); closeSync(inW);
    child = spawn(bin, ['--unshare', String(process.pid)], { stdio: [inR, oW, eW, 'pipe'], env: {}, detached: true });
    for (const fd of [oW, eW, inR]) closeSync(fd);
    outR = oR; errR = eR;
  } catch {
    for (const fd of fds) { try { closeSync(fd); } catch { /* closed */ } }
    return;
  }
  const s: Spare = {
    child, bin, mounts,
    out: new Socket({ fd: outR, readable: true, writable: false }),
    err: new Socket({ fd: errR, readable: true, writable: false }),
    ctl: child.stdio[3] as Socket,
    timer: setTimeout(() => dropSpare(s), SPARE_IDLE_MS),
  };
  s.timer.unref();
  child.unref(); s.out.unref(); s.err.unref(); s.ctl.unref();
  for (const x of [s.out, s.err, s.ctl]) x.on('error', () => undefined);
  child.on('error', () => { if (spare === s) dropSpare(s); });
  child.once('exit', () => { if (spare === s) dropSpare(s); });
  spare = s;
}

/** PID of the idle spare init, if any (for tests: spares are used, dropped, never leaked). */
export function spareInitPid(): number | undefined {
  return spare?.child.pid;
}

/** The spare init, if one is alive and is `bin`; it is the caller's from now on (ref'd again). */
function takeSpare(bin: string): Spare | undefined {
  const s = spare;
  if (!s) return undefined;
  spare = undefined;
  clearTimeout(s.timer);
  if (s.bin !== bin || s.child.exitCode !== null || s.child.signalCode !== null || s.child.pid === undefined || s.ctl.destroyed
    || hostMounts() !== s.mounts) {
    dropSpare(s);
    return undefined;
  }
  s.child.ref(); s.out.ref(); s.err.ref(); s.ctl.ref();
  return s;
}

export async function runSandbox(spec: SandboxSpec): Promise<SandboxResult> {
  const why = sandboxUnavailable();
  if (why) throw new TsbError('TSB4102', why, { hint: 'run tsbuild as root on Linux with util-linux installed.' });
  validate(spec);
  if (spec.signal?.aborted) throw interrupted(spec.signal);
  staleDone ??= cleanupStale().catch(() => undefined);
  await staleDone;

  const id = `${process.pid}-${++seq}-${randomBytes(4).toString('hex')}`;
  const scratch = `${scratchBase()}/${id}`;
  mkdirSync(scratch, { mode: 0o700 });
  const insecure = spec.security === 'insecure';
  const limits = spec.limits ?? {};
  let cg: SandboxCgroup | undefined;
  const fdsToClose: number[] = [];
  const readers: NodeJS.ReadableStream[] = [];
  try {
    if (cgroupV1Available()) cg = SandboxCgroup.create(id, limits, insecure);
    else if (limits.memoryBytes !== undefined || limits.cpus !== undefined || limits.pids !== undefined) {
      throw new TsbError('TSB4103', 'RUN limits need cgroup v1 (memory, pids, cpu); this host has none', { hint: 'drop the limits or run on a cgroup v1 host.' });
    }

    const hostname = spec.hostname ?? DEFAULT_HOSTNAME;
    const files = [...(spec.files ?? []), ...defaultFiles(spec, hostname)];
    const root = 'lowerdirs' in spec.root
      ? { kind: 'overlay' as const, lowerdirs: [...spec.root.lowerdirs], upperdir: spec.root.upperdir, workdir: spec.root.workdir }
      : { kind: 'dir' as const, dir: spec.root.dir, readonly: spec.root.readonly === true };
    const writable = root.kind === 'overlay' ? root.upperdir : root.readonly ? undefined : root.dir;
    const initSpec: InitSpec = {
      v: 1,
      koffiPath: koffiPath(),
      scratch,
      root,
      argv: [...spec.argv],
      env: [...spec.env],
      cwd: spec.cwd ?? '/',
      user: spec.user ?? '',
      hostname,
      loUp: spec.network === 'none',
      mounts: (spec.mounts ?? []).map((m) => (m.type === 'bind'
        ? { type: 'bind' as const, source: m.source, target: m.target, readonly: m.readonly === true }
        : m.type === 'tmpfs' ? { ...m } : { type: 'overlay-ro' as const, target: m.target, lowerdirs: [...m.lowerdirs], writable: m.writable === true })),
      files: files.map((f) => ({
        target: f.target,
        b64: Buffer.from(typeof f.content === 'string' ? Buffer.from(f.content) : f.content).toString('base64'),
        mode: f.mode ?? 0o644, uid: f.uid ?? 0, gid: f.gid ?? 0, readonly: f.readonly === true,
        ...(f.mtimeSec !== undefined ? { mtimeSec: f.mtimeSec } : {}),
      })),
      cgroupProcs: cg?.procsFiles() ?? [],
      insecure,
      // Without a device cgroup (no cgroup v1 here), a node made with CAP_MKNOD could be opened:
      // keep MKNOD only when the device allow-list is in force.
      caps: cg?.dirs.has('devices') ? [...DEFAULT_CAPS] : DEFAULT_CAPS.filter((c) => c !== 27),
      seccomp: insecure ? '' : (seccompB64 ??= seccompProgram().toString('base64')),
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
      tty: spec.tty !== undefined,
    };
    for (const m of initSpec.mounts) {
      if (m.type === 'bind') {
        try { statSync(m.source); } catch { throw new TsbError('TSB4107', `mount source ${m.source} does not exist`); }
      }
    }

    // The C init makes its namespaces itself (same effect as setpriv + unshare, two execs fewer).
    const cInit = await cInitBinary();
    // TSBUILD_SANDBOX_UNSHARE=util-linux puts setpriv + unshare in front of the C init too.
    const viaUtilLinux = !cInit || process.env.TSBUILD_SANDBOX_UNSHARE === 'util-linux';
    const spareable = !viaUtilLinux && !spec.tty && (spec.stdin === undefined || spec.stdin === 'ignore');
    const taken = spareable ? takeSpare(cInit!) : undefined;

    // stdio: real pipes (or a pty).
    let stdio: (number | 'ignore' | 'pipe')[] = [];
    let ptyMaster: number | undefined;
    if (taken) {
      readers.push(taken.out, taken.err);
    } else if (spec.tty) {
      const pty = openPty(spec.tty.rows, spec.tty.cols);
      ptyMaster = pty.master;
      fdsToClose.push(pty.master);
      const slave = openSync(pty.slavePath, constants.O_RDWR | constants.O_NOCTTY);
      fdsToClose.push(slave);
      stdio = [slave, slave, slave, 'pipe'];
    } else {
      const [outR, outW] = pipe();
      const [errR, errW] = pipe();
      fdsToClose.push(outW, errW);
      readers.push(new Socket({ fd: outR, readable: true, writable: false }), new Socket({ fd: errR, readable: true, writable: false }));
      let stdin: number;
      if (spec.stdin === undefined || spec.stdin === 'ignore') {
        // BuildKit's RUN reads an empty pipe whose write end is closed (not /dev/null): same here.
        const [inR, inW] = pipe();
        closeSync(inW);
        fdsToClose.push(inR);
        stdin = inR;
      } else stdin = spec.stdin;
      stdio = [stdin, outW, errW, 'pipe'];
    }

    const [cmd, args] = !viaUtilLinux
      ? [cInit, ['--unshare', String(process.pid)]]
      : [findTool('setpriv')!, ['--pdeathsig', 'KILL', '--', findTool('unshare')!, '--pid', '--fork', '--mount', '--uts', '--ipc',
        ...(spec.network === 'none' ? ['--net'] : []), '--kill-child', '--propagation', 'private', '--',
        ...(cInit ? [cInit] : [process.execPath, '--no-warnings', '--max-old-space-size=64', '-e', initCode()])]];
    const started = process.hrtime.bigint();
    const child = taken ? taken.child : spawn(cmd, args, { stdio, env: {}, detached: true });
    // Our copies of the child's ends go now (the master stays: the tty stream below owns it).
    for (const fd of fdsToClose.splice(0)) { if (fd !== ptyMaster) closeSync(fd); }

    let stderrTail = '';
    const outDone: Promise<void>[] = [];
    if (ptyMaster !== undefined) {
      const rs = new TtyReadStream(ptyMaster);
      readers.push(rs);
      rs.on('data', (b: Buffer) => spec.onStdout?.(b));
      outDone.push(new Promise((res) => { rs.on('error', () => res()); rs.on('close', () => res()); rs.on('end', () => res()); }));
      const input = spec.tty!.input;
      const master = ptyMaster;
      input?.on('data', (b: Buffer | string) => {
        const buf = typeof b === 'string' ? Buffer.from(b) : b;
        let off = 0;
        while (off < buf.length) {
          try { off += writeSync(master, buf, off); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') return; }
        }
      });
    } else {
      const [out, err] = readers as Socket[];
      out!.on('data', (b: Buffer) => spec.onStdout?.(b));
      err!.on('data', (b: Buffer) => { stderrTail = (stderrTail + b.toString('utf8')).slice(-4000); spec.onStderr?.(b); });
      for (const r of [out!, err!]) outDone.push(new Promise((res) => { r.on('close', () => res()); r.on('error', () => res()); }));
    }

    // Control channel.
    const ctl = child.stdio[3] as Socket;
    let created: CreatedEntry[] = [];
    let gotCreated = false;
    let initError: { kind: string; message: string } | undefined;
    let buf = '';
    ctl.on('data', (b: Buffer) => {
      buf += b.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const msg = JSON.parse(line) as { t: string; entries?: CreatedEntry[]; kind?: string; message?: string };
          if (msg.t === 'created') { created = msg.entries ?? []; gotCreated = true; }
          else if (msg.t === 'error') initError = { kind: msg.kind ?? 'internal', message: msg.message ?? '' };
        } catch { /* ignore garbage */ }
      }
    });
    ctl.on('error', () => { /* child gone */ });
    ctl.write(JSON.stringify(initSpec) + '\n');
    // The next RUN's init, spawned while this one runs (see makeSpare).
    if (spareable) setImmediate(() => makeSpare(cInit!));

    let aborted = false;
    const onAbort = () => {
      aborted = true;
      cg?.killAll();
      try { child.kill('SIGKILL'); } catch { /* gone */ }
    };
    spec.signal?.addEventListener('abort', onAbort, { once: true });

    const exit = await new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((res, rej) => {
      child.once('error', rej);
      child.once('exit', (code, sig) => res({ code, sig }));
    });
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    spec.signal?.removeEventListener('abort', onAbort);
    // The PID namespace is gone once unshare has exited, so the pipes reach EOF promptly; the
    // timeout only guards against a surprise.
    cg?.killAll();
    await Promise.race([Promise.all(outDone), new Promise((r) => setTimeout(r, 2000).unref())]);
    for (const r of readers) (r as Socket).destroy?.();
    ctl.destroy();

    const mem = cg?.memoryStats();
    if (writable !== undefined && created.length > 0) removeCreatedMountpoints(writable, created);
    if (aborted) throw interrupted(spec.signal!);

    if (initError) {
      if (initError.kind === 'exec-notfound' || initError.kind === 'exec-noperm') {
        const exitCode = initError.kind === 'exec-notfound' ? 127 : 126;
        return { exitCode, oomKilled: false, startError: initError.message, durationMs, ...(mem ? { memory: pickMem(mem) } : {}) };
      }
      if (initError.kind === 'user') {
        throw new TsbError('TSB4105', initError.message, { hint: 'add the user to the image (e.g. RUN adduser) or use a numeric uid:gid.' });
      }
      if (initError.kind === 'cwd') throw new TsbError('TSB4106', initError.message, { hint: 'check WORKDIR and its permissions for USER.' });
      throw new TsbError('TSB4104', `sandbox setup failed: ${initError.message}`);
    }
    let exitCode: number;
    let signal: NodeJS.Signals | undefined;
    if (exit.sig) { signal = exit.sig; exitCode = 128 + (SIGNALS[exit.sig] ?? 0); } else exitCode = exit.code ?? 255;
    const oomKilled = mem?.oomKilled ?? false;
    if (!gotCreated) {
      // unshare/setpriv/node failed before the init finished setup (it always reports first).
      throw new TsbError('TSB4104', `sandbox failed to start (exit ${exit.sig ?? exit.code})`, {
        details: stderrTail.trim().split('\n').slice(-10),
      });
    }
    return { exitCode, ...(signal ? { signal } : {}), oomKilled, ...(mem ? { memory: pickMem(mem) } : {}), durationMs };
  } finally {
    for (const fd of fdsToClose) { try { closeSync(fd); } catch { /* closed */ } }
    for (const r of readers) (r as Socket).destroy?.();
    await cg?.remove();
    try { rmdirSync(scratch); } catch { if (existsSync(scratch)) rmSync(scratch, { recursive: true, force: true }); }
  }
}

function pickMem(m: { limitBytes: number; maxUsageBytes: number; failcnt: number }) {
  return { limitBytes: m.limitBytes, maxUsageBytes: m.maxUsageBytes, failcnt: m.failcnt };
}

function interrupted(signal: AbortSignal): TsbError {
  const r: unknown = signal.reason;
  if (r instanceof TsbError) return r;
  return new TsbError('TSB4101', `RUN interrupted${r instanceof Error ? `: ${r.message}` : ''}`, { cause: r, exitCode: 130 });
}
