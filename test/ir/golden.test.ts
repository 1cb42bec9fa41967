// Golden cases: testdata/ir/<case>/Dockerfile → ir.json (the IR as `tsbuild debug ir` prints it)
// or error.txt (the error as the CLI renders it). UPDATE_GOLDEN=1 rewrites them.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TsbError } from '../../src/errors.js';
import { IR_ERRORS, irToJSON, toIR } from '../../src/ir/index.js';
import { registerSource, renderError } from '../../src/cli/render.js';
import { parse } from '../../src/syntax/index.js';

const DIR = fileURLToPath(new URL('../../testdata/ir/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const cases = readdirSync(DIR).filter((d) => existsSync(`${DIR}${d}/Dockerfile`)).sort();

function run(name: string): { file: 'ir.json' | 'error.txt'; text: string } {
  const text = readFileSync(`${DIR}${name}/Dockerfile`, 'utf8');
  registerSource('Dockerfile', text);
  try {
    return { file: 'ir.json', text: irToJSON(toIR(parse(text, 'Dockerfile'))) + '\n' };
  } catch (e) {
    if (!(e instanceof TsbError)) throw e;
    return { file: 'error.txt', text: renderError(e) };
  }
}

describe('testdata/ir goldens', () => {
  for (const name of cases) {
    it(name, () => {
      const got = run(name);
      const path = `${DIR}${name}/${got.file}`;
      const other = `${DIR}${name}/${got.file === 'ir.json' ? 'error.txt' : 'ir.json'}`;
      if (UPDATE) { writeFileSync(path, got.text); return; }
      expect(existsSync(other), `${name} used to give ${other}`).toBe(false);
      expect(existsSync(path), `${path} missing: run with UPDATE_GOLDEN=1`).toBe(true);
      expect(got.text).toBe(readFileSync(path, 'utf8'));
      // Case names say what they expect: ok-* lowers, err-NNNN-* fails with TSBNNNN.
      if (name.startsWith('ok-')) expect(got.file).toBe('ir.json');
      const m = /^err-(\d{4})-/.exec(name);
      if (m) expect(got.text).toContain(`error TSB${m[1]}:`);
      if (m) expect(got.text).toMatch(/\nhint: /);
    });
  }

  it('every lowering error code has a golden case', () => {
    // TSB2030–2033 come from shell expansion at build time; test/ir/shell.test.ts covers them.
    const lowering = Object.keys(IR_ERRORS).filter((c) => Number(c.slice(3)) < 2030);
    const covered = new Set(cases.map((c) => /^err-(\d{4})-/.exec(c)?.[1]).filter(Boolean).map((n) => `TSB${n}`));
    expect(lowering.filter((c) => !covered.has(c))).toEqual([]);
  });
});
