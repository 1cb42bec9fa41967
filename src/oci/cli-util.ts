/** Small helpers shared by the OCI commands (save, load, import, pull, push, login, logout). */
import type { CliContext } from '../cli/command.js';
import type { ParsedArgs } from '../cli/args.js';
import { storeRoot } from '../cli/command.js';
import type { Store } from '../../store/types.js';

export async function withStore<T>(args: ParsedArgs, ctx: CliContext, fn: (s: Store) => Promise<T>): Promise<T> {
  const { openStore } = await import('../../store/index.js');
  const store = await openStore(storeRoot(args, ctx));
  try { return await fn(store); } finally { await store.close(); }
}


/** `--insecure-registry` (repeatable) plus TSBUILD_INSECURE_REGISTRIES (comma-separated). */
export function insecureRegistries(args: ParsedArgs, ctx: CliContext): string[] {
  return [...args.list('insecure-registry'), ...(ctx.env.TSBUILD_INSECURE_REGISTRIES ?? '').split(',').map((s) => s.trim()).filter(Boolean)];
}

/** A progress line writer to stderr that rewrites one line on a TTY and stays quiet otherwise. */
export function progress(ctx: CliContext, quiet: boolean): (line: string) => void {
  if (quiet || !ctx.stderr.isTTY) return () => {};
  let last = 0;
  return (line: string) => {
    const now = Date.now();
    if (now - last < 100) return;
    last = now;
    ctx.stderr.write(`\r\x1b[K${line.slice(0, 120)}`);
  };
}

export function endProgress(ctx: CliContext, quiet: boolean): void {
  if (!quiet && ctx.stderr.isTTY) ctx.stderr.write('\r\x1b[K');
}

export const REGISTRY_FLAGS = [
  { name: 'insecure-registry', type: 'list', value: 'HOST[:PORT]', help: 'talk plain HTTP to this registry' },
  { name: 'authfile', type: 'string', value: 'FILE', help: 'credentials file (default $DOCKER_CONFIG/config.json or ~/.docker/config.json)' },
] as const;
