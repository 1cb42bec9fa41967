/**
 * Dockerfile text → DockerfileAST, following BuildKit's parser (frontend/dockerfile/parser,
 * parser.go `Parse`) rule for rule; ../shared/corpus/buildkit-parser/FORMAT.md documents them.
 *
 * Structure:
 * - `Parse` below is the physical-line loop: BOM, parser directives, comments (PrevComment),
 *   line continuations (escape token), comment and empty lines inside continuations, heredoc
 *   bodies. It is sequential and stateful by nature, so it is plain TypeScript.
 * - Each logical line is recognized by the nearley grammar (grammar/dockerfile.ne, moo lexer),
 *   which yields the keyword's dispatch kind and the rest of the line.
 * - The per-instruction argument rules are in args.ts; heredoc words in heredoc-words.ts.
 *
 * Positions: lines are counted on `\n` only (CRLF is one line end, a lone CR is not); columns are
 * UTF-16 code units of the physical line, 1-based, after BOM removal (src/errors.ts Span).
 *
 * Verified: ../shared corpora (38/38 files, 366/366 docs blocks, 393 JSONL cases), a
 * differential fuzz (230k generated and mutated inputs) against a Go build of BuildKit's parser
 * logic with Go's own strconv/json/unicode/text/scanner, and (session 2) BuildKit 0.25's own
 * parser package compiled as an oracle: ~135k mutated, generated and transformed files plus a
 * real-world sample, identical dumps, line ranges, heredoc bodies and rejections.
 * testdata/syntax holds regression cases with BuildKit's own answers.
 * Known gaps (all outside what real Dockerfiles contain):
 * - Unicode tables come from Node's ICU, not Go's: strconv.IsPrint / strings.ToLower can differ for
 *   characters assigned after Unicode 15.0 (dump shows the char where BuildKit may show \uXXXX).
 * - heredoc-words.ts follows BuildKit's 2024 shell lexer (one words buffer shared with nested
 *   `${…}` scans; `<<` keeps following spaces/tabs/CRs); `${` nested thousands deep is treated as
 *   unlexable (no heredoc) instead of overflowing the stack.
 * - ONBUILD with nothing after it parses (as in BuildKit, `(onbuild)`); src/ir rejects it.
 */
import nearley from 'nearley';
import grammar from './grammar.generated.js';
import { TsbError, type Span } from '../errors.js';
import type { ArgNode, Directive, DockerfileAST, EscapeToken, Heredoc, Instruction, Warning } from './ast.js';
import {
  ArgError, extractBuilderFlags, parseHealthConfig, parseMaybeJson, parseMaybeJsonToList, parseNameOrNameVal,
  parseNameVal, parseString, parseStringsWhitespaceDelimited, type Parsed, type Word,
} from './args.js';
import { goByteLength, goToLower, goTrimLeftSpace, goTrimSpace, isGoSpace } from './gostrings.js';
import { heredocsFromLine, HeredocWordError } from './heredoc-words.js';

const compiledGrammar = nearley.Grammar.fromCompiled(grammar);

/** bufio.MaxScanTokenSize - 1: BuildKit's scanner fails on longer lines. */
export const MAX_LINE_BYTES = 65535;

interface Recognized {
  kind: 'jsonlist' | 'maybejson' | 'words' | 'env' | 'label' | 'nameval' | 'health' | 'string' | 'onbuild' | 'ignore';
  keyword: { value: string; offset: number };
  rest: { value: string; offset: number } | null;
}

function recognize(trimmed: string): Recognized {
  if (trimmed === '') return { kind: 'ignore', keyword: { value: '', offset: 0 }, rest: null };
  const p = new nearley.Parser(compiledGrammar);
  p.feed(trimmed);
  const r = p.results[0] as Recognized | undefined;
  if (!r) throw new Error(`internal: the instruction grammar did not recognize ${JSON.stringify(trimmed)}`);
  return r;
}

/** Maps offsets of a logical line (continuations joined) back to physical line/column. */
class LineMap {
  /** Parallel arrays: logical offset where a segment starts, its physical line, its 0-based column. */
  readonly offs: number[] = [];
  readonly lines: number[] = [];
  readonly cols: number[] = [];
  add(off: number, line: number, col: number): void {
    this.offs.push(off);
    this.lines.push(line);
    this.cols.push(col);
  }
  private seg(off: number): number {
    let k = this.offs.length - 1;
    while (k > 0 && this.offs[k]! > off) k--;
    return k;
  }
  /** Span for [start, end) if both ends sit on the same physical line, else undefined. */
  span(file: string, start: number, end: number): Span | undefined {
    if (start < 0 || this.offs.length === 0) return undefined;
    const a = this.seg(start);
    const b = end > start ? this.seg(end - 1) : a;
    if (this.lines[a] !== this.lines[b]) {
      return { file, line: this.lines[a]!, col: this.cols[a]! + (start - this.offs[a]!) + 1 };
    }
    const col = this.cols[a]! + (start - this.offs[a]!) + 1;
    return { file, line: this.lines[a]!, col, endLine: this.lines[a]!, endCol: col + Math.max(1, end - start) };
  }
}

