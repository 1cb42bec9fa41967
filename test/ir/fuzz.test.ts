// Seeded fuzz: 500 random mutations of shared-corpus Dockerfiles through parse + toIR (and then
// expansion of every expandable word and resolveMount) may only give an IR or a TsbError.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TsbError } from '../../src/errors.js';
import { expandWord, resolveMount, toIR, type DockerfileIR, type StageInstr, type Word } from '../../src/ir/index.js';
import { parse } from '../../src/syntax/index.js';

const CORPUS = fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));
const have = existsSync(CORPUS);
if (!have) console.warn(`skipping IR fuzz: ${CORPUS} is absent`);

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).sort().flatMap((n) => {
    const p = join(dir, n);
    if (n.startsWith('_')) return [];
    return statSync(p).isDirectory() ? walk(p) : n.endsWith('Dockerfile') ? [p] : [];
  });
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = ['\\', '`', '"', "'", '$', '${', '}', '{', '[', ']', '=', ',', ' ', '\n', '\t', '#', ':', '-', '<<EOF\n', '\nEOF\n',
  '--mount=', '--from=', '--link', '--chmod=', '--platform=', 'type=cache,', 'FROM ', ' AS ', 'ONBUILD ', 'RUN ', 'COPY ', 'ADD ',
  'HEALTHCHECK ', 'CMD ', 'SHELL ', 'ARG ', 'ENV ', '${A:-', '${A#', '${A//', '%%', '??', '*', '\u00e9', '\u{1F600}', '\r\n', '# escape=`\n'];

function mutate(text: string, rnd: () => number): string {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  let t = text;
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const at = Math.floor(rnd() * (t.length + 1));
    switch (Math.floor(rnd() * 6)) {
      case 0: t = t.slice(0, at) + pick(TOKENS) + t.slice(at); break;
      case 1: t = t.slice(0, at) + t.slice(at + 1 + Math.floor(rnd() * 8)); break;
      case 2: { const lines = t.split('\n'); const i = Math.floor(rnd() * lines.length); lines.splice(i, 0, lines[Math.floor(rnd() * lines.length)]!); t = lines.join('\n'); break; }
      case 3: { const lines = t.split('\n'); const i = Math.floor(rnd() * lines.length); lines.splice(i, 1); t = lines.join('\n'); break; }
      case 4: t = t.slice(0, at) + t.slice(at, at + 6).toUpperCase() + t.slice(at + 6); break;
      default: t = t.slice(0, at) + String.fromCharCode(Math.floor(rnd() * 128)) + t.slice(at); break;
    }
  }
  return t;
}

/** Every word the build would expand, expanded with a small env; every mount resolved. */
function exercise(ir: DockerfileIR): void {
  const env = new Map([['A', 'a b'], ['HOME', '/root'], ['EMPTY', '']]);
  const words: Word[] = [];
  const visit = (i: StageInstr | DockerfileIR['stages'][number]['from']): void => {
    for (const v of Object.values(i)) {
      if (v && typeof v === 'object' && 'raw' in v && 'expand' in v) words.push(v as Word);
      if (Array.isArray(v)) for (const x of v) if (x && typeof x === 'object' && 'raw' in x) words.push(x as Word);
    }
    if (i.kind === 'ENV' || i.kind === 'LABEL') for (const p of i.pairs) { words.push(p.key); if (p.value) words.push(p.value); }
    if (i.kind === 'ARG') for (const p of i.args) if (p.value) words.push(p.value);
    if (i.kind === 'ONBUILD' && i.trigger) visit(i.trigger);
    if (i.kind === 'RUN') for (const m of i.mounts) try { resolveMount(m, (s) => expandWord({ raw: s, expand: true, span: m.span }, env).value); } catch (e) { if (!(e instanceof TsbError)) throw e; }
  };
  for (const a of ir.metaArgs) visit(a);
  for (const s of ir.stages) { visit(s.from); for (const i of s.instructions) visit(i); }
  for (const w of words) {
    try { expandWord(w, env, ir.escapeToken); } catch (e) { if (!(e instanceof TsbError)) throw e; expect(e.span).toBeDefined(); }
  }
}

describe.skipIf(!have)('fuzz: parse + toIR yield an IR or a TsbError', () => {
  it('500 seeded mutations', () => {
    const files = [...walk(join(CORPUS, 'docs-examples')), ...walk(join(CORPUS, 'buildkit-parser', 'frontend'))];
    expect(files.length).toBeGreaterThan(0);
    const texts = files.map((f) => readFileSync(f, 'utf8'));
    const rnd = mulberry32(20261128);
    let lowered = 0;
    let rejected = 0;
    for (let n = 0; n < 500; n++) {
      const i = Math.floor(rnd() * texts.length);
      const text = mutate(texts[i]!, rnd);
      try {
        const ir = toIR(parse(text, 'Dockerfile'));
        lowered++;
        exercise(ir);
        JSON.stringify(ir);
      } catch (e) {
        if (!(e instanceof TsbError)) {
          throw new Error(`mutation ${n} of ${files[i]} threw ${String(e)}\n--- input ---\n${text}`);
        }
        expect(e.code).toMatch(/^TSB[12]\d{3}$/);
        if (e.code.startsWith('TSB2')) {
          // Lowering errors always point somewhere and say what to do.
          expect(e.span, `${e.code} ${e.message}`).toBeDefined();
          expect(e.hint, `${e.code} ${e.message}`).toBeTruthy();
        }
        rejected++;
      }
    }
    console.log(`fuzz: ${lowered} lowered, ${rejected} rejected with TsbError`);
    expect(lowered + rejected).toBe(500);
  });
});
