/**
 * `tsbuild inspect NAME|ID|DIGEST…`: a JSON array like `docker image inspect` (Id, RepoTags,
 * RepoDigests, Created, Config, Architecture, Os, RootFS, Size, History), plus the manifest
 * Descriptor. Missing images are reported after the ones found (exit 1), as docker does.
 */
import { usageError } from '../args.js';
import type { Command } from '../command.js';
import { TsbError } from '../../errors.js';
import { tryParseReference } from '../../oci/reference.js';
import { familiar, findImage, openStoreFor, resolveManifest, type ImageConfig } from './images.js';

export const command: Command = {
  name: 'inspect',
  summary: 'show an image’s config and manifest as JSON',
  usage: 'tsbuild inspect NAME|ID|DIGEST [NAME…]',
  flags: [],
  async run(args, ctx) {
    if (args.positional.length === 0) throw usageError('inspect needs at least one image', 'write tsbuild inspect NAME.');
    const store = await openStoreFor(args, ctx);
    const refs = await store.refs.list();
    const out: unknown[] = [];
    const missing: string[] = [];
    for (const what of args.positional) {
      let found;
      try { found = await findImage(store, what); } catch (e) { if (e instanceof TsbError && e.code === 'TSB5011') { missing.push(what); continue; } throw e; }
      const { descriptor, manifest } = await resolveManifest(store, found.descriptor);
      const config = await store.blobs.readJSON<ImageConfig>(manifest.config.digest);
      const id = manifest.config.digest;
      const names = refs.filter((r) => r.descriptor.digest === found.descriptor.digest || r.summary?.config === id).map((r) => r.name);
      const repoDigests = [...new Set(names.map((n) => {
        const p = tryParseReference(n, { defaultTag: false });
        return `${p ? p.familiarName : n.replace(/:[^:/]*$/, '')}@${found.descriptor.digest}`;
      }))];
      const size = manifest.layers.reduce((a, l) => a + l.size, 0);
      const entry: Record<string, unknown> = {
        Id: id,
        RepoTags: names.map(familiar),
        RepoDigests: repoDigests,
        Parent: '',
        Comment: config.history?.at(-1)?.comment ?? '',
        Created: config.created ?? '',
        Author: config.author ?? '',
        Config: config.config ?? {},
        Architecture: config.architecture ?? '',
        ...(config.variant ? { Variant: config.variant } : {}),
        Os: config.os ?? '',
        Size: size,
        RootFS: { Type: config.rootfs?.type ?? 'layers', Layers: config.rootfs?.diff_ids ?? [] },
        History: config.history ?? [],
        Descriptor: descriptor.digest === found.descriptor.digest ? found.descriptor : { ...descriptor, index: found.descriptor },
        Metadata: { LastTagTime: '' },
      };
      out.push(entry);
    }
    if (out.length || !missing.length) ctx.stdout.write(JSON.stringify(out, null, 4) + '\n');
    if (missing.length) {
      throw new TsbError('TSB5011', `no such image${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`, {
        hint: 'run "tsbuild images" to see the names in this store.',
      });
    }
    return 0;
  },
};
