/**
 * `tsbuild [build] [CONTEXT] -t NAME:TAG …` — docker build's flags. Also exports the shared
 * preparation (read Dockerfile, parse, plan, open context/store) used by `debug plan` and
 * `cache why`, which walk the same plan without executing it.
 */
import { existsSync, readFileSync, statSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join, relative, resolve, isAbsolute, dirname } from 'node:path';
import { tmpdir } from 'node:os';
import { TsbError } from '../../errors.js';
import { parseBytes, usageError, type FlagSpec, type ParsedArgs } from '../args.js';
import { print, printErr, storeRoot, type CliContext, type Command } from '../command.js';
import { registerSource } from '../render.js';
import { makeProgress, progressMode, type Out } from '../progress.js';
import { insecureRegistries, REGISTRY_FLAGS } from '../../oci/cli-util.js';
import type { DockerfileIR } from '../../ir/types.js';
import type { BuildPlan } from '../../plan/plan.js';
import type { BuildContext } from '../../plan/context.js';
import type { BuildResult, StepReport } from '../../exec/build.js';
import type { Descriptor, Store } from '../../../store/types.js';

export const BUILD_FLAGS: readonly FlagSpec[] = [
  { name: 'file', short: 'f', type: 'string', value: 'PATH', help: 'Dockerfile (default CONTEXT/Dockerfile; - reads stdin)' },
  { name: 'tag', short: 't', type: 'list', value: 'NAME:TAG', help: 'name the image' },
  { name: 'build-arg', type: 'list', value: 'K[=V]', help: 'set a build ARG (K alone: from the environment)' },
  { name: 'target', type: 'string', value: 'STAGE', help: 'build this stage' },
  { name: 'no-cache', type: 'bool', help: 'do not use the build cache' },
  { name: 'no-cache-filter', type: 'list', value: 'STAGE', help: 'do not use the cache for this stage' },
  { name: 'label', type: 'list', value: 'K=V', help: 'add a label to the image' },
  { name: 'iidfile', type: 'string', value: 'FILE', help: 'write the image id (manifest digest) to FILE' },
  { name: 'progress', type: 'string', value: 'MODE', help: 'auto|tty|plain|json|quiet' },
  { name: 'quiet', short: 'q', type: 'bool', help: 'print only the image id' },
  { name: 'platform', type: 'string', value: 'OS/ARCH', help: 'target platform (linux/amd64)' },
  { name: 'network', type: 'string', value: 'MODE', help: 'network for RUN: default|none|host' },
  { name: 'secret', type: 'list', value: 'id=ID[,src=PATH|env=VAR]', help: 'a secret RUN --mount=type=secret can use' },
  { name: 'output', short: 'o', type: 'list', value: 'SPEC', help: 'export: type=oci|docker|local|tar|image,dest=…' },
  { name: 'push', type: 'bool', help: 'push the tagged image(s) to their registry' },
  { name: 'pull', type: 'string', value: 'always|missing|never', bareValue: 'always', help: 'when to ask the registry for base images (default missing; bare --pull = always)' },
  { name: 'memory', short: 'm', type: 'string', value: 'BYTES', help: 'memory limit of each RUN (e.g. 512m, 2g); an OOM kill is reported with it' },
  { name: 'cpus', type: 'string', value: 'N', help: 'CPU limit of each RUN (e.g. 1.5)' },
  { name: 'pids-limit', type: 'string', value: 'N', help: 'maximum number of processes in each RUN' },
  { name: 'allow', type: 'list', value: 'ENTITLEMENT', help: 'grant an entitlement: security.insecure (lets RUN --security=insecure run)' },
  { name: 'explain', type: 'bool', help: 'print why each step hit or missed the cache' },
  ...REGISTRY_FLAGS,
];

