/**
 * Shell-word expansion with BuildKit's semantics (its frontend/dockerfile/shell lexer): what the
 * builder does to ENV/LABEL values, COPY paths, WORKDIR, USER, FROM images, … before using them.
 * It is not a shell: no command substitution, no globbing of paths, no field splitting unless asked
 * (`processWords`), no arithmetic.
 *
 * Supported (and tested against BuildKit's own tables, test/ir/shell.test.ts):
 * - `'…'` literal; `"…"` with the escape token escaping `"`, `$` and itself only; the escape token
 *   outside quotes takes the next character literally (a trailing one is dropped).
 * - `$name`, `${name}`; names are letters/digits/`_`; `$1`…, `$@ $* $# $? $- $$ $! $0` are positional
 *   or special parameters, never set (they expand to "" unless the env has that key).
 * - `${v-w} ${v:-w} ${v+w} ${v:+w} ${v?msg} ${v:?msg}` (the `:` forms treat "" as unset),
 *   `${v#pat} ${v##pat} ${v%pat} ${v%%pat}` (glob `*`, `?`; shortest/longest prefix/suffix),
 *   `${v/pat/rep} ${v//pat/rep}` (first/all matches, `*` greedy).
 * - Anything else after a name (`${v:=w}`, `${v:1}`, `${v^^}`) is an error, like BuildKit.
 *
 * Errors are TsbError TSB2030–TSB2033 WITHOUT a span: the caller knows where the word is. Use
 * `expandWord` (or `TsbError.withSpan`) to point them at the Dockerfile word.
 *
 * Known differences from BuildKit (deliberate): `${name` at end of input says "missing '}'" where
 * BuildKit says "unsupported modifier (\uFFFD)"; env keys always compare case-sensitively (BuildKit
 * folds case on Windows only).
 */
import { TsbError } from '../errors.js';
import type { Word } from './types.js';

export type EscapeToken = '\\' | '`';

/** Variables visible to an expansion. A Map keeps insertion order; a plain object is accepted too. */
export type ShellEnv = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

export interface LexOptions {
  /** Leave `$name`/`${name…}` of unset variables as written (BuildKit's SkipUnsetEnv). */
  readonly skipUnsetEnv?: boolean;
  /** Quotes are ordinary characters (BuildKit uses this for COPY/ADD heredoc bodies). */
  readonly skipProcessQuotes?: boolean;
  /** Keep the quote characters in the result. */
  readonly rawQuotes?: boolean;
  /** Keep escape tokens in the result. */
  readonly rawEscapes?: boolean;
}

export interface ExpandResult {
  /** The single-word result (ProcessWord). */
  readonly value: string;
  /** The shell-split result (ProcessWords): unquoted expansion results split on whitespace. */
  readonly words: readonly string[];
  /** Variable names looked up and found (for cache keys and the unused-build-arg warning). */
  readonly matched: ReadonlySet<string>;
  /** Variable names looked up and not found (BuildKit's UndefinedVar lint input). */
  readonly unmatched: ReadonlySet<string>;
}

const EOF = null;
type Ch = string | null;

class LexError extends Error {
  constructor(readonly code: 'TSB2030' | 'TSB2031' | 'TSB2032' | 'TSB2033', message: string) {
    super(message);
  }
}

/** Go's unicode.IsSpace. */
function isSpace(ch: string): boolean {
  switch (ch) {
    case '\t': case '\n': case '\v': case '\f': case '\r': case ' ': case '\u0085': case '\u00a0':
    case '\u1680': case '\u2028': case '\u2029': case '\u202f': case '\u205f': case '\u3000':
      return true;
  }
  const c = ch.codePointAt(0)!;
  return c >= 0x2000 && c <= 0x200a;
}
const LETTER = /^\p{L}$/u;
const DIGIT = /^\p{Nd}$/u;
const isLetter = (ch: string) => LETTER.test(ch);
const isDigit = (ch: string) => DIGIT.test(ch);
const isSpecialParam = (ch: string) => '@*#?-$!0'.includes(ch);