interface Ctx {
  file: string;
  escape: number;
  map: LineMap;
  /** Span of the whole instruction, for nodes without an exact position. */
  whole: Span;
}

function argNodes(ctx: Ctx, words: readonly Word[], base: number): ArgNode[] {
  return words.map((w) => ({
    value: w.value,
    span: (w.start >= 0 ? ctx.map.span(ctx.file, base + w.start, base + w.end) : undefined) ?? ctx.whole,
  }));
}

type NodeParts = Omit<Instruction, 'span' | 'heredocs'> & { heredocs: Heredoc[] };

/**
 * newNodeFromLine: `line` sits at offset `base` of the logical line. ONBUILD's nested instruction
 * (parseSubCommand) is handled with a loop, not recursion, so `ONBUILD ONBUILD …` chains as long
 * as a line allows cannot overflow the stack (BuildKit accepts them; its later stage rejects them).
 */
function newNodeFromLine(ctx: Ctx, line0: string, base0: number, comments0: readonly string[]): NodeParts {
  const chain: { parts: Omit<NodeParts, 'sub'>; kwLine: number; kwCol: number }[] = [];
  let line = line0;
  let base = base0;
  let comments = comments0;
  for (;;) {
    // splitCommand
    const leftTrimmed = goTrimLeftSpace(line);
    const lead = line.length - leftTrimmed.length;
    const trimmed = goTrimSpace(leftTrimmed);
    const rec = recognize(trimmed);
    const keyword = rec.keyword.value;
    let flagWords: Word[] = [];
    let args = '';
    let argsBase = base + lead + trimmed.length;
    if (rec.rest) {
      const restBase = base + lead + rec.rest.offset;
      const ex = extractBuilderFlags(rec.rest.value, ctx.escape);
      flagWords = ex.flags.map((f) => ({ value: f.value, start: f.start + restBase, end: f.end + restBase }));
      const a = goTrimLeftSpace(ex.rest);
      argsBase = restBase + ex.restStart + (ex.rest.length - a.length);
      args = goTrimSpace(a);
    }
    const kwSpan = ctx.map.span(ctx.file, base + lead, base + lead + keyword.length) ?? ctx.whole;

    let parsed: Parsed;
    try {
      switch (rec.kind) {
        case 'jsonlist': parsed = parseMaybeJsonToList(args); break;
        case 'maybejson': parsed = parseMaybeJson(args); break;
        case 'words': parsed = parseStringsWhitespaceDelimited(args); break;
        case 'env': parsed = parseNameVal(args, 'ENV', ctx.escape); break;
        case 'label': parsed = parseNameVal(args, 'LABEL', ctx.escape); break;
        case 'nameval': parsed = parseNameOrNameVal(args, ctx.escape); break;
        case 'health': parsed = parseHealthConfig(args); break;
        case 'string': parsed = parseString(args); break;
        case 'onbuild': parsed = { args: [], json: false }; break;
        default: parsed = { args: [{ value: '', start: -1, end: -1 }], json: false };
      }
    } catch (e) {
      if (e instanceof ArgError) {
        const at = e.start >= 0 ? ctx.map.span(ctx.file, argsBase + e.start, argsBase + e.end) : undefined;
        throw new TsbError(e.code, e.message, { span: at ?? kwSpan, hint: e.hint });
      }
      throw e;
    }
    chain.push({
      parts: {
        keyword,
        flags: argNodes(ctx, flagWords, 0),
        args: argNodes(ctx, parsed.args, argsBase),
        json: parsed.json,
        heredocs: [],
        original: line,
        prevComment: comments,
      },
      kwLine: kwSpan.line,
      kwCol: kwSpan.col,
    });
    if (rec.kind !== 'onbuild' || args === '') break;
    line = args;
    base = argsBase;
    comments = [];
  }
  // Assemble from the innermost instruction outwards.
  let node: NodeParts = chain[chain.length - 1]!.parts;
  for (let k = chain.length - 2; k >= 0; k--) {
    const inner = chain[k + 1]!;
    node = { ...chain[k]!.parts, sub: { ...node, span: { ...ctx.whole, line: inner.kwLine, col: inner.kwCol } } };
  }
  return node;
}

