/**
 * argv → command. `tsbuild [global flags] COMMAND [flags] [args]`; `tsbuild CONTEXT -t x` (no
 * command word) means `tsbuild build CONTEXT -t x`, like the short form.
 * Errors thrown by commands are rendered here, once (render.ts).
 */
import { fstatSync, readFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatFlags, parseArgs, didYouMean, usageError } from './args.js';
import type { CliContext, Command } from './command.js';
import { renderError } from './render.js';
import { isTsbError } from '../errors.js';

/** Lazy so `tsbuild images` does not load the sandbox or the grammar. */
const COMMANDS: Record<string, { summary: string; load: () => Promise<{ command: Command }> }> = {
  build: { summary: 'build an image from a Dockerfile and a context', load: () => import('./commands/build.js') },
  run: { summary: 'run a command in an image from the store, in the sandbox', load: () => import('./commands/run.js') },
  images: { summary: 'list images in the store', load: () => import('./commands/images.js') },
  inspect: { summary: 'show an image’s config and manifest as JSON', load: () => import('./commands/inspect.js') },
  tag: { summary: 'give an image another name', load: () => import('./commands/tag.js') },
  rmi: { summary: 'remove image names (blobs go at the next gc)', load: () => import('./commands/rmi.js') },
  history: { summary: 'show the history of an image', load: () => import('./commands/history.js') },
  cache: { summary: 'list, size, prune and explain the build cache (ls, du, prune, why)', load: () => import('./commands/cache.js') },
  store: { summary: 'check and collect the store (verify, gc)', load: () => import('./commands/store.js') },
  save: { summary: 'write images to an OCI or docker archive', load: () => import('./commands/save.js') },
  load: { summary: 'read images from an OCI or docker archive or layout', load: () => import('./commands/load.js') },
  import: { summary: 'make an image from a root filesystem tarball', load: () => import('./commands/import.js') },
  pull: { summary: 'pull an image from a registry', load: () => import('./commands/pull.js') },
  push: { summary: 'push an image to a registry', load: () => import('./commands/push.js') },
  login: { summary: 'store registry credentials', load: () => import('./commands/login.js') },
  logout: { summary: 'remove registry credentials', load: () => import('./commands/logout.js') },
  debug: { summary: 'dump intermediate forms: debug parse|ir|plan FILE', load: () => import('./commands/debug.js') },
};

export function version(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const p of [join(here, '..', '..', 'package.json'), join(here, '..', '..', '..', 'package.json')]) {
    try { return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version; } catch { /* next */ }
  }
  return 'unknown';
}

function topHelp(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return [
    'tsbuild: build OCI images from Dockerfiles, without a daemon.',
    '',
    'Usage:',
    '  tsbuild [build] [CONTEXT] -t NAME:TAG [flags]   build (CONTEXT defaults to .)',
    '  tsbuild COMMAND [flags] [args]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(w)}  ${v.summary}`),
    '',
    'Global flags:',
    formatFlags([{ name: 'version', type: 'bool', help: 'print the version' }]),
    '',
    'Run "tsbuild COMMAND --help" for a command’s flags.',
    '',
  ].join('\n');
}

export function commandHelp(c: Command): string {
  return [`Usage:\n  ${c.usage}`, '', c.summary, '', 'Flags:', formatFlags(c.flags), c.details ? `\n${c.details}` : '', ''].join('\n');
}

export function defaultContext(): CliContext {
  const ac = new AbortController();
  const onSig = (sig: NodeJS.Signals) => {
    if (ac.signal.aborted) process.exit(sig === 'SIGINT' ? 130 : 143);
    ac.abort(new Error(`interrupted by ${sig}`));
  };
  process.once('SIGINT', onSig);
  process.once('SIGTERM', onSig);
  // The standard streams on first use: process.stdout/stderr/stdin each build a stream for their fd
  // (~5 ms apiece for a pipe, which loads the net module), and many runs need only one of them
  // (`images` writes no stderr; a quiet build reads no stdin and writes no stderr).
  let out: NodeJS.WriteStream | undefined;
  const stdout = (): NodeJS.WriteStream => {
    if (!out) {
      out = process.stdout;
      // `tsbuild images | head`: the reader went away. End as a program killed by SIGPIPE would
      // (as docker does), not with an unhandled 'error' event and a stack trace.
      out.on('error', (e: NodeJS.ErrnoException) => { if (e.code === 'EPIPE') process.exit(141); throw e; });
    }
    return out;
  };
  let err: NodeJS.WriteStream | undefined;
  const stderr = (): NodeJS.WriteStream => (err ??= process.stderr);
  return {
    get stdout() { return stdout(); },
    print: fdPrinter(1, () => out, stdout),
    printErr: fdPrinter(2, () => err, stderr),
    get stderr() { return stderr(); },
    // A pipe or a file (CI) is never a terminal: fstat tells without building the stream (~5 ms).
    stderrIsTTY() {
      try { if (!fstatSync(2).isCharacterDevice()) return false; } catch { return false; }
      return stderr().isTTY === true;
    },
    get stdin() { return process.stdin; },
    env: process.env, cwd: process.cwd(), signal: ac.signal,
  };
}

