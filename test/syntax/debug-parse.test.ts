/** `tsbuild debug parse`: formats, stdin, warnings on stderr, errors rendered with a code frame. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../src/cli/args.js';
import type { CliContext } from '../../src/cli/command.js';
import { command } from '../../src/cli/commands/debug-parse.js';
import { renderError } from '../../src/cli/render.js';
import { TsbError } from '../../src/errors.js';

function ctx(stdin = ''): { ctx: CliContext; out: () => string; err: () => string } {
  const o = new PassThrough();
  const e = new PassThrough();
  let so = '';
  let se = '';
  o.on('data', (d) => { so += String(d); });
  e.on('data', (d) => { se += String(d); });
  const dir = mkdtempSync(join(tmpdir(), 'tsb-parse-'));
  return {
    ctx: { stdout: o, stderr: e, stdin: Readable.from([Buffer.from(stdin)]), env: {}, cwd: dir, signal: new AbortController().signal },
    out: () => so,
    err: () => se,
  };
}

const run = (argv: string[], c: CliContext) => command.run(parseArgs(argv, command.flags, 'debug parse'), c);

describe('tsbuild debug parse', () => {
  it('prints the BuildKit dump of a file (default format) and warnings on stderr', async () => {
    const c = ctx();
    writeFileSync(join(c.ctx.cwd, 'Dockerfile'), 'FROM a\nRUN x \\\n\n y\n');
    expect(await run(['Dockerfile'], c.ctx)).toBe(0);
    expect(c.out()).toBe('(from "a")\n(run "x  y")\n');
    expect(c.err()).toContain('Dockerfile:3:1: warning NoEmptyContinuation: Empty continuation line found in: RUN x  y');
  });
  it('reads stdin with -, prints JSON with --format json', async () => {
    const c = ctx('FROM a\n');
    expect(await run(['-', '--format', 'json'], c.ctx)).toBe(0);
    const ast = JSON.parse(c.out()) as { instructions: { keyword: string }[]; file: string };
    expect(ast.file).toBe('-');
    expect(ast.instructions.map((i) => i.keyword)).toEqual(['FROM']);
  });
  it('renders parse errors with a code frame from the registered source', async () => {
    const c = ctx('FROM a\nCMD [1]\n');
    const e = await run(['-'], c.ctx).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TsbError);
    const text = renderError(e);
    expect(text).toContain('-:2:6: error TSB1006');
    expect(text).toContain('> 2 | CMD [1]');
  });
  it('usage errors', async () => {
    const c = ctx();
    await expect(run(['--format', 'yaml', 'x'], c.ctx)).rejects.toMatchObject({ code: 'TSB0001', exitCode: 2 });
    await expect(run([], c.ctx)).rejects.toMatchObject({ code: 'TSB0001' });
    await expect(run(['missing'], c.ctx)).rejects.toMatchObject({ code: 'TSB0001' });
  });
});
