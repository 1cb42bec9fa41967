/**
 * The sandbox init: runs as PID 1 of the new PID namespace, inside the new mount (UTS, IPC, net)
 * namespaces that util-linux `unshare` made for it, and ends by execve()ing the command.
 *
 * It is shipped to `node -e` as source text (see index.ts: `(${sandboxInit})(require, …)`), so
 * this function must be self-contained: everything it uses comes through its parameters or
 * `req` (node built-ins and koffi by absolute path). Type imports are fine (erased).
 *
 * Protocol on fd 3 (a socket): the parent writes one JSON InitSpec line; the init answers with
 * JSON lines: {t:'created', entries} (mount points it had to create in the writable root, with
 * their stat after setup, so the parent can take them out of the upper dir afterwards), then
 * either nothing (the execve succeeded: fd 3 is close-on-exec) or {t:'error', kind, message}
 * followed by exit 125 (setup), 126 (not executable) or 127 (not found).
 *
 * Known gaps: x86_64 and arm64 only (pivot_root's syscall number); the seccomp program comes
 * from the parent (x86_64 only, see seccomp.ts).
 */
import type * as NodeFs from 'node:fs';
import type { JoinedPath, ResolvedUser } from './resolve.js';

export interface InitMountBind { type: 'bind'; source: string; target: string; readonly: boolean }
export interface InitMountTmpfs { type: 'tmpfs'; target: string; size?: number; mode?: number }
export interface InitMountOverlay { type: 'overlay-ro'; lowerdirs: string[]; target: string; writable?: boolean }
export type InitMount = InitMountBind | InitMountTmpfs | InitMountOverlay;

export interface InitSpec {
  v: 1;
  koffiPath: string;
  /** Empty host dir; the init mounts a private tmpfs on it (scratch space: never seen by the host). */
  scratch: string;
  root:
    | { kind: 'overlay'; lowerdirs: string[]; upperdir: string; workdir: string }
    | { kind: 'dir'; dir: string; readonly: boolean };
  argv: string[];
  env: string[];
  cwd: string;
  user: string;
  hostname: string;
  loUp: boolean;
  mounts: InitMount[];
  files: { target: string; b64: string; mode: number; uid: number; gid: number; readonly: boolean; mtimeSec?: number }[];
  /** Host paths of cgroup.procs files to join right before execve. */
  cgroupProcs: string[];
  insecure: boolean;
  /** Capability numbers to keep in the bounding set (and permitted/effective for root). */
  caps: number[];
  /** sock_filter array (base64), installed unless insecure; empty = none for this arch. */
  seccomp: string;
  maskedPaths: string[];
  readonlyPaths: string[];
  tty: boolean;
}

