/**
 * The layer store's entry point. src/ imports the store from here (and types from ./types.js).
 * store/ imports nothing from src/.
 */
export { openStore, FsStore, STORE_VERSION } from './store.js';
export type { OpenStoreOptions } from './store.js';
export { chainIds } from './chain.js';
export { isSha256Digest } from './blobs.js';
export { E as StoreErrors } from './fsutil.js';
export { MT as MediaTypes } from './refs.js';
export type * from './types.js';
