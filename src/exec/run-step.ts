/**
 * One RUN step, for the build engine: the image's snapshots as lowers, a fresh upper dir, the
 * sandbox; afterwards the upper dir holds exactly what the command changed (the sandbox takes its
 * own mount points back out), ready for src/exec/layer's diffUpperdir/commitUpperdir.
 *
 * What the engine does before: resolve the image's layers to snapshot dirs (src/exec/layer
 * snapshotsForImage), take a fresh upper from store.snapshots.tempDir, build argv (SHELL +
 * command, heredocs), env (image ENV + build args as Docker exports them, PATH defaulted), and
 * resolve every RUN --mount to host paths (cache dirs from its cache-mount area, secrets to
 * files, bind sources to a context dir or a stage's snapshot stack).
 * What it does after: `runStepError()` for a non-zero exit, else diff → layer.
 *
 * The overlay work dir is made next to the upper dir (same filesystem, required by overlayfs)
 * unless given, and removed afterwards. The upper dir is the caller's: it is never removed here.
 */
import { rmdirSync, rmSync, unlinkSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { basename, dirname, join, posix } from 'node:path';
import { TsbError, type Span } from '../errors.js';
import { runSandbox } from './sandbox/index.js';
import type { NetworkMode, SandboxFile, SandboxLimits, SandboxMount, SandboxResult } from './sandbox/types.js';

export type RunStepMount =
  /** A host dir or file (context bind mounts, cache mounts: the engine owns the cache dir and its locking). */
  | { type: 'bind'; target: string; source: string; readonly?: boolean }
  /**
   * A stack of snapshot dirs, BOTTOM first (bind from=stage|image). `readwrite`: the command may
   * write, the writes are discarded (BuildKit's `rw`).
   */
  | { type: 'layers'; target: string; lowerdirs: readonly string[]; readwrite?: boolean }
  | { type: 'tmpfs'; target: string; size?: number }
  /** A secret: the content (or a host file to read it from), mode default 0400, owner root. */
  | { type: 'secret'; target: string; content?: string | Uint8Array; sourceFile?: string; mode?: number; uid?: number; gid?: number };

export interface RunStepOptions {
  /** Image snapshot dirs, bottom layer first (may be empty: FROM scratch). */
  lowerdirs: readonly string[];
  /** Fresh empty dir (store.snapshots.tempDir); the command's changes land here. */
  upperdir: string;
  /** overlayfs work dir on the same filesystem; default: a temp dir next to upperdir, removed after. */
  workdir?: string;
  /** Final argv (the stage's SHELL already applied for the shell form). */
  argv: readonly string[];
  env: readonly string[];
  /** USER as written in the Dockerfile (resolved inside the image). */
  user?: string;
  /** WORKDIR (absolute); relative mount targets are resolved against it, like BuildKit. */
  cwd?: string;
  network?: NetworkMode;
  security?: 'sandbox' | 'insecure';
  hostname?: string;
  /** `--add-host name:ip` entries for /etc/hosts. */
  extraHosts?: readonly { host: string; ip: string }[];
  mounts?: readonly RunStepMount[];
  limits?: SandboxLimits;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

export interface RunStepResult extends SandboxResult {
  /** The upper dir, cleaned of the sandbox's own mount points. */
  upperdir: string;
}

function absTarget(target: string, cwd: string): string {
  return posix.normalize(target.startsWith('/') ? target : posix.join(cwd, target));
}

export async function runStep(opts: RunStepOptions): Promise<RunStepResult> {
  const cwd = opts.cwd && opts.cwd !== '' ? opts.cwd : '/';
  const mounts: SandboxMount[] = [];
  const files: SandboxFile[] = [];
  for (const m of opts.mounts ?? []) {
    const target = absTarget(m.target, cwd);
    switch (m.type) {
      case 'bind': mounts.push({ type: 'bind', source: m.source, target, readonly: m.readonly === true }); break;
      case 'tmpfs': mounts.push({ type: 'tmpfs', target, ...(m.size !== undefined ? { size: m.size } : {}) }); break;
      case 'layers':
        if (m.lowerdirs.length === 0) mounts.push({ type: 'tmpfs', target, mode: 0o755 }); // an empty stage
        else mounts.push({ type: 'overlay-ro', target, lowerdirs: [...m.lowerdirs], writable: m.readwrite === true });
        break;
      case 'secret': {
        let content = m.content;
        if (content === undefined) {
          if (m.sourceFile === undefined) throw new TsbError('TSB4107', `secret mount at ${target} has neither content nor a source file`);
          content = await readFile(m.sourceFile);
        }
        files.push({ target, content, mode: m.mode ?? 0o400, uid: m.uid ?? 0, gid: m.gid ?? 0, readonly: true });
        break;
      }
    }
  }
  const hostname = opts.hostname ?? 'buildkitsandbox';
  if (opts.extraHosts?.length) {
    const lines = [`127.0.0.1\tlocalhost ${hostname}`, '::1\tlocalhost ip6-localhost ip6-loopback', ...opts.extraHosts.map((h) => `${h.ip}\t${h.host}`)];
    files.push({ target: '/etc/hosts', content: lines.join('\n') + '\n' });
  }

  const ownWork = opts.workdir === undefined;
  const workdir = opts.workdir ?? await mkdtemp(join(dirname(opts.upperdir), `.${basename(opts.upperdir)}-work-`));
  try {
    const r = await runSandbox({
      root: { lowerdirs: opts.lowerdirs, upperdir: opts.upperdir, workdir },
      argv: opts.argv, env: opts.env, cwd, user: opts.user ?? '', hostname,
      network: opts.network ?? 'default', mounts, files,
      ...(opts.limits ? { limits: opts.limits } : {}),
      ...(opts.security ? { security: opts.security } : {}),
      ...(opts.onStdout ? { onStdout: opts.onStdout } : {}),
      ...(opts.onStderr ? { onStderr: opts.onStderr } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { ...r, upperdir: opts.upperdir };
  } finally {
    if (ownWork) removeWorkdir(workdir);
  }
}

/**
 * The overlay work dir after the mount is gone: normally overlayfs's own `work/`, holding only
 * the marker a volatile mount leaves (work/incompat/volatile/dirty), so a few unlink/rmdirs on the
 * spot (an async recursive rm costs thread-pool round trips per RUN); anything else left in it (a
 * crash mid-operation) goes the long way.
 */
function removeWorkdir(workdir: string): void {
  const gone = (f: () => void) => { try { f(); } catch (e) { if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e; } };
  try {
    gone(() => unlinkSync(join(workdir, 'work/incompat/volatile/dirty')));
    for (const d of ['work/incompat/volatile', 'work/incompat', 'work']) gone(() => rmdirSync(join(workdir, d)));
    rmdirSync(workdir);
  } catch {
    rmSync(workdir, { recursive: true, force: true });
  }
}

/**
 * The error for a RUN that did not succeed, worded like BuildKit's
 * (`process "/bin/sh -c false" did not complete successfully: exit code: 1`), with the last
 * lines of its output as details and the OOM reason when the kernel killed it.
 */
export function runStepError(result: SandboxResult, argv: readonly string[], opts: { span?: Span; outputTail?: string } = {}): TsbError {
  const cmd = argv.join(' ');
  const tail = (opts.outputTail ?? '').split('\n').filter((l) => l !== '').slice(-12);
  if (result.startError) {
    return new TsbError('TSB4111', `process "${cmd}" could not start: ${result.startError}`, {
      span: opts.span, details: tail, hint: 'check the command name, PATH and SHELL of the stage.',
    });
  }
  if (result.oomKilled) {
    const limit = result.memory ? ` (memory limit ${result.memory.limitBytes} bytes)` : '';
    return new TsbError('TSB4112', `process "${cmd}" was killed by the kernel's OOM killer${limit}`, {
      span: opts.span, details: tail, hint: 'raise the build\'s memory limit or make the step use less memory.',
    });
  }
  return new TsbError('TSB4110', `process "${cmd}" did not complete successfully: exit code: ${result.exitCode}`, {
    span: opts.span, details: tail,
  });
}
