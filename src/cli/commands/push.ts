import type { Command } from '../command.js';
import { usageError } from '../args.js';
import { withStore, insecureRegistries, progress, endProgress, REGISTRY_FLAGS } from '../../oci/cli-util.js';

export const command: Command = {
  name: 'push',
  summary: 'push an image to a registry',
  usage: 'tsbuild push NAME[:TAG] [DESTINATION] [--compression gzip|zstd|uncompressed] [--oci-mediatypes=false]',
  flags: [
    { name: 'compression', type: 'string', value: 'KIND', help: 'compression for uncompressed layers (default gzip; compressed layers are pushed as they are)' },
    { name: 'force-compression', type: 'bool', help: 'recompress every layer with --compression' },
    { name: 'oci-mediatypes', type: 'bool', help: 'use OCI media types (default true; =false for Docker v2 schema 2)' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'print only the digest' },
    ...REGISTRY_FLAGS,
  ],
  details: 'With DESTINATION the image NAME from the store is pushed under that reference instead.',
  async run(args, ctx) {
    const [src, dest, extra] = args.positional;
    if (!src || extra) throw usageError('push takes an image name (and optionally a destination)', 'write tsbuild push registry.example.com/app:1.');
    const comp = args.str('compression');
    if (comp !== undefined && comp !== 'gzip' && comp !== 'zstd' && comp !== 'uncompressed') throw usageError(`--compression must be gzip, zstd or uncompressed, not "${comp}"`);
    const { readImage } = await import('../../oci/image.js');
    const { distributionImage } = await import('../../oci/export.js');
    const { pushImage } = await import('../../oci/registry.js');
    const { familiarString } = await import('../../oci/reference.js');
    const quiet = args.bool('quiet');
    const say = progress(ctx, quiet);
    const oci = args.flags.has('oci-mediatypes') ? args.bool('oci-mediatypes') : undefined;
    const r = await withStore(args, ctx, async (store) => {
      const im = await readImage(store, src);
      const desc = await distributionImage(store, im, {
        ...(comp ? { compression: comp } : {}), force: args.bool('force-compression'),
        ...(oci === undefined ? {} : { mediaTypes: oci ? 'oci' : 'docker' }), signal: ctx.signal,
      });
      return pushImage(store, desc, dest ?? src, {
        signal: ctx.signal, env: ctx.env, insecureRegistries: insecureRegistries(args, ctx),
        ...(args.str('authfile') ? { authFile: args.str('authfile')! } : {}),
        onProgress: (ev) => say(`${ev.detail.slice(0, 40)} ${ev.bytes !== undefined ? `${(ev.bytes / 1048576).toFixed(1)} MB` : ''}`),
      });
    });
    endProgress(ctx, quiet);
    if (quiet) ctx.stdout.write(`${r.digest}\n`);
    else ctx.stdout.write(`Pushed ${familiarString(r.name)}: digest: ${r.digest} (${r.uploaded} uploaded, ${r.mounted} mounted, ${r.skipped} already there)\n`);
    return 0;
  },
};
