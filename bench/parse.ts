/**
 * Parser benchmarks (`npm run bench parse`):
 * - throughput: every Dockerfile of the shared corpora parsed repeatedly in this process; reports
 *   physical lines per second after a warm-up (goal ≥ 50,000 lines/s);
 * - robustness: 100,000 seeded mutations (src/syntax/fuzz.ts); reports how many failed with
 *   anything but a TsbError (must be 0).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isTsbError } from '../src/errors.js';
import { mutate, rng } from '../src/syntax/fuzz.js';
import { decodeDockerfile, parse } from '../src/syntax/index.js';

const here = dirname(fileURLToPath(import.meta.url));

function findRepoRoot(): string {
  let d = here;
  for (let k = 0; k < 5; k++) {
    if (existsSync(join(d, 'package.json'))) return d;
    d = dirname(d);
  }
  return process.cwd();
}

function corpusFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d).sort()) {
      const p = join(d, e);
      const st = statSync(p);
      if (st.isDirectory()) { if (e !== '_buildkit') walk(p); }
      else if (e === 'Dockerfile' || e.endsWith('.Dockerfile')) out.push(p);
    }
  };
  for (const c of ['buildkit-parser', 'docs-examples']) {
    const p = join(root, '..', 'shared', 'corpus', c);
    if (existsSync(p)) walk(p);
  }
  const golden = join(root, 'testdata', 'parse');
  if (existsSync(golden)) walk(golden);
  return out;
}

export default async function bench(report: (line: string) => void): Promise<void> {
  const root = findRepoRoot();
  const texts = corpusFiles(root).map((f) => decodeDockerfile(readFileSync(f)));
  if (texts.length === 0) {
    report('no corpus found (../shared/corpus); nothing to measure');
    return;
  }
  const lineCount = texts.reduce((n, t) => n + t.split('\n').length, 0);
  const bytes = texts.reduce((n, t) => n + t.length, 0);
  const once = () => {
    for (const t of texts) {
      try { parse(t, 'bench'); } catch (e) { if (!isTsbError(e)) throw e; }
    }
  };
  for (let k = 0; k < 20; k++) once(); // warm-up (JIT)
  let rounds = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < 2_000 || rounds < 5) {
    once();
    rounds++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  const lps = (lineCount * rounds) / (elapsed / 1000);
  report(`corpus: ${texts.length} files, ${lineCount} lines, ${bytes} chars`);
  report(`throughput: ${Math.round(lps).toLocaleString('en-US')} lines/s (${rounds} rounds in ${elapsed.toFixed(0)} ms; goal ≥ 50,000)`);
  report(`per file: ${((elapsed * 1000) / (rounds * texts.length)).toFixed(1)} µs average`);

  const r = rng(1);
  let bad = 0;
  let parsed = 0;
  let rejected = 0;
  const f0 = process.hrtime.bigint();
  for (let i = 0; i < 100_000; i++) {
    const input = mutate(texts[Math.floor(r() * texts.length)]!, r);
    try {
      parse(input, 'fuzz');
      parsed++;
    } catch (e) {
      if (isTsbError(e)) rejected++;
      else {
        bad++;
        if (bad <= 3) report(`non-coded failure: ${String(e)} for ${JSON.stringify(input).slice(0, 300)}`);
      }
    }
  }
  const fms = Number(process.hrtime.bigint() - f0) / 1e6;
  report(`fuzz: 100000 mutations in ${fms.toFixed(0)} ms: ${parsed} parsed, ${rejected} rejected with TsbError, ${bad} non-coded failures (must be 0)`);
}