class Words {
  word = '';
  words: string[] = [];
  inWord = false;
  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.word.length > 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else this.addRawChar(ch);
  }
  addRawChar(ch: string): void { this.word += ch; this.inWord = true; }
  addString(s: string): void { for (const ch of s) this.addChar(ch); }
  addRawString(s: string): void { this.word += s; this.inWord = true; }
  get(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class Lexer {
  private readonly chars: string[];
  private pos = 0;
  private rawEscapes: boolean;
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();

  constructor(word: string, private readonly env: ShellEnv, private readonly escape: string,
    private readonly opts: LexOptions) {
    this.chars = Array.from(word);
    this.rawEscapes = !!opts.rawEscapes;
  }

  private peek(): Ch { return this.pos < this.chars.length ? this.chars[this.pos]! : EOF; }
  private next(): Ch { return this.pos < this.chars.length ? this.chars[this.pos++]! : EOF; }

  private getEnv(name: string): [string, boolean] {
    const env = this.env;
    let v: string | undefined;
    if (env instanceof Map) v = (env as ReadonlyMap<string, string>).get(name);
    else if (Object.hasOwn(env, name)) v = (env as Record<string, string>)[name];
    if (v === undefined) { this.unmatched.add(name); return ['', false]; }
    this.matched.add(name);
    return [v, true];
  }

  processStopOn(stop: Ch, rawEscapes: boolean): { word: string; words: string[] } {
    let result = '';
    const words = new Words();
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      while (this.peek() !== EOF) {
        const ch = this.peek()!;
        if (stop !== EOF && ch === stop) {
          this.next();
          return { word: result, words: words.get() };
        }
        if (ch === '$') {
          const tmp = this.processDollar();
          result += tmp;
          words.addString(tmp);
        } else if (!this.opts.skipProcessQuotes && (ch === "'" || ch === '"')) {
          const tmp = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else {
          let c = this.next()!;
          if (c === this.escape) {
            if (this.rawEscapes) { words.addRawChar(c); result += c; }
            const n = this.next();
            if (n === EOF) break;
            c = n;
            words.addRawChar(c);
          } else words.addChar(c);
          result += c;
        }
      }
      if (stop !== EOF) {
        throw new LexError('TSB2030', `unexpected end of statement while looking for matching ${stop}`);
      }
      return { word: result, words: words.get() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    const open = this.next()!;
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const ch = this.next();
      if (ch === EOF) throw new LexError('TSB2030', 'unexpected end of statement while looking for matching single-quote');
      if (ch === "'") {
        if (this.opts.rawQuotes) result += ch;
        return result;
      }
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    const open = this.next()!;
    if (this.opts.rawQuotes) result += open;
    for (;;) {
      const p = this.peek();
      if (p === EOF) throw new LexError('TSB2030', 'unexpected end of statement while looking for matching double-quote');
      if (p === '"') {
        this.next();
        if (this.opts.rawQuotes) result += p;
        return result;
      }
      if (p === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next()!;
      if (ch === this.escape) {
        if (this.rawEscapes) result += ch;
        const q = this.peek();
        if (q === EOF) continue; // a trailing escape is ignored (then the missing quote errors)
        if (q === '"' || q === '$' || q === this.escape) ch = this.next()!;
      }
      result += ch;
    }
  }

  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const ch = this.peek()!;
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== EOF && isDigit(this.peek()!)) name += this.next();
        return name;
      }
      if (name === '' && isSpecialParam(ch)) return this.next()!;
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }

  private processDollar(): string {
    this.next(); // '$'
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const [value, found] = this.getEnv(name);
      if (!found && this.opts.skipUnsetEnv) return '$' + name;
      return value;
    }
    this.next(); // '{'
    const first = this.peek();
    if (first === EOF) throw new LexError('TSB2030', "syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexError('TSB2030', 'syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    if (ch === EOF) throw new LexError('TSB2030', "syntax error: missing '}'");
    let chs = ch;
    let nullIsUnset = false;

    if (ch === '}') {
      const [value, set] = this.getEnv(name);
      if (!set && this.opts.skipUnsetEnv) return `\${${name}}`;
      return value;
    }
    if (ch === '/') {
      const replaceAll = this.peek() === '/';
      if (replaceAll) this.next();
      let pattern: string;
      try {
        pattern = this.processStopOn('/', true).word;
      } catch (e) {
        if (e instanceof LexError && this.peek() === EOF) throw new LexError('TSB2030', "syntax error: missing '/' in ${}");
        throw e;
      }
      let replacement: string;
      try {
        replacement = this.processStopOn('}', true).word;
      } catch (e) {
        if (e instanceof LexError && this.peek() === EOF) throw new LexError('TSB2030', "syntax error: missing '}'");
        throw e;
      }
      const [value, set] = this.getEnv(name);
      if (this.opts.skipUnsetEnv && !set) return `\${${name}/${pattern}/${replacement}}`;
      const re = shellPatternToRegExp(pattern, true, false);
      if (replaceAll) return goReplaceAll(re, value, replacement);
      const m = re.exec(value);
      return m ? value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length) : value;
    }
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next();
      chs += ch ?? '\uFFFD';
    }
    if (ch === ':' || ch === '+' || ch === '-' || ch === '?' || ch === '#' || ch === '%' || nullIsUnset) {
      let word: string;
      try {
        word = this.processStopOn('}', ch === '#' || ch === '%').word;
      } catch (e) {
        if (e instanceof LexError && this.peek() === EOF) throw new LexError('TSB2030', "syntax error: missing '}'");
        throw e;
      }
      const [value, set] = this.getEnv(name);
      if (this.opts.skipUnsetEnv && !set) return `\${${name}${chs}${word}}`;
      switch (ch) {
        case '-':
          return !set || (nullIsUnset && value === '') ? word : value;
        case '+':
          return !set || (nullIsUnset && value === '') ? '' : word;
        case '?':
          if (!set) throw new LexError('TSB2032', `${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          if (nullIsUnset && value === '') throw new LexError('TSB2032', `${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          return value;
        case '%':
        case '#': {
          let greedy = false;
          if (word.startsWith(ch)) { greedy = true; word = word.slice(1); }
          return ch === '%' ? trimSuffix(word, value, greedy) : trimPrefix(word, value, greedy);
        }
        default:
          throw new LexError('TSB2031', `unsupported modifier (${chs}) in substitution`);
      }
    }
    throw new LexError('TSB2031', `unsupported modifier (${chs}) in substitution`);
  }
}

/**
 * A shell glob (`*`, `?`, escapes; no bracket expressions) as a RegExp, the way BuildKit turns
 * `${v#pat}` patterns into regular expressions. `.` of Go's regexp excludes only `\n`, so `[^\n]`.
 */
function shellPatternToRegExp(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '[^\\n]*' : '[^\\n]*?';
  for (let i = 0; i < chars.length; i++) {
    let tok = chars[i]!;
    if (tok === '*') { out += star; continue; }
    if (tok === '?') { out += '[^\\n]'; continue; }
    if (tok === '\\') {
      const p = chars[i + 1];
      // `}` and `/` are escaped only to get them past the ${} parser: the escape is not pattern.
      if (p === '}' || p === '/') continue;
      out += '\\';
      i++;
      tok = chars[i] ?? '\uFFFD';
      if (tok !== '*' && tok !== '?' && tok !== '\\') {
        throw new LexError('TSB2033', `invalid pattern (${pattern}) in substitution: invalid escape '\\${tok}'`);
      }
      out += tok;
      continue;
    }
    if ('[]{}.+()|^$'.includes(tok)) out += '\\';
    out += tok;
  }
  return new RegExp(out, 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPatternToRegExp(pattern, greedy, true).exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

/** Reverse a pattern, keeping `\x` escape pairs in order (`a\*c` → `c\*a`). */
function reversePattern(pattern: string): string {
  const p = Array.from(pattern);
  const out: string[] = new Array<string>(p.length);
  const last = p.length - 1;
  for (let i = 0; i <= last;) {
    const outIdx = last - i;
    if (p[i] === '\\' && i !== last) {
      out[outIdx - 1] = '\\';
      out[outIdx] = p[i + 1]!;
      i += 2;
    } else {
      out[outIdx] = p[i]!;
      i++;
    }
  }
  return out.join('');
}

const reverseString = (s: string) => Array.from(s).reverse().join('');

/** Shortest/longest suffix removal = prefix removal on the reversed value with a reversed pattern. */
function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverseString(trimPrefix(reversePattern(pattern), reverseString(value), greedy));
}

/** Go's Regexp.ReplaceAllString: empty matches right after a match are skipped; `$0`/`${0}` is the match, `$$` a dollar. */
function goReplaceAll(re: RegExp, value: string, template: string): string {
  const g = new RegExp(re.source, 'gu');
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= value.length) {
    g.lastIndex = searchPos;
    const m = g.exec(value);
    if (!m) break;
    const a0 = m.index;
    const a1 = a0 + m[0].length;
    out += value.slice(lastMatchEnd, a0);
    if (a1 > lastMatchEnd || a0 === 0) out += goExpandTemplate(template, m[0]);
    lastMatchEnd = a1;
    const cp = searchPos < value.length ? value.codePointAt(searchPos)! : -1;
    const width = cp < 0 ? 0 : cp > 0xffff ? 2 : 1;
    if (searchPos + width > a1) searchPos += width;
    else if (searchPos + 1 > a1) searchPos++;
    else searchPos = a1;
  }
  return out + value.slice(lastMatchEnd);
}

const TEMPLATE_REF = /^(?:\{([\p{L}\p{Nd}_]+)\}|([\p{L}\p{Nd}_]+))/u;

function goExpandTemplate(template: string, match: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const j = template.indexOf('$', i);
    if (j < 0) return out + template.slice(i);
    out += template.slice(i, j);
    if (template[j + 1] === '$') { out += '$'; i = j + 2; continue; }
    const m = TEMPLATE_REF.exec(template.slice(j + 1));
    if (!m) { out += '$'; i = j + 1; continue; }
    i = j + 1 + m[0].length;
    const name = m[1] ?? m[2]!;
    // Only group 0 exists (the pattern has no capture groups); other names expand to "".
    if (/^[0-9]+$/.test(name) && name.length <= 9 && Number(name) === 0) out += match;
  }
}

