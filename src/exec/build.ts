/**
 * The build executor: walks a BuildPlan stage by stage (independent stages concurrently; the
 * first failure aborts the rest), step by step, computing each step's cache key, reusing a cached
 * layer when the store has one, otherwise doing the work (COPY/ADD layer, WORKDIR directories,
 * RUN through the sandbox), and finally writing the image config and manifest.
 *
 * Keys chain: key(step) = H(recipe version, key(previous step), inputs(step)). Config-only steps
 * (ENV, LABEL, …) take part in the chain but need no record: they are recomputed (pure). Steps
 * with a layer write a CacheRecord (readable inputs, layer descriptor, meta.scope = the tag) so a
 * later miss is explained by diffing inputs (`file src/app.ts changed`, `ARG V 1 → 2`).
 *
 * `dryRun` computes every key and hit/miss (and the reason) without executing anything: that is
 * `tsbuild debug plan` and `tsbuild cache why`. Keys never depend on a previous step's OUTPUT
 * (only on its key), so a dry run gives the same keys a real build would.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, readdir, lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { TsbError, isTsbError, type Span } from '../errors.js';
import type { Descriptor, Store, Platform, CacheRecord } from '../../store/types.js';
import type { ImageConfig } from '../oci/image.js';
import { layerDescriptor, readImage, writeImage, epochToRFC3339 } from '../oci/image.js';
import type { CopyInstr, HeredocSource as Heredoc, RunInstr, StageInstr, WorkdirInstr, ArgInstr } from '../ir/types.js';
import { expandShellWord } from '../ir/shell.js';
import { resolveMount } from '../ir/mount.js';
import type { BuildPlan, PlannedStage } from '../plan/plan.js';
import { computeKey, explainMiss, normalizeText, sha256Hex, type KeyInputs } from '../plan/cachekey.js';
import { StageState, Expander, applyConfigInstr, resolveWorkdir, runCreatedBy, commandArgv, PROXY_ARGS, DEFAULT_PATH } from '../plan/state.js';
import type { BuildContext } from '../plan/context.js';
import { selectCopy, missingParents, destAgainstWorkdir, type CopyItem, type SourceFS, type SrcNode, type DestView } from './copy/select.js';
import { ContextFS } from './copy/contextfs.js';
import { LayerFS } from './copy/layerfs.js';
import { parseChmod, type ParsedChmod } from './copy/chmod.js';
import { parseChown, resolveOwner, type Owner } from './copy/chown.js';
import { LayerWriter } from './layer/writer.js';
import { decodeName, fsPath } from './layer/names.js';
import type { LayerEntry } from './layer/entry.js';

// ------------------------------------------------------------------------------------------------
// Progress contract (implemented by src/cli/progress.ts)

export interface StepEvent {
  /** 1-based, unique in the build (BuildKit's `#N`). */
  readonly id: number;
  /** `[stage-1 2/4] COPY src /app` style name. */
  readonly name: string;
  readonly stage: number;
  readonly kind: string;
  readonly key?: string;
  readonly line?: number;
}

export interface ProgressSink {
  start(step: StepEvent): void;
  cached(step: StepEvent): void;
  /** Why the step missed (one line per changed input). */
  miss(step: StepEvent, reasons: readonly string[]): void;
  output(step: StepEvent, chunk: string): void;
  done(step: StepEvent, ms: number): void;
  error(step: StepEvent, err: unknown, ms: number): void;
  warn(message: string): void;
  info(message: string): void;
}

export const SILENT: ProgressSink = {
  start() {}, cached() {}, miss() {}, output() {}, done() {}, error() {}, warn() {}, info() {},
};

// ------------------------------------------------------------------------------------------------

export interface ExecOptions {
  store: Store;
  /** Opened lazily: a Dockerfile without COPY needs no context read. */
  context?: () => BuildContext;
  /** Absolute Dockerfile path (cache record source). */
  dockerfileKey: string;
  /** The Dockerfile text (raw heredoc bodies of `<<-` RUN heredocs come from it). */
  dockerfileText?: string;
  /** Tag used as the explanation scope (the first -t), if any. */
  scope?: string;
  noCache?: boolean;
  /** Stage names (lower case) or indexes whose steps must not use the cache. */
  noCacheFilter?: ReadonlySet<string>;
  labels?: Readonly<Record<string, string>>;
  sourceDateEpoch?: number;
  progress?: ProgressSink;
  signal?: AbortSignal;
  dryRun?: boolean;
  /** When to ask a registry for a base image (default missing). */
  pull?: 'always' | 'missing' | 'never';
  /** How FROM talks to registries (--insecure-registry, --authfile, the environment for credentials). */
  registry?: { insecureRegistries?: string[]; authFile?: string; env?: NodeJS.ProcessEnv };
  /** The build's per-RUN cgroup limits (--memory, --cpus, --pids-limit). */
  limits?: { memoryBytes?: number; cpus?: number; pids?: number };
  /** `--allow security.insecure`: without it, RUN --security=insecure is refused (as BuildKit). */
  allowInsecure?: boolean;
  /** Blobs this build produces or reuses are added to it, so a concurrent gc keeps them. */
  lease?: import('../../store/types.js').Lease;
  network?: string;
  secrets?: ReadonlyMap<string, { src?: string; env?: string }>;
}

export interface StepReport {
  readonly id: number;
  readonly stage: number;
  readonly name: string;
  readonly kind: string;
  readonly line: number;
  readonly key: string;
  readonly inputs: KeyInputs;
  /** 'cached' | 'built' | 'config' (recomputed every time, never looked up: config-only steps, FROM, WORKDIR) | 'would-build' (dry run miss) | 'would-hit'. */
  status: 'cached' | 'built' | 'config' | 'would-build' | 'would-hit';
  reasons?: string[];
  ms?: number;
  layer?: Descriptor;
}

export interface StageResult {
  readonly index: number;
  readonly key: string;
  readonly config: ImageConfig;
  readonly layers: Descriptor[];
  /** Filesystem of the stage (for COPY --from); absent in dry runs. */
  readonly fs?: LayerFS;
}

export interface BuildResult {
  /** Manifest descriptor of the target image (absent in a dry run). */
  manifest?: Descriptor;
  configDigest?: string;
  config: ImageConfig;
  key: string;
  steps: StepReport[];
  /** Image references resolved through the store or a registry (absent in a dry run). */
  images?: string[];
  /** Whether a step read a remote source (ADD URL): its result can change with no local change. */
  remote?: boolean;
  /** Whether a step read the build context. */
  usedContext?: boolean;
}

const EMPTY_SHA = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

class Aborted extends Error {}

/** Files at least this big, and this much of them unhashed, make a cold COPY read once (see prepareCopy). */
const SPECULATE_FILE = 256 << 10;
const SPECULATE_TOTAL = 16 << 20;

export class BuildExecutor {
  private readonly opts: ExecOptions;
  private readonly progress: ProgressSink;
  private readonly results = new Map<number, Promise<StageResult>>();
  private readonly abort = new AbortController();
  private nextId = 1;
  private readonly wipedCaches = new Set<string>();
  /** Cache mount dirs in use by running steps of this build (sharing=private). */
  private readonly cacheBusy = new Map<string, number>();
  /** Temp files to remove when the build ends. */
  private readonly cleanups: (() => Promise<unknown>)[] = [];
  readonly steps: StepReport[] = [];
  /** Image references this build resolved (FROM, COPY --from, RUN --mount from=), for BuildResult. */
  private readonly imagesUsed = new Set<string>();
  /** Whether a step read a remote source (ADD URL), for BuildResult. */
  private remoteUsed = false;
  private ctxFS: ContextFS | undefined;
  private readonly created: string;
  private readonly epoch: number | undefined;

  constructor(private readonly plan: BuildPlan, opts: ExecOptions) {
    this.opts = opts;
    this.progress = opts.progress ?? SILENT;
    this.epoch = opts.sourceDateEpoch;
    this.created = epochToRFC3339(opts.sourceDateEpoch ?? 0);
    if (opts.signal) {
      if (opts.signal.aborted) this.abort.abort(opts.signal.reason);
      else opts.signal.addEventListener('abort', () => this.abort.abort(opts.signal!.reason), { once: true });
    }
  }

  /**
   * Cache records of built steps, being written. A record only serves later builds, so its put
   * (lock, append, fsync: a few ms, more on a busy disk) overlaps the next step instead of
   * delaying it; puts are chained (records land in step order, no lock contention with ourselves)
   * and run() waits for all of them before it returns or throws; a failed put fails the build.
   */
  private putChain: Promise<void> = Promise.resolve();
  private putError: unknown;
  private deferPut(span: Span, put: () => Promise<unknown>): void {
    this.putChain = this.putChain.then(put).then(() => undefined, (e: unknown) => { this.putError ??= isTsbError(e) ? e.withSpan(span) : e; });
  }

  private checkAbort(): void {
    if (this.abort.signal.aborted) throw new Aborted('aborted');
  }

  private contextFS(span: Span): ContextFS {
    if (!this.ctxFS) {
      if (!this.opts.context) {
        throw new TsbError('TSB4007', 'COPY/ADD from the build context, but this build has no context', {
          span, hint: 'pass a context directory (tsbuild build DIR) or a tar on stdin.',
        });
      }
      this.ctxFS = new ContextFS(this.opts.context());
    }
    return this.ctxFS;
  }

