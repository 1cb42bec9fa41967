/**
 * `tsbuild cache why [CONTEXT] [-f FILE] [-t TAG] [--build-arg …]`: for each step of the build,
 * would it hit the cache, and if not, what changed since the last build of the same tag and
 * Dockerfile line (`file src/app.ts changed`, `ARG VERSION 1.2 → 1.3`, `base image digest
 * changed`, `instruction text changed`). A dry run: nothing is built.
 */
import type { Command } from '../command.js';
import { BUILD_FLAGS, explainReport, prepare, sourceDateEpoch } from './build.js';

export const command: Command = {
  name: 'cache why',
  summary: 'explain which build steps would miss the cache, and why',
  usage: 'tsbuild cache why [CONTEXT] [-f FILE] [-t NAME:TAG] [--build-arg K=V]… [--target STAGE]',
  flags: [
    ...BUILD_FLAGS.filter((f) => ['file', 'build-arg', 'target', 'platform', 'tag', 'no-cache-filter'].includes(f.name)),
    { name: 'json', type: 'bool', help: 'print the steps as JSON' },
  ],
  async run(args, ctx) {
    const p = await prepare(args, ctx);
    try {
      const { BuildExecutor } = await import('../../exec/build.js');
      const { normalizeReference } = await import('../../oci/reference.js');
      const store = await p.store();
      const epoch = sourceDateEpoch(args, ctx);
      const ex = new BuildExecutor(p.plan, {
        store, ...(p.context ? { context: p.context } : {}), dockerfileKey: p.dockerfileKey, dryRun: true,
        ...(p.tags[0] ? { scope: normalizeReference(p.tags[0]) } : {}),
        noCacheFilter: new Set(args.list('no-cache-filter').map((s) => s.toLowerCase())),
        ...(epoch !== undefined ? { sourceDateEpoch: epoch } : {}),
      });
      const r = await ex.run();
      if (args.bool('json')) {
        ctx.stdout.write(JSON.stringify(r.steps.map((s) => ({ line: s.line, name: s.name, hit: s.status === 'would-hit', reasons: s.reasons ?? [] })), null, 2) + '\n');
      } else ctx.stdout.write(explainReport(r.steps));
      return 0;
    } finally {
      p.cleanup();
    }
  },
};
