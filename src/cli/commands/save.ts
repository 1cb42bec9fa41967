import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { usageError } from '../args.js';
import { TsbError } from '../../errors.js';
import { withStore } from '../../oci/cli-util.js';
import { platformFlag } from '../../oci/image.js';

export const command: Command = {
  name: 'save',
  summary: 'write images to an OCI or docker archive',
  usage: 'tsbuild save NAME… -o FILE [--format oci|docker] [--compression gzip|zstd|uncompressed]',
  flags: [
    { name: 'output', short: 'o', type: 'string', value: 'FILE', help: 'archive to write ("-" or absent: stdout, when it is not a terminal)' },
    { name: 'format', type: 'string', value: 'oci|docker', help: 'archive format (default docker, like docker save)' },
    { name: 'compression', type: 'string', value: 'KIND', help: 'layer compression: gzip (default for oci), zstd, uncompressed (default for docker)' },
    { name: 'platform', type: 'string', value: 'OS/ARCH', help: 'platform to take from multi-platform images (default linux/amd64)' },
  ],
  details: 'docker format: loads with `docker load` (manifest.json + repositories + OCI layout).\noci format: an OCI image layout tar (skopeo oci-archive:, podman load).',
  async run(args, ctx) {
    const names = [...args.positional];
    if (names.length === 0) throw usageError('save needs at least one image name', 'write tsbuild save NAME[:TAG]… -o FILE.');
    const format = args.str('format') ?? 'docker';
    if (format !== 'oci' && format !== 'docker') throw usageError(`--format must be oci or docker, not "${format}"`);
    const comp = args.str('compression') ?? (format === 'docker' ? 'uncompressed' : 'gzip');
    if (comp !== 'gzip' && comp !== 'zstd' && comp !== 'uncompressed') throw usageError(`--compression must be gzip, zstd or uncompressed, not "${comp}"`);
    const out = args.str('output');
    if ((!out || out === '-') && ctx.stdout.isTTY) {
      throw new TsbError('TSB0001', 'refusing to write an image archive to a terminal', { hint: 'use -o FILE, or redirect stdout.', exitCode: 2 });
    }
    const { readImage } = await import('../../oci/image.js');
    const { distributionImage } = await import('../../oci/export.js');
    const { writeArchive, atomicFileFrom } = await import('../../oci/archive.js');
    const { parseReference } = await import('../../oci/reference.js');
    const platform = platformFlag(args);
    await withStore(args, ctx, async (store) => {
      const images: import('../../oci/archive.js').ArchiveImage[] = [];
      for (const n of names) {
        const im = await readImage(store, n, platform ? { platform } : {});
        const desc = await distributionImage(store, im, { compression: comp, mediaTypes: format === 'docker' ? 'docker' : 'oci', signal: ctx.signal });
        let full: string[] = [];
        if (!/^sha256:/.test(n)) { try { full = [parseReference(n).full]; } catch { full = []; } }
        images.push({ descriptor: desc, names: full });
      }
      const opts = { format: format as 'oci' | 'docker', signal: ctx.signal };
      if (!out || out === '-') await writeArchive(store, images, ctx.stdout, opts);
      else await atomicFileFrom(resolve(ctx.cwd, out), (w) => writeArchive(store, images, w, opts));
    });
    return 0;
  },
};
