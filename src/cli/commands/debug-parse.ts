/**
 * `tsbuild debug parse FILE [--format buildkit|json]`: parse a Dockerfile and print its syntax tree.
 * `--format buildkit` (default) prints exactly what BuildKit's `AST.Dump()` prints (its parser
 * dumper), so the output can be diffed against BuildKit's; `--format json` prints the full AST with
 * spans, heredoc bodies and warnings. FILE `-` reads stdin. Parser warnings go to stderr.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { usageError } from '../args.js';
import type { CliContext, Command } from '../command.js';
import { registerSource } from '../render.js';
import { errnoCode } from '../../errors.js';
import { decodeDockerfile, dumpBuildkit, dumpJson, parse } from '../../syntax/index.js';

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks);
}

export const command: Command = {
  name: 'debug parse',
  summary: 'parse a Dockerfile and print its syntax tree (BuildKit dump or JSON)',
  usage: 'tsbuild debug parse FILE [--format buildkit|json]   (FILE - reads stdin)',
  flags: [
    { name: 'format', type: 'string', value: 'FORMAT', help: 'buildkit (BuildKit\'s AST.Dump(), default) or json' },
  ],
  details: 'The buildkit format is byte-identical to what BuildKit\'s parser dumper prints (AST.Dump()), so it can be diffed\nagainst BuildKit. Parser warnings (e.g. empty continuation lines) go to stderr.',
  async run(args, ctx: CliContext): Promise<number> {
    const format = args.str('format') ?? 'buildkit';
    if (format !== 'buildkit' && format !== 'json') {
      throw usageError(`unknown --format "${format}"`, 'use --format buildkit or --format json.');
    }
    if (args.positional.length !== 1) {
      throw usageError(args.positional.length === 0 ? 'debug parse needs a FILE' : 'debug parse takes one FILE',
        'write tsbuild debug parse Dockerfile (or - for stdin).');
    }
    const target = args.positional[0]!;
    let bytes: Buffer;
    const name = target;
    try {
      bytes = target === '-' ? await readAll(ctx.stdin) : await readFile(resolve(ctx.cwd, target));
    } catch (e) {
      // An unreadable path is a usage error (TSB0001, exit 2), as in `debug ir`.
      throw usageError(`cannot read ${target}: ${errnoCode(e) ?? String(e)}`, 'give the path of a Dockerfile, or - to read it from stdin.');
    }
    const text = decodeDockerfile(bytes);
    registerSource(name, text);
    const ast = parse(text, name);
    for (const w of ast.warnings) {
      ctx.stderr.write(`${w.span.file}:${w.span.line}:${w.span.col}: warning ${w.rule}: ${w.message}\n`);
    }
    ctx.stdout.write((format === 'json' ? dumpJson(ast) : dumpBuildkit(ast)) + '\n');
    return 0;
  },
};
