import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from '../command.js';
import { usageError } from '../args.js';
import { TsbError } from '../../errors.js';
import { withStore } from '../../oci/cli-util.js';
import { platformFlag } from '../../oci/image.js';

export const command: Command = {
  name: 'import',
  summary: 'make an image from a root filesystem tarball',
  usage: 'tsbuild import FILE|- [NAME[:TAG]] [--change "CMD …"]… [-m MESSAGE]',
  flags: [
    { name: 'change', short: 'c', type: 'list', value: 'INSTRUCTION', help: 'Dockerfile instruction to apply (CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD USER VOLUME WORKDIR STOPSIGNAL HEALTHCHECK)' },
    { name: 'message', short: 'm', type: 'string', value: 'TEXT', help: 'history comment' },
    { name: 'platform', type: 'string', value: 'OS/ARCH', help: 'platform recorded in the config (default linux/amd64)' },
  ],
  async run(args, ctx) {
    const [file, name, ...extra] = args.positional;
    if (!file) throw usageError('import needs a tarball (or - for stdin)', 'write tsbuild import rootfs.tar app:1.');
    if (extra.length) throw usageError(`unexpected argument "${extra[0]}"`);
    const { importRootfs } = await import('../../oci/import.js');
    const { parseReference, familiarString } = await import('../../oci/reference.js');
    const full = name ? parseReference(name).full : undefined;
    let src: Readable;
    if (file === '-') src = ctx.stdin instanceof Readable ? ctx.stdin : Readable.from(ctx.stdin as AsyncIterable<Buffer>);
    else {
      const p = resolve(ctx.cwd, file);
      src = createReadStream(p);
      await new Promise<void>((res, rej) => { src.once('open', () => res()); src.once('error', (e) => rej(new TsbError('TSB6120', `cannot read ${file}`, { cause: e }))); });
    }
    const epoch = ctx.env.SOURCE_DATE_EPOCH && /^\d+$/.test(ctx.env.SOURCE_DATE_EPOCH) ? Number(ctx.env.SOURCE_DATE_EPOCH) : undefined;
    const platform = platformFlag(args);
    const d = await withStore(args, ctx, (store) => importRootfs(store, src, full, {
      changes: args.list('change'), ...(args.str('message') ? { message: args.str('message')! } : {}),
      ...(platform ? { platform } : {}), ...(epoch !== undefined ? { created: epoch } : {}), sourceName: file,
    }));
    ctx.stdout.write(`${d.digest}\n`);
    if (full) ctx.stderr.write(`Imported ${familiarString(full)}\n`);
    return 0;
  },
};
