/**
 * The RUN sandbox's contract (issue 5). One call = one process tree in fresh PID, mount, UTS and IPC
 * namespaces (plus a fresh network namespace for `network: 'none'`), rooted with pivot_root in an
 * overlayfs (or a plain directory), with Docker's default capabilities, a seccomp filter that
 * blocks what Docker's default profile blocks, runc's masked/read-only paths, and cgroup v1
 * limits. Nothing it sets up outlives the call: not a process, a mount or a cgroup directory.
 *
 * How (see README in this directory's index.ts): the parent spawns
 *   setpriv --pdeathsig KILL -- unshare --pid --fork --mount --uts --ipc [--net] --kill-child -- node -e INIT
 * and the init (src/exec/sandbox/init.ts, Node + koffi) receives an InitSpec on fd 3, does the
 * mounts, pivot_root, user switch, capability drop and seccomp, and execve()s the command, which
 * becomes PID 1 of the new PID namespace (like `docker build`: a RUN ends when its PID 1 ends and
 * every process it left behind is killed).
 */

/** The step's root filesystem. */
export type SandboxRoot =
  | {
    /**
     * Overlay: the image's layer snapshots, BOTTOM layer first (the order of the image's
     * `rootfs.diff_ids`), as unpacked by src/exec/layer into the store's snapshot area. Up to
     * 499 entries (the kernel's stack limit is 500 and the sandbox may add none; an empty list is
     * allowed: FROM scratch). Never written.
     */
    lowerdirs: readonly string[];
    /** This step's diff: every change the command makes lands here (whiteouts as 0/0 char devs). */
    upperdir: string;
    /** overlayfs' work dir: empty, same filesystem as upperdir. */
    workdir: string;
  }
  | {
    /**
     * A plain directory (tests, `tsbuild run` of an unpacked tree). Writable unless `readonly`.
     * Writable: changes go straight into it. Read-only: it is mounted as the only lower of an
     * overlay whose upper is a tmpfs that vanishes with the sandbox.
     */
    dir: string;
    readonly?: boolean;
  };

export type SandboxMount =
  /** Bind a host file or directory. `target` is resolved inside the root (symlinks stay inside). */
  | { type: 'bind'; source: string; target: string; readonly?: boolean }
  /** A fresh tmpfs (RUN --mount=type=tmpfs). `size` in bytes; default: the kernel's (half of RAM). */
  | { type: 'tmpfs'; target: string; size?: number; mode?: number }
  /**
   * A read-only overlay of lower dirs, BOTTOM first (RUN --mount=type=bind,from=stage when the
   * stage is a stack of snapshots). A single dir is bind-mounted read-only instead.
   */
  | { type: 'overlay-ro'; lowerdirs: readonly string[]; target: string; writable?: boolean };
// `writable: true` (RUN --mount=type=bind,rw): the command may write, the writes land in a tmpfs
// that vanishes with the sandbox (BuildKit discards them too).

/** A file the sandbox provides at `target` (bind-mounted from a private tmpfs; never in the diff). */
export interface SandboxFile {
  target: string;
  content: string | Uint8Array;
  /** Default 0644. Secrets: 0400. */
  mode?: number;
  uid?: number;
  gid?: number;
  readonly?: boolean;
  /** mtime (whole seconds since the epoch) of the provided file; default: when the RUN starts. */
  mtimeSec?: number;
}

export interface SandboxLimits {
  /** memory.limit_in_bytes (and memsw when swap accounting exists: no swap beyond it). */
  memoryBytes?: number;
  /** CPU quota in CPUs (1.5 = 150 ms per 100 ms period). */
  cpus?: number;
  /** pids.max: processes + threads. */
  pids?: number;
}

export type NetworkMode = 'default' | 'none' | 'host';

export interface SandboxSpec {
  root: SandboxRoot;
  /** argv[0] is looked up in the env's PATH inside the root when it has no slash (like runc). */
  argv: readonly string[];
  /** `KEY=value` strings, passed as is. HOME is added from /etc/passwd when absent (like runc). */
  env: readonly string[];
  /** Absolute path inside the root; created (0755, root) when missing, like Docker's WORKDIR. Default `/`. */
  cwd?: string;
  /**
   * Unresolved USER: "" or undefined = root; `name`, `uid`, `name:group`, `uid:gid`, … resolved
   * against the ROOT's /etc/passwd and /etc/group (after mounting, before the command runs).
   * Supplementary groups: every group listing the user, when no group is given (Docker's rule).
   */
  user?: string;
  /** Default "buildkitsandbox" (what `docker build` shows). */
  hostname?: string;
  /**
   * Provide /etc/hostname (bind of a file holding `hostname`), as `docker run` does. Default false:
   * a BuildKit RUN has none (diff-findings §7/§18), so a RUN testing for it must not see one.
   */
  etcHostname?: boolean;
  /** `default` and `host`: the host's network namespace; `none`: a new one with only `lo`, up. */
  network?: NetworkMode;
  mounts?: readonly SandboxMount[];
  /** /etc/hosts, /etc/resolv.conf, /etc/hostname, secrets: provided here, not committed. */
  files?: readonly SandboxFile[];
  limits?: SandboxLimits;
  /** `insecure` (only behind an explicit build flag): all capabilities, no seccomp, no masked paths, /sys rw. */
  security?: 'sandbox' | 'insecure';
  /** Output is streamed here as it arrives (stdout and stderr are separate pipes, not sockets). */
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /**
   * stdin: 'ignore' (default: an empty pipe, write end closed, like a BuildKit RUN) or a host fd to hand over (e.g. 0 for
   * `tsbuild run -i`). The fd is dup'ed into the sandbox as fd 0; the caller keeps its own.
   */
  stdin?: 'ignore' | number;
  /**
   * A terminal (`tsbuild run -t`): the command gets a new pty as its controlling terminal on fds
   * 0-2; `onStdout` receives the pty's output, `input` is written to it. stdin/onStderr are unused.
   */
  tty?: { input?: NodeJS.ReadableStream; rows?: number; cols?: number };
  /** Aborting kills the whole sandbox and makes runSandbox reject (TSB4101) after cleaning up. */
  signal?: AbortSignal;
}

export interface SandboxResult {
  /** The command's exit status; 128+N when it was killed by signal N (shell convention). */
  exitCode: number;
  /** Set when the command was killed by a signal. */
  signal?: NodeJS.Signals;
  /** The kernel's OOM killer fired in this sandbox's memory cgroup. */
  oomKilled: boolean;
  /** Memory accounting when a memory limit was set (memory.max_usage_in_bytes, failcnt). */
  memory?: { limitBytes: number; maxUsageBytes: number; failcnt: number };
  /**
   * The command could not be started (not found: exitCode 127; not executable: 126), with
   * runc-like wording, e.g. `exec: "foo": executable file not found in $PATH`.
   */
  startError?: string;
  durationMs: number;
}
