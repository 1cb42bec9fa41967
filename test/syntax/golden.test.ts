/**
 * Golden directories: testdata/parse/<case>/Dockerfile is parsed; a successful parse is compared
 * with buildkit.txt (BuildKit-format dump) and ast.json (full AST with spans), a rejected one with
 * error.txt (the error as the CLI renders it, code frame included). UPDATE_GOLDEN=1 rewrites them.
 */
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { registerSource, renderError } from '../../src/cli/render.js';
import { isTsbError } from '../../src/errors.js';
import { decodeDockerfile, dumpBuildkit, dumpJson, parse } from '../../src/syntax/index.js';

const root = join(import.meta.dirname, '..', '..', 'testdata', 'parse');
const update = process.env.UPDATE_GOLDEN === '1';

function check(dir: string, name: string, actual: string | undefined): void {
  const p = join(dir, name);
  if (update) {
    if (actual === undefined) rmSync(p, { force: true });
    else writeFileSync(p, actual);
    return;
  }
  if (actual === undefined) {
    expect(existsSync(p), `${p} should not exist`).toBe(false);
    return;
  }
  expect(existsSync(p), `${p} is missing (run with UPDATE_GOLDEN=1)`).toBe(true);
  expect(actual).toBe(readFileSync(p, 'utf8'));
}

describe('golden parse cases', () => {
  const cases = readdirSync(root).filter((d) => existsSync(join(root, d, 'Dockerfile'))).sort();
  it('has cases', () => expect(cases.length).toBeGreaterThan(10));
  for (const c of cases) {
    it(c, () => {
      const dir = join(root, c);
      const text = decodeDockerfile(readFileSync(join(dir, 'Dockerfile')));
      const file = 'Dockerfile';
      registerSource(file, text);
      let out: { dump?: string; json?: string; error?: string } = {};
      try {
        const ast = parse(text, file);
        out = { dump: dumpBuildkit(ast) + '\n', json: dumpJson(ast) + '\n' };
      } catch (e) {
        if (!isTsbError(e)) throw e;
        expect(e.code).toMatch(/^TSB1\d{3}$/);
        expect(e.span).toBeDefined();
        expect(e.hint).toBeTruthy();
        out = { error: renderError(e) };
      }
      // Cases named err-* must be rejected, all others must parse.
      expect(out.error !== undefined, out.error ?? 'parsed').toBe(c.startsWith('err-'));
      check(dir, 'buildkit.txt', out.dump);
      check(dir, 'ast.json', out.json);
      check(dir, 'error.txt', out.error);
    });
  }
});
