/**
 * `tsbuild debug plan FILE|CONTEXT [--build-arg …] [--target …]`: the build plan as JSON — stages
 * the target needs (with bases and dependencies) and every step with its cache key, readable key
 * inputs, and whether the store would hit. Nothing is executed (a dry run of the executor; base
 * images must already be in the store to know their environment).
 */
import type { Command } from '../command.js';
import { BUILD_FLAGS, prepare, sourceDateEpoch } from './build.js';

export const command: Command = {
  name: 'debug plan',
  summary: 'print the build plan (stages, steps, cache keys) as JSON',
  usage: 'tsbuild debug plan FILE|CONTEXT [--build-arg K=V]… [--target STAGE] [-f FILE]',
  flags: BUILD_FLAGS.filter((f) => ['file', 'build-arg', 'target', 'platform', 'no-cache', 'no-cache-filter', 'label', 'tag'].includes(f.name)),
  details: 'A FILE positional is the Dockerfile and its directory the context; a directory is a context.',
  async run(args, ctx) {
    const p = await prepare(args, ctx, { positionalIsFile: true });
    try {
      const { BuildExecutor } = await import('../../exec/build.js');
      const { normalizeReference } = await import('../../oci/reference.js');
      const store = await p.store();
      const epoch = sourceDateEpoch(args, ctx);
      const ex = new BuildExecutor(p.plan, {
        store, ...(p.context ? { context: p.context } : {}), dockerfileKey: p.dockerfileKey, dryRun: true,
        ...(p.tags[0] ? { scope: normalizeReference(p.tags[0]) } : {}),
        noCache: args.bool('no-cache'), noCacheFilter: new Set(args.list('no-cache-filter').map((s) => s.toLowerCase())),
        ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
      });
      const r = await ex.run();
      const out = {
        dockerfile: p.dockerfileDisplay,
        target: p.plan.target,
        platform: p.plan.platform,
        buildArgs: Object.fromEntries(p.plan.buildArgs),
        metaArgs: Object.fromEntries([...p.plan.metaArgs].map(([k, v]) => [k, v ?? null])),
        warnings: p.plan.warnings,
        stages: p.plan.stages.map((s) => ({
          index: s.index, name: s.name ?? null,
          base: s.base.kind === 'image' ? { kind: 'image', ref: s.base.ref } : s.base,
          deps: s.deps,
        })),
        steps: r.steps.map((s) => ({
          id: s.id, stage: s.stage, line: s.line, kind: s.kind, name: s.name, key: s.key, status: s.status,
          ...(s.reasons ? { reasons: s.reasons } : {}), inputs: s.inputs,
        })),
        key: r.key,
        config: r.config,
      };
      ctx.stdout.write(JSON.stringify(out, null, 2) + '\n');
      return 0;
    } finally {
      p.cleanup();
    }
  },
};