function wrap(e: unknown, word: string): never {
  if (e instanceof LexError) {
    throw new TsbError(e.code, `failed to process ${JSON.stringify(word)}: ${e.message}`, {
      hint: e.code === 'TSB2032' ? 'set the variable (ARG/ENV or --build-arg) or give the word a default with ${VAR:-default}.'
        : e.code === 'TSB2031' ? 'supported forms: ${VAR:-w} ${VAR-w} ${VAR:+w} ${VAR+w} ${VAR:?msg} ${VAR#p} ${VAR##p} ${VAR%p} ${VAR%%p} ${VAR/p/r} ${VAR//p/r}.'
        : e.code === 'TSB2033' ? 'patterns support * and ? and escaping them with a backslash.'
        : 'close every quote and ${…}; escape a literal $ as \\$.',
    });
  }
  throw e;
}

/** Full expansion: single-word value, split words, and which variables were (not) found. */
export function expandShellWord(word: string, env: ShellEnv, escapeToken: EscapeToken = '\\', opts: LexOptions = {}): ExpandResult {
  const lx = new Lexer(word, env, escapeToken, opts);
  try {
    const { word: value, words } = lx.processStopOn(EOF, !!opts.rawEscapes);
    return { value, words, matched: lx.matched, unmatched: lx.unmatched };
  } catch (e) {
    return wrap(e, word);
  }
}