/** `--pull[=always|missing|never]` (bare `--pull` = always, as docker build). */
function pullMode(args: ParsedArgs): 'always' | 'missing' | 'never' {
  const v = args.str('pull') ?? 'missing';
  if (v === 'true') return 'always';
  if (v === 'false') return 'missing';
  if (v !== 'always' && v !== 'missing' && v !== 'never') throw usageError(`invalid --pull "${v}"`, 'use always, missing or never.');
  return v;
}

/** The build's `--memory`, `--cpus`, `--pids-limit`, applied to every RUN's cgroup. */
function runLimits(args: ParsedArgs): { memoryBytes?: number; cpus?: number; pids?: number } {
  const limits: { memoryBytes?: number; cpus?: number; pids?: number } = {};
  const mem = args.str('memory');
  if (mem !== undefined) {
    limits.memoryBytes = parseBytes(mem);
    if (limits.memoryBytes < 6 * 1024 * 1024) throw usageError(`--memory ${mem} is too small`, 'the minimum is 6m, as docker.');
  }
  const cpus = args.str('cpus');
  if (cpus !== undefined) {
    const n = Number(cpus);
    if (!(n > 0)) throw usageError(`invalid --cpus "${cpus}"`, 'write a positive number, e.g. 1.5.');
    limits.cpus = n;
  }
  const pids = args.str('pids-limit');
  if (pids !== undefined) {
    const n = Number(pids);
    if (!Number.isInteger(n) || n < 1) throw usageError(`invalid --pids-limit "${pids}"`, 'write a whole number of processes, e.g. 100.');
    limits.pids = n;
  }
  return limits;
}

const ENTITLEMENTS = new Set(['security.insecure', 'network.host']);

function entitlements(args: ParsedArgs): Set<string> {
  const out = new Set<string>();
  for (const v of args.list('allow').flatMap((x) => x.split(','))) {
    if (!ENTITLEMENTS.has(v)) throw usageError(`unknown entitlement "${v}" for --allow`, 'use security.insecure or network.host.');
    out.add(v);
  }
  return out;
}

export interface Prepared {
  ir: DockerfileIR;
  plan: BuildPlan;
  text: string;
  dockerfileKey: string;
  dockerfileDisplay: string;
  contextDir?: string;
  context?: () => BuildContext;
  /** The context, if a step opened it (its walk: the build memo's signature). */
  openedContext?: () => BuildContext | undefined;
  /** The Dockerfile's stat stamp, taken before it was read (exec/memo.ts); absent for stdin. */
  dockerfileStamp?: { stamp: string; racy: boolean };
  cleanup: () => void;
  tags: string[];
  store: () => Promise<Store>;
  storeRootDir: string;
}

async function readStdin(ctx: CliContext): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of ctx.stdin as AsyncIterable<Buffer | string>) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks);
}

