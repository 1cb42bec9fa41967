/**
 * Heredoc detection, as BuildKit's parser does it (parser.go heredocsFromLine/heredocFromMatch):
 * the whole logical line is split into words by BuildKit's shell lexer (shell/lex.go) with an EMPTY
 * environment and the flags RawQuotes/RawEscapes/SkipUnsetEnv, escape token always `\` (whatever
 * the escape directive says), and each word is matched against `^(\d*)<<(-?)\s*([^<]*)$`.
 *
 * This is a purpose-built port of only what that needs: with an empty environment and
 * SkipUnsetEnv every `$…` form is either an error or reproduced literally, so no expansion logic
 * is needed. src/ir has the full expander for builds; keeping this copy here keeps src/syntax free
 * of a dependency on src/ir (the layering is syntax → ir, never back).
 *
 * Quirks reproduced on purpose:
 * - `<<` followed by spaces/tabs/CRs keeps them in the word (`<<  EOF` is one word);
 * - a lexing error anywhere in the line means "no heredocs" (BuildKit ignores the error);
 * - nested `${x:-…}`-style words reset the word being built (BuildKit's lexer shares one words
 *   buffer between the outer and the nested scan);
 * - `${a//b/c}` comes back as `${a/b/c}`.
 */
import type { Heredoc } from './ast.js';
import { isGoSpace, isRawByte } from './gostrings.js';

interface LexOpts {
  rawQuotes: boolean;
  rawEscapes: boolean;
}

class LexError extends Error {}

const EOF = -1;
const LETTER = /\p{L}/u;
const DIGIT = /\p{Nd}/u;

function isLetter(c: number): boolean {
  if (c < 0x80) return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  return !isRawByte(c) && LETTER.test(String.fromCodePoint(c));
}
function isDigit(c: number): boolean {
  if (c < 0x80) return c >= 0x30 && c <= 0x39;
  return !isRawByte(c) && DIGIT.test(String.fromCodePoint(c));
}

/** Go's text/scanner Peek/Next over a string, by code point. Raw bytes read as U+FFFD (Go's RuneError). */
class Scanner {
  private pos = 0;
  constructor(private readonly src: string) {
    // text/scanner skips a byte order mark at the very start of its input.
    if (src.charCodeAt(0) === 0xfeff) this.pos = 1;
  }
  peek(): number {
    if (this.pos >= this.src.length) return EOF;
    const c = this.src.codePointAt(this.pos)!;
    return isRawByte(c) ? 0xfffd : c;
  }
  next(): number {
    const c = this.peek();
    if (c === EOF) return EOF;
    this.pos += c > 0xffff ? 2 : 1;
    return c;
  }
}

function runeStr(c: number): string {
  return c === EOF ? '\ufffd' : String.fromCodePoint(c);
}