  async run(): Promise<BuildResult> {
    for (const w of this.plan.warnings) this.progress.warn(w);
    const all = this.plan.stages.map((s) => this.stage(s));
    const settled = await Promise.allSettled(all);
    await this.putChain;
    for (const c of this.cleanups.splice(0)) await c().catch(() => undefined);
    this.ctxFS?.ctx.saveStatCache();
    const failed = settled.find((r) => r.status === 'rejected' && !(r.reason instanceof Aborted));
    if (failed) throw (failed as PromiseRejectedResult).reason;
    if (this.putError !== undefined) throw this.putError;
    const abortedOnly = settled.find((r) => r.status === 'rejected');
    if (abortedOnly) {
      throw new TsbError('TSB4008', 'build interrupted', { hint: 'the build was cancelled (signal); nothing was tagged.', exitCode: 130 });
    }
    const target = await this.results.get(this.plan.target)!;
    const config = structuredClone(target.config);
    if (this.opts.labels && Object.keys(this.opts.labels).length) {
      config.config ??= {};
      config.config.Labels = { ...(config.config.Labels ?? {}), ...this.opts.labels };
    }
    config.created = this.created;
    this.steps.sort((a, b) => a.id - b.id);
    if (this.opts.dryRun) return { config, key: target.key, steps: this.steps };
    if (this.opts.lease) await this.opts.lease.add(...target.layers.map((l) => l.digest)).catch(() => undefined);
    const manifest = await writeImage(this.opts.store, { config, layers: target.layers });
    const m = await this.opts.store.blobs.readJSON<{ config: Descriptor }>(manifest.digest);
    return { manifest, configDigest: m.config.digest, config, key: target.key, steps: this.steps, images: [...this.imagesUsed], remote: this.remoteUsed, usedContext: this.ctxFS !== undefined };
  }

  private stage(ps: PlannedStage): Promise<StageResult> {
    let p = this.results.get(ps.index);
    if (!p) {
      p = (async () => {
        for (const d of ps.deps) if (!this.results.has(d)) this.stage(this.plan.all.get(d)!);
        try {
          return await this.runStage(ps);
        } catch (e) {
          if (!(e instanceof Aborted)) this.abort.abort(e);
          throw e;
        }
      })();
      this.results.set(ps.index, p);
    }
    return p;
  }

  private stageLabel(ps: PlannedStage): string {
    if (this.plan.ir.stages.length === 1) return '';
    return `${ps.name ?? `stage-${ps.index}`} `;
  }

  private async runStage(ps: PlannedStage): Promise<StageResult> {
    const ir = this.plan.ir;
    const stage = ps.stage;
    const total = 1 + stage.instructions.filter(isLayerStep).length;
    let n = 0;
    const label = (text: string) => `[${this.stageLabel(ps)}${++n}/${total}] ${text}`;
    const noCache = this.opts.noCache || this.opts.noCacheFilter?.has(String(ps.index))
      || (ps.name !== undefined && this.opts.noCacheFilter?.has(ps.name.toLowerCase()));

    // ---- FROM
    let st: StageState;
    let layers: Descriptor[] = [];
    let key: string;
    let fs: LayerFS | undefined;
    let baseId = '';
    const fromEv = this.event(ps, 'FROM', label(`FROM ${baseDisplay(ps)}`), stage.from.span.line);
    const t0 = Date.now();
    this.progress.start(fromEv);
    try {
      if (ps.base.kind === 'scratch') {
        st = StageState.scratch(ps.platform, this.created);
        key = computeKey(undefined, { op: 'FROM', base: 'scratch', platform: platformText(ps.platform) });
        baseId = 'scratch';
        if (!this.opts.dryRun) fs = new LayerFS([]);
      } else if (ps.base.kind === 'stage') {
        const dep = await this.stage(this.plan.all.get(ps.base.index)!);
        this.checkAbort();
        st = new StageState(dep.config, this.created);
        layers = [...dep.layers];
        key = computeKey(undefined, { op: 'FROM', base: dep.key });
        baseId = `stage ${ps.base.index}: ${dep.key}`;
        fs = dep.fs;
      } else {
        const img = await this.resolveImage(ps.base.ref, ps.platform, ps.base.span);
        st = new StageState(img.config, this.created);
        layers = img.layers;
        key = computeKey(undefined, { op: 'FROM', base: img.digest, platform: platformText(ps.platform) });
        baseId = img.digest;
        if (!this.opts.dryRun) fs = new LayerFS(layers.map((l) => this.opts.store.blobs.path(l.digest)));
      }
    } catch (e) {
      this.progress.error(fromEv, e, Date.now() - t0);
      throw e;
    }
    st.cmdSet = false;
    // BuildKit gives an image without PATH the default one (checked on 0.25 with an imported rootfs).
    if (!(st.cc.Env ?? []).some((e) => e.startsWith('PATH='))) st.cc.Env = [...(st.cc.Env ?? []), `PATH=${DEFAULT_PATH}`];
    this.record(fromEv, key, { op: 'FROM' }, 'config', stage.from.span.line);
    this.progress.done(fromEv, Date.now() - t0);

    // ---- ONBUILD triggers of the base image
    const triggers = st.cc.OnBuild ?? [];
    let instructions: readonly StageInstr[] = stage.instructions;
    if (triggers.length > 0 && ps.base.kind !== 'scratch') {
      const parsed = await parseTriggers(triggers, stage.from.span);
      instructions = [...parsed, ...instructions];
      st.cc.OnBuild = null;
    }

    // ---- steps
    const missState: MissState = {};
    for (const instr of instructions) {
      this.checkAbort();
      const r = await this.step(ps, st, instr, key, layers, fs, noCache ?? false, label, baseId, missState);
      key = r.key;
      fs = r.fs;
    }
    st.config.rootfs = { type: 'layers', diff_ids: layers.map((l) => l.digest) };
    return { index: ps.index, key, config: st.config, layers, ...(fs ? { fs } : {}) };
  }

  private event(ps: PlannedStage, kind: string, name: string, line: number): StepEvent {
    return { id: this.nextId++, name, stage: ps.index, kind, line };
  }

  private record(ev: StepEvent, key: string, inputs: KeyInputs, status: StepReport['status'], line: number, extra: Partial<StepReport> = {}): StepReport {
    const r: StepReport = { id: ev.id, stage: ev.stage, name: ev.name, kind: ev.kind, line, key, inputs, status, ...extra };
    this.steps.push(r);
    return r;
  }

  private async resolveImage(ref: string, platform: Platform, span: Span): Promise<{ config: ImageConfig; layers: Descriptor[]; digest: string }> {
    this.imagesUsed.add(ref);
    const store = this.opts.store;
    let img;
    try {
      const { resolveBaseImage } = await import('../oci/registry.js');
      const pull = this.opts.dryRun ? 'never' : (this.opts.pull ?? 'missing');
      img = (await resolveBaseImage(store, ref, { ...this.opts.registry, pull, platform, signal: this.abort.signal })).image;
    } catch (e) {
      throw isTsbError(e) ? e.withSpan(span) : new TsbError('TSB3050', `cannot resolve base image ${ref}`, { span, cause: e });
    }
    const layers = img.config.rootfs.diff_ids.map((d, i) => layerDescriptor(d, img.manifest.layers[i]?.size ?? 0));
    // Sizes of uncompressed blobs in our store (the manifest may list compressed ones).
    for (let i = 0; i < layers.length; i++) {
      const sz = await store.blobs.size(layers[i]!.digest);
      if (sz !== undefined) layers[i] = layerDescriptor(layers[i]!.digest, sz);
      else if (!this.opts.dryRun) {
        throw new TsbError('TSB3051', `layer ${layers[i]!.digest} of ${ref} is missing from the store`, { span, hint: 'pull the image again (tsbuild pull) or run tsbuild store verify.' });
      }
    }
    return { config: img.config, layers, digest: img.descriptor.digest };
  }

