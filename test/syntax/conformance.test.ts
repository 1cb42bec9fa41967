/**
 * Conformance with BuildKit's parser on the shared corpora (../shared, read-only; skipped with a
 * message when absent): every _buildkit/*.buildkit.json answer, plus the JSONL collections
 * (parser inline cases with heredoc bodies and empty-continuation warnings, integration-test
 * snippets and lint cases with their BuildKit dumps).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareWithBuildkit, runConformance } from '../../scripts/conformance.js';
import { parse } from '../../src/syntax/index.js';

const shared = join(import.meta.dirname, '..', '..', '..', 'shared', 'corpus');
const have = existsSync(shared);
if (!have) console.warn(`test/syntax/conformance: ${shared} is absent; corpus conformance tests are skipped`);

describe.skipIf(!have)('BuildKit parser conformance', () => {
  for (const [name, count] of [['buildkit-parser', 38], ['docs-examples', 366]] as const) {
    it(`${name}: every file matches BuildKit`, () => {
      const r = runConformance([join(shared, name)]);
      expect(r.lines).toEqual([]);
      expect(r.total).toBe(count);
      expect(r.matched).toBe(count);
    });
  }

  interface Inline {
    id: string;
    dockerfile: string;
    buildkit: { ok: boolean; dump?: string; warnings?: string[]; children?: never[] };
  }
  const inline = (): Inline[] => readFileSync(join(shared, 'buildkit-parser', 'parser-inline-cases.jsonl'), 'utf8')
    .split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Inline);

  it('parser inline cases: dumps, lines and heredoc bodies', () => {
    const cases = inline();
    expect(cases.length).toBe(3);
    for (const c of cases) expect([c.id, compareWithBuildkit(c.dockerfile, c.id, c.buildkit)]).toEqual([c.id, []]);
  });

  it('parser inline cases: empty-continuation warnings', () => {
    let seen = 0;
    for (const c of inline()) {
      const ast = parse(c.dockerfile, c.id);
      expect(ast.warnings.map((w) => w.message)).toEqual(c.buildkit.warnings ?? []);
      seen += ast.warnings.length;
      for (const w of ast.warnings) expect(w.rule).toBe('NoEmptyContinuation');
    }
    expect(seen).toBe(2);
  });

  for (const f of ['integration-test-snippets.jsonl', 'lint-cases.jsonl']) {
    it(`${f}: dumps, rejections and warnings`, () => {
      let n = 0;
      for (const l of readFileSync(join(shared, 'buildkit-parser', f), 'utf8').split('\n')) {
        if (!l.trim()) continue;
        const d = JSON.parse(l) as { id: string; dockerfile: string | null; buildkit_parse_ok: boolean; buildkit_dump: string | null; buildkit_parse_warnings: string[] | null };
        if (d.dockerfile === null) continue; // built at test time from Go expressions
        n++;
        const want = { ok: d.buildkit_parse_ok, dump: d.buildkit_dump ?? '' };
        expect([d.id, compareWithBuildkit(d.dockerfile, d.id, want)]).toEqual([d.id, []]);
        if (d.buildkit_parse_ok) {
          expect([d.id, parse(d.dockerfile, d.id).warnings.map((w) => w.message)]).toEqual([d.id, d.buildkit_parse_warnings ?? []]);
        }
      }
      expect(n).toBeGreaterThan(80);
    });
  }
});
