/**
 * `tsbuild rmi NAME|ID…`: remove names. Blobs are freed by the next `tsbuild store gc` (a running
 * build may still use them). An ID with several names needs --force, as in docker.
 */
import { usageError } from '../args.js';
import type { Command } from '../command.js';
import { TsbError } from '../../errors.js';
import { familiar, findImage, openStoreFor, shortId } from './images.js';

export const command: Command = {
  name: 'rmi',
  summary: 'remove image names (blobs go at the next gc)',
  usage: 'tsbuild rmi [--force] NAME|ID [NAME…]',
  flags: [{ name: 'force', short: 'f', type: 'bool', help: 'remove every name of an image given by ID' }],
  details: 'Run "tsbuild store gc" afterwards to free the space.',
  async run(args, ctx) {
    if (args.positional.length === 0) throw usageError('rmi needs at least one image', 'write tsbuild rmi NAME.');
    const store = await openStoreFor(args, ctx);
    let failed: TsbError | undefined;
    for (const what of args.positional) {
      try {
        const found = await findImage(store, what);
        const names = found.name !== undefined ? [found.name] : found.names;
        if (found.name === undefined && names.length > 1 && !args.bool('force')) {
          throw new TsbError('TSB5011', `image ${shortId(found.id ?? found.descriptor.digest)} has ${names.length} names (${names.map(familiar).join(', ')})`, {
            hint: 'remove them by name, or pass --force to remove them all.',
          });
        }
        for (const n of names) if (await store.refs.delete(n)) ctx.stdout.write(`Untagged: ${familiar(n)}\n`);
      } catch (e) {
        if (!(e instanceof TsbError)) throw e;
        if (failed) ctx.stderr.write(`Error: ${failed.message}\n`);
        failed = e;
      }
    }
    if (failed) throw failed;
    return 0;
  },
};
