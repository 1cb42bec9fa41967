/**
 * The one error renderer. Every TsbError reaching the CLI is printed here:
 *
 *   Dockerfile:7:13: error TSB2004: unknown instruction: RUNN
 *      6 | FROM busybox
 *   >  7 | RUNN echo hi
 *        |             ^
 *   hint: did you mean RUN?
 *
 * Sources are looked up in a registry first (stdin Dockerfiles, in-memory inputs), then on disk.
 */
import { readFileSync } from 'node:fs';
import { TsbError, type Span } from '../errors.js';

const sources = new Map<string, string>();

/** Make `text` available to the renderer under `file` (the name spans use). */
export function registerSource(file: string, text: string): void {
  sources.set(file, text);
}

function sourceLines(file: string): string[] | undefined {
  let text = sources.get(file);
  if (text === undefined) {
    try { text = readFileSync(file, 'utf8'); } catch { return undefined; }
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text.split(/\r?\n/);
}

export function codeFrame(span: Span, context = 1): string {
  const lines = sourceLines(span.file);
  if (!lines) return '';
  const first = Math.max(1, span.line - context);
  const endLine = Math.min(span.endLine ?? span.line, span.line + 3);
  const last = Math.min(lines.length, endLine + context);
  const gutter = String(last).length;
  const out: string[] = [];
  for (let n = first; n <= last; n++) {
    const text = (lines[n - 1] ?? '').replace(/\t/g, ' ');
    const mark = n >= span.line && n <= endLine ? '>' : ' ';
    out.push(`${mark} ${String(n).padStart(gutter)} | ${text}`);
    if (n === span.line) {
      const width = (span.endLine ?? span.line) === span.line && span.endCol && span.endCol > span.col
        ? span.endCol - span.col : 1;
      out.push(`  ${' '.repeat(gutter)} | ${' '.repeat(Math.max(0, span.col - 1))}${'^'.repeat(Math.min(width, 200))}`);
    }
  }
  return out.join('\n');
}

export function renderError(err: unknown, opts: { debug?: boolean } = {}): string {
  if (!(err instanceof TsbError)) {
    // Anything but a TsbError escaping to here is a bug in tsbuild; say so plainly.
    const e = err instanceof Error ? err : new Error(String(err));
    return `error TSB0000: internal error: ${e.message}\nhint: this is a bug in tsbuild; please report it with the command you ran.\n${opts.debug ? `${e.stack ?? ''}\n` : ''}`;
  }
  const loc = err.span ? `${err.span.file}:${err.span.line}:${err.span.col}: ` : '';
  const parts = [`${loc}error ${err.code}: ${err.message}`];
  if (err.details?.length) parts.push(...err.details.map((d) => `  ${d}`));
  if (err.span) {
    const frame = codeFrame(err.span);
    if (frame) parts.push(frame);
  }
  if (err.hint) parts.push(`hint: ${err.hint}`);
  if (opts.debug && err.cause !== undefined) {
    const c = err.cause instanceof Error ? (err.cause.stack ?? err.cause.message) : String(err.cause);
    parts.push(`cause: ${c}`);
  } else if (err.cause instanceof Error && err.cause.message) {
    parts.push(`cause: ${err.cause.message}`);
  }
  return parts.join('\n') + '\n';
}
