/** `tsbuild tag SOURCE TARGET`: another name for an image (like `docker tag`). */
import { usageError } from '../args.js';
import type { Command } from '../command.js';
import { findImage, openStoreFor, storeName } from './images.js';

export const command: Command = {
  name: 'tag',
  summary: 'give an image another name',
  usage: 'tsbuild tag SOURCE[:TAG]|ID TARGET[:TAG]',
  flags: [],
  async run(args, ctx) {
    if (args.positional.length !== 2) throw usageError('tag needs a source and a target', 'write tsbuild tag SOURCE TARGET, e.g. tsbuild tag app:1 registry.example.com/app:1.');
    const [src, dst] = args.positional as [string, string];
    const target = storeName(dst); // validates (TSB6001) before touching the store
    const store = await openStoreFor(args, ctx);
    const found = await findImage(store, src);
    await store.refs.set(target, found.descriptor);
    return 0;
  },
};
