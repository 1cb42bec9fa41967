/**
 * `tsbuild history NAME`: like `docker history`: newest first; IMAGE is the image ID on the top
 * row and <missing> below (the store keeps no intermediate images); SIZE is the layer's size for
 * steps that made one, 0B for config-only steps.
 */
import { usageError } from '../args.js';
import type { Command } from '../command.js';
import { FORMAT_FLAG, ago, findImage, humanSize, jsonLines, openStoreFor, outputFormat, resolveManifest, shortId, table, type ImageConfig } from './images.js';

export const command: Command = {
  name: 'history',
  summary: 'show the history of an image',
  usage: 'tsbuild history [--no-trunc] [--format table|json] NAME|ID',
  flags: [FORMAT_FLAG, { name: 'no-trunc', type: 'bool', help: 'do not truncate output' }, { name: 'quiet', short: 'q', type: 'bool', help: 'only show image IDs' }],
  async run(args, ctx) {
    if (args.positional.length !== 1) throw usageError('history needs one image', 'write tsbuild history NAME.');
    const format = outputFormat(args);
    const store = await openStoreFor(args, ctx);
    const found = await findImage(store, args.positional[0]!);
    const { manifest } = await resolveManifest(store, found.descriptor);
    const config = await store.blobs.readJSON<ImageConfig>(manifest.config.digest);
    const id = manifest.config.digest;
    const hist: NonNullable<ImageConfig['history']> = config.history?.length ? config.history : manifest.layers.map(() => (config.created ? { created: config.created } : {}));
    let li = 0;
    const rows = hist.map((h) => {
      const size = h.empty_layer ? 0 : (manifest.layers[li++]?.size ?? 0);
      return { h, size };
    }).reverse();
    const noTrunc = args.bool('no-trunc');
    if (args.bool('quiet')) {
      ctx.stdout.write(rows.map((_, i) => (i === 0 ? shortId(id, noTrunc) : '<missing>') + '\n').join(''));
      return 0;
    }
    if (format === 'json') {
      ctx.stdout.write(jsonLines(rows.map(({ h, size }, i) => ({
        ID: i === 0 ? id : '<missing>', CreatedAt: h.created ?? '', CreatedSince: ago(h.created), CreatedBy: h.created_by ?? '',
        Size: size, Comment: h.comment ?? '', ...(h.empty_layer ? { EmptyLayer: true } : {}),
      }))));
      return 0;
    }
    const trunc = (s: string) => (noTrunc || s.length <= 45 ? s : s.slice(0, 44) + '…');
    ctx.stdout.write(table(['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], rows.map(({ h, size }, i) => [
      i === 0 ? shortId(id, noTrunc) : '<missing>', ago(h.created), trunc((h.created_by ?? '').replace(/\s+/g, ' ')), humanSize(size), h.comment ?? '',
    ])));
    return 0;
  },
};
