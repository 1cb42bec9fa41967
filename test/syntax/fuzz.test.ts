/**
 * 500 seeded (deterministic) mutations of corpus Dockerfiles: parse() must return an AST or throw
 * a TsbError with a TSB1xxx code and a span — any other exception is a bug. The dump and JSON
 * dump must also work on every AST produced.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isTsbError } from '../../src/errors.js';
import { mutate, rng } from '../../src/syntax/fuzz.js';
import { decodeDockerfile, dumpBuildkit, dumpJson, parse } from '../../src/syntax/index.js';

const repo = join(import.meta.dirname, '..', '..');

function seeds(): string[] {
  const out: string[] = [];
  const golden = join(repo, 'testdata', 'parse');
  for (const d of readdirSync(golden).sort()) {
    const p = join(golden, d, 'Dockerfile');
    if (existsSync(p)) out.push(decodeDockerfile(readFileSync(p)));
  }
  const docs = join(repo, '..', 'shared', 'corpus', 'docs-examples');
  if (existsSync(docs)) {
    for (const f of readdirSync(docs).filter((f) => f.endsWith('.Dockerfile')).sort()) {
      out.push(decodeDockerfile(readFileSync(join(docs, f))));
    }
  }
  return out;
}

describe('parser fuzz', () => {
  it('500 mutations: only ASTs or coded TsbErrors', () => {
    const corpus = seeds();
    expect(corpus.length).toBeGreaterThan(10);
    const r = rng(20240530);
    let parsed = 0;
    let rejected = 0;
    for (let i = 0; i < 500; i++) {
      const input = mutate(corpus[Math.floor(r() * corpus.length)]!, r);
      try {
        const ast = parse(input, 'fuzz');
        dumpBuildkit(ast);
        dumpJson(ast);
        parsed++;
      } catch (e) {
        if (!isTsbError(e)) {
          throw new Error(`mutation ${i} threw a non-coded error for input ${JSON.stringify(input)}: ${String(e)}`, { cause: e });
        }
        expect(e.code).toMatch(/^TSB1\d{3}$/);
        expect(e.span?.line).toBeGreaterThan(0);
        rejected++;
      }
    }
    expect(parsed + rejected).toBe(500);
    // The mutations must exercise both outcomes, or the test proves little.
    expect(parsed).toBeGreaterThan(50);
    expect(rejected).toBeGreaterThan(5);
  });
});