  /** One instruction. Returns the new chain key and stage filesystem. */
  private async step(
    ps: PlannedStage, st: StageState, instr: StageInstr, parent: string, layers: Descriptor[], fs: LayerFS | undefined,
    noCache: boolean, label: (t: string) => string, baseId: string, missState: MissState,
  ): Promise<{ key: string; fs: LayerFS | undefined }> {
    const ir = this.plan.ir;
    const ex = new Expander(st.expansionEnv(), ir.escapeToken);
    const line = instr.span.line;
    const argInputs = (names: Iterable<string>): KeyInputs => {
      const out: KeyInputs = {};
      const env = st.envMap();
      for (const n of names) {
        if (env.has(n) || PROXY_ARGS.has(n)) continue;
        const a = st.args.find((x) => x.name === n);
        if (a) out[`arg:${n}`] = a.value ?? '(unset)';
      }
      return out;
    };

    if (instr.kind === 'ARG') {
      this.applyArg(st, instr, ex);
      const inputs: KeyInputs = { op: 'ARG', instruction: normalizeText(instr.original), ...argInputs(ex.used) };
      missState.prior = [...(missState.prior ?? []), `${inputs.instruction}${Object.entries(inputs).filter(([k]) => k.startsWith('arg:')).map(([k, v]) => ` (${k.slice(4)}=${v})`).join('')}`];
      return { key: computeKey(parent, inputs), fs };
    }
    if (!isLayerStep(instr)) {
      const text = applyConfigInstr(st, instr, ex);
      const inputs: KeyInputs = { op: instr.kind, instruction: normalizeText(text) };
      missState.prior = [...(missState.prior ?? []), inputs.instruction!];
      return { key: computeKey(parent, inputs), fs };
    }
    // Config-only instructions since the last keyed step, readable in this step's record so a
    // miss caused by one of them (ENV X=1 → ENV X=2) is named.
    const prior = instr.kind === 'WORKDIR' ? [] : (missState.prior ?? []);
    if (instr.kind !== 'WORKDIR') missState.prior = [];
    else missState.prior = [...(missState.prior ?? []), normalizeText(`WORKDIR ${instr.path.raw}`)];

    const ev = this.event(ps, instr.kind, label(displayText(instr)), line);
    const t0 = Date.now();
    this.progress.start(ev);
    try {
      if (instr.kind === 'WORKDIR') return await this.workdir(st, instr, ex, parent, layers, fs, ev, t0, argInputs);
      // COPY / ADD / RUN: keyed, cached.
      const prepared = instr.kind === 'RUN'
        ? await this.prepareRun(st, instr, ex, argInputs, layers)
        : await this.prepareCopy(ps, st, instr, ex, fs, argInputs);
      // The stage's base is named in every keyed step, so a miss caused by a new base image
      // says so on the step itself (not just "an earlier step changed").
      prepared.inputs.base = baseId;
      if (prior.length) prepared.inputs.above = prior.join('\n');
      // Large file lists go to a side file (content-addressed) so cache records stay small: the
      // cache index is read at every build start. The digest of the list keys the step.
      const fileList = splitFileInputs(prepared.inputs);
      const key = computeKey(parent, prepared.inputs);
      const store = this.opts.store;
      let rec: CacheRecord | undefined;
      if (!noCache) {
        rec = await store.cache.get(key);
        if (rec?.layer && !(await store.blobs.has(rec.layer.digest))) rec = undefined;
      }
      const ms = () => Date.now() - t0;
      if (rec) {
        this.progress.cached(ev);
        if (!this.opts.dryRun) {
          // Keep the record findable from where the step is now (lines move when a comment is
          // added) and for this tag, so the next miss of this line is explained against it.
          const scopeNow = this.opts.scope;
          if (rec.source?.file !== this.opts.dockerfileKey || rec.source.line !== line || (scopeNow !== undefined && rec.meta?.scope !== scopeNow)) {
            await store.cache.put({ ...rec, source: { file: this.opts.dockerfileKey, line }, meta: { ...(rec.meta ?? {}), ...(scopeNow !== undefined ? { scope: scopeNow } : {}) } }).catch(() => undefined);
          }
          await store.cache.touch(key).catch(() => undefined);
        }
        const layer = rec.layer ? layerDescriptor(rec.layer.digest, rec.layer.size) : undefined;
        fs = this.addLayer(st, layers, fs, layer, prepared.createdBy);
        this.record(ev, key, prepared.inputs, this.opts.dryRun ? 'would-hit' : 'cached', line, { ...(layer ? { layer } : {}), ms: ms() });
        return { key, fs };
      }
      // The previous record of this line only serves to explain the miss: with --no-cache the
      // reason is fixed, so skip the lookup (findBySource scans the whole cache log).
      let reasons: string[];
      if (noCache) reasons = ['--no-cache'];
      else {
        const prev = (await store.cache.findBySource(this.opts.dockerfileKey, line, this.opts.scope))[0]
          ?? (this.opts.scope !== undefined ? (await store.cache.findBySource(this.opts.dockerfileKey, line))[0] : undefined);
        const fullNow: KeyInputs = fileList ? { ...prepared.inputs, ...fileList.files } : prepared.inputs;
        if (fileList) delete fullNow.files;
        const prevFull = prev ? { ...prev, inputs: await this.expandFileInputs(prev.inputs) } : undefined;
        reasons = explainMiss(fullNow, parent, prevFull);
      }
      if (reasons.length === 1 && reasons[0] === 'an earlier step changed' && missState.first) {
        reasons = [`an earlier step changed (line ${missState.first.line}: ${missState.first.reason})`];
      }
      missState.first ??= { line, reason: reasons[0] ?? 'changed' };
      this.progress.miss(ev, reasons);
      if (this.opts.dryRun) {
        this.record(ev, key, prepared.inputs, 'would-build', line, { reasons, ms: ms() });
        return { key, fs };
      }
      const layer = await prepared.execute(ev);
      this.checkAbort();
      if (fileList) await this.writeFileInputs(fileList);
      const record = {
        key, parent, ...(layer ? { layer } : {}), instruction: normalizeText(instr.original).slice(0, 4000),
        source: { file: this.opts.dockerfileKey, line }, inputs: prepared.inputs,
        meta: { ...(this.opts.scope !== undefined ? { scope: this.opts.scope } : {}), kind: instr.kind },
      };
      this.deferPut(instr.span, () => store.cache.put(record));
      fs = this.addLayer(st, layers, fs, layer, prepared.createdBy);
      this.record(ev, key, prepared.inputs, 'built', line, { reasons, ms: ms(), ...(layer ? { layer } : {}) });
      this.progress.done(ev, ms());
      return { key, fs };
    } catch (e) {
      if (!(e instanceof Aborted)) this.progress.error(ev, e, Date.now() - t0);
      throw isTsbError(e) ? e.withSpan(instr.span) : e;
    }
  }

  private fileInputsDir(): string {
    return join(this.opts.store.root, 'tsbuild', 'inputs', 'v1');
  }

  /** Side file `<store>/tsbuild/inputs/v1/<hex>.json`: {"version":1,"files":{"file:PATH": "…"}}. */
  private async writeFileInputs(list: { digest: string; files: KeyInputs }): Promise<void> {
    const { mkdir, open, rename, stat } = await import('node:fs/promises');
    const dir = this.fileInputsDir();
    const final = join(dir, `${list.digest.slice(7)}.json`);
    try { await stat(final); return; } catch { /* write it */ }
    await mkdir(dir, { recursive: true });
    const tmp = `${final}.${process.pid}.${Date.now()}.tmp`;
    const fh = await open(tmp, 'w', 0o644);
    try { await fh.writeFile(JSON.stringify({ version: 1, files: list.files })); await fh.sync(); } finally { await fh.close(); }
    await rename(tmp, final);
  }

  private async expandFileInputs(inputs: KeyInputs): Promise<KeyInputs> {
    const d = inputs.files;
    if (!d || !/^sha256:[0-9a-f]{64}$/.test(d)) return inputs;
    try {
      const { readFile } = await import('node:fs/promises');
      const j = JSON.parse(await readFile(join(this.fileInputsDir(), `${d.slice(7)}.json`), 'utf8')) as { version: number; files: KeyInputs };
      if (j.version !== 1) return inputs;
      const out: KeyInputs = { ...inputs, ...j.files };
      delete out.files;
      return out;
    } catch { return inputs; }
  }

  private addLayer(st: StageState, layers: Descriptor[], fs: LayerFS | undefined, layer: Descriptor | undefined, createdBy: string): LayerFS | undefined {
    if (layer) {
      layers.push(layer);
      this.opts.lease?.add(layer.digest).catch(() => undefined);
      st.history(createdBy, false);
      if (fs && !this.opts.dryRun) fs = fs.extend(this.opts.store.blobs.path(layer.digest));
    } else st.history(createdBy, true);
    return fs;
  }

  private applyArg(st: StageState, instr: ArgInstr, ex: Expander): void {
    const parts: string[] = [];
    for (const kv of instr.args) {
      const name = kv.key.raw;
      let value: string | undefined;
      const def = kv.value ? ex.word(kv.value) : undefined;
      if (this.plan.buildArgs.has(name)) value = this.plan.buildArgs.get(name);
      else if (def !== undefined) value = def;
      else if (this.plan.metaArgs.has(name)) value = this.plan.metaArgs.get(name);
      else if (this.plan.predefined.has(name)) value = this.plan.predefined.get(name);
      const i = st.args.findIndex((a) => a.name === name);
      if (i >= 0) st.args.splice(i, 1);
      st.args.push({ name, value });
      // History shows the effective value (`ARG X=given` for --build-arg X=given), as BuildKit.
      parts.push(value !== undefined ? `${name}=${value}` : name);
    }
    st.history(`ARG ${parts.join(' ')}`, true);
  }

  // ---------------------------------------------------------------------------------- WORKDIR

  private async workdir(
    st: StageState, instr: WorkdirInstr, ex: Expander, parent: string, layers: Descriptor[], fs: LayerFS | undefined,
    ev: StepEvent, t0: number, argInputs: (n: Iterable<string>) => KeyInputs,
  ): Promise<{ key: string; fs: LayerFS | undefined }> {
    const wd = resolveWorkdir(st.workdir(), ex.word(instr.path), instr.path.span);
    st.cc.WorkingDir = wd;
    const user = st.cc.User ?? '';
    const inputs: KeyInputs = { op: 'WORKDIR', instruction: `WORKDIR ${wd}`, user, ...argInputs(ex.used) };
    const key = computeKey(parent, inputs);
    let layer: Descriptor | undefined;
    if (!this.opts.dryRun && fs && wd !== '/') {
      const missing: string[] = [];
      const parts = wd.slice(1).split('/');
      let cur = '';
      for (const p of parts) {
        cur = cur ? `${cur}/${p}` : p;
        const real = fs.realDest('/' + cur).slice(1);
        const t = await fs.typeOf('/' + real);
        if (t === undefined) missing.push(real);
      }
      // BuildKit records a layer for every WORKDIR other than / — an empty tar when the
      // directory already exists (checked against 0.25) — so history and rootfs line up alike.
      {
        const owner = user ? await resolveOwner(parseChown(user), etcReader(fs), instr.span) : { uid: 0, gid: 0 };
        const w = new LayerWriter(this.epoch !== undefined ? { sourceDateEpoch: this.epoch } : {});
        for (const m of missing) w.add({ path: m, type: 'dir', mode: 0o755, uid: owner.uid, gid: owner.gid, mtime: this.epoch ?? 0 });
        const r = await w.commit(this.opts.store.blobs);
        layer = layerDescriptor(r.diffId, r.size);
      }
    }
    fs = this.addLayer(st, layers, fs, layer, `WORKDIR ${wd}`);
    this.record(ev, key, inputs, 'config', instr.span.line, { ms: Date.now() - t0, ...(layer ? { layer } : {}) });
    this.progress.done(ev, Date.now() - t0);
    return { key, fs };
  }

