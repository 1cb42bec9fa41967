/**
 * The node:fs/promises functions the store's always-loaded modules use, loading that module on
 * the first call. Why: loading it costs ~1.5 ms and a dozen internal modules at start-up, and the
 * commands that only read the store (images, cache ls, a memoized no-op build) make no async file
 * call at all. Same signatures and behaviour as node:fs/promises.
 */
import { createRequire } from 'node:module';

type Fsp = typeof import('node:fs/promises');
let mod: Fsp | undefined;
const fsp = (): Fsp => (mod ??= createRequire(import.meta.url)('node:fs/promises') as Fsp);

export const open = ((...a: Parameters<Fsp['open']>) => fsp().open(...a)) as Fsp['open'];
export const readFile = ((...a: Parameters<Fsp['readFile']>) => fsp().readFile(...a)) as Fsp['readFile'];
export const stat = ((...a: Parameters<Fsp['stat']>) => fsp().stat(...a)) as Fsp['stat'];
export const rename = ((...a: Parameters<Fsp['rename']>) => fsp().rename(...a)) as Fsp['rename'];
export const unlink = ((...a: Parameters<Fsp['unlink']>) => fsp().unlink(...a)) as Fsp['unlink'];
export const utimes = ((...a: Parameters<Fsp['utimes']>) => fsp().utimes(...a)) as Fsp['utimes'];
export const mkdir = ((...a: Parameters<Fsp['mkdir']>) => fsp().mkdir(...a)) as Fsp['mkdir'];
export const readdir = ((...a: Parameters<Fsp['readdir']>) => fsp().readdir(...a)) as Fsp['readdir'];
export const rm = ((...a: Parameters<Fsp['rm']>) => fsp().rm(...a)) as Fsp['rm'];
export const readlink = ((...a: Parameters<Fsp['readlink']>) => fsp().readlink(...a)) as Fsp['readlink'];
export const symlink = ((...a: Parameters<Fsp['symlink']>) => fsp().symlink(...a)) as Fsp['symlink'];
