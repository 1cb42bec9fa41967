/**
 * The project's one error class. It lives in store/ because store/ is the bottom layer: it imports
 * nothing from src/, and everything in src/ may import it (src/errors.ts re-exports it).
 *
 * Contract:
 * - `code` is `TSB` + four digits. Ranges: 0xxx CLI and usage, 1xxx syntax, 2xxx IR, 3xxx plan,
 *   4xxx exec, 5xxx store, 6xxx OCI (archives, registries). A code, once shipped, keeps its meaning.
 * - `span` points at the Dockerfile (or other input file) position the error is about, when there is one.
 * - `hint` tells the user what to do next, in one sentence.
 * - `cause` keeps the underlying error (errno, HTTP reply, …) for `--debug` output.
 * - Rendering happens once, in src/cli/render.ts. Nothing else prints errors.
 */
export interface Span {
  /** Path as the user named it (e.g. `Dockerfile`, `ctx/Dockerfile.dev`). */
  readonly file: string;
  /** 1-based line of the first character. */
  readonly line: number;
  /** 1-based column (in UTF-16 code units of the physical line) of the first character. */
  readonly col: number;
  /** 1-based last line (inclusive); defaults to `line`. */
  readonly endLine?: number;
  /** 1-based column just past the last character on `endLine`; defaults to `col + 1`. */
  readonly endCol?: number;
}

export interface TsbErrorOptions {
  span?: Span | undefined;
  hint?: string | undefined;
  cause?: unknown;
  /** Extra lines shown under the message (e.g. the last lines of a failing RUN's output). */
  details?: readonly string[] | undefined;
  /** Process exit code the CLI should use; default 1. Usage errors use 2. */
  exitCode?: number | undefined;
}

export class TsbError extends Error {
  override readonly name = 'TsbError';
  readonly code: string;
  readonly span: Span | undefined;
  readonly hint: string | undefined;
  readonly details: readonly string[] | undefined;
  readonly exitCode: number;

  constructor(code: string, message: string, opts: TsbErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    if (!/^TSB\d{4}$/.test(code)) throw new Error(`bad error code ${code}`);
    this.code = code;
    this.span = opts.span;
    this.hint = opts.hint;
    this.details = opts.details;
    this.exitCode = opts.exitCode ?? 1;
  }

  /** The same error with a span attached (used when a lower layer did not know the position). */
  withSpan(span: Span | undefined): TsbError {
    if (!span || this.span) return this;
    return new TsbError(this.code, this.message, {
      span, hint: this.hint, cause: this.cause, details: this.details, exitCode: this.exitCode,
    });
  }
}

export function isTsbError(e: unknown): e is TsbError {
  return e instanceof TsbError;
}

/** Node's system errors (ENOENT, ENOSPC, …) carry `code`; this reads it without `any`. */
export function errnoCode(e: unknown): string | undefined {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as { code: unknown }).code === 'string') {
    return (e as { code: string }).code;
  }
  return undefined;
}
