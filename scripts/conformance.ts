/**
 * `npm run conformance -- DIR [DIR…]`: compare tsbuild's parser with BuildKit's answers.
 *
 * For every DIR/**\/_buildkit/*.buildkit.json (format: ../shared/corpus/buildkit-parser/FORMAT.md §6)
 * the Dockerfile named by its `path` (relative to the folder holding `_buildkit/`) is parsed and:
 * - ok:true  → the BuildKit dump must be identical, and so must each instruction's startLine/endLine
 *              and heredoc bodies (name, fd, expand, chomp, raw content);
 * - ok:false → tsbuild must reject the file with a TsbError.
 * One line per mismatch, then `conformance: M/T match`. Exit status 1 on any mismatch.
 *
 * The comparison logic is exported for test/syntax (so the test suite and this script agree).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeDockerfile, dumpBuildkit, parse, type DockerfileAST, type Instruction } from '../src/syntax/index.js';
import { isTsbError } from '../src/errors.js';

export interface BuildkitHeredoc {
  name: string;
  fileDescriptor: number;
  expand: boolean;
  chomp: boolean;
  content: string;
}
export interface BuildkitChild {
  value: string;
  startLine: number;
  endLine: number;
  heredocs?: BuildkitHeredoc[];
}
export interface BuildkitAnswer {
  path: string;
  ok: boolean;
  error?: string;
  dump?: string;
  warnings?: string[];
  children?: BuildkitChild[];
}

/** Every *.buildkit.json below `dir` (any depth), sorted. */
export function findAnswers(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: string[];
    try { entries = readdirSync(d); } catch { return; }
    for (const e of entries.sort()) {
      const p = join(d, e);
      let st;
      try { st = statSync(p); } catch { continue; }
      if (st.isDirectory()) walk(p);
      else if (e.endsWith('.buildkit.json') && d.endsWith('_buildkit')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/**
 * A heredoc body as a JSON answer can carry it: Go's encoding/json writes each byte that is not
 * valid UTF-8 as U+FFFD, while tsbuild keeps such a byte as the lone surrogate U+DC00+byte
 * (gostrings.ts). Both sides are compared in the lossy form.
 */
function jsonText(s: string): string {
  return s.replace(/[\udc80-\udcff]/g, '\ufffd');
}

/** Compare tsbuild's parse of `text` with one BuildKit answer; returns the problems (empty = match). */
export function compareWithBuildkit(text: string, file: string, want: { ok: boolean; dump?: string; children?: BuildkitChild[]; error?: string }): string[] {
  let ast: DockerfileAST | undefined;
  let err: unknown;
  try {
    ast = parse(text, file);
  } catch (e) {
    err = e;
  }
  if (err !== undefined && !isTsbError(err)) {
    return [`non-coded exception: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`];
  }
  if (!want.ok) {
    return ast ? [`BuildKit rejects it (${want.error ?? 'error'}) but tsbuild parsed it`] : [];
  }
  if (!ast) {
    const e = err as { code: string; message: string };
    return [`BuildKit parses it but tsbuild rejected it: ${e.code} ${e.message}`];
  }
  const problems: string[] = [];
  const got = dumpBuildkit(ast);
  const expected = (want.dump ?? '').replace(/\n$/, '');
  if (got !== expected) {
    const g = got.split('\n');
    const x = expected.split('\n');
    let k = 0;
    while (k < g.length && k < x.length && g[k] === x[k]) k++;
    problems.push(`dump differs at instruction ${k + 1}: want ${JSON.stringify(x[k] ?? '<end>')} got ${JSON.stringify(g[k] ?? '<end>')}`);
  }
  if (!want.children) return problems; // answers without per-instruction data (JSONL cases)
  const children = want.children;
  const ins: readonly Instruction[] = ast.instructions;
  if (children.length !== ins.length) {
    problems.push(`instruction count: want ${children.length} got ${ins.length}`);
  }
  for (let k = 0; k < Math.min(children.length, ins.length); k++) {
    const c = children[k]!;
    const i = ins[k]!;
    const sl = i.span.line;
    const el = i.span.endLine ?? i.span.line;
    if (c.startLine !== sl || c.endLine !== el) {
      problems.push(`instruction ${k + 1} (${c.value}) lines: want ${c.startLine}-${c.endLine} got ${sl}-${el}`);
    }
    const wh = c.heredocs ?? [];
    if (wh.length !== i.heredocs.length) {
      problems.push(`instruction ${k + 1} (${c.value}) heredocs: want ${wh.length} got ${i.heredocs.length}`);
      continue;
    }
    wh.forEach((h, j) => {
      const g = i.heredocs[j]!;
      const gotH = { name: g.name, fileDescriptor: g.fileDescriptor, expand: g.expand, chomp: g.chomp, content: jsonText(g.rawContent ?? g.content) };
      const wantH = { name: h.name, fileDescriptor: h.fileDescriptor, expand: h.expand, chomp: h.chomp, content: jsonText(h.content) };
      if (JSON.stringify(gotH) !== JSON.stringify(wantH)) {
        problems.push(`instruction ${k + 1} heredoc ${j + 1}: want ${JSON.stringify(wantH)} got ${JSON.stringify(gotH)}`);
      }
    });
  }
  return problems;
}

export interface ConformanceResult {
  total: number;
  matched: number;
  lines: string[];
}

export function runConformance(dirs: readonly string[]): ConformanceResult {
  const lines: string[] = [];
  let total = 0;
  let matched = 0;
  for (const dir of dirs) {
    for (const answerPath of findAnswers(dir)) {
      total++;
      const root = dirname(dirname(answerPath));
      const label = relative(process.cwd(), answerPath);
      let want: BuildkitAnswer;
      try {
        want = JSON.parse(readFileSync(answerPath, 'utf8')) as BuildkitAnswer;
      } catch (e) {
        lines.push(`${label}: unreadable answer: ${(e as Error).message}`);
        continue;
      }
      const df = join(root, want.path);
      let text: string;
      try {
        text = decodeDockerfile(readFileSync(df));
      } catch (e) {
        lines.push(`${label}: cannot read ${want.path}: ${(e as Error).message}`);
        continue;
      }
      const problems = compareWithBuildkit(text, relative(process.cwd(), df), want);
      if (problems.length === 0) matched++;
      else for (const p of problems) lines.push(`${relative(process.cwd(), df)}: ${p}`);
    }
  }
  return { total, matched, lines };
}

function main(): void {
  const dirs = process.argv.slice(2).filter((a) => a !== '--');
  if (dirs.length === 0) {
    console.error('usage: npm run conformance -- DIR [DIR…]   (folders holding _buildkit/*.buildkit.json)');
    process.exitCode = 2;
    return;
  }
  const r = runConformance(dirs.map((d) => resolve(d)));
  for (const l of r.lines) console.log(l);
  console.log(`conformance: ${r.matched}/${r.total} match`);
  process.exitCode = r.matched === r.total && r.total > 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