function isArchive(b: Buffer): boolean {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return true;
  if (b.length >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return true;
  if (b.length >= 6 && b[0] === 0xfd && b.subarray(1, 6).toString('latin1') === '7zXZ\0') return true;
  if (b.length >= 4 && b.readUInt32LE(0) === 0xfd2fb528) return true;
  return b.length >= 262 && b.subarray(257, 262).toString('latin1') === 'ustar';
}

/** The Dockerfile a build of `contextDir` reads: --file (relative to cwd), else CONTEXT/Dockerfile (or dockerfile). */
function dockerfilePath(contextDir: string, fileFlag: string | undefined, cwd: string): string {
  if (fileFlag) return resolve(cwd, fileFlag);
  const path = join(contextDir, 'Dockerfile');
  return !existsSync(path) && existsSync(join(contextDir, 'dockerfile')) ? join(contextDir, 'dockerfile') : path;
}

/** Flags that change only what a build prints or where it writes its id, never its image. */
const OUTPUT_ONLY_FLAGS = new Set(['progress', 'quiet', 'iidfile', 'explain', 'debug', 'help']);

/**
 * The build memo's request (exec/memo.ts), or undefined when this build may not use or leave one:
 * stdin context or Dockerfile, --no-cache, --no-cache-filter, --pull=always, --output, --push.
 */
function memoRequestOf(args: ParsedArgs, ctx: CliContext, pull: string, memo: typeof import('../../exec/memo.js')): { request: string; path: string; contextDir: string; dockerfile: string } | undefined {
  const contextArg = args.positional[0] ?? '.';
  const fileFlag = args.str('file');
  if (contextArg === '-' || fileFlag === '-' || args.positional.length > 1) return undefined;
  if (args.bool('no-cache') || args.list('no-cache-filter').length || pull === 'always' || args.list('output').length || args.bool('push')) return undefined;
  const contextDir = resolve(ctx.cwd, contextArg);
  const dockerfile = dockerfilePath(contextDir, fileFlag, ctx.cwd);
  const flags: Record<string, unknown> = {};
  for (const [k, v] of args.flags) if (!OUTPUT_ONLY_FLAGS.has(k)) flags[k] = v;
  // Values the flags take from the environment.
  const fromEnv = args.list('build-arg').filter((a) => !a.includes('=')).map((a) => [a, ctx.env[a] ?? null]);
  const root = storeRoot(args, ctx);
  const request = memo.memoRequest({ store: root, cwd: ctx.cwd, context: contextDir, dockerfile, flags, fromEnv, epoch: sourceDateEpoch(args, ctx) ?? null });
  return { request, path: memo.memoPath(root, request), contextDir, dockerfile };
}

export async function prepare(args: ParsedArgs, ctx: CliContext, opts: { positionalIsFile?: boolean } = {}): Promise<Prepared> {
  const { parse } = await import('../../syntax/index.js');
  const { toIR } = await import('../../ir/index.js');
  const { makePlan, parseBuildArgs, parsePlatformFlag } = await import('../../plan/plan.js');
  const { BuildContext: BC, loadIgnore, statStamp } = await import('../../plan/context.js');

  if (args.positional.length > 1) throw usageError(`"tsbuild build" takes one context, got ${args.positional.length}: ${args.positional.join(' ')}`, 'write tsbuild build [CONTEXT] -t NAME:TAG.');
  const cleanups: (() => void)[] = [];
  let contextArg = args.positional[0] ?? '.';
  let fileFlag = args.str('file');
  if (opts.positionalIsFile && args.positional[0] && !fileFlag && existsSync(resolve(ctx.cwd, args.positional[0])) && statSync(resolve(ctx.cwd, args.positional[0])).isFile()) {
    // `debug plan FILE`: the positional is the Dockerfile; the context is its directory.
    fileFlag = args.positional[0];
    contextArg = dirname(args.positional[0]);
  }
  let text: string | undefined;
  let dockerfileKey: string;
  let display: string;
  let contextDir: string | undefined;
  let dockerfileStamp: { stamp: string; racy: boolean } | undefined;

  if (contextArg === '-') {
    const data = await readStdin(ctx);
    if (isArchive(data)) {
      const dir = mkdtempSync(join(tmpdir(), 'tsbuild-ctx-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      const { unpackLayerFlat } = await import('../../exec/layer/unpack.js');
      const { Readable } = await import('node:stream');
      await unpackLayerFlat(Readable.from([data]), dir, {} as never);
      contextDir = dir;
    } else {
      if (fileFlag) throw usageError('a Dockerfile on stdin (tsbuild build -) cannot be combined with --file');
      text = data.toString('utf8');
      dockerfileKey = 'stdin:Dockerfile';
      display = 'Dockerfile';
      registerSource(display, text);
    }
  } else {
    contextDir = resolve(ctx.cwd, contextArg);
    if (!existsSync(contextDir)) {
      throw new TsbError('TSB3020', `unable to prepare context: path "${contextArg}" not found`, { hint: 'pass an existing directory as the build context.', exitCode: 1 });
    }
    if (!statSync(contextDir).isDirectory()) {
      throw new TsbError('TSB3021', `unable to prepare context: "${contextArg}" is not a directory`, { hint: 'pass a directory, or - to read a tar archive from stdin.' });
    }
  }
  if (text === undefined) {
    if (fileFlag === '-') {
      text = (await readStdin(ctx)).toString('utf8');
      dockerfileKey = `stdin:${contextDir}`;
      display = 'Dockerfile';
      registerSource(display, text);
    } else {
      const path = dockerfilePath(contextDir!, fileFlag, ctx.cwd);
      // Stat before reading: a change after the stat shows in the next build's stat (the memo).
      dockerfileStamp = statStamp(path);
      try { text = readFileSync(path, 'utf8'); } catch (e) {
        throw new TsbError('TSB0102', `cannot read Dockerfile ${fileFlag ?? relative(ctx.cwd, path) ?? path}`, {
          cause: e, hint: fileFlag ? 'check the --file path.' : 'put a Dockerfile in the context or pass -f PATH.', exitCode: 1,
        });
      }
      dockerfileKey = path;
      const rel = relative(ctx.cwd, path);
      display = rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
    }
  }
  const ast = parse(text, display!);
  const ir = toIR(ast);
  const buildArgs = parseBuildArgs(args.list('build-arg'), ctx.env);
  const platformFlag = args.str('platform');
  const platform = platformFlag ? parsePlatformFlag(platformFlag) : undefined;
  const plan = makePlan(ir, { buildArgs, ...(args.str('target') ? { target: args.str('target')! } : {}), ...(platform ? { platform } : {}) });
  const root = storeRoot(args, ctx);
  let storeP: Promise<Store> | undefined;
  const store = () => {
    storeP ??= (async () => { const { openStore } = await import('../../../store/index.js'); return openStore(root) as unknown as Store; })();
    return storeP;
  };
  let context: (() => BuildContext) | undefined;
  let openedCtx: BuildContext | undefined;
  if (contextDir) {
    const cdir = contextDir;
    const dfPath = dockerfileKey!.startsWith('stdin:') ? undefined : dockerfileKey!;
    context = () => {
      openedCtx ??= BC.open(cdir, { ignore: loadIgnore(cdir, dfPath).matcher, statCacheDir: join(root, 'tsbuild', 'statcache', 'v1') });
      return openedCtx;
    };
  }
  const tags = args.list('tag');
  const { parseReference } = await import('../../oci/reference.js');
  for (const t of tags) {
    try { parseReference(t); } catch (e) {
      throw usageError(`invalid tag "${t}": ${(e as Error).message}`, 'write -t NAME[:TAG], e.g. -t app:1.2.');
    }
  }
  return {
    ir, plan, text, dockerfileKey: dockerfileKey!, dockerfileDisplay: display!, ...(contextDir ? { contextDir } : {}),
    ...(context ? { context, openedContext: () => openedCtx } : {}), ...(dockerfileStamp ? { dockerfileStamp } : {}),
    cleanup: () => { for (const c of cleanups) c(); }, tags, store, storeRootDir: root,
  };
}

export function sourceDateEpoch(args: ParsedArgs, ctx: CliContext): number | undefined {
  const fromArg = args.list('build-arg').find((a) => a.startsWith('SOURCE_DATE_EPOCH='));
  const v = fromArg ? fromArg.slice('SOURCE_DATE_EPOCH='.length) : ctx.env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw usageError(`SOURCE_DATE_EPOCH must be a whole number of seconds, not "${v}"`);
  return Number(v);
}

export function parseLabels(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    if (i <= 0) { if (l) out[l] = ''; else throw usageError(`invalid --label "${l}"`, 'write --label KEY=VALUE.'); }
    else out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

export function parseSecrets(list: readonly string[]): Map<string, { src?: string; env?: string }> {
  const m = new Map<string, { src?: string; env?: string }>();
  for (const s of list) {
    const kv = new Map(s.split(',').map((p) => { const i = p.indexOf('='); return i < 0 ? [p, ''] as const : [p.slice(0, i), p.slice(i + 1)] as const; }));
    const id = kv.get('id');
    if (!id) throw usageError(`invalid --secret "${s}"`, 'write --secret id=ID,src=PATH or id=ID,env=VAR.');
    const src = kv.get('src') ?? kv.get('source');
    const env = kv.get('env');
    m.set(id, { ...(src ? { src } : {}), ...(env ? { env } : {}), ...(!src && !env ? { env: id } : {}) });
  }
  return m;
}

/** Human report of every step's cache status (`--explain`, `cache why`). */
export function explainReport(steps: readonly StepReport[]): string {
  const out: string[] = [];
  for (const s of steps) {
    if (s.status === 'config') continue;
    const status = s.status === 'cached' || s.status === 'would-hit' ? 'HIT ' : 'MISS';
    out.push(`${status} line ${s.line}: ${s.name}`);
    for (const r of s.reasons ?? []) out.push(`       ${r}`);
  }
  return out.join('\n') + '\n';
}

/**
 * After a successful build: write its memo (exec/memo.ts), or say why not. Never fails the build:
 * a memo is a cache, and anything that goes wrong here only means the next build runs in full.
 */
async function leaveMemo(memoMod: typeof import('../../exec/memo.js'), path: string, fields: Omit<Parameters<typeof import('../../exec/memo.js').memoOfBuild>[0], 'bases'>,
  result: BuildResult, trace: (m: string) => void): Promise<void> {
  try {
    if (result.remote) { trace('not written: a step read a remote source (ADD URL)'); return; }
    // Names resolved by name, with what each names now (after our own tags); a digest reference
    // never moves. A name that names nothing now leaves no memo.
    const bases: [string, string][] = [];
    const { parseReference } = await import('../../oci/reference.js');
    for (const ref of result.images ?? []) {
      const r = parseReference(ref);
      if (r.digest) continue;
      const d = (await fields.store.refs.get(r.full))?.digest;
      if (d === undefined) { trace(`not written: base image ${ref} is not named in the store`); return; }
      bases.push([r.full, d]);
    }
    const m = await memoMod.memoOfBuild({ ...fields, bases });
    if ('refused' in m) { trace(`not written: ${m.refused}`); return; }
    const written = memoMod.writeMemo(path, m);
    trace(written ? 'written' : 'not written: the file could not be written');
  } catch (e) {
    trace(`not written: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Point each name at the image; a name already on it is left alone (a no-op rebuild does not rewrite index.json). */
async function tagImage(store: Store, names: readonly string[], manifest: Descriptor): Promise<void> {
  for (const name of names) if ((await store.refs.get(name))?.digest !== manifest.digest) await store.refs.set(name, manifest);
}

/** Where progress goes: stderr's stream for the live tty view, else straight to fd 2 (see printErr). */
function progressOut(ctx: CliContext, mode: string): () => Out {
  return () => (mode === 'tty' ? ctx.stderr : { write: (s: string) => printErr(ctx, s) });
}

/** The end of a build's output: --explain, then the image id (quiet) or the "writing image" line. */
function summary(args: ParsedArgs, ctx: CliContext, mode: string, digest: string, names: readonly string[], steps: readonly StepReport[]): void {
  if (args.bool('explain')) print(ctx, explainReport(steps));
  if (mode === 'quiet') print(ctx, `${digest}\n`);
  else if (mode !== 'json') printErr(ctx, `writing image ${digest}${names.map((n) => ` naming to ${n}`).join('')} done\n`);
}

/**
 * A build answered by its memo (exec/memo.ts), when the memo is valid: the same progress, cache
 * hits and tags as a full no-op build, and the same output. Undefined when it is not (build in full).
 */
async function fromMemo(memoMod: typeof import('../../exec/memo.js'), req: NonNullable<ReturnType<typeof memoRequestOf>>,
  args: ParsedArgs, ctx: CliContext, mode: ReturnType<typeof progressMode>, trace: (m: string) => void): Promise<number | undefined> {
  let store: Store | undefined;
  const openStoreOnce = async (): Promise<Store> => {
    if (!store) { const { openStore } = await import('../../../store/index.js'); store = await openStore(storeRoot(args, ctx)) as unknown as Store; }
    return store;
  };
  try {
    const r = await memoMod.checkMemo(req.path, req.request, req.dockerfile, async () => {
      const { contextSignature, loadIgnore } = await import('../../plan/context.js');
      return contextSignature(req.contextDir, loadIgnore(req.contextDir, req.dockerfile).matcher);
    }, openStoreOnce);
    if ('miss' in r) { trace(`not used: ${r.miss}`); return undefined; }
    const memo = r.memo;
    const s = await openStoreOnce();
    // Tags moved since the memo's build are put back, as a full build would. First, so that if
    // that fails (a gc took the image meanwhile) the build runs in full with nothing printed yet.
    try {
      if ((await s.refs.stamp()) !== memo.index) await tagImage(s, memo.tags, memo.image.manifest);
    } catch (e) {
      trace(`not used: tagging failed (${e instanceof Error ? e.message : String(e)})`);
      return undefined;
    }
    trace('used');
    const progress = makeProgress(mode, progressOut(ctx, mode));
    memoMod.replayMemo(memo, progress);
    progress.finish();
    await s.cache.touchMany(memoMod.memoKeys(memo)).catch(() => undefined);
    const iid = args.str('iidfile');
    if (iid) writeFileSync(resolve(ctx.cwd, iid), memo.image.manifest.digest);
    summary(args, ctx, mode, memo.image.manifest.digest, memo.tags, memoMod.memoReports(memo));
    return 0;
  } finally {
    await store?.close().catch(() => undefined);
  }
}

export const command: Command = {
  name: 'build',
  summary: 'build an image from a Dockerfile and a context',
  usage: 'tsbuild [build] [CONTEXT|-] [-f Dockerfile] [-t NAME:TAG]… [flags]',
  flags: BUILD_FLAGS,
  details: 'CONTEXT defaults to "."; "-" reads a tar archive (the context) or a Dockerfile from stdin.\n'
    + 'A rebuild with nothing changed is answered from the build memo (see README; TSBUILD_MEMO=0 turns it off,\nTSBUILD_MEMO_TRACE=1 says why a build did or did not use it).\n'
    + 'Exit codes: 0 built, 1 build failed, 2 usage.',
  async run(args: ParsedArgs, ctx: CliContext): Promise<number> {
    let mode: ReturnType<typeof progressMode>;
    // stderr is looked at only when the mode depends on it (a quiet build never makes the stream).
    const flag = args.str('progress');
    try { mode = args.bool('quiet') ? 'quiet' : progressMode(flag, flag === undefined || flag.toLowerCase() === 'auto' ? (ctx.stderrIsTTY ? ctx.stderrIsTTY() : ctx.stderr.isTTY) : undefined); } catch {
      throw usageError(`invalid --progress "${args.str('progress')}"`, 'use auto, tty, plain, json or quiet.');
    }
    const epoch = sourceDateEpoch(args, ctx);
    const labels = parseLabels(args.list('label'));
    const secrets = parseSecrets(args.list('secret'));
    const network = args.str('network');
    if (network !== undefined && !['default', 'none', 'host'].includes(network)) {
      throw usageError(`invalid --network "${network}"`, 'use default, none or host.');
    }
    const outputs = args.list('output');
    // Loaded only when used: the exporters pull in archive and compression code (startup time).
    const specs = outputs.length ? await import('../../oci/export.js').then((m) => outputs.map((o) => m.parseOutputSpec(o))) : [];
    if (args.bool('push') && args.list('tag').length === 0) throw usageError('--push needs a name (-t NAME:TAG)');

    const pull = pullMode(args);
    // The build memo (exec/memo.ts): an unchanged rebuild is answered before anything is planned.
    const memoMod = ctx.env.TSBUILD_MEMO === '0' ? undefined : await import('../../exec/memo.js');
    const memoReq = memoMod && memoRequestOf(args, ctx, pull, memoMod);
    // Always a function (a no-op when off): an optional call `trace?.(f())` would skip f() when off.
    const trace = ctx.env.TSBUILD_MEMO_TRACE === '1' ? (m: string) => { ctx.stderr.write(`tsbuild memo: ${m}\n`); } : (_m: string) => undefined;
    if (memoMod && memoReq) {
      const done = await fromMemo(memoMod, memoReq, args, ctx, mode, trace);
      if (done !== undefined) return done;
    } else trace('not used for this build (stdin, --no-cache, --no-cache-filter, --pull=always, --output, --push or TSBUILD_MEMO=0)');

    const p = await prepare(args, ctx);
    const progress = makeProgress(mode, progressOut(ctx, mode));
    let result: BuildResult;
    const store = await p.store();
    const lease = await store.lease('build');
    try {
      const { BuildExecutor } = await import('../../exec/build.js');
      const { normalizeReference } = await import('../../oci/reference.js');
      const registry = { env: ctx.env, insecureRegistries: insecureRegistries(args, ctx), ...(args.str('authfile') ? { authFile: args.str('authfile')! } : {}) };
      const noCacheFilter = new Set(args.list('no-cache-filter').map((s) => s.toLowerCase()));
      const ex = new BuildExecutor(p.plan, {
        store, ...(p.context ? { context: p.context } : {}), dockerfileKey: p.dockerfileKey, dockerfileText: p.text,
        ...(p.tags[0] ? { scope: normalizeReference(p.tags[0]) } : {}),
        noCache: args.bool('no-cache'), noCacheFilter, labels, ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
        progress, signal: ctx.signal, pull, lease, ...(network ? { network } : {}), secrets,
        limits: runLimits(args), allowInsecure: entitlements(args).has('security.insecure'), registry,
      });
      try {
        result = await ex.run();
      } finally {
        progress.finish();
      }
      await tagImage(store, p.tags.map((t) => normalizeReference(t)), result.manifest!);
      const iid = args.str('iidfile');
      if (iid) writeFileSync(resolve(ctx.cwd, iid), result.manifest!.digest);
      if (memoMod && memoReq) {
        await leaveMemo(memoMod, memoReq.path, {
          request: memoReq.request, dockerfile: p.dockerfileStamp, usedContext: result.usedContext === true, context: p.openedContext?.()?.signature(),
          store, manifest: result.manifest!, configDigest: result.configDigest!, tags: p.tags.map((t) => normalizeReference(t)),
          warnings: p.plan.warnings, steps: result.steps,
        }, result, trace);
      }
      if (specs.length || args.bool('push')) {
        const { exportImage } = await import('../../oci/export.js');
        for (const spec of specs) {
          await exportImage(store, result.manifest!, spec, { names: p.tags, signal: ctx.signal, stdout: ctx.stdout, ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}), registry });
        }
        if (args.bool('push')) {
          const { pushImage } = await import('../../oci/registry.js');
          for (const t of p.tags) {
            progress.info(`pushing ${t}`);
            await pushImage(store, result.manifest!, normalizeReference(t), { ...registry, signal: ctx.signal });
          }
        }
      }
      summary(args, ctx, mode, result.manifest!.digest, p.tags.map((t) => normalizeReference(t)), result.steps);
      return 0;
    } finally {
      await lease.release().catch(() => undefined);
      // Also the store's implicit per-process lease (taken at its first blob write), which would
      // otherwise stay in leases/ until a gc finds its owner dead.
      await store.close().catch(() => undefined);
      p.cleanup();
    }
  },
};
