/**
 * `tsbuild run [flags] IMAGE [COMMAND [ARG…]]`: run an image from the store in the RUN sandbox,
 * like `docker run --rm`. The image's layers are unpacked once into the store's snapshot area
 * (shared with builds), a throwaway upper dir takes the writes, and everything is gone afterwards.
 * The command's exit status is tsbuild's exit status.
 *
 * Docker semantics: argv = ENTRYPOINT + (COMMAND… or CMD); `--entrypoint ''` clears the
 * entrypoint; env = image Env, then -e (KEY=VALUE, or KEY alone to copy tsbuild's own value);
 * PATH defaults like Docker's when the image has none; -w/-u override WorkingDir/User.
 * Known gaps: named volumes (only absolute HOST:CTR[:ro] binds), ports (network is the host's
 * anyway, or none), --privileged (use --security=insecure).
 */
import { isAbsolute, resolve } from 'node:path';
import { TsbError } from '../../errors.js';
import type { ParsedArgs } from '../args.js';
import { parseBytes, usageError } from '../args.js';
import { storeRoot, type CliContext, type Command } from '../command.js';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const command: Command = {
  name: 'run',
  summary: 'run a command in an image from the store, in the sandbox',
  usage: 'tsbuild run [flags] IMAGE [COMMAND [ARG...]]',
  flagsBeforeArgs: true,
  flags: [
    { name: 'rm', type: 'bool', help: 'remove the container afterwards (always: tsbuild keeps nothing)' },
    { name: 'env', short: 'e', type: 'list', value: 'KEY=VALUE', help: 'set an environment variable (KEY alone: copy it from here)' },
    { name: 'workdir', short: 'w', type: 'string', value: 'DIR', help: 'working directory inside the container' },
    { name: 'user', short: 'u', type: 'string', value: 'USER[:GROUP]', help: 'user (name or uid) and group' },
    { name: 'network', type: 'string', value: 'MODE', help: 'default, none or host' },
    { name: 'volume', short: 'v', type: 'list', value: 'HOST:CTR[:ro]', help: 'bind-mount a host path' },
    { name: 'interactive', short: 'i', type: 'bool', help: 'keep stdin open' },
    { name: 'tty', short: 't', type: 'bool', help: 'allocate a pseudo-terminal' },
    { name: 'entrypoint', type: 'string', value: 'CMD', help: 'override the image\'s ENTRYPOINT (\'\' clears it)' },
    { name: 'hostname', type: 'string', value: 'NAME', help: 'container host name' },
    { name: 'memory', short: 'm', type: 'string', value: 'BYTES', help: 'memory limit (e.g. 512m, 2g)' },
    { name: 'cpus', type: 'string', value: 'N', help: 'CPU limit (e.g. 1.5)' },
    { name: 'pids-limit', type: 'string', value: 'N', help: 'maximum number of processes' },
    { name: 'security', type: 'string', value: 'MODE', help: 'sandbox (default) or insecure (all capabilities, no seccomp)' },
    { name: 'platform', type: 'string', value: 'OS/ARCH', help: 'platform to pick from a multi-platform image' },
  ],
  details: 'The exit status is the command\'s (126: not executable, 127: not found, 128+N: killed by signal N).',
  run,
};