/** BuildKit's ProcessWord: quotes removed, escapes processed, variables expanded, no splitting. */
export function processWord(word: string, env: ShellEnv, escapeToken: EscapeToken = '\\', opts: LexOptions = {}): string {
  return expandShellWord(word, env, escapeToken, opts).value;
}

/** BuildKit's ProcessWords: like processWord, then split on unquoted whitespace (EXPOSE uses this). */
export function processWords(word: string, env: ShellEnv, escapeToken: EscapeToken = '\\', opts: LexOptions = {}): string[] {
  return [...expandShellWord(word, env, escapeToken, opts).words];
}

/**
 * Expand an IR word for the build: `processWord` when `w.expand`, else the raw text. Errors carry
 * the word's span (`Dockerfile:7:13`).
 */
export function expandWord(w: Word, env: ShellEnv, escapeToken: EscapeToken = '\\'): ExpandResult {
  if (!w.expand) return { value: w.raw, words: [w.raw], matched: new Set(), unmatched: new Set() };
  try {
    return expandShellWord(w.raw, env, escapeToken);
  } catch (e) {
    throw e instanceof TsbError ? e.withSpan(w.span) : e;
  }
}

/** Whether `text` would look up any variable (cheap test used for "static" validation in src/ir). */
export function hasVariable(text: string): boolean {
  return /\$./u.test(text);
}

