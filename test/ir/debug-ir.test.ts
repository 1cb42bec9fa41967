// `tsbuild debug ir` end to end through the CLI dispatcher (in-process, captured streams).
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { CliContext } from '../../src/cli/command.js';
import { main } from '../../src/cli/main.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sink(): Writable & { text: string } {
  const w = new Writable({ write(chunk, _enc, cb) { w.text += String(chunk); cb(); } }) as Writable & { text: string };
  w.text = '';
  return w;
}

async function run(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const stdout = sink();
  const stderr = sink();
  const ctx: CliContext = { stdout, stderr, stdin: Readable.from([stdin]), env: {}, cwd: ROOT, signal: new AbortController().signal };
  const code = await main(argv, ctx);
  return { code, out: stdout.text, err: stderr.text };
}

describe('tsbuild debug ir', () => {
  it('prints the IR of a file as JSON', async () => {
    const r = await run(['debug', 'ir', 'testdata/ir/ok-multistage/Dockerfile']);
    expect(r.code).toBe(0);
    const ir = JSON.parse(r.out) as { stages: { name?: string }[]; metaArgs: unknown[] };
    expect(ir.stages.map((s) => s.name ?? null)).toEqual(['build', null]);
    expect(ir.metaArgs).toHaveLength(2);
  });
  it('reads stdin with -, and renders errors with a code frame', async () => {
    const r = await run(['debug', 'ir', '-'], 'FROM alpine\nRUN --network=bridge true\n');
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toContain('-:2:5: error TSB2015: invalid network mode "bridge"');
    expect(r.err).toContain('> 2 | RUN --network=bridge true');
    expect(r.err).toContain('hint: use --network=default, none or host.');
  });
  it('--warnings lists warnings on stderr', async () => {
    const r = await run(['debug', 'ir', '-', '--warnings'], 'FROM alpine AS Build\nCMD run\n');
    expect(r.code).toBe(0);
    expect(r.err).toContain("-:1:1: warning StageNameCasing: Stage name 'Build' should be lowercase");
    expect(r.err).toContain('-:2:1: warning JSONArgsRecommended');
  });
  it('a missing file is a usage error', async () => {
    const r = await run(['debug', 'ir', 'no/such/Dockerfile']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('error TSB0001: cannot read no/such/Dockerfile: ENOENT');
  });
});
