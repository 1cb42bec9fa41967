/**
 * `tsbuild store verify [--repair]` and `tsbuild store gc [--dry-run]`.
 * verify exits 1 when it finds problems it did not repair; its report names every bad blob/ref.
 */
import { usageError } from '../args.js';
import type { Command } from '../command.js';
import { FORMAT_FLAG, humanSize, openStoreFor, outputFormat, table } from './images.js';

export const command: Command = {
  name: 'store',
  summary: 'check and collect the store (verify, gc)',
  usage: 'tsbuild store verify [--repair] | tsbuild store gc [--dry-run]',
  flags: [
    FORMAT_FLAG,
    { name: 'repair', type: 'bool', help: 'verify: remove corrupt blobs and the names/records that need them' },
    { name: 'dry-run', type: 'bool', help: 'gc: only report what would be removed' },
  ],
  details: 'verify re-hashes every blob and checks that every name and cache record resolves; gc removes what no name, cache record or running build uses (RUN cache mounts stay: "tsbuild cache prune" removes those).',
  async run(args, ctx) {
    const [sub, ...extra] = args.positional;
    if (extra.length) throw usageError(`unexpected argument "${extra[0]}"`);
    const format = outputFormat(args);
    if (sub === 'verify') {
      if (args.bool('dry-run')) throw usageError('--dry-run is for "store gc"');
      const store = await openStoreFor(args, ctx);
      const swept = await store.sweepTmp();
      const problems = await store.verify({ repair: args.bool('repair') });
      const unrepaired = problems.filter((p) => !p.repaired).length;
      if (format === 'json') {
        ctx.stdout.write(JSON.stringify({ problems, sweptTemp: swept }) + '\n');
      } else if (problems.length === 0) {
        ctx.stdout.write(`store ${store.root}: OK${swept ? ` (removed ${swept} temp leftover${swept === 1 ? '' : 's'})` : ''}\n`);
      } else {
        ctx.stdout.write(table(['KIND', 'SUBJECT', 'REPAIRED', 'PROBLEM'], problems.map((p) => [p.kind, p.subject, p.repaired ? 'yes' : 'no', p.message])));
        if (unrepaired) ctx.stderr.write(`${unrepaired} problem${unrepaired === 1 ? '' : 's'}; run "tsbuild store verify --repair" to fix what can be fixed.\n`);
      }
      return unrepaired ? 1 : 0;
    }
    if (sub === 'gc') {
      if (args.bool('repair')) throw usageError('--repair is for "store verify"');
      const store = await openStoreFor(args, ctx);
      const r = await store.gc({ dryRun: args.bool('dry-run') });
      if (format === 'json') { ctx.stdout.write(JSON.stringify({ ...r, dryRun: args.bool('dry-run') }) + '\n'); return 0; }
      const verb = args.bool('dry-run') ? 'would remove' : 'removed';
      const extra = r.areas ? r.areas.inputs.removed + r.areas.statcache.removed + r.areas.memo.removed : 0;
      ctx.stdout.write(`${verb} ${r.removedBlobs} blob${r.removedBlobs === 1 ? '' : 's'} and ${r.removedSnapshots} snapshot${r.removedSnapshots === 1 ? '' : 's'}${extra ? ` (and ${extra} cache side file${extra === 1 ? '' : 's'})` : ''}, ${humanSize(r.freedBytes)}\n`);
      return 0;
    }
    throw usageError(sub ? `unknown store subcommand "${sub}"` : 'store needs a subcommand', 'write tsbuild store verify or tsbuild store gc.');
  },
};