export interface CreatedEntry {
  /** Relative to the writable layer (upper dir or root dir). */
  rel: string;
  ino: string;
  mode: number;
  uid: number;
  gid: number;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

type Req = (id: string) => unknown;
type SecureJoin = (fs: typeof NodeFs, root: string, unsafe: string) => JoinedPath;
type ResolveUser = (spec: string, passwd: string | undefined, group: string | undefined) => ResolvedUser;

/* eslint-disable @typescript-eslint/no-explicit-any */
export function sandboxInit(req: Req, secureJoin: SecureJoin, resolveUser: ResolveUser): void {
  const fs = req('node:fs') as typeof NodeFs;

  const send = (msg: unknown): void => {
    const buf = Buffer.from(JSON.stringify(msg) + '\n');
    let off = 0;
    while (off < buf.length) {
      try { off += fs.writeSync(3, buf, off, buf.length - off); } catch (e: any) {
        if (e && e.code === 'EAGAIN') continue;
        throw e;
      }
    }
  };
  class InitError extends Error {
    constructor(readonly kind: string, message: string) { super(message); }
  }

  const readSpec = (): InitSpec => {
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(65536);
    for (;;) {
      let n: number;
      try { n = fs.readSync(3, buf, 0, buf.length, null); } catch (e: any) {
        if (e && e.code === 'EAGAIN') { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1); continue; }
        throw e;
      }
      if (n === 0) throw new InitError('internal', 'the parent closed the control socket before sending the spec');
      const nl = buf.indexOf(10);
      chunks.push(Buffer.from(buf.subarray(0, n)));
      if (nl >= 0 && nl < n) break;
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8').trimEnd()) as InitSpec;
  };

  let spec: InitSpec;
  try {
    spec = readSpec();
  } catch (e: any) {
    try { send({ t: 'error', kind: 'internal', message: String(e && e.message || e) }); } catch { /* parent gone */ }
    process.exit(125);
  }

  try {
    const koffi = req(spec.koffiPath) as any;
    const libc = koffi.load('libc.so.6');
    const c = {
      mount: libc.func('int mount(const char *src, const char *tgt, const char *fstype, unsigned long flags, const char *data)'),
      umount2: libc.func('int umount2(const char *tgt, int flags)'),
      mknod: libc.func('int mknod(const char *path, uint32_t mode, uint64_t dev)'),
      sethostname: libc.func('int sethostname(const char *name, size_t len)'),
      syscall: libc.func('long syscall(long nr, ...)'),
      prctl: libc.func('int prctl(int option, unsigned long a2, unsigned long a3, unsigned long a4, unsigned long a5)'),
      setgroups: libc.func('int setgroups(size_t n, const uint32_t *list)'),
      setresgid: libc.func('int setresgid(uint32_t r, uint32_t e, uint32_t s)'),
      setresuid: libc.func('int setresuid(uint32_t r, uint32_t e, uint32_t s)'),
      capset: libc.func('int capset(void *hdr, void *data)'),
      closeRange: libc.func('int close_range(unsigned int first, unsigned int last, int flags)'),
      fcntl: libc.func('int fcntl(int fd, int cmd, ...)'),
      ioctl: libc.func('int ioctl(int fd, unsigned long req, ...)'),
      socket: libc.func('int socket(int domain, int type, int proto)'),
      close: libc.func('int close(int fd)'),
      signal: libc.func('void *signal(int sig, void *handler)'),
      sigmask: libc.func('int pthread_sigmask(int how, void *set, void *old)'),
      setsid: libc.func('int setsid(void)'),
      execve: libc.func('int execve(const char *path, const char **argv, const char **envp)'),
      strerror: libc.func('const char *strerror(int errnum)'),
    };
    const sockFprog = koffi.struct('tsb_sock_fprog', { len: 'uint16_t', filter: 'void *' });
    const prctlFilter = libc.func('int prctl(int option, unsigned long a2, const tsb_sock_fprog *prog, unsigned long a4, unsigned long a5)');

    const errno = (): number => koffi.errno() as number;
    const check = (ret: number | bigint, what: string, kind = 'setup'): void => {
      if (Number(ret) < 0) {
        const en = errno();
        throw new InitError(kind, `${what}: ${String(c.strerror(en))}`);
      }
    };

    const MS_RDONLY = 1, MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_REMOUNT = 32, MS_BIND = 4096,
      MS_REC = 16384, MS_STRICTATIME = 1 << 24;
    const MNT_DETACH = 2;
    const mount = (src: string | null, tgt: string, type: string | null, flags: number, data: string | null, what?: string): void => {
      check(c.mount(src, tgt, type, flags, data), what ?? `mount ${type ?? 'bind'} ${src ?? ''} on ${tgt}`);
    };
    const remountRo = (tgt: string, extra = 0): void => {
      mount(null, tgt, null, MS_REMOUNT | MS_BIND | MS_RDONLY | extra, null, `remount ${tgt} read-only`);
    };

    // 1. A private tmpfs for our own scratch files (lowerdir links, provided files).
    const S = spec.scratch;
    mount('tsbuild', S, 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=0700,size=65536k', 'mount scratch tmpfs');
    const R = `${S}/root`;
    fs.mkdirSync(R);

    /** Short relative names for a stack of lowers (the option string must fit in a page). */
    let linkDirs = 0;
    const linkStack = (dirsTopFirst: string[], extra: Record<string, string>): string => {
      const d = `${S}/l${linkDirs++}`;
      fs.mkdirSync(d);
      dirsTopFirst.forEach((p, i) => fs.symlinkSync(p, `${d}/${i}`));
      for (const [k, v] of Object.entries(extra)) fs.symlinkSync(v, `${d}/${k}`);
      process.chdir(d);
      return dirsTopFirst.map((_, i) => String(i)).join(':');
    };

    // 2. The root.
    let writable: string | undefined; // host path of the layer our mount points would land in
    if (spec.root.kind === 'overlay') {
      const lowers = [...spec.root.lowerdirs].reverse();
      if (lowers.length === 0) { fs.mkdirSync(`${S}/empty`); lowers.push(`${S}/empty`); }
      if (lowers.length > 500) throw new InitError('setup', `too many layers (${lowers.length}): overlayfs stacks at most 500`);
      const list = linkStack(lowers, { u: spec.root.upperdir, w: spec.root.workdir });
      // volatile: no syncfs of the host file system when the overlay goes away (see the C init);
      // refused by kernels before 5.10, then without it.
      const opts = `lowerdir=${list},upperdir=u,workdir=w,redirect_dir=off,metacopy=off,index=off`;
      try { mount('overlay', R, 'overlay', 0, `${opts},volatile`, 'mount overlay root'); } catch {
        mount('overlay', R, 'overlay', 0, opts, 'mount overlay root');
      }
      process.chdir('/');
      writable = spec.root.upperdir;
    } else if (!spec.root.readonly) {
      mount(spec.root.dir, R, null, MS_BIND, null, `bind ${spec.root.dir} as the root`);
      writable = spec.root.dir;
    } else {
      fs.mkdirSync(`${S}/ru`); fs.mkdirSync(`${S}/rw`);
      const list = linkStack([spec.root.dir], { u: `${S}/ru`, w: `${S}/rw` });
      mount('overlay', R, 'overlay', 0, `lowerdir=${list},upperdir=u,workdir=w,redirect_dir=off,metacopy=off,index=off`, 'mount read-only root');
      process.chdir('/');
    }

    // Mount points: created when missing (in the writable layer), remembered so the parent can
    // remove them after the run when the command left them untouched.
    const watch = new Set<string>();
    const ensure = (target: string, kind: 'dir' | 'file'): string => {
      const j = secureJoin(fs, R, target);
      const full = j.rel === '' ? R : `${R}/${j.rel}`;
      if (writable !== undefined) {
        const parts = j.rel === '' ? [] : j.rel.split('/');
        for (let i = 1; i <= parts.length; i++) {
          const rel = parts.slice(0, i).join('/');
          if (watch.has(rel)) continue;
          try { fs.lstatSync(`${writable}/${rel}`); } catch { watch.add(rel); }
        }
      }
      if (j.missingFrom >= 0) {
        const parts = j.rel.split('/');
        const dirEnd = kind === 'dir' ? parts.length : parts.length - 1;
        for (let i = j.missingFrom; i < dirEnd; i++) {
          const p = `${R}/${parts.slice(0, i + 1).join('/')}`;
          try { fs.mkdirSync(p, { mode: 0o755 }); } catch (e: any) { if (!e || e.code !== 'EEXIST') throw e; }
        }
        if (kind === 'file') fs.closeSync(fs.openSync(full, 'wx', 0o644));
      } else {
        const st = fs.statSync(full);
        if (kind === 'dir' && !st.isDirectory()) throw new InitError('setup', `cannot mount on ${target}: not a directory in the image`);
        if (kind === 'file' && st.isDirectory()) throw new InitError('setup', `cannot mount a file on ${target}: it is a directory in the image`);
      }
      return full;
    };

    // 3. /proc, /dev, /sys.
    mount('proc', ensure('/proc', 'dir'), 'proc', MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
    const dev = ensure('/dev', 'dir');
    mount('tmpfs', dev, 'tmpfs', MS_NOSUID | MS_STRICTATIME, 'mode=755,size=65536k');
    const S_IFCHR = 0o020000;
    for (const [name, maj, min] of [['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0]] as const) {
      const p = `${dev}/${name}`;
      check(c.mknod(p, S_IFCHR | 0o666, BigInt((maj << 8) | min)), `mknod ${p}`);
      fs.chmodSync(p, 0o666);
    }
    fs.mkdirSync(`${dev}/pts`); fs.mkdirSync(`${dev}/shm`); fs.mkdirSync(`${dev}/mqueue`);
    mount('devpts', `${dev}/pts`, 'devpts', MS_NOSUID | MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620,gid=5');
    mount('shm', `${dev}/shm`, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=1777,size=65536k');
    mount('mqueue', `${dev}/mqueue`, 'mqueue', MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
    fs.symlinkSync('pts/ptmx', `${dev}/ptmx`);
    fs.symlinkSync('/proc/self/fd', `${dev}/fd`);
    fs.symlinkSync('/proc/self/fd/0', `${dev}/stdin`);
    fs.symlinkSync('/proc/self/fd/1', `${dev}/stdout`);
    fs.symlinkSync('/proc/self/fd/2', `${dev}/stderr`);
    mount('sysfs', ensure('/sys', 'dir'), 'sysfs', MS_NOSUID | MS_NODEV | MS_NOEXEC | (spec.insecure ? 0 : MS_RDONLY), null);
    // /sys/fs/cgroup as the C init makes it (see there): a read-only tmpfs of read-only binds of
    // the sandbox's own cgroup per v1 hierarchy (else the init's own cgroup in it).
    {
      const cgt = `${ensure('/sys', 'dir')}/fs/cgroup`;
      let names: string[] = [];
      try { names = fs.existsSync(cgt) ? fs.readdirSync('/sys/fs/cgroup') : []; } catch { names = []; }
      if (names.length > 0) {
        mount('tmpfs', cgt, 'tmpfs', MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=755', 'mount /sys/fs/cgroup');
        const self = fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n');
        for (const n of names) {
          const hp = `/sys/fs/cgroup/${n}`;
          try { if (!fs.lstatSync(hp).isDirectory() || fs.statfsSync(hp).type !== 0x27e0eb) continue; } catch { continue; }
          let own = spec.cgroupProcs.find((p) => p.startsWith(`${hp}/`))?.replace(/\/cgroup\.procs$/, '');
          if (own === undefined) {
            for (const line of self) {
              const m = /^\d+:([^:]*):(.*)$/.exec(line);
              if (m && m[1]!.split(',').some((c) => c === n || c === `name=${n}`)) { own = `${hp}${m[2]}`; break; }
            }
          }
          const tp = `${cgt}/${n}`;
          fs.mkdirSync(tp, { mode: 0o555 });
          mount(own ?? hp, tp, null, MS_BIND, null, `bind cgroup ${n}`);
          remountRo(tp, MS_NOSUID | MS_NODEV | MS_NOEXEC);
        }
        mount(null, cgt, null, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 'mode=755', 'remount /sys/fs/cgroup read-only');
      }
    }

    // 4. Provided files (hosts, resolv.conf, hostname, secrets) from the private tmpfs.
    fs.mkdirSync(`${S}/f`, { mode: 0o755 });
    spec.files.forEach((f, i) => {
      const src = `${S}/f/${i}`;
      fs.writeFileSync(src, Buffer.from(f.b64, 'base64'), { mode: f.mode });
      fs.chmodSync(src, f.mode);
      fs.chownSync(src, f.uid, f.gid);
      if (f.mtimeSec !== undefined) fs.utimesSync(src, f.mtimeSec, f.mtimeSec);
      const tgt = ensure(f.target, 'file');
      mount(src, tgt, null, MS_BIND, null, `bind ${f.target}`);
      if (f.readonly) remountRo(tgt);
    });

    // 5. The caller's mounts, in order.
    for (const m of spec.mounts) {
      if (m.type === 'bind') {
        const isDir = fs.statSync(m.source).isDirectory();
        const tgt = ensure(m.target, isDir ? 'dir' : 'file');
        mount(m.source, tgt, null, MS_BIND | MS_REC, null, `bind ${m.source} on ${m.target}`);
        if (m.readonly) remountRo(tgt);
      } else if (m.type === 'tmpfs') {
        const opts = [`mode=${(m.mode ?? 0o1777).toString(8)}`];
        if (m.size !== undefined) opts.push(`size=${m.size}`);
        mount('tmpfs', ensure(m.target, 'dir'), 'tmpfs', MS_NOSUID | MS_NODEV, opts.join(','));
      } else {
        const tgt = ensure(m.target, 'dir');
        const lowers = [...m.lowerdirs].reverse();
        if (lowers.length === 0) throw new InitError('setup', `overlay mount on ${m.target} has no layers`);
        if (m.writable) {
          // Writes are accepted and thrown away: the upper is a tmpfs of this mount namespace.
          const t = `${S}/t${linkDirs}`;
          fs.mkdirSync(t);
          mount('tsbuild', t, 'tmpfs', MS_NOSUID | MS_NODEV, 'mode=0700');
          fs.mkdirSync(`${t}/u`); fs.mkdirSync(`${t}/w`);
          const list = linkStack(lowers, { u: `${t}/u`, w: `${t}/w` });
          mount('overlay', tgt, 'overlay', 0, `lowerdir=${list},upperdir=u,workdir=w,redirect_dir=off,metacopy=off,index=off`, `mount overlay on ${m.target}`);
          process.chdir('/');
        } else if (lowers.length === 1) {
          mount(lowers[0]!, tgt, null, MS_BIND | MS_REC, null, `bind ${lowers[0]} on ${m.target}`);
          remountRo(tgt);
        } else {
          const list = linkStack(lowers, {});
          mount('overlay', tgt, 'overlay', MS_RDONLY, `lowerdir=${list},redirect_dir=off,metacopy=off`, `mount overlay on ${m.target}`);
          process.chdir('/');
        }
      }
    }

    // 6. runc's masked and read-only paths.
    if (!spec.insecure) {
      for (const p of spec.maskedPaths) {
        const full = `${R}${p}`;
        let st: NodeFs.Stats;
        try { st = fs.statSync(full); } catch { continue; }
        if (st.isDirectory()) mount('tmpfs', full, 'tmpfs', MS_RDONLY, 'size=0', `mask ${p}`);
        else mount(`${dev}/null`, full, null, MS_BIND, null, `mask ${p}`);
      }
      for (const p of spec.readonlyPaths) {
        const full = `${R}${p}`;
        try { fs.statSync(full); } catch { continue; }
        mount(full, full, null, MS_BIND | MS_REC, null, `bind ${p}`);
        remountRo(full, MS_NOSUID | MS_NODEV | MS_NOEXEC);
      }
    }
    if (spec.root.kind === 'dir' && spec.root.readonly) remountRo(R);

    // 7. Tell the parent which mount points now sit in the writable layer.
    const created: CreatedEntry[] = [];
    if (writable !== undefined) {
      for (const rel of watch) {
        let st: NodeFs.BigIntStats;
        try { st = fs.lstatSync(`${writable}/${rel}`, { bigint: true }); } catch { continue; }
        created.push({
          rel, ino: String(st.ino), mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid),
          size: String(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs),
        });
      }
    }
    send({ t: 'created', entries: created });

    // 8. Host-side handles we still need, opened before the host disappears.
    const cgroupFds = spec.cgroupProcs.map((p) => fs.openSync(p, 'w'));
    let capLast = 40;
    try { capLast = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim()) || 40; } catch { /* default */ }

    // 9. Hostname and loopback.
    check(c.sethostname(spec.hostname, Buffer.byteLength(spec.hostname)), 'sethostname');
    if (spec.loUp) {
      const s = c.socket(2, 2 | 0o2000000, 0);
      check(s, 'socket');
      const ifr = Buffer.alloc(40);
      ifr.write('lo', 0);
      check(c.ioctl(s, 0x8913, 'void *', ifr), 'SIOCGIFFLAGS lo');
      ifr.writeUInt16LE(ifr.readUInt16LE(16) | 1, 16);
      check(c.ioctl(s, 0x8914, 'void *', ifr), 'SIOCSIFFLAGS lo up');
      c.close(s);
    }

    // 10. pivot_root into the new root and detach the old one (chroot would be escapable).
    const NR_PIVOT = process.arch === 'x64' ? 155 : process.arch === 'arm64' ? 41 : -1;
    if (NR_PIVOT < 0) throw new InitError('setup', `unsupported architecture ${process.arch}`);
    process.chdir(R);
    check(c.syscall(NR_PIVOT, 'str', '.', 'str', '.'), 'pivot_root');
    check(c.umount2('.', MNT_DETACH), 'detach the old root');
    process.chdir('/');

    // 11. USER, HOME, WORKDIR.
    const readSmall = (p: string): string | undefined => {
      try {
        const st = fs.statSync(p);
        if (!st.isFile() || st.size > 16 << 20) return undefined;
        return fs.readFileSync(p, 'utf8');
      } catch { return undefined; }
    };
    let who: ResolvedUser;
    try {
      who = resolveUser(spec.user, readSmall('/etc/passwd'), readSmall('/etc/group'));
    } catch (e: any) {
      throw new InitError('user', String(e.message));
    }
    const env = [...spec.env];
    if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${who.home}`);
    try { fs.mkdirSync(spec.cwd, { recursive: true, mode: 0o755 }); } catch (e: any) {
      throw new InitError('cwd', `mkdir ${spec.cwd}: ${String(e.code ?? e.message)}`);
    }

    // 12. Join the cgroups (just before execve: the init's own memory stays charged outside).
    for (const fd of cgroupFds) { fs.writeSync(fd, '0'); fs.closeSync(fd); }

    // 13. Capabilities (bounding, ambient), seccomp, then the user switch.
    const PR_SET_PDEATHSIG = 1, PR_CAPBSET_DROP = 24, PR_SET_SECCOMP = 22, PR_CAP_AMBIENT = 47;
    const keep = new Set(spec.caps);
    if (!spec.insecure) {
      for (let cap = 0; cap <= capLast; cap++) {
        if (!keep.has(cap)) check(c.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), `drop capability ${cap}`);
      }
    }
    c.prctl(PR_CAP_AMBIENT, 4 /* CLEAR_ALL */, 0, 0, 0);
    if (!spec.insecure && spec.seccomp !== '') {
      const prog = Buffer.from(spec.seccomp, 'base64');
      check(prctlFilter(PR_SET_SECCOMP, 2, { len: prog.length / 8, filter: prog }, 0, 0), 'install seccomp filter');
    }
    // Like moby: the primary gid first, then the supplementary ones.
    const groups = [...new Set([who.gid, ...who.sgids])];
    check(c.setgroups(groups.length, groups), 'setgroups');
    check(c.setresgid(who.gid, who.gid, who.gid), 'setresgid');
    check(c.setresuid(who.uid, who.uid, who.uid), 'setresuid');
    c.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0); // set*id cleared it; unshare's death must still kill us
    if (!spec.insecure) { // insecure keeps tsbuild's own capabilities (root: all it has)
      const hdr = Buffer.alloc(8); hdr.writeUInt32LE(0x20080522, 0);
      const data = Buffer.alloc(24);
      let lo = 0, hi = 0;
      if (who.uid === 0) {
        for (const cap of spec.caps) { if (cap < 32) lo |= 1 << cap; else hi |= 1 << (cap - 32); }
      }
      data.writeUInt32LE(lo >>> 0, 0); data.writeUInt32LE(lo >>> 0, 4);
      data.writeUInt32LE(hi >>> 0, 12); data.writeUInt32LE(hi >>> 0, 16);
      check(c.capset(hdr, data), 'capset');
    }
    try { process.chdir(spec.cwd); } catch (e: any) {
      throw new InitError('cwd', `chdir to cwd ("${spec.cwd}") failed: ${e.code === 'EACCES' ? 'permission denied' : String(e.code ?? e.message)}`);
    }

    // 14. Find the program (PATH of the command's env, like runc).
    const arg0 = spec.argv[0] ?? '';
    let path = arg0;
    if (arg0 === '') throw new InitError('exec-notfound', 'exec: no command');
    const isExec = (p: string): 'ok' | 'missing' | 'denied' => {
      let st: NodeFs.Stats;
      try { st = fs.statSync(p); } catch { return 'missing'; }
      if (st.isDirectory()) return 'denied';
      try { fs.accessSync(p, fs.constants.X_OK); return 'ok'; } catch { return 'denied'; }
    };
    if (!arg0.includes('/')) {
      const pathVar = env.filter((e) => e.startsWith('PATH=')).pop()?.slice(5)
        ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
      const found = pathVar.split(':').map((d) => `${d === '' ? '.' : d}/${arg0}`).find((p) => isExec(p) === 'ok');
      if (!found) throw new InitError('exec-notfound', `exec: "${arg0}": executable file not found in $PATH`);
      path = found;
    } else {
      const r = isExec(arg0);
      if (r === 'missing') throw new InitError('exec-notfound', `exec: "${arg0}": stat ${arg0}: no such file or directory`);
      if (r === 'denied') throw new InitError('exec-noperm', `exec: "${arg0}": permission denied`);
    }

    // 15. Terminal, fds, signals, umask; then execve.
    if (spec.tty) {
      check(c.setsid(), 'setsid');
      check(c.ioctl(0, 0x540e /* TIOCSCTTY */, 'int', 0), 'TIOCSCTTY');
    }
    check(c.closeRange(3, 0xffffffff, 4 /* CLOSE_RANGE_CLOEXEC */), 'close_range');
    for (const fd of [0, 1, 2]) {
      c.fcntl(fd, 2 /* F_SETFD */, 'int', 0);
      const fl = c.fcntl(fd, 3 /* F_GETFL */, 'int', 0);
      if (fl >= 0 && (fl & 0o4000)) c.fcntl(fd, 4 /* F_SETFL */, 'int', fl & ~0o4000);
    }
    process.umask(0o022);
    for (let sig = 1; sig < 65; sig++) if (sig !== 9 && sig !== 19 && sig !== 32 && sig !== 33) c.signal(sig, null);
    c.sigmask(2 /* SIG_SETMASK */, Buffer.alloc(128), null);
    c.execve(path, [...spec.argv, null], [...env, null]);
    const en = errno();
    throw new InitError(en === 2 ? 'exec-notfound' : 'exec-noperm', `exec: "${arg0}": ${String(c.strerror(en)).toLowerCase()}`);
  } catch (e: any) {
    const kind = e instanceof InitError ? e.kind : 'internal';
    const message = e instanceof InitError ? e.message : String(e && e.stack || e);
    try { send({ t: 'error', kind, message }); } catch { /* parent gone */ }
    process.exit(kind === 'exec-notfound' ? 127 : kind === 'exec-noperm' ? 126 : 125);
  }
}