/**
 * Writes to `fd` straight (writeSync) until its stream exists (`made()`), then through the stream
 * (`make()`), so order is kept. A non-blocking fd that is full (EAGAIN) hands the rest to the
 * stream, which waits for it; a reader that went away (EPIPE) ends the process as SIGPIPE would.
 */
function fdPrinter(fd: number, made: () => NodeJS.WriteStream | undefined, make: () => NodeJS.WriteStream): (data: string | Uint8Array) => void {
  return (data) => {
    const s = made();
    if (s) { s.write(data); return; }
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') { make().write(buf.subarray(off)); return; }
      if (code === 'EPIPE') process.exit(141);
      throw e;
    }
  };
}

/** Index of the first word that is not a flag or a global flag's value (`--store DIR`). */
function firstWord(words: readonly string[]): number {
  for (let k = 0; k < words.length; k++) {
    const w = words[k]!;
    if (w === '--store') { k++; continue; }
    if (!w.startsWith('-')) return k;
  }
  return -1;
}

export async function main(argv: readonly string[], ctx: CliContext = defaultContext()): Promise<number> {
  const debug = argv.includes('--debug');
  try {
    // Global flags before the command word.
    let i = 0;
    const pre: string[] = [];
    while (i < argv.length && argv[i]!.startsWith('-')) {
      const a = argv[i]!;
      if (a === '--version' || a === '-v') { ctx.stdout.write(`tsbuild ${version()}\n`); return 0; }
      if ((a === '--help' || a === '-h') && pre.length === 0 && i === argv.length - 1) { ctx.stdout.write(topHelp()); return 0; }
      if (a === '--store' && i + 1 < argv.length) { pre.push(a, argv[i + 1]!); i += 2; continue; }
      if (a.startsWith('--store=') || a === '--debug') { pre.push(a); i++; continue; }
      break; // build flags without a command word: `tsbuild -t x .`
    }
    const word = argv[i];
    let name: string;
    let rest: string[];
    if (word === 'help') {
      const target = argv[i + 1];
      if (!target) { ctx.stdout.write(topHelp()); return 0; }
      const entry = COMMANDS[target];
      if (!entry) throw usageError(`unknown command "${target}"`);
      ctx.stdout.write(commandHelp((await entry.load()).command));
      return 0;
    }
    if (word !== undefined && Object.hasOwn(COMMANDS, word)) {
      name = word;
      rest = [...pre, ...argv.slice(i + 1)];
    } else if (word === undefined && pre.length === argv.length) {
      ctx.stdout.write(topHelp());
      return argv.length === 0 ? 0 : 2;
    } else {
      // No command word: a build (`tsbuild . -t app:1`), unless it looks like a typo of a command.
      if (word !== undefined && !word.startsWith('-') && !/[./]/.test(word) && !word.includes(':')) {
        const guess = didYouMean(word, Object.keys(COMMANDS));
        if (guess) throw usageError(`unknown command "${word}"`, `did you mean "tsbuild ${guess}"? (To build a context directory named "${word}", write ./${word}.)`);
      }
      name = 'build';
      rest = [...argv];
    }
    let command = (await COMMANDS[name]!.load()).command;
    if (name === 'debug' || name === 'cache') {
      // `debug FORM …`, `cache SUB …`: the form is a command of its own, with its own flags.
      const formAt = firstWord(rest);
      const form = formAt < 0 ? undefined : rest[formAt];
      if (form === undefined && (rest.includes('--help') || rest.includes('-h'))) { ctx.stdout.write(commandHelp(command)); return 0; }
      command = name === 'debug' ? await (await import('./commands/debug.js')).pick(form) : await (await import('./commands/cache.js')).pick(form);
      rest = rest.filter((_, k) => k !== formAt);
    }
    const args = parseArgs(rest, command.flags, command.name, { stopAtPositional: command.flagsBeforeArgs === true });
    if (args.bool('help')) { ctx.stdout.write(commandHelp(command)); return 0; }
    return await command.run(args, ctx);
  } catch (err) {
    ctx.stderr.write(renderError(err, { debug }));
    return isTsbError(err) ? err.exitCode : 70;
  }
}