class Words {
  words: string[] = [];
  inWord = false;
  constructor(private readonly shared: { buf: string }) {}
  addChar(c: number): void {
    if (isGoSpace(c) && this.inWord) {
      if (this.shared.buf.length !== 0) {
        this.words.push(this.shared.buf);
        this.shared.buf = '';
        this.inWord = false;
      }
    } else if (!isGoSpace(c)) {
      this.addRawChar(c);
    }
  }
  addRawChar(c: number): void {
    this.shared.buf += runeStr(c);
    this.inWord = true;
  }
  addString(s: string): void {
    for (const ch of s) this.addChar(ch.codePointAt(0)!);
  }
  addRawString(s: string): void {
    this.shared.buf += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.shared.buf.length > 0) {
      this.words.push(this.shared.buf);
      this.shared.buf = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class ShellWord {
  private readonly sc: Scanner;
  private readonly shared = { buf: '' };
  private rawEscapes: boolean;
  constructor(src: string, private readonly opts: LexOpts) {
    this.sc = new Scanner(src);
    this.rawEscapes = opts.rawEscapes;
  }

  words(): string[] {
    return this.processStopOn(EOF, this.rawEscapes).words;
  }

  private processStopOn(stop: number, rawEscapes: boolean): { result: string; words: string[] } {
    let result = '';
    this.shared.buf = '';
    const words = new Words(this.shared);
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      for (;;) {
        let ch = this.sc.peek();
        if (ch === EOF) break;
        if (stop !== EOF && ch === stop) {
          this.sc.next();
          return { result, words: words.getWords() };
        }
        if (ch === 0x24 /* $ */) {
          const tmp = this.processDollar();
          result += tmp;
          words.addString(tmp);
        } else if (ch === 0x3c /* < */) {
          const tmp = this.processPossibleHeredoc();
          result += tmp;
          words.addRawString(tmp);
        } else if (ch === 0x27 /* ' */) {
          const tmp = this.processSingleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else if (ch === 0x22 /* " */) {
          const tmp = this.processDoubleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else {
          ch = this.sc.next();
          if (ch === 0x5c /* \ */) {
            if (this.rawEscapes) {
              words.addRawChar(ch);
              result += '\\';
            }
            ch = this.sc.next();
            if (ch === EOF) break;
            words.addRawChar(ch);
          } else {
            words.addChar(ch);
          }
          result += runeStr(ch);
        }
      }
      if (stop !== EOF) throw new LexError('unexpected end of statement');
      return { result, words: words.getWords() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    let ch = this.sc.next();
    if (this.opts.rawQuotes) result += runeStr(ch);
    for (;;) {
      ch = this.sc.next();
      if (ch === EOF) throw new LexError('unexpected end of statement while looking for matching single-quote');
      if (ch === 0x27) {
        if (this.opts.rawQuotes) result += "'";
        return result;
      }
      result += runeStr(ch);
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const ch0 = this.sc.next();
    if (this.opts.rawQuotes) result += runeStr(ch0);
    for (;;) {
      const p = this.sc.peek();
      if (p === EOF) throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (p === 0x22) {
        this.sc.next();
        if (this.opts.rawQuotes) result += '"';
        return result;
      }
      if (p === 0x24) {
        result += this.processDollar();
        continue;
      }
      let ch = this.sc.next();
      if (ch === 0x5c) {
        if (this.rawEscapes) result += '\\';
        const q = this.sc.peek();
        if (q === EOF) continue;
        if (q === 0x22 || q === 0x24 || q === 0x5c) ch = this.sc.next();
      }
      result += runeStr(ch);
    }
  }

  private processPossibleHeredoc(): string {
    this.sc.next();
    if (this.sc.peek() !== 0x3c) return '<';
    this.sc.next();
    let space = '';
    for (let c = this.sc.peek(); c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a; c = this.sc.peek()) {
      space += runeStr(c);
      this.sc.next();
    }
    return '<<' + space;
  }

  private processDollar(): string {
    this.sc.next();
    if (this.sc.peek() !== 0x7b /* { */) {
      const name = this.processName();
      return name === '' ? '$' : '$' + name;
    }
    this.sc.next();
    const p = this.sc.peek();
    if (p === EOF || p === 0x7b || p === 0x7d || p === 0x3a) throw new LexError('bad substitution');
    const name = this.processName();
    let ch = this.sc.next();
    let chs = runeStr(ch);
    let nullIsUnset = false;
    if (ch === 0x3a) { // `:` then the modifier, whatever it is (BuildKit's fallthrough)
      nullIsUnset = true;
      ch = this.sc.next();
      chs += runeStr(ch);
    }
    if (nullIsUnset || ch === 0x2b || ch === 0x2d || ch === 0x3f || ch === 0x23 || ch === 0x25) { // + - ? # %
      const raw = ch === 0x23 || ch === 0x25;
      if (nullIsUnset && raw) throw new LexError('unsupported modifier');
      const word = this.nested(0x7d, raw);
      return '${' + name + chs + word + '}';
    }
    switch (ch) {
      case 0x7d: // }
        return '${' + name + '}';
      case 0x2f: { // /
        if (this.sc.peek() === 0x2f) this.sc.next();
        const pattern = this.nested(0x2f, true);
        const replacement = this.nested(0x7d, true);
        return '${' + name + '/' + pattern + '/' + replacement + '}';
      }
      default:
        throw new LexError('unsupported modifier');
    }
  }

  private nested(stop: number, rawEscapes: boolean): string {
    return this.processStopOn(stop, rawEscapes).result;
  }

  private processName(): string {
    let name = '';
    for (;;) {
      const ch = this.sc.peek();
      if (ch === EOF) break;
      if (name === '' && isDigit(ch)) {
        while (this.sc.peek() !== EOF && isDigit(this.sc.peek())) name += runeStr(this.sc.next());
        return name;
      }
      if (name === '' && (ch === 0x40 || ch === 0x2a || ch === 0x23 || ch === 0x3f || ch === 0x2d || ch === 0x24 || ch === 0x21 || ch === 0x30)) {
        return runeStr(this.sc.next());
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== 0x5f) break;
      name += runeStr(this.sc.next());
    }
    return name;
  }
}

function lexWords(src: string, opts: LexOpts): string[] | undefined {
  try {
    return new ShellWord(src, opts).words();
  } catch (e) {
    if (e instanceof LexError) return undefined;
    // Known gap: `${a:-${b:-…}}` nested thousands deep overflows this recursive port (Go's
    // growable stacks do not); such a line is treated as unlexable (no heredocs) instead of crashing.
    if (e instanceof RangeError) return undefined;
    throw e;
  }
}

const RE_HEREDOC = /^([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)$/;

export type HeredocHead = Omit<Heredoc, 'content' | 'span'>;

/** BuildKit's ParseHeredoc on one word: the heredoc it opens, or undefined. Throws a string on BuildKit's errors. */
export function parseHeredocWord(word: string): HeredocHead | undefined {
  const m = RE_HEREDOC.exec(word);
  if (!m) return undefined;
  const rest = m[3]!;
  if (rest === '') return undefined;
  const words = lexWords(rest, { rawQuotes: false, rawEscapes: false });
  if (!words) throw new HeredocWordError(`failed to process ${JSON.stringify(rest)}`);
  if (words.length !== 1) return undefined;
  const raw = lexWords(rest, { rawQuotes: true, rawEscapes: false });
  if (!raw) throw new HeredocWordError(`failed to process ${JSON.stringify(rest)}`);
  if (raw.length !== words.length) throw new HeredocWordError(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const count = (w: string) => { let k = 0; for (const ch of w) if (ch === "'" || ch === '"') k++; return k; };
  let fd = 0;
  if (m[1] !== '') {
    const v = Number(m[1]);
    fd = m[1]!.length <= 20 && v <= 18446744073709551615 ? v : 0; // ParseUint error → 0
  }
  return { name: words[0]!, fileDescriptor: fd, expand: count(words[0]!) === count(raw[0]!), chomp: m[2] === '-' };
}

export class HeredocWordError extends Error {}

/** BuildKit's heredocsFromLine. */
export function heredocsFromLine(line: string): HeredocHead[] {
  const words = lexWords(line, { rawQuotes: true, rawEscapes: true }) ?? [];
  const docs: HeredocHead[] = [];
  for (const w of words) {
    const h = parseHeredocWord(w);
    if (h) docs.push(h);
  }
  return docs;
}
