// Every Dockerfile of the shared corpus through parse + toIR: each must give an IR or a TsbError
// (nothing else may escape), and the errors must be the plausible ones. Skips if ../shared is absent.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TsbError } from '../../src/errors.js';
import { toIR } from '../../src/ir/index.js';
import { parse } from '../../src/syntax/index.js';

const CORPUS = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const have = existsSync(CORPUS);
if (!have) console.warn(`skipping corpus lowering: ${CORPUS} is absent`);

function walk(dir: string, pick: (name: string) => boolean): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    if (n.startsWith('_')) continue; // oracle outputs, not inputs
    if (statSync(p).isDirectory()) out.push(...walk(p, pick));
    else if (pick(n)) out.push(p);
  }
  return out;
}

interface Outcome { file: string; ok: boolean; code?: string; message?: string; line?: number }

function lowerAll(files: string[]): Outcome[] {
  return files.map((file) => {
    const text = readFileSync(file, 'utf8');
    try {
      toIR(parse(text, file));
      return { file, ok: true };
    } catch (e) {
      if (!(e instanceof TsbError)) throw new Error(`${file}: non-TsbError escaped: ${String(e)}`);
      return { file, ok: false, code: e.code, message: e.message, line: e.span?.line ?? 0 };
    }
  });
}

function summary(name: string, out: Outcome[]): void {
  const byCode = new Map<string, number>();
  for (const o of out) if (!o.ok) byCode.set(o.code!, (byCode.get(o.code!) ?? 0) + 1);
  console.log(`${name}: ${out.length} files, ${out.filter((o) => o.ok).length} lower cleanly, errors by code: ${JSON.stringify(Object.fromEntries([...byCode].sort()))}`);
}

describe.skipIf(!have)('shared corpus through toIR', () => {
  it('docs-examples: IR or a plausible TsbError for every fragment', () => {
    const files = walk(join(CORPUS, 'docs-examples'), (n) => n.endsWith('Dockerfile'));
    expect(files.length).toBeGreaterThan(100);
    const out = lowerAll(files);
    summary('docs-examples', out);
    // Docs fragments are often partial (no FROM, placeholders like `<src>`): those may fail, but
    // only with codes that mean "this is not a whole, valid Dockerfile".
    // As of this writing (366 files): 179 lower; 133 are fragments without FROM (TSB2002), 26
    // comment-only (TSB1001); the rest are syntax synopses (`FROM [--platform=<platform>] <image>`,
    // `--network=<TYPE>`, `{{% param %}}` templates), the docs' own "bad" examples (duplicate
    // stage, repeated directive, `# check=error=true` over a shell-form CMD) and RUN --device
    // (TSB2020, unsupported).
    const plausible = new Set(['TSB1001', 'TSB1003', 'TSB1004', 'TSB1008', 'TSB2001', 'TSB2002', 'TSB2003', 'TSB2005',
      'TSB2014', 'TSB2015', 'TSB2018', 'TSB2020', 'TSB2021']);
    const odd = out.filter((o) => !o.ok && !plausible.has(o.code!));
    expect(odd).toEqual([]);
    // "No build stage" must really mean the fragment has no FROM above the offending line.
    for (const o of out.filter((x) => x.code === 'TSB2002')) {
      const lines = readFileSync(o.file, 'utf8').split('\n').slice(0, o.line! - 1);
      expect(lines.some((l) => /^\s*FROM\s/i.test(l)), o.file).toBe(false);
    }
  });

  it('buildkit parser testfiles: every positive case lowers or fails with a reason we can name', () => {
    const files = walk(join(CORPUS, 'buildkit-parser', 'frontend'), (n) => n === 'Dockerfile');
    expect(files.length).toBeGreaterThan(30);
    const out = lowerAll(files);
    summary('buildkit-parser/frontend', out);
    for (const o of out) {
      if (o.file.includes('testfiles-negative')) expect(o.ok, o.file).toBe(false);
    }
    // Parser test inputs are not all buildable: instructions before FROM, `COPY --user` (no such
    // flag), a bare HEALTHCHECK. Those are the only lowering errors expected.
    const odd = out.filter((o) => !o.ok && !o.file.includes('testfiles-negative') && !['TSB1001', 'TSB2002', 'TSB2006', 'TSB2009'].includes(o.code!));
    expect(odd).toEqual([]);
  });

  it('buildkit integration-test snippets: IR, or the error BuildKit\'s own test expects', () => {
    const file = join(CORPUS, 'buildkit-parser', 'integration-test-snippets.jsonl');
    const rows = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; dockerfile: string | null });
    const out: (Outcome & { id: string })[] = [];
    for (const r of rows) {
      if (r.dockerfile === null) continue;
      try {
        toIR(parse(r.dockerfile, 'Dockerfile'));
        out.push({ id: r.id, file, ok: true });
      } catch (e) {
        if (!(e instanceof TsbError)) throw new Error(`${r.id}: non-TsbError escaped: ${String(e)}`);
        out.push({ id: r.id, file, ok: false, code: e.code, message: e.message });
      }
    }
    summary('integration-test-snippets', out);
    // These snippets are BuildKit's negative tests (typo'd instruction/flag/mount key, --from=$VAR,
    // check=error=true), fragments the Go test wraps (no FROM), a printf template (`build-%s`),
    // RUN --device, and the duplicate stage name BuildKit only warns about (TSB2005 here).
    const plausible = new Set(['TSB1001', 'TSB2001', 'TSB2002', 'TSB2004', 'TSB2005', 'TSB2006', 'TSB2014', 'TSB2016', 'TSB2018', 'TSB2020', 'TSB2021']);
    expect(out.filter((o) => !o.ok && !plausible.has(o.code!))).toEqual([]);
    expect(out.filter((o) => o.ok).length).toBeGreaterThan(250);
  });
});