function canContainHeredoc(ins: Pick<Instruction, 'keyword' | 'sub' | 'json'>): boolean {
  let node = ins;
  if (goToLower(node.keyword) === 'onbuild' && node.sub) node = node.sub;
  const k = goToLower(node.keyword);
  return (k === 'run' || k === 'copy' || k === 'add') && !node.json;
}

const LONE_SURROGATE_TEST = /[\ud800-\udfff]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udc7f\udd00-\udfff]/g;
const RE_DIRECTIVE = /^#[\t\n\f\r ]*([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*([^\n]+?)[\t\n\f\r ]*$/;
const VALID_DIRECTIVES = new Set(['syntax', 'escape', 'check']);

function isComment(s: string): boolean {
  let i = 0;
  while (i < s.length && isGoSpace(s.charCodeAt(i))) i++;
  return s.charCodeAt(i) === 0x23;
}

function trimNewline(s: string): string {
  let j = s.length;
  while (j > 0 && (s.charCodeAt(j - 1) === 0x0d || s.charCodeAt(j - 1) === 0x0a)) j--;
  return j === s.length ? s : s.slice(0, j);
}

/** `bytesRead[1:]`: drop the first BYTE (a multi-byte first character leaves invalid bytes). */
function dropFirstByte(s: string): string {
  const c = s.charCodeAt(0);
  if (c < 0x80 || (c >= 0xdc80 && c <= 0xdcff)) return s.slice(1);
  const cp = s.codePointAt(0)!;
  const width = cp > 0xffff ? 2 : 1;
  const bytes = cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  const enc = Buffer.from(String.fromCodePoint(cp), 'utf8');
  let out = '';
  for (let k = 1; k < bytes; k++) out += String.fromCharCode(0xdc00 + enc[k]!);
  return out + s.slice(width);
}

/** The continuation regex `([^E])E[ \t]*$|^E[ \t]*$`: returns the line without it, or undefined. */
function trimContinuation(s: string, esc: number): string | undefined {
  let j = s.length;
  while (j > 0 && (s.charCodeAt(j - 1) === 0x20 || s.charCodeAt(j - 1) === 0x09)) j--;
  if (j === 0 || s.charCodeAt(j - 1) !== esc) return undefined;
  if (j >= 2 && s.charCodeAt(j - 2) === esc) return undefined;
  return s.slice(0, j - 1);
}