  // ---------------------------------------------------------------------------------- RUN

  private async prepareRun(st: StageState, instr: RunInstr, ex: Expander, argInputs: (n: Iterable<string>) => KeyInputs, layers: readonly Descriptor[]): Promise<Prepared> {
    const shell = st.shell();
    const argv = commandArgv(instr.command, shell);
    const env = st.envMap();
    const argNames = st.args.map((a) => a.name).filter((n) => !PROXY_ARGS.has(n));
    const inputs: KeyInputs = {
      op: 'RUN',
      instruction: normalizeText(instr.command.form === 'exec' ? JSON.stringify(instr.command.argv) : instr.command.text),
      argv: JSON.stringify(argv),
      env: sha256Hex(JSON.stringify(st.cc.Env ?? [])),
      user: st.cc.User ?? '',
      workdir: st.workdir(),
      ...(instr.heredocs.length ? { heredocs: sha256Hex(JSON.stringify(instr.heredocs.map((h) => [h.name, h.content, h.expand, h.fileDescriptor]))) } : {}),
      ...(instr.mounts.length ? { mounts: JSON.stringify(instr.mounts.map((m) => [m.type, [...m.options].sort()])) } : {}),
      ...(instr.network ? { network: instr.network.raw } : {}),
      ...(instr.security ? { security: instr.security.raw } : {}),
      ...argInputs(argNames),
    };

    // What the command sees: image ENV, then build ARGs in scope (ENV wins), PATH defaulted.
    const runEnv = new Map<string, string>();
    // Proxy build args reach RUN without an ARG line, and never enter the key or the image.
    // Both spellings are set (HTTP_PROXY and http_proxy), as BuildKit's proxy env does.
    for (const [k, v] of this.plan.buildArgs) {
      if (!PROXY_ARGS.has(k)) continue;
      runEnv.set(k.toUpperCase(), v);
      runEnv.set(k.toLowerCase(), v);
    }
    for (const a of st.args) if (a.value !== undefined && !env.has(a.name)) runEnv.set(a.name, a.value);
    for (const [k, v] of env) runEnv.set(k, v);
    if (!runEnv.has('PATH')) runEnv.set('PATH', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    const mounts = instr.mounts.map((m) => ({ m, r: resolveMountSafe(m, (v) => ex.text(v, m.span)) }));
    for (const { r } of mounts) {
      if (r.type === 'cache') inputs[`mount:${r.target}`] = `cache ${r.id ?? r.target} ${r.sharing ?? 'shared'}`;
      // What a bind mount shows is an input, as in BuildKit: the context files below its source
      // (content, mode, type) or the stage/image it comes from.
      if (r.type === 'bind') {
        const src = (r.source ?? '/').replace(/^\/+/, '');
        let what: string;
        if (r.from === undefined) {
          const cfs = this.contextFS(instr.span);
          const top = cfs.ctx.resolve(src);
          const lines: string[] = [];
          if (top) {
            const walk = async (rel: string): Promise<void> => {
              const node = (await cfs.lstat(rel))!;
              lines.push(`${rel} ${await cfs.keyOf(node)}`);
              if (node.type === 'dir') for (const k of cfs.ctx.children(rel)) await walk(rel === '' ? k : `${rel}/${k}`);
            };
            await walk(top.rel);
          }
          what = `context ${src} ${sha256Hex(lines.join('\n'))}`;
        } else {
          const lower = r.from.toLowerCase();
          const stg = [...this.plan.all.values()].find((x) => x.name === lower || String(x.index) === lower);
          what = stg ? `stage ${(await this.stage(stg)).key}` : `image ${(await this.resolveImage(r.from, this.plan.platform, instr.span)).digest}`;
          what += ` ${src}`;
        }
        inputs[`mount:${r.target}`] = `bind ${what}${r.readOnly ? '' : ' rw'}`;
      }
    }
    const layersNow = [...layers];
    const user = st.cc.User ?? '';
    const workdir = st.workdir();
    const script = runScript(instr, argv, shell, this.opts.dockerfileText);
    // History shows the script with its heredoc bodies, as BuildKit writes it.
    const shown = script.length === 1 && script[0]!.startsWith('/dev/pipes/') ? [...shell, script[0]!] : script;
    const createdBy = `RUN ${runCreatedBy(shown, st.args.filter((a) => !PROXY_ARGS.has(a.name)), env)} # buildkit`;
    const network = instr.network ? ex.word(instr.network) : (this.opts.network ?? 'default');
    const security = instr.security ? ex.word(instr.security) : undefined;
    if (security === 'insecure' && !this.opts.allowInsecure) {
      throw new TsbError('TSB4034', 'RUN --security=insecure needs the security.insecure entitlement', {
        span: instr.span, hint: 'build with --allow security.insecure if you trust this Dockerfile (the step then runs with all capabilities and no seccomp filter).',
      });
    }
    return {
      inputs, createdBy,
      execute: async (ev) => {
        const store = this.opts.store;
        let runStepMod: typeof import('./run-step.js');
        try { runStepMod = await import('./run-step.js'); } catch (e) {
          throw new TsbError('TSB4100', 'RUN is not supported yet', {
            span: instr.span, cause: e, hint: 'the sandbox that runs RUN steps is missing from this build of tsbuild.',
          });
        }
        const { snapshotsForImage } = await import('./layer/snapshot.js');
        const { commitUpperdir } = await import('./layer/diff.js');
        const lowers = await snapshotsForImage(store, layersNow.map((l) => l.digest));
        const upper = await store.snapshots.tempDir('run-');
        const holds: (() => Promise<void>)[] = [];
        let tail = '';
        const onOut = (b: Buffer) => {
          const t = b.toString('utf8');
          tail = (tail + t).slice(-8192);
          this.progress.output(ev, t);
        };
        try {
          const runMounts = await this.runMounts(mounts.map((x) => x.r), instr.span, holds);
          const secretEnv: string[] = [];
          for (const { r } of mounts) {
            if (r.type === 'secret' && r.env) {
              const sec = this.opts.secrets?.get(r.id ?? '');
              const v = sec ? await readSecret(sec, this.opts) : undefined;
              if (v !== undefined) secretEnv.push(`${r.env}=${v}`);
            }
          }
          if (script.length === 1 && script[0]!.startsWith('/dev/pipes/')) {
            const h = instr.heredocs[0]!;
            runMounts.push({ type: 'secret', target: script[0]!, content: heredocRunContent(h, runEnv, this.plan.ir.escapeToken), mode: 0o755 });
          }
          const res = await runStepMod.runStep({
            lowerdirs: lowers, upperdir: upper, argv: script, env: [...[...runEnv].map(([k, v]) => `${k}=${v}`), ...secretEnv],
            user, cwd: workdir, network: network as never, ...(security === 'insecure' ? { security: 'insecure' } : {}),
            mounts: runMounts, onStdout: onOut, onStderr: onOut, signal: this.abort.signal,
            ...(this.opts.limits && Object.keys(this.opts.limits).length ? { limits: this.opts.limits } : {}),
          });
          if (res.exitCode !== 0 || res.startError || res.oomKilled) {
            throw runStepMod.runStepError(res, script, { span: instr.span, outputTail: tail });
          }
          // BuildKit's runtime leaves the mount points it made (/dev, /etc, /proc, /sys, 0755 root) in
          // the layer of the first RUN on a tree without them; the image then has them too.
          const { existsSync, mkdirSync } = await import('node:fs');
          for (const d of ['dev', 'etc', 'proc', 'sys']) {
            if (!lowers.some((l) => existsSync(join(l, d))) && !existsSync(join(upper, d))) mkdirSync(join(upper, d), { mode: 0o755 });
          }
          // A RUN always makes a layer in BuildKit (its runtime touches /etc at least): an empty
          // tar when nothing changed (emptyLayer), so history's empty_layer flags match.
          // The upper becomes the new layer's snapshot (keeps nanosecond mtimes for later RUNs).
          const lr = await commitUpperdir(store, upper, {
            lowers, keepAsSnapshot: { snapshots: store.snapshots, lowerDiffIds: layersNow.map((l) => l.digest) },
            ...(this.epoch !== undefined ? { sourceDateEpoch: this.epoch } : {}), emptyLayer: true,
          });
          return layerDescriptor(lr.diffId, lr.size);
        } finally {
          await rm(upper, { recursive: true, force: true }).catch(() => undefined);
          for (const h of holds.reverse()) await h().catch(() => undefined);
        }
      },
    };
  }

  /** RUN --mount → run-step mounts (cache dirs in the store, secrets, tmpfs, binds). */
  /**
   * `holds` receives a release function per resource held for the step (sharing=locked cache locks,
   * sharing=private scratch copies); the caller releases them when the RUN ends.
   * Cache sharing: shared (default) = one dir for every user; locked = one RUN at a time across
   * processes (a store lock held for the whole step); private = a fresh empty dir when this process
   * already has the cache mounted (known gap: a private user in another process is not seen).
   */
  private async runMounts(ms: readonly ResolvedMountLike[], span: Span, holds: (() => Promise<void>)[] = []): Promise<import('./run-step.js').RunStepMount[]> {
    const out: import('./run-step.js').RunStepMount[] = [];
    const { mkdir } = await import('node:fs/promises');
    for (const m of ms) {
      const target = m.target ?? '';
      switch (m.type) {
        case 'cache': {
          const id = m.id ?? target;
          const dir = join(this.opts.store.root, 'tsbuild', 'runcache', 'v1', sha256Hex(id).slice(0, 32));
          // --no-cache starts cache mounts empty (once per build), as BuildKit does; later builds
          // then see what this one left.
          if (this.opts.noCache && !this.wipedCaches.has(dir)) {
            this.wipedCaches.add(dir);
            await rm(dir, { recursive: true, force: true });
          }
          let source = dir;
          if (m.sharing === 'locked') {
            const lockDir = join(this.opts.store.root, 'tsbuild', 'v1', 'locks');
            await mkdir(lockDir, { recursive: true });
            const { withLock } = await import('../../store/lock.js');
            const signal = this.abort.signal;
            // Held until the step ends: withLock's body waits for our release call.
            const release = await new Promise<() => Promise<void>>((held, failed) => {
              let end!: () => void;
              const ended = new Promise<void>((r) => { end = r; });
              const finished: Promise<void> = withLock(join(lockDir, `runcache-${sha256Hex(id).slice(0, 32)}.lock`), async () => {
                held(async () => { end(); await finished.catch(() => undefined); });
                await ended;
              }, { timeoutMs: 24 * 3600_000, signal });
              finished.catch(failed);
            });
            holds.push(release);
          }
          await mkdir(dir, { recursive: true, mode: m.mode ?? 0o755 });
          if (m.sharing === 'private' && (this.cacheBusy.get(dir) ?? 0) > 0) {
            const { mkdtemp } = await import('node:fs/promises');
            source = await mkdtemp(join(this.opts.store.root, 'tsbuild', 'runcache', 'v1', 'private-'));
            const { chmod } = await import('node:fs/promises');
            await chmod(source, m.mode ?? 0o755);
            const scratch = source;
            holds.push(async () => { await rm(scratch, { recursive: true, force: true }); });
          } else {
            this.cacheBusy.set(dir, (this.cacheBusy.get(dir) ?? 0) + 1);
            holds.push(async () => { this.cacheBusy.set(dir, (this.cacheBusy.get(dir) ?? 1) - 1); });
          }
          if (m.uid !== undefined || m.gid !== undefined) {
            const { chown } = await import('node:fs/promises');
            await chown(source, m.uid ?? 0, m.gid ?? 0).catch(() => undefined);
          }
          out.push({ type: 'bind', target, source, readonly: m.readOnly });
          break;
        }
        case 'tmpfs':
          out.push({ type: 'tmpfs', target, ...(m.sizeLimit !== undefined ? { size: m.sizeLimit } : {}) });
          break;
        case 'secret': {
          const id = m.id ?? '';
          const sec = this.opts.secrets?.get(id);
          const content = sec ? await readSecret(sec, this.opts) : undefined;
          if (content === undefined) {
            if (m.required) throw new TsbError('TSB4030', `secret ${id} not found`, { span, hint: `pass it with --secret id=${id},src=FILE (or env=VAR).` });
            break;
          }
          if (m.env && !m.target) break;
          out.push({ type: 'secret', target: target || `/run/secrets/${id}`, content, ...(m.mode !== undefined ? { mode: m.mode } : {}), ...(m.uid !== undefined ? { uid: m.uid } : {}), ...(m.gid !== undefined ? { gid: m.gid } : {}) });
          break;
        }
        case 'bind': {
          const { existsSync, statSync, lstatSync, mkdtempSync, copyFileSync } = await import('node:fs');
          const src = (m.source ?? '/').replace(/^\/+/, '');
          // A writable bind never writes through to its source: writes land in a throwaway
          // overlay upper (directories) or a private copy (files), as BuildKit discards them.
          const bindHost = (host: string, isDir: boolean) => {
            if (m.readOnly) { out.push({ type: 'bind', target, source: host, readonly: true }); return; }
            if (isDir) { out.push({ type: 'layers', target, lowerdirs: [host], readwrite: true }); return; }
            const tmpd = mkdtempSync(join(tmpdir(), 'tsbuild-bind-'));
            this.cleanups.push(() => rm(tmpd, { recursive: true, force: true }));
            const copy = join(tmpd, 'file');
            copyFileSync(host, copy);
            out.push({ type: 'bind', target, source: copy, readonly: false });
          };
          if (m.from === undefined) {
            const cfs = this.contextFS(span);
            const e = cfs.ctx.resolve(src);
            if (!e) throw new TsbError('TSB4031', `RUN --mount source "${m.source ?? '/'}" is not in the build context`, { span });
            bindHost(cfs.absPath(e.rel), e.type === 'dir');
          } else {
            const lower = m.from.toLowerCase();
            const st = [...this.plan.all.values()].find((s) => s.name === lower || String(s.index) === lower);
            let diffIds: string[];
            let view: LayerFS | undefined;
            if (st) { const r = await this.stage(st); diffIds = r.layers.map((l) => l.digest); view = r.fs; }
            else {
              const img = await this.resolveImage(m.from, this.plan.platform, span);
              diffIds = img.layers.map((l) => l.digest);
              view = new LayerFS(img.layers.map((l) => this.opts.store.blobs.path(l.digest)));
            }
            const { snapshotsForImage } = await import('./layer/snapshot.js');
            const lowers = await snapshotsForImage(this.opts.store, diffIds);
            // The sub-path resolves through the stage's OWN symlinks, chroot-style (BuildKit 0.25:
            // source=/link/sub with /link -> /real works), never through the host's.
            const real = src === '' || src === '.' ? '' : view?.realpathSync(src) ?? src.replace(/^\/+/, '');
            if (real === '') {
              out.push({ type: 'layers', target, lowerdirs: lowers, readwrite: !m.readOnly });
              break;
            }
            // A sub-path of the stage: the same directory in each layer snapshot (topmost first for
            // a file); a layer whose copy of the path has a symlink on the way is skipped (it was
            // replaced above, and following it would read the host).
            const hosts = lowers.map((l) => hostPathNoLinks(l, real, lstatSync)).filter((h): h is string => h !== undefined);
            const top = hosts[hosts.length - 1];
            if (!top) throw new TsbError('TSB4031', `RUN --mount source "${m.source}" is not in ${m.from}`, { span });
            if (statSync(top).isDirectory()) {
              const dirs = hosts.filter((h) => statSync(h).isDirectory());
              out.push({ type: 'layers', target, lowerdirs: dirs, readwrite: !m.readOnly });
            } else bindHost(top, false);
          }
          break;
        }
        default:
          throw new TsbError('TSB4033', `RUN --mount=type=${m.type} is not supported yet`, { span, hint: 'ssh mounts are not implemented; use a secret.' });
      }
    }
    return out;
  }

  // ---------------------------------------------------------------------------------- COPY / ADD

  private async prepareCopy(
    ps: PlannedStage, st: StageState, instr: CopyInstr, ex: Expander, fs: LayerFS | undefined,
    argInputs: (n: Iterable<string>) => KeyInputs,
  ): Promise<Prepared> {
    const heredocAt = new Map<number, Heredoc>(instr.heredocs.map((h) => [h.sourceIndex, h]));
    const heredocSources: Heredoc[] = [];
    const srcTexts: string[] = [];
    const srcSpans = new Map<string, Span>();
    instr.sources.forEach((w, i) => {
      const hd = heredocAt.get(i);
      if (hd) heredocSources.push(hd);
      else { const t = ex.word(w); srcTexts.push(t); if (!srcSpans.has(t)) srcSpans.set(t, w.span); }
    });
    const destText = ex.word(instr.dest);
    const fromText = instr.from ? ex.word(instr.from) : undefined;
    const chownText = instr.chown ? ex.word(instr.chown) : undefined;
    const chmodText = instr.chmod ? ex.word(instr.chmod) : undefined;
    const excludes = instr.exclude.map((w) => ex.word(w));
    const checksum = instr.checksum ? ex.word(instr.checksum) : undefined;
    const chmod: ParsedChmod | undefined = chmodText !== undefined ? parseChmod(chmodText, instr.chmod!.span) : undefined;
    const chownSpec = chownText !== undefined && chownText !== '' ? parseChown(chownText, instr.chown!.span) : undefined;
    const dest = destAgainstWorkdir(destText, st.workdir());
    if (srcTexts.length + heredocSources.length === 0) {
      throw new TsbError('TSB3060', `${instr.kind} needs at least one source`, { span: instr.span });
    }

    // Source filesystem: the context, another stage, or an image.
    let source: SourceFS;
    let fromKey: string | undefined;
    let fromContext = true;
    if (fromText !== undefined) {
      fromContext = false;
      const lower = fromText.toLowerCase();
      const byName = [...this.plan.all.values()].find((s) => s.name === lower || String(s.index) === lower);
      if (byName && byName.index < ps.index) {
        const dep = await this.stage(byName);
        fromKey = dep.key;
        source = dep.fs ?? new LayerFS([]);
      } else {
        const img = await this.resolveImage(fromText, ps.platform, instr.from!.span);
        fromKey = img.digest;
        source = this.opts.dryRun ? new LayerFS([]) : new LayerFS(img.layers.map((l) => this.opts.store.blobs.path(l.digest)));
      }
    } else if (srcTexts.length > 0) {
      source = this.contextFS(instr.span);
    } else {
      source = new LayerFS([]);
    }

    // URLs (ADD only).
    const urls = instr.kind === 'ADD' ? srcTexts.filter(isURL) : [];
    const localSrcs = srcTexts.filter((s) => !urls.includes(s));
    if (instr.kind === 'COPY' && srcTexts.some(isURL)) {
      throw new TsbError('TSB3061', 'source can not be a URL for COPY', { span: instr.span, hint: 'use ADD for URLs.' });
    }
    if (checksum !== undefined && (urls.length === 0 || srcTexts.length !== 1)) {
      throw new TsbError('TSB3062', '--checksum can only be used with a single HTTP(S) source', { span: instr.checksum!.span });
    }

    // Keys need only WHICH source files are read, never the destination image: select against an
    // empty destination now (cheap, no layer indexing on a hit) and for real in execute().
    const NO_DEST: DestView = { typeOf: async () => undefined };
    const select = (view: DestView, realDest: string) => selectCopy(source, view, {
      sources: localSrcs, dest: realDest, parents: instr.parents, exclude: excludes, span: instr.span,
      sourceSpans: localSrcs.map((x) => srcSpans.get(x)),
    });
    const sel = localSrcs.length > 0 && fromContext
      ? await select(NO_DEST, dest)
      : { items: [] as CopyItem[], sourcePaths: [] as string[] };
    const multi = localSrcs.length + urls.length + heredocSources.length > 1;

    // Key inputs.
    const inputs: KeyInputs = {
      op: instr.kind,
      instruction: normalizeText(`${instr.kind} ${flagText(instr)} ${[...instr.sources.map((w) => w.raw), instr.dest.raw].join(' ')}`),
      dest,
      ...argInputs(ex.used),
    };
    if (fromKey !== undefined) inputs.from = fromKey;
    for (const h of heredocSources) inputs[`heredoc:${h.name}`] = sha256Hex(heredocContent(h, st, ir(this.plan)));
    // Remote sources are fetched now so their content keys the step.
    const fetched: { url: string; file: string; digest: string; mtime: number; name: string }[] = [];
    let tmpDir: string | undefined;
    if (urls.length > 0) {
      this.remoteUsed = true;
      tmpDir = await mkdtemp(join(tmpdir(), 'tsbuild-add-'));
      for (const u of urls) {
        const f = await fetchURL(u, tmpDir, checksum, instr.span, this.abort.signal);
        fetched.push(f);
        inputs[`url:${u}`] = f.digest;
      }
    }
    // ADD of a local archive: detected by content now (it changes the result, and the digest is keyed).
    const archives = new Set<string>();
    if (instr.kind === 'ADD' && fromContext && instr.unpack !== false) {
      for (const it of sel.items) {
        if (it.src.type !== 'file' || !localSrcs.length) continue;
        const isTop = sel.items.indexOf(it) >= 0 && isTopSource(it, localSrcs);
        if (isTop && await looksLikeArchive((source as ContextFS).absPath(it.src.path))) archives.add(it.src.path);
      }
      if (archives.size) inputs.unpack = [...archives].sort().join(',');
    }
    if (chownText) inputs.chown = chownText;
    if (chmodText) inputs.chmod = chmodText;
    if (instr.link) inputs.link = 'true';

    // BuildKit's text: keyword, --chown and --chmod as given (in that order; other flags are not
    // shown), sources, heredoc sources as <<NAME, destination. Checked against BuildKit 0.25.
    const shownFlags = [...(chownText ? [`--chown=${chownText}`] : []), ...(chmodText ? [`--chmod=${chmodText}`] : [])];
    const createdBy = `${instr.kind} ${[...shownFlags, ...srcTexts, ...heredocSources.map((h) => `<<${h.name}`), destText].join(' ')} # buildkit`;
    const epoch = this.epoch;
    const store = this.opts.store;
    let speculative = false;
    let precomputed: Promise<Descriptor | undefined> | undefined;
    /** Context files the speculative layer hashes for their keys as it reads them (one read). */
    const taps = new Map<string, ReturnType<BuildContext['digestTap']>>();
    const tapBySource = new Map<object, ReturnType<BuildContext['digestTap']>>();
    const execute = async (): Promise<Descriptor | undefined> => {
      // --link: the layer is made on an empty tree (independent of the base), so it holds every
      // parent of what it copies and nothing is resolved through the image's symlinks.
      // --link: BuildKit builds the layer on its own and merges it; in the merged image the
      // directories that already exist keep their metadata (checked: /tmp stays 1777), which is
      // what computing parents against the image gives.
      const destView: DestView = fs ?? new LayerFS([]);
      const realDest = fs ? fs.realDest(dest) : dest;
      const sel = localSrcs.length > 0 ? await select(destView, realDest) : { items: [] as CopyItem[], sourcePaths: [] as string[] };
      try {
        const owner: Owner | undefined = chownSpec ? await resolveOwner(chownSpec, etcReader(fs), instr.chown!.span) : undefined;
        const entries: LayerEntry[] = [];
        const ownerOf = (n: SrcNode) => owner ?? (fromContext ? { uid: 0, gid: 0 } : { uid: n.uid ?? 0, gid: n.gid ?? 0 });
        // Symlinks keep 0777: Linux has no lchmod, and BuildKit leaves them alone.
        const modeOf = (n: SrcNode) => (chmod && n.type !== 'symlink' ? chmod.apply(n.perm, n.type === 'dir') : n.perm);
        // A URL or heredoc onto an existing directory lands inside it (BuildKit 0.25), like a file source.
        const destIsDirForExtra = realDest.endsWith('/') || multi
          || ((fetched.length > 0 || heredocSources.length > 0) && (await destView.typeOf(realDest)) === 'dir');
        const destRel = cleanAbs(realDest);
        const extra: CopyItem[] = [];
        // Archives unpack into the destination directory instead of being copied.
        const unpackDirs: string[] = [];
        const firstOfLink = new Map<string, string>();
        for (const it of sel.items) {
          if (archives.has(it.src.path) && it.src.type === 'file' && isTopSource(it, localSrcs)) continue;
          if (it.dest === '') continue;
          if (it.contentsRoot) {
            // BuildKit does not copy the source directory's own metadata onto the destination:
            // an existing one is left alone, a missing one is made like a parent (0755).
            if ((await destView.typeOf('/' + it.dest)) !== undefined) continue;
            const po = owner ?? { uid: 0, gid: 0 };
            // Made with mkdir(octal) under BuildKit's umask 022: special bits and group/other write drop.
            entries.push({ path: it.dest, type: 'dir', mode: chmod?.octal !== undefined ? chmod.octal & 0o755 : 0o755, uid: po.uid, gid: po.gid, mtime: epoch ?? 0 });
            continue;
          }
          const o = ownerOf(it.src);
          const e: LayerEntry = { path: it.dest, type: it.src.type === 'other' ? 'file' : it.src.type, mode: modeOf(it.src), uid: o.uid, gid: o.gid, mtime: it.src.mtime };
          if (it.src.type === 'other') {
            // Fifos and devices are recreated, as `cp -a` as root (BuildKit 0.25); a tar cannot hold a socket.
            if (it.src.special === undefined || it.src.special === 'socket') continue;
            // BuildKit 0.25's copy recreates a block device as a char device (same numbers): matched.
            e.type = it.src.special === 'block' ? 'char' : it.src.special;
            if (it.src.special !== 'fifo') { e.devmajor = it.src.devmajor ?? 0; e.devminor = it.src.devminor ?? 0; }
          }
          const linkKey = it.src.linkId !== undefined ? `${it.group ?? 0}/${it.src.linkId}` : undefined;
          if (it.src.type === 'file' && linkKey !== undefined && firstOfLink.has(linkKey)) {
            // Hardlinked in the source, hardlinked in the layer (BuildKit keeps links within one source match).
            e.type = 'hardlink';
            e.linkname = firstOfLink.get(linkKey)!;
            entries.push(e);
            continue;
          }
          if (it.src.type === 'file') {
            if (linkKey !== undefined) firstOfLink.set(linkKey, it.dest);
            e.size = it.src.size;
            if (fromContext) {
              const cfs = source as ContextFS;
              const rel = it.src.path;
              // The bytes the key was hashed from, when the context kept them (small files of a
              // cold build): no second read. mtimeNs is what the writer would note from the file.
              const held = cfs.ctx.takeBytes(rel);
              if (held) { e.source = { buffer: held.bytes }; e.mtimeNs = held.mtimeNs; }
              else {
                e.source = { path: cfs.absPath(rel) };
                const tap = taps.get(rel);
                if (tap) tapBySource.set(e.source, tap);
              }
            }
            else { const lfs = source as LayerFS; const p = it.src.path; e.source = { stream: () => lfs.openStream(p) as never }; }
          } else if (it.src.type === 'symlink') e.linkname = it.src.linkTarget!;
          entries.push(e);
        }
        for (const h of heredocSources) {
          const content = Buffer.from(heredocContent(h, st, ir(this.plan)));
          const path = destIsDirForExtra || realDest.endsWith('/') ? joinRel(destRel, h.name) : destRel;
          const o = owner ?? { uid: 0, gid: 0 };
          entries.push({ path, type: 'file', mode: chmod ? chmod.apply(0o644, false) : 0o644, uid: o.uid, gid: o.gid, mtime: epoch ?? 0, source: { buffer: content }, size: content.length });
          extra.push({ dest: path, src: { path: h.name, type: 'file', perm: 0o644, size: content.length, mtime: 0 } });
        }
        for (const f of fetched) {
          const path = destIsDirForExtra ? joinRel(destRel, f.name) : destRel;
          const o = owner ?? { uid: 0, gid: 0 };
          const st2 = await lstat(f.file);
          entries.push({ path, type: 'file', mode: chmod ? chmod.apply(0o600, false) : 0o600, uid: o.uid, gid: o.gid, mtime: f.mtime, source: { path: f.file }, size: st2.size });
          extra.push({ dest: path, src: { path: f.name, type: 'file', perm: 0o600, size: st2.size, mtime: f.mtime } });
        }
        for (const a of archives) {
          const dir = await mkdtemp(join(tmpdir(), 'tsbuild-unpack-'));
          unpackDirs.push(dir);
          const { unpackLayerFlat } = await import('./layer/unpack.js');
          const { createReadStream } = await import('node:fs');
          // Archive symlinks are followed inside the destination, as BuildKit's ADD does.
          // Directories the archive implies but has no header for are made now (mtime = now); they
          // get the build's epoch like every directory tsbuild creates, so an ADD is reproducible.
          // Known gap: a header dated within the second before the unpack is taken for implicit.
          const unpackStartNs = (BigInt(Date.now()) - 1000n) * 1_000_000n;
          await unpackLayerFlat(createReadStream((source as ContextFS).absPath(a)), dir, { followArchiveSymlinks: true });
          const unpacked = await walkHostDir(dir);
          const firstByIno = new Map<number, string>();
          for (const u of unpacked) {
            const path = joinRel(destRel, u.rel);
            const o = owner ?? { uid: u.uid, gid: u.gid };
            // --chmod does not apply to what an archive unpacks (BuildKit 0.25); --chown does.
            const implicitDir = u.type === 'dir' && u.mtimeNs >= unpackStartNs;
            const e: LayerEntry = implicitDir
              ? { path, type: u.type, mode: u.perm, uid: o.uid, gid: o.gid, mtime: epoch ?? 0 }
              : { path, type: u.type, mode: u.perm, uid: o.uid, gid: o.gid, mtime: u.mtime, mtimeNs: u.mtimeNs };
            if (u.type === 'file' && u.nlink > 1 && firstByIno.has(u.ino)) {
              // The archive's hardlinks stay hardlinks.
              e.type = 'hardlink';
              e.linkname = firstByIno.get(u.ino)!;
              entries.push(e);
              extra.push({ dest: path, src: { path: u.rel, type: 'file', perm: u.perm, size: 0, mtime: u.mtime } });
              continue;
            }
            if (u.type === 'file' && u.nlink > 1) firstByIno.set(u.ino, path);
            if (u.type === 'file') { e.source = { path: join(dir, u.rel) }; e.size = u.size; }
            if (u.type === 'symlink') e.linkname = u.link!;
            if (u.type === 'char' || u.type === 'block') {
              // The archive's device nodes are made too (tar -x as root); glibc's dev_t split.
              e.devmajor = ((u.rdev >>> 8) & 0xfff) | (Math.floor(u.rdev / 2 ** 32) & ~0xfff);
              e.devminor = (u.rdev & 0xff) | ((u.rdev >>> 12) & ~0xff);
            }
            entries.push(e);
            extra.push({ dest: path, src: { path: u.rel, type: u.type === 'fifo' || u.type === 'char' || u.type === 'block' ? 'other' : u.type, perm: u.perm, size: u.size, mtime: u.mtime } });
          }
        }
        const allItems = [...sel.items.filter((i) => !archives.has(i.src.path)), ...extra];
        const present = new Set(entries.map((e) => e.path));
        const parents = await missingParents(destView, allItems, instr.span);
        const po = owner ?? { uid: 0, gid: 0 };
        for (const p of parents) {
          if (present.has(p)) continue;
          present.add(p);
          // BuildKit 0.25 gives the parents it creates an OCTAL --chmod mode too (0751 seen), but
          // leaves them 0755 with a symbolic one.
          // (mkdir under umask 022: --chmod=1777 gives 0755, 0751 stays 0751; checked against BuildKit 0.25.)
          entries.push({ path: p, type: 'dir', mode: chmod?.octal !== undefined && archives.size === 0 ? chmod.octal & 0o755 : 0o755, uid: po.uid, gid: po.gid, mtime: epoch ?? 0 });
        }
        // Even an empty COPY (a wildcard matching nothing) is a layer in BuildKit.
        const w = new LayerWriter({ ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}), tap: (src) => tapBySource.get(src) });
        const seen = new Set<string>();
        for (const e of entries) { if (seen.has(e.path)) continue; seen.add(e.path); w.add(e); }
        const r = await w.commit(store.blobs);
        for (const d of unpackDirs) await rm(d, { recursive: true, force: true });
        return layerDescriptor(r.diffId, r.size);
      } finally {
        if (tmpDir) await rm(tmpDir, { recursive: true, force: true });
      }
    };
    if (this.opts.dryRun && tmpDir) await rm(tmpDir, { recursive: true, force: true });
    if (fromContext && localSrcs.length > 0) {
      const cfs = source as ContextFS;
      // Cold path: when much of the selection was never hashed, build the layer FIRST, hashing
      // each large file as it streams into the layer, so every byte is read once. If the key
      // then hits, the speculative layer is simply unreferenced (gc takes it).
      let uncached = 0;
      for (const p of sel.sourcePaths) {
        const e = cfs.ctx.get(p);
        if (e?.type === 'file' && e.size >= SPECULATE_FILE && !cfs.ctx.isStatCached(p)) uncached += e.size;
      }
      if (uncached >= SPECULATE_TOTAL && !this.opts.dryRun) speculative = true;
      const keyOf = async (p: string) => [p, await cfs.keyOf((await cfs.lstat(p))!)] as const;
      let keys: (readonly [string, string])[];
      if (speculative) {
        // The layer hashes the large unhashed files as it reads them (digestTap), so their keys
        // are taken after it (digest() waits for the tap instead of reading the file again).
        // The others first: a small file read for its key is kept for the layer (takeBytes).
        const late = (p: string) => { const e = cfs.ctx.get(p); return e?.type === 'file' && e.size >= SPECULATE_FILE && !cfs.ctx.isStatCached(p); };
        const early = await mapLimit(sel.sourcePaths.filter((p) => !late(p)), 16, keyOf);
        const rest = sel.sourcePaths.filter(late);
        for (const p of rest) taps.set(p, cfs.ctx.digestTap(p));
        // A tap the layer did not feed (a hardlink, a failure) leaves digest() to read the file.
        precomputed = execute().finally(() => { for (const t of taps.values()) t.drop(); });
        // A failed speculative write fails the step here.
        await precomputed;
        keys = [...early, ...await mapLimit(rest, 16, keyOf)];
      } else {
        keys = await mapLimit(sel.sourcePaths, 16, keyOf);
      }
      for (const [p, k] of keys) inputs[`file:${p === '' ? '.' : p}`] = k;
    }
    if (precomputed) {
      const pre = precomputed;
      return { inputs, createdBy, execute: () => pre };
    }
    return { inputs, createdBy, execute };
  }
}

