/**
 * What every `tsbuild` subcommand module exports (src/cli/commands/<name>.ts → `command`).
 * Commands print results to ctx.stdout, progress to ctx.stderr, and signal failure by throwing
 * TsbError (rendered by main) or returning a non-zero exit code.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { FlagSpec, ParsedArgs } from './args.js';

export interface CliContext {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stdin: NodeJS.ReadableStream;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  /** Aborted on SIGINT/SIGTERM: long work must stop and clean up. */
  readonly signal: AbortSignal;
}

export interface Command {
  readonly name: string;
  /** One line for `tsbuild --help`. */
  readonly summary: string;
  /** `tsbuild NAME [FLAGS] ARGS` line(s) for `tsbuild NAME --help`. */
  readonly usage: string;
  readonly flags: readonly FlagSpec[];
  /** Extra help text after the flag table. */
  readonly details?: string;
  /**
   * Flags end at the first positional argument (like `docker run IMAGE CMD -x`): everything after
   * it is passed through as positional, so a command's own flags need no `--`.
   */
  readonly flagsBeforeArgs?: boolean;
  run(args: ParsedArgs, ctx: CliContext): Promise<number>;
}

/** --store, else $TSBUILD_STORE, else $XDG_DATA_HOME/tsbuild, else ~/.local/share/tsbuild. */
export function storeRoot(args: ParsedArgs, ctx: CliContext): string {
  const flag = args.str('store');
  if (flag) return resolve(ctx.cwd, flag);
  if (ctx.env.TSBUILD_STORE) return resolve(ctx.cwd, ctx.env.TSBUILD_STORE);
  if (ctx.env.XDG_DATA_HOME) return join(ctx.env.XDG_DATA_HOME, 'tsbuild');
  return join(ctx.env.HOME || homedir(), '.local', 'share', 'tsbuild');
}
