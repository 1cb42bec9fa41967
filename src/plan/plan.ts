/**
 * IR + build arguments → the stage graph of one build: which stages the target needs, what each
 * stage's FROM names (scratch, an earlier stage, or an image reference, meta-ARGs expanded), the
 * stages each one reads (`COPY --from`, `RUN --mount=from=`), and the build-arg bookkeeping
 * (values, predefined platform ARGs, unused build-arg warning).
 *
 * Step-level work (expansion against the live ENV, cache keys, COPY selection) happens as the
 * executor walks the stages, because it needs the base image's config and the context. The same
 * code path serves `tsbuild debug plan`, which walks the stages without executing anything.
 */
import { TsbError, type Span } from '../errors.js';
import type { DockerfileIR, Stage, ArgInstr } from '../ir/types.js';
import { expandShellWord } from '../ir/shell.js';
import type { Platform } from '../../store/types.js';
import { PROXY_ARGS } from './state.js';

export type BaseRef =
  | { readonly kind: 'scratch' }
  | { readonly kind: 'stage'; readonly index: number }
  | { readonly kind: 'image'; readonly ref: string; readonly span: Span };

export interface PlannedStage {
  readonly index: number;
  readonly name?: string;
  readonly stage: Stage;
  readonly base: BaseRef;
  /** Platform of the FROM (`--platform` on FROM, else the build's target platform). */
  readonly platform: Platform;
  /** Stages this one needs first (FROM stage, COPY --from stage, RUN --mount from). */
  readonly deps: readonly number[];
}

export interface BuildPlan {
  readonly ir: DockerfileIR;
  /** Index of the stage the build produces. */
  readonly target: number;
  /** Stages needed, in an order where deps come first. */
  readonly stages: readonly PlannedStage[];
  /** Every stage (needed or not), by index, for lookups. */
  readonly all: ReadonlyMap<number, PlannedStage>;
  /** `--build-arg` values (K=V, or K taken from the environment). */
  readonly buildArgs: ReadonlyMap<string, string>;
  /** Meta ARGs (before the first FROM) with their effective values. */
  readonly metaArgs: ReadonlyMap<string, string | undefined>;
  /** Predefined platform ARGs (TARGETPLATFORM, BUILDARCH, …). */
  readonly predefined: ReadonlyMap<string, string>;
  readonly platform: Platform;
  readonly warnings: string[];
}

export interface PlanOptions {
  buildArgs?: ReadonlyMap<string, string>;
  target?: string;
  platform?: Platform;
}

export const HOST_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

export function predefinedArgs(target: Platform, build: Platform = HOST_PLATFORM): Map<string, string> {
  const fmt = (p: Platform) => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
  return new Map([
    ['TARGETPLATFORM', fmt(target)], ['TARGETOS', target.os], ['TARGETARCH', target.architecture], ['TARGETVARIANT', target.variant ?? ''],
    ['BUILDPLATFORM', fmt(build)], ['BUILDOS', build.os], ['BUILDARCH', build.architecture], ['BUILDVARIANT', build.variant ?? ''],
  ]);
}

/** Parse `--build-arg` values: `K=V`, or `K` alone taken from the environment (skipped when unset). */
export function parseBuildArgs(list: readonly string[], env: NodeJS.ProcessEnv): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of list) {
    const i = a.indexOf('=');
    if (i === 0) throw new TsbError('TSB0101', `invalid --build-arg "${a}"`, { hint: 'write --build-arg NAME=VALUE or --build-arg NAME.', exitCode: 2 });
    if (i < 0) { const v = env[a]; if (v !== undefined) m.set(a, v); }
    else m.set(a.slice(0, i), a.slice(i + 1));
  }
  return m;
}

function expandWith(raw: string, env: Map<string, string>, ir: DockerfileIR, span: Span): string {
  try { return expandShellWord(raw, env, ir.escapeToken).value; } catch (e) {
    throw e instanceof TsbError ? e.withSpan(span) : e;
  }
}

/** Meta ARG values: build-arg overrides default; defaults expand against earlier meta ARGs. */
export function metaArgValues(metaArgs: readonly ArgInstr[], buildArgs: ReadonlyMap<string, string>, predefined: ReadonlyMap<string, string>, ir: DockerfileIR): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  const env = new Map<string, string>(predefined);
  for (const instr of metaArgs) {
    for (const kv of instr.args) {
      const name = kv.key.raw;
      let v: string | undefined;
      if (buildArgs.has(name)) v = buildArgs.get(name);
      else if (kv.value) v = expandWith(kv.value.raw, env, ir, kv.value.span);
      else v = predefined.get(name);
      out.set(name, v);
      if (v !== undefined) env.set(name, v); else env.delete(name);
    }
  }
  return out;
}