const INLINE_FILES = 200;

/** Moves `file:*` inputs out when there are many; leaves `files: <digest>` in their place. */
function splitFileInputs(inputs: KeyInputs): { digest: string; files: KeyInputs } | undefined {
  const names = Object.keys(inputs).filter((k) => k.startsWith('file:'));
  if (names.length <= INLINE_FILES) return undefined;
  const files: KeyInputs = {};
  for (const k of names.sort()) { files[k] = inputs[k]!; delete inputs[k]; }
  const digest = 'sha256:' + sha256Hex(JSON.stringify(files));
  inputs.files = digest;
  return { digest, files };
}

interface MissState { first?: { line: number; reason: string }; prior?: string[] }

interface Prepared {
  inputs: KeyInputs;
  createdBy: string;
  execute: (ev: StepEvent) => Promise<Descriptor | undefined>;
}

function ir(plan: BuildPlan) { return plan.ir; }

function isLayerStep(i: StageInstr): i is CopyInstr | RunInstr | WorkdirInstr {
  return i.kind === 'COPY' || i.kind === 'ADD' || i.kind === 'RUN' || i.kind === 'WORKDIR';
}

function baseDisplay(ps: PlannedStage): string {
  if (ps.base.kind === 'scratch') return 'scratch';
  if (ps.base.kind === 'stage') return ps.stage.from.image.raw;
  return ps.base.ref;
}