export function parseDockerfile(input: string, file: string): DockerfileAST {
  let text = input;
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  // A Go string cannot hold a lone surrogate: text that did not come from decodeDockerfile may,
  // and its UTF-8 encoding would be U+FFFD. Escaped raw bytes (lone U+DC80..U+DCFF) are kept.
  if (LONE_SURROGATE_TEST.test(text)) text = text.replace(LONE_SURROGATE, '\ufffd');
  const lines = text.split('\n');
  // bufio.Scanner yields no empty token after a final newline.
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const nLines = lines.length;

  let escape = 0x5c;
  let directivesDone = false;
  const seen = new Set<string>();
  const directives: Directive[] = [];
  const instructions: Instruction[] = [];
  const warnings: Warning[] = [];
  let comments: string[] = [];

  let idx = 0; // next physical line to read (0-based)
  let currentLine = 0;

  const readLine = (): string => {
    const raw = lines[idx]!;
    idx++;
    if (raw.length * 3 > MAX_LINE_BYTES && goByteLength(raw) > MAX_LINE_BYTES) {
      throw new TsbError('TSB1002', `dockerfile line greater than max allowed size of ${MAX_LINE_BYTES}`, {
        span: { file, line: idx, col: 1 },
        hint: 'split the line with line continuations, or move the data into a file in the build context.',
      });
    }
    return raw;
  };

  const directive = (t: string, lineNo: number, lead: number): boolean => {
    if (directivesDone) return false;
    const m = RE_DIRECTIVE.exec(t);
    if (!m) { directivesDone = true; return false; }
    const key = m[1]!.toLowerCase();
    if (!VALID_DIRECTIVES.has(key)) { directivesDone = true; return false; }
    const value = m[2]!;
    const vcol = lead + t.lastIndexOf(value, t.length) + 1;
    const span: Span = { file, line: lineNo, col: vcol, endLine: lineNo, endCol: vcol + value.length };
    if (seen.has(key)) {
      throw new TsbError('TSB1004', `only one ${key} parser directive can be used`, {
        span: { file, line: lineNo, col: lead + 1 },
        hint: `remove the repeated "# ${key}=" line; parser directives may appear once each, at the very top.`,
      });
    }
    seen.add(key);
    if (key === 'escape') {
      if (value !== '`' && value !== '\\') {
        throw new TsbError('TSB1003', `invalid escape token '${value}' does not match \` or \\`, {
          span, hint: 'write "# escape=\\" or "# escape=`" (nothing else on the line).',
        });
      }
      escape = value.charCodeAt(0);
    }
    directives.push({ name: key, value, span });
    return true;
  };

  while (idx < nLines) {
    const raw = readLine();
    if (isComment(raw)) {
      const c = goTrimSpace(dropFirstByte(raw));
      if (c === '') comments = [];
      else comments.push(c);
    }
    const t0 = trimNewline(raw);
    const t = goTrimLeftSpace(t0);
    const lead = t0.length - t.length;
    const lineNo = idx;
    if (directive(t, lineNo, lead)) comments.pop();
    currentLine++;
    const startLine = currentLine;
    const first = isComment(t) ? '' : t;
    const c0 = trimContinuation(first, escape);
    if (c0 === undefined && first === '') continue;

    const map = new LineMap();
    const parts: string[] = [];
    let len = 0;
    const push = (s: string, line: number, col: number) => {
      map.add(len, line, col);
      parts.push(s);
      len += s.length;
    };
    push(c0 ?? first, startLine, lead);
    let end = c0 === undefined;
    let firstEmpty = 0;
    while (!end && idx < nLines) {
      const r = readLine();
      currentLine++;
      if (isComment(r)) continue;
      const tl = trimNewline(r);
      if (goTrimLeftSpace(tl) === '') {
        if (!firstEmpty) firstEmpty = currentLine;
        continue;
      }
      const c = trimContinuation(tl, escape);
      end = c === undefined;
      push(c ?? tl, currentLine, 0);
    }
    const line = parts.length === 1 ? parts[0]! : parts.join('');
    const lastText = trimNewline(lines[currentLine - 1] ?? '');
    const whole: Span = { file, line: startLine, col: lead + 1, endLine: currentLine, endCol: lastText.length + 1 };

    if (firstEmpty) {
      warnings.push({
        rule: 'NoEmptyContinuation',
        message: `Empty continuation line found in: ${line}`,
        span: { file, line: firstEmpty, col: 1 },
      });
    }

    const ctx: Ctx = { file, escape, map, whole };
    const node = newNodeFromLine(ctx, line, 0, comments);

    if (canContainHeredoc(node) && line.includes('<<')) {
      let heads;
      try {
        heads = heredocsFromLine(line);
      } catch (e) {
        if (e instanceof HeredocWordError) {
          throw new TsbError('TSB1009', e.message, { span: whole, hint: 'check the quoting of the heredoc delimiter word.' });
        }
        throw e;
      }
      for (const h of heads) {
        let terminated = false;
        let content = '';
        const bodyStart = currentLine + 1;
        while (idx < nLines) {
          const r = readLine();
          currentLine++;
          let term = trimNewline(r);
          if (h.chomp) {
            let k = 0;
            while (term.charCodeAt(k) === 0x09) k++;
            term = term.slice(k);
          }
          if (term === h.name) { terminated = true; break; }
          content += idx < nLines || text.endsWith('\n') ? r + '\n' : r;
        }
        if (!terminated) {
          const at = line.indexOf('<<');
          const sp = at >= 0 ? map.span(file, at, at + 2) : undefined;
          throw new TsbError('TSB1005', 'unterminated heredoc', {
            span: sp ? { ...sp, endCol: (sp.endCol ?? sp.col + 1) + h.name.length } : whole,
            hint: `end the heredoc with a line that holds only ${JSON.stringify(h.name)}${h.chomp ? ' (leading tabs allowed)' : ''}.`,
          });
        }
        const bodyEnd = Math.max(bodyStart, currentLine - 1);
        const lastBody = trimNewline(lines[bodyEnd - 1] ?? '');
        node.heredocs.push({
          ...h,
          content: h.chomp ? content.replace(/(^|\n)\t+/g, '$1') : content,
          rawContent: content,
          span: { file, line: bodyStart, col: 1, endLine: bodyEnd, endCol: lastBody.length + 1 },
        });
      }
    }
    const endText = trimNewline(lines[currentLine - 1] ?? '');
    instructions.push({ ...node, span: { ...whole, endLine: currentLine, endCol: endText.length + 1 } });
    comments = [];
  }

  if (instructions.length === 0) {
    throw new TsbError('TSB1001', 'file with no instructions', {
      span: { file, line: Math.max(1, currentLine), col: 1 },
      hint: 'a Dockerfile needs at least one instruction, e.g. "FROM alpine".',
    });
  }
  const firstI = instructions[0]!.span;
  const lastI = instructions[instructions.length - 1]!.span;
  return {
    file,
    directives,
    escapeToken: String.fromCharCode(escape) as EscapeToken,
    instructions,
    warnings,
    span: { file, line: firstI.line, col: firstI.col, endLine: lastI.endLine ?? lastI.line, endCol: lastI.endCol ?? 1 },
  };
}