export function makePlan(ir: DockerfileIR, opts: PlanOptions = {}): BuildPlan {
  const buildArgs = opts.buildArgs ?? new Map<string, string>();
  const platform = opts.platform ?? HOST_PLATFORM;
  const predefined = predefinedArgs(platform);
  const meta = metaArgValues(ir.metaArgs, buildArgs, predefined, ir);
  const fromEnv = new Map<string, string>(predefined);
  for (const [k, v] of meta) if (v !== undefined) fromEnv.set(k, v);

  if (ir.stages.length === 0) {
    throw new TsbError('TSB3040', 'the Dockerfile has no FROM instruction', { span: { file: ir.file, line: 1, col: 1 }, hint: 'start the Dockerfile with FROM IMAGE (or FROM scratch).' });
  }
  const byName = new Map<string, number>();
  const all = new Map<number, PlannedStage>();
  for (const st of ir.stages) {
    const imageText = expandWith(st.from.image.raw, fromEnv, ir, st.from.image.span);
    if (imageText === '') {
      throw new TsbError('TSB3041', `base name (${st.from.image.raw}) should not be blank`, { span: st.from.image.span, hint: 'check the ARG the FROM line uses has a value.' });
    }
    let base: BaseRef;
    const lower = imageText.toLowerCase();
    if (lower === 'scratch') base = { kind: 'scratch' };
    else if (byName.has(lower)) base = { kind: 'stage', index: byName.get(lower)! };
    else base = { kind: 'image', ref: imageText, span: st.from.image.span };
    let stPlatform = platform;
    if (st.from.platform) {
      const ptext = expandWith(st.from.platform.raw, fromEnv, ir, st.from.platform.span);
      stPlatform = parsePlatformFlag(ptext, st.from.platform.span);
    }
    const deps = new Set<number>();
    if (base.kind === 'stage') deps.add(base.index);
    for (const ins of st.instructions) {
      let fromWord: { raw: string; span: Span } | undefined;
      if ((ins.kind === 'COPY' || ins.kind === 'ADD') && ins.from) fromWord = ins.from;
      if (fromWord) {
        const v = expandWith(fromWord.raw, fromEnv, ir, fromWord.span).toLowerCase();
        const idx = byName.has(v) ? byName.get(v)! : /^\d+$/.test(v) ? Number(v) : undefined;
        if (idx !== undefined) {
          if (idx >= st.index) {
            throw new TsbError('TSB3042', `COPY --from=${v} refers to stage ${idx}, which is not before this one`, { span: fromWord.span, hint: 'a stage can only copy from stages defined above it.' });
          }
          deps.add(idx);
        }
      }
      if (ins.kind === 'RUN') {
        for (const m of ins.mounts) {
          const f = m.options.get('from');
          if (!f) continue;
          const v = expandWith(f, fromEnv, ir, m.span).toLowerCase();
          const idx = byName.has(v) ? byName.get(v)! : /^\d+$/.test(v) && Number(v) < st.index ? Number(v) : undefined;
          if (idx !== undefined) deps.add(idx);
        }
      }
    }
    const planned: PlannedStage = { index: st.index, ...(st.name ? { name: st.name } : {}), stage: st, base, platform: stPlatform, deps: [...deps] };
    all.set(st.index, planned);
    if (st.name) byName.set(st.name.toLowerCase(), st.index);
  }

  let target = ir.stages.length - 1;
  if (opts.target !== undefined) {
    const t = opts.target.toLowerCase();
    const idx = byName.get(t);
    if (idx === undefined) {
      const names = [...byName.keys()];
      throw new TsbError('TSB3043', `target stage "${opts.target}" could not be found`, {
        hint: names.length ? `the stages are: ${names.join(', ')}.` : 'no stage has a name (FROM image AS name).', exitCode: 2,
      });
    }
    target = idx;
  }

  // Stages the target needs, deps first (depth-first post-order).
  const order: PlannedStage[] = [];
  const seen = new Set<number>();
  const visit = (i: number) => {
    if (seen.has(i)) return;
    seen.add(i);
    for (const d of all.get(i)!.deps) visit(d);
    order.push(all.get(i)!);
  };
  visit(target);

  // Unused build args: not declared by any ARG in the meta section or the needed stages.
  const declared = new Set<string>(meta.keys());
  for (const s of order) for (const ins of s.stage.instructions) if (ins.kind === 'ARG') for (const kv of ins.args) declared.add(kv.key.raw);
  const warnings: string[] = [];
  const unused = [...buildArgs.keys()].filter((k) => !declared.has(k) && !predefined.has(k) && !PROXY_ARGS.has(k)).sort();
  if (unused.length) warnings.push(`One or more build-args [${unused.join(' ')}] were not consumed`);
  for (const w of ir.warnings) warnings.push(`${w.span.file}:${w.span.line}: ${w.rule}: ${w.message}`);

  return { ir, target, stages: order, all, buildArgs, metaArgs: meta, predefined, platform, warnings };
}

/** `--platform` values tsbuild can build for (linux/amd64 only for now; others a clear error). */
export function parsePlatformFlag(text: string, span?: Span): Platform {
  const parts = text.trim().toLowerCase().split('/');
  const os = parts.length >= 2 ? parts[0]! : 'linux';
  let arch = parts.length >= 2 ? parts[1]! : parts[0]!;
  if (arch === 'x86_64' || arch === 'x86-64') arch = 'amd64';
  const variant = parts[2];
  if (os !== 'linux' || arch !== 'amd64' || (variant && variant !== 'v1')) {
    throw new TsbError('TSB3044', `platform "${text}" is not supported`, {
      span, hint: 'tsbuild builds linux/amd64 images on this machine; drop --platform or use linux/amd64.', exitCode: span ? 1 : 2,
    });
  }
  return { os: 'linux', architecture: 'amd64' };
}