function platformText(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

function displayText(i: StageInstr): string {
  const first = i.original.split('\n')[0]!;
  return normalizeText(first).slice(0, 200);
}

function flagText(i: CopyInstr): string {
  const f: string[] = [];
  if (i.from) f.push(`--from=${i.from.raw}`);
  if (i.chown) f.push(`--chown=${i.chown.raw}`);
  if (i.chmod) f.push(`--chmod=${i.chmod.raw}`);
  if (i.link) f.push('--link');
  if (i.parents) f.push('--parents');
  for (const e of i.exclude) f.push(`--exclude=${e.raw}`);
  if (i.checksum) f.push(`--checksum=${i.checksum.raw}`);
  if (i.keepGitDir) f.push('--keep-git-dir');
  if (i.unpack !== undefined) f.push(`--unpack=${i.unpack}`);
  return f.sort().join(' ');
}

function heredocContent(h: Heredoc, st: StageState, irx: { escapeToken: '\\' | '`' }): string {
  if (!h.expand) return h.content;
  return expandShellWord(h.content, st.expansionEnv(), irx.escapeToken, { skipProcessQuotes: true }).value;
}

function isURL(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function isTopSource(it: CopyItem, srcs: readonly string[]): boolean {
  const p = it.src.path;
  return srcs.some((s) => s.replace(/^\/+/, '').replace(/^\.\//, '') === p) || srcs.some((s) => /[*?[]/.test(s));
}

/**
 * Whether ADD unpacks a local file: it must be a tar once decompressed (gzip, bzip2, xz, zstd or
 * none). A compressed file that is not a tar (plain.gz) is copied as it is, like BuildKit.
 */
async function looksLikeArchive(path: string): Promise<boolean> {
  const { createReadStream } = await import('node:fs');
  const { openDecompressed } = await import('./layer/unpack.js');
  const src = createReadStream(path, { highWaterMark: 64 << 10 });
  try {
    const { stream } = await openDecompressed(src);
    const chunks: Buffer[] = [];
    let n = 0;
    try {
      for await (const c of stream) {
        chunks.push(c as Buffer);
        n += (c as Buffer).length;
        if (n >= 512) break;
      }
    } catch { return false; }
    finally { stream.destroy(); }
    const b = Buffer.concat(chunks);
    return b.length >= 512 && isTarHeader(b.subarray(0, 512));
  } catch {
    return false;
  } finally {
    src.destroy();
  }
}

/** A ustar/GNU/v7 tar header: the checksum field matches the header bytes. */
function isTarHeader(h: Buffer): boolean {
  if (h.every((x) => x === 0)) return false;
  const field = h.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  const want = parseInt(field, 8);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === want;
}

interface HostEntry { rel: string; type: 'file' | 'dir' | 'symlink' | 'fifo' | 'char' | 'block'; perm: number; uid: number; gid: number; size: number; mtime: number; mtimeNs: bigint; link?: string; ino: number; nlink: number; rdev: number }

/** Entries of an unpacked archive dir (files, dirs, links, fifos, devices), sorted, with inode identity. */
async function walkHostDir(root: string): Promise<HostEntry[]> {
  const out: HostEntry[] = [];
  const walk = async (rel: string) => {
    // Names are bytes (an archive may hold non-UTF-8 names): see layer/names.ts.
    const names = (await readdir(fsPath(rel ? join(root, rel) : root), { encoding: 'buffer' })).map((b) => decodeName(b)).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const s = await lstat(fsPath(join(root, r)), { bigint: true }); // ns mtimes reach the snapshot (layer/mtimes.ts)
      const type = s.isDirectory() ? 'dir' : s.isSymbolicLink() ? 'symlink' : s.isFile() ? 'file' : s.isFIFO() ? 'fifo'
        : s.isCharacterDevice() ? 'char' : s.isBlockDevice() ? 'block' : undefined;
      if (!type) continue;
      out.push({ rel: r, type, perm: Number(s.mode & 0o7777n), uid: Number(s.uid), gid: Number(s.gid), size: type === 'file' ? Number(s.size) : 0, mtime: Number(s.mtimeNs / 1_000_000_000n), mtimeNs: s.mtimeNs, ino: Number(s.ino), nlink: Number(s.nlink), rdev: Number(s.rdev), ...(type === 'symlink' ? { link: decodeName(await readlink(fsPath(join(root, r)), { encoding: 'buffer' })) } : {}) });
      if (type === 'dir') await walk(r);
    }
  };
  await walk('');
  return out;
}

/** root/rel when every component below root exists and none is a symlink (lstat only), else undefined. */
function hostPathNoLinks(root: string, rel: string, lstatSync: typeof import('node:fs').lstatSync): string | undefined {
  let cur = root;
  for (const part of rel.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') return undefined;
    cur = join(cur, part);
    let st;
    try { st = lstatSync(cur); } catch { return undefined; }
    if (st.isSymbolicLink()) return undefined;
  }
  return cur;
}

function cleanAbs(p: string): string {
  return p.split('/').filter((x) => x && x !== '.').join('/');
}

function joinRel(a: string, b: string): string {
  return a === '' ? b : `${a}/${b}`;
}

function etcReader(fs: LayerFS | undefined) {
  return async (p: '/etc/passwd' | '/etc/group') => fs?.readFileSync(p)?.toString('utf8');
}

async function mapLimit<T, R>(xs: readonly T[], limit: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let i = 0;
  const worker = async () => { while (i < xs.length) { const k = i++; out[k] = await fn(xs[k]!); } };
  await Promise.all(Array.from({ length: Math.min(limit, xs.length) }, worker));
  return out;
}

/** ONBUILD triggers of a base image → IR instructions (parsed like a Dockerfile of their own). */
async function parseTriggers(triggers: readonly string[], span: Span): Promise<StageInstr[]> {
  const text = `FROM scratch\n${triggers.join('\n')}\n`;
  try {
    const syn = await import('../syntax/index.js') as unknown as { parse: (t: string, f: string) => unknown };
    const irm = await import('../ir/index.js') as unknown as { toIR: (a: unknown) => { stages: { instructions: StageInstr[] }[] } };
    const out = irm.toIR(syn.parse(text, `${span.file} (ONBUILD)`));
    return out.stages[0]!.instructions.map((i) => ({ ...i, span }));
  } catch (e) {
    throw new TsbError('TSB3070', 'cannot run the base image\'s ONBUILD triggers', { span, cause: e, hint: 'the base image carries an ONBUILD instruction tsbuild could not parse.' });
  }
}

/** Download an ADD URL into dir, verifying --checksum. */
async function fetchURL(url: string, dir: string, checksum: string | undefined, span: Span, signal: AbortSignal): Promise<{ url: string; file: string; digest: string; mtime: number; name: string }> {
  const { createWriteStream } = await import('node:fs');
  // The registry's HTTP client, not fetch: it honours HTTPS_PROXY/NO_PROXY and trusts the system
  // bundle and NODE_EXTRA_CA_CERTS (which the `tsbuild` launcher keeps out of Node's start-up).
  const { httpRequest, discard, redirectTarget } = await import('../oci/http.js');
  let res: Awaited<ReturnType<typeof httpRequest>>;
  try {
    let at = new URL(url);
    for (let hops = 0; ; hops++) {
      res = await httpRequest({ method: 'GET', url: at, signal });
      const next = hops < 20 ? redirectTarget(res) : undefined;
      if (!next) break;
      discard(res);
      at = next;
    }
  } catch (e) {
    throw new TsbError('TSB4020', `failed to fetch ${url}`, { span, cause: e, hint: 'check the URL and that the server is reachable.' });
  }
  if (res.status < 200 || res.status > 299) {
    discard(res);
    throw new TsbError('TSB4021', `failed to fetch ${url}: HTTP ${res.status}`, { span, hint: 'check the URL.' });
  }
  const u = new URL(url);
  let name = decodeURIComponent(u.pathname.split('/').filter(Boolean).pop() ?? '');
  if (!name || name === '.' || name === '..') name = '__unnamed__';
  const file = join(dir, `dl-${createHash('sha256').update(url).digest('hex').slice(0, 16)}`);
  const h = createHash('sha256');
  const out = createWriteStream(file);
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    h.update(chunk);
    if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
  }
  await new Promise<void>((res2, rej) => { out.on('error', rej); out.end(() => res2()); });
  const digest = 'sha256:' + h.digest('hex');
  if (checksum !== undefined) {
    const want = checksum.includes(':') ? checksum : `sha256:${checksum}`;
    if (!/^sha256:[0-9a-f]{64}$/.test(want)) {
      throw new TsbError('TSB3063', `unsupported --checksum "${checksum}"`, { span, hint: 'write --checksum=sha256:<64 hex digits>.' });
    }
    if (want !== digest) {
      throw new TsbError('TSB4022', `digest mismatch for ${url}: expected ${want}, got ${digest}`, { span, hint: 'the file changed on the server, or the checksum is wrong.' });
    }
  }
  const lm = res.headers['last-modified'];
  const mtime = lm ? Math.trunc(Date.parse(lm) / 1000) || 0 : 0;
  return { url, file, digest, mtime, name };
}

interface ResolvedMountLike {
  type: string; from?: string; source?: string; target?: string; readOnly: boolean; required: boolean;
  id?: string; sharing?: string; mode?: number; uid?: number; gid?: number; sizeLimit?: number; env?: string;
}

function resolveMountSafe(m: import('../ir/types.js').RunMount, expand: (v: string) => string): ResolvedMountLike {
  return resolveMount(m, expand) as ResolvedMountLike;
}

async function readSecret(sec: { src?: string; env?: string }, opts: ExecOptions): Promise<string | undefined> {
  void opts;
  if (sec.src) {
    const { readFile } = await import('node:fs/promises');
    try { return await readFile(sec.src, 'utf8'); } catch (e) {
      throw new TsbError('TSB4034', `cannot read secret file ${sec.src}`, { cause: e, hint: 'check the --secret src= path.' });
    }
  }
  if (sec.env) return process.env[sec.env];
  return undefined;
}

function heredocRunContent(h: { content: string }, env: Map<string, string>, esc: '\\' | '`'): string {
  void env; void esc;
  return h.content;
}

/**
 * The argv a RUN executes. Shell form with heredocs: a lone `<<EOF` runs the body as the script;
 * otherwise the whole text with its heredoc bodies goes to the shell, which handles `<<` itself.
 */
function runScript(instr: RunInstr, argv: string[], shell: string[], source?: string): string[] {
  // `<<-` bodies: the shell strips the tabs itself, so it gets the body as written.
  const lines = source?.replace(/\r\n/g, '\n').split('\n');
  const raw = (h: RunInstr['heredocs'][number]) => {
    if (!h.chomp || !lines) return h.content;
    const end = h.span.endLine ?? h.span.line;
    if (h.span.line < 1 || end > lines.length || end < h.span.line) return h.content;
    return lines.slice(h.span.line - 1, end).join('\n') + '\n';
  };
  if (instr.command.form !== 'shell' || instr.heredocs.length === 0) return argv;
  const text = instr.command.text.trim();
  const h0 = instr.heredocs[0]!;
  if (instr.heredocs.length === 1 && /^[0-9]*<<-?\s*["']?[A-Za-z0-9_]+["']?$/.test(text)) {
    // A script with a shebang runs as a file (BuildKit mounts it at /dev/pipes/NAME).
    if (h0.content.startsWith('#!')) return [`/dev/pipes/${h0.name}`];
    return [...shell, h0.content];
  }
  let script = instr.command.text;
  for (const h of instr.heredocs) script += `\n${raw(h)}${h.name}`;
  return [...shell, script];
}

export { EMPTY_SHA };