async function run(args: ParsedArgs, ctx: CliContext): Promise<number> {
  const [image, ...cmd] = args.positional;
  if (!image) throw usageError('"tsbuild run" needs an image', 'tsbuild run IMAGE [COMMAND [ARG...]]');
  const network = args.str('network') ?? 'default';
  if (network !== 'default' && network !== 'none' && network !== 'host') {
    throw usageError(`invalid --network "${network}"`, 'use default, none or host.');
  }
  const security = args.str('security') ?? 'sandbox';
  if (security !== 'sandbox' && security !== 'insecure') throw usageError(`invalid --security "${security}"`, 'use sandbox or insecure.');
  const volumes = args.list('volume').map((v) => {
    const parts = v.split(':');
    const [host, target, mode] = parts;
    if (parts.length < 2 || parts.length > 3 || !host || !target || (mode !== undefined && mode !== 'ro' && mode !== 'rw')) {
      throw usageError(`invalid volume "${v}"`, 'write -v /host/path:/container/path[:ro].');
    }
    if (!isAbsolute(host) && !host.startsWith('.')) throw usageError(`named volumes are not supported ("${host}")`, 'bind a host directory: -v /abs/path:/ctr or -v ./dir:/ctr.');
    if (!target.startsWith('/')) throw usageError(`volume target must be absolute, not "${target}"`);
    return { type: 'bind' as const, source: resolve(ctx.cwd, host), target, readonly: mode === 'ro' };
  });
  const limits: { memoryBytes?: number; cpus?: number; pids?: number } = {};
  if (args.str('memory') !== undefined) limits.memoryBytes = parseBytes(args.str('memory')!);
  if (args.str('cpus') !== undefined) {
    const n = Number(args.str('cpus'));
    if (!(n > 0)) throw usageError(`invalid --cpus "${args.str('cpus')}"`);
    limits.cpus = n;
  }
  if (args.str('pids-limit') !== undefined) {
    const n = Number(args.str('pids-limit'));
    if (!Number.isInteger(n) || n < 1) throw usageError(`invalid --pids-limit "${args.str('pids-limit')}"`);
    limits.pids = n;
  }

  const { openStore } = await import('../../../store/index.js');
  const { readImage, parsePlatform } = await import('../../oci/image.js');
  const { snapshotsForImage, chainIds } = await import('../../exec/layer/index.js');
  const { runSandbox } = await import('../../exec/sandbox/index.js');
  const { rm } = await import('node:fs/promises');

  const store = await openStore(storeRoot(args, ctx));
  const lease = await store.lease(`run ${image}`);
  let upperBase: string | undefined;
  try {
    const platform = args.str('platform');
    const img = await readImage(store, image, platform ? { platform: parsePlatform(platform) } : {});
    const cc = img.config.config ?? {};
    const diffIds = img.config.rootfs.diff_ids;
    await lease.add(...img.manifest.layers.map((l) => l.digest), ...diffIds, ...chainIds(diffIds));
    const lowerdirs = await snapshotsForImage(store, diffIds, { blobs: img.manifest.layers.map((l) => l.digest) });

    const entrypointFlag = args.str('entrypoint');
    const entrypoint = entrypointFlag !== undefined ? (entrypointFlag === '' ? [] : [entrypointFlag]) : (cc.Entrypoint ?? []);
    const argv = [...entrypoint, ...(cmd.length > 0 ? cmd : entrypointFlag !== undefined ? [] : (cc.Cmd ?? []))];
    if (argv.length === 0) {
      throw new TsbError('TSB0010', `no command specified for ${image}`, { hint: 'give one after the image name: tsbuild run IMAGE COMMAND.' });
    }
    const env = new Map<string, string>();
    for (const e of cc.Env ?? []) { const i = e.indexOf('='); env.set(i < 0 ? e : e.slice(0, i), i < 0 ? '' : e.slice(i + 1)); }
    if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
    for (const e of args.list('env')) {
      const i = e.indexOf('=');
      if (i === 0) throw usageError(`invalid environment variable "${e}"`);
      if (i > 0) env.set(e.slice(0, i), e.slice(i + 1));
      else if (ctx.env[e] !== undefined) env.set(e, ctx.env[e]!);
    }
    if (args.bool('tty') && !env.has('TERM')) env.set('TERM', 'xterm');

    upperBase = await store.snapshots.tempDir('run-');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(`${upperBase}/upper`);
    await mkdir(`${upperBase}/work`);

    const tty = args.bool('tty');
    const stdinStream = ctx.stdin as NodeJS.ReadStream;
    const rawTty = tty && args.bool('interactive') && stdinStream.isTTY === true && typeof stdinStream.setRawMode === 'function';
    if (rawTty) stdinStream.setRawMode(true);
    const stdout = ctx.stdout as NodeJS.WriteStream;
    try {
      const r = await runSandbox({
        root: { lowerdirs, upperdir: `${upperBase}/upper`, workdir: `${upperBase}/work` },
        argv,
        env: [...env].map(([k, v]) => `${k}=${v}`),
        cwd: args.str('workdir') ?? (cc.WorkingDir || '/'),
        user: args.str('user') ?? cc.User ?? '',
        ...(args.str('hostname') ? { hostname: args.str('hostname')! } : {}),
        etcHostname: true, // docker run provides /etc/hostname (a build RUN does not)
        network,
        mounts: volumes,
        limits,
        security,
        onStdout: (b) => { ctx.stdout.write(b); },
        onStderr: (b) => { ctx.stderr.write(b); },
        ...(tty
          ? { tty: { ...(args.bool('interactive') ? { input: ctx.stdin } : {}), ...(stdout.rows ? { rows: stdout.rows, cols: stdout.columns } : {}) } }
          : { stdin: args.bool('interactive') && ctx.stdin === process.stdin ? 0 : 'ignore' as const }),
        signal: ctx.signal,
      });
      if (r.startError) {
        ctx.stderr.write(`tsbuild: ${r.startError}\n`);
      } else if (r.oomKilled) {
        ctx.stderr.write(`tsbuild: the command was killed by the OOM killer (memory limit ${r.memory?.limitBytes ?? '?'} bytes)\n`);
      }
      return r.exitCode;
    } finally {
      if (rawTty) stdinStream.setRawMode(false);
      if (tty && args.bool('interactive')) stdinStream.pause?.();
    }
  } finally {
    if (upperBase) await rm(upperBase, { recursive: true, force: true }).catch(() => undefined);
    await lease.release().catch(() => undefined);
    await store.close();
  }
}
