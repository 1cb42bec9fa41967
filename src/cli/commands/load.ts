import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import type { Command } from '../command.js';
import { TsbError } from '../../errors.js';
import { withStore } from '../../oci/cli-util.js';

export const command: Command = {
  name: 'load',
  summary: 'read images from an OCI or docker archive or layout',
  usage: 'tsbuild load [-i FILE|DIR|-]',
  flags: [
    { name: 'input', short: 'i', type: 'string', value: 'FILE', help: 'archive file, OCI layout directory, or "-" for stdin (default stdin)' },
    { name: 'quiet', short: 'q', type: 'bool', help: 'print only the loaded names' },
  ],
  details: 'Accepts OCI archives and layouts, docker archives (old and Docker 25+ style), plain or gzip/zstd-compressed, with gzip/zstd/plain layers.',
  async run(args, ctx) {
    const input = args.str('input') ?? args.positional[0] ?? '-';
    const { loadArchive } = await import('../../oci/archive.js');
    const { familiarString } = await import('../../oci/reference.js');
    let source: Readable | { dir: string };
    if (input === '-') {
      if ((ctx.stdin as { isTTY?: boolean }).isTTY) throw new TsbError('TSB0001', 'load reads an archive from stdin, which is a terminal', { hint: 'use -i FILE or pipe an archive in.', exitCode: 2 });
      source = ctx.stdin instanceof Readable ? ctx.stdin : Readable.from(ctx.stdin as AsyncIterable<Buffer>);
    } else {
      const p = resolve(ctx.cwd, input);
      let st;
      try { st = await stat(p); } catch (e) { throw new TsbError('TSB6120', `cannot read ${input}`, { cause: e, hint: 'check the path.' }); }
      source = st.isDirectory() ? { dir: p } : createReadStream(p);
    }
    const r = await withStore(args, ctx, (store) => loadArchive(store, source, { signal: ctx.signal }));
    for (const im of r.images) {
      if (im.names.length === 0) ctx.stdout.write(`Loaded image ID: ${im.descriptor.digest}\n`);
      for (const n of im.names) ctx.stdout.write(args.bool('quiet') ? `${familiarString(n)}\n` : `Loaded image: ${familiarString(n)}\n`);
    }
    return 0;
  },
};
