/**
 * `tsbuild debug ir FILE`: parse and lower a Dockerfile, print the IR as JSON (spans included).
 * `-` reads stdin (spans then say `-`). Errors are TsbErrors rendered by main with a code frame;
 * the source is registered so the frame works for stdin and for paths relative to --cwd too.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { errnoCode } from '../../errors.js';
import { irToJSON, toIR } from '../../ir/index.js';
import { parse } from '../../syntax/index.js';
import { usageError } from '../args.js';
import type { CliContext, Command } from '../command.js';
import { registerSource } from '../render.js';

async function readStdin(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

export async function readDockerfile(file: string, ctx: CliContext): Promise<string> {
  if (file === '-') return readStdin(ctx.stdin);
  try {
    return await readFile(resolve(ctx.cwd, file), 'utf8');
  } catch (e) {
    // A path that cannot be read is a usage error (TSB0001, exit 2), like a bad flag.
    throw usageError(`cannot read ${file}: ${errnoCode(e) ?? String(e)}`, 'give the path of a Dockerfile, or - to read it from stdin.');
  }
}

export const command: Command = {
  name: 'debug ir',
  summary: 'print the IR (typed, validated instructions grouped into stages) of a Dockerfile as JSON',
  usage: 'tsbuild debug ir FILE|-',
  flags: [
    { name: 'warnings', type: 'bool', help: 'also print the warnings to stderr, one per line' },
  ],
  details: 'Words are shown unexpanded (raw) with `expand` telling whether the build expands them.',
  async run(args, ctx) {
    const file = args.positional[0];
    if (file === undefined) throw usageError('debug ir needs a Dockerfile path (or - for stdin)');
    if (args.positional.length > 1) throw usageError(`unexpected argument "${args.positional[1]!}"`);
    const text = await readDockerfile(file, ctx);
    registerSource(file, text);
    const ir = toIR(parse(text, file));
    ctx.stdout.write(irToJSON(ir) + '\n');
    if (args.bool('warnings')) {
      for (const w of ir.warnings) ctx.stderr.write(`${w.span.file}:${w.span.line}:${w.span.col}: warning ${w.rule}: ${w.message}\n`);
    }
    return 0;
  },
};
