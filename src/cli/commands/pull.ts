import type { Command } from '../command.js';
import { usageError } from '../args.js';
import { withStore, insecureRegistries, progress, endProgress, REGISTRY_FLAGS } from '../../oci/cli-util.js';
import { platformFlag } from '../../oci/image.js';

export const command: Command = {
  name: 'pull',
  summary: 'pull an image from a registry',
  usage: 'tsbuild pull NAME[:TAG|@DIGEST] [--platform OS/ARCH]',
  flags: [
    { name: 'platform', type: 'string', value: 'OS/ARCH', help: 'platform to pull from a multi-platform image (default linux/amd64)' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'print only the name' },
    ...REGISTRY_FLAGS,
  ],
  async run(args, ctx) {
    if (args.positional.length !== 1) throw usageError('pull takes one image name', 'write tsbuild pull busybox:1.36.');
    const { pullImage } = await import('../../oci/registry.js');
    const { familiarString } = await import('../../oci/reference.js');
    const quiet = args.bool('quiet');
    const say = progress(ctx, quiet);
    const platform = platformFlag(args);
    const r = await withStore(args, ctx, (store) => pullImage(store, args.positional[0]!, {
      signal: ctx.signal, env: ctx.env, insecureRegistries: insecureRegistries(args, ctx),
      ...(args.str('authfile') ? { authFile: args.str('authfile')! } : {}),
      ...(platform ? { platform } : {}),
      onProgress: (ev) => say(`${ev.detail.slice(0, 19)} ${ev.bytes !== undefined ? `${(ev.bytes / 1048576).toFixed(1)}/${((ev.total ?? 0) / 1048576).toFixed(1)} MB` : ''}`),
    }));
    endProgress(ctx, quiet);
    if (quiet) ctx.stdout.write(`${familiarString(r.name)}\n`);
    else ctx.stdout.write(`Digest: ${r.indexDigest ?? r.descriptor.digest}\nPulled ${familiarString(r.name)} (${r.downloaded} blobs downloaded)\n`);
    return 0;
  },
};
