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
  /**
   * Writes a command's printed result to standard output, in order with ctx.stdout (optional: see
   * print()). The real CLI's writes straight to fd 1 while nothing has used the stdout stream.
   */
  readonly print?: (data: string | Uint8Array) => void;
  /** The same for standard error (printErr()). */
  readonly printErr?: (data: string | Uint8Array) => void;
  /** Whether stderr is a terminal, if the context can tell without building the stream (else ctx.stderr.isTTY). */
  readonly stderrIsTTY?: () => boolean;
}

/**
 * Print a result (a table, an id): ctx.print when the context has one, else ctx.stdout.write.
 * Why: process.stdout builds a stream for its fd on first use, 5–7 ms for a pipe (it loads the
 * net and stream modules), more than a quiet build or a listing spends on everything else it prints.
 */
export function print(ctx: CliContext, data: string | Uint8Array): void {
  if (ctx.print) ctx.print(data);
  else ctx.stdout.write(data);
}

/** print() for standard error: what plain and json progress write through. */
export function printErr(ctx: CliContext, data: string | Uint8Array): void {
  if (ctx.printErr) ctx.printErr(data);
  else ctx.stderr.write(data);
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
