/**
 * `.dockerignore` with Docker's patternmatcher semantics (moby/patternmatcher + ignorefile):
 *
 * - Lines starting with `#` are comments (checked BEFORE trimming, as Docker does); lines are
 *   trimmed; empty lines skipped; a UTF-8 BOM on the first line is dropped.
 * - `!pattern` re-includes. Patterns are path-cleaned (`./a/` → `a`, `a//b` → `a/b`, `a/../b` → `b`)
 *   and a leading `/` is dropped: every pattern is relative to the context root.
 * - `*` and `?` never cross `/`; `[...]` is a class; `\x` escapes; `**` matches any number of
 *   path elements (including none); a trailing `**` matches everything below.
 * - Later patterns win. A path is ignored when the LAST pattern that matches it — or matches one of
 *   its parent directories — is not an exclusion (Docker's MatchesOrParentMatches), so `dir` then
 *   `!dir/keep` keeps `dir/keep` (and the directory `dir` that holds it).
 *
 * Why regular expressions: the patternmatcher compiles each pattern to one; we do the same so the
 * escaping and `**` edge cases behave alike. Known gap: Go's `regexp` and JS differ on a few exotic
 * class syntaxes (`[[:alpha:]]`); both reject them the same way in filepath.Match terms.
 */
import { TsbError, type Span } from '../errors.js';

export interface IgnorePattern {
  /** Cleaned pattern, without the `!`. */
  readonly pattern: string;
  readonly exclusion: boolean;
  readonly re: RegExp;
  /** 1-based line in the ignore file, for error messages. */
  readonly line: number;
}

/** path.Clean for forward-slash paths (Go's semantics: `.` for empty, no trailing slash). */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(part);
  }
  const s = out.join('/');
  if (rooted) return '/' + s;
  return s === '' ? '.' : s;
}

const ESCAPE = new Set(['.', '+', '(', ')', '|', '{', '}', '$', '^']);

/** Compile one cleaned pattern the way patternmatcher does. Throws on a bad pattern. */
export function compilePattern(pattern: string): RegExp {
  let re = '^';
  const chars = Array.from(pattern);
  let inClass = false;
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (inClass) {
      // Inside [...]: Go's filepath.Match uses ^ for negation; pass through, escape regex specials.
      if (ch === ']') { re += ']'; inClass = false; continue; }
      if (ch === '\\') {
        if (i + 1 < chars.length) { re += literal(chars[++i]!, true); continue; }
        throw new Error('trailing backslash in class');
      }
      if (ch === '[') { re += '\\['; continue; }
      re += ch;
      continue;
    }
    if (ch === '*') {
      if (chars[i + 1] === '*') {
        i++;
        if (chars[i + 1] === '/') i++;
        if (i + 1 >= chars.length) re += '.*';
        else re += '(.*/)?';
      } else re += '[^/]*';
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ESCAPE.has(ch)) {
      re += '\\' + ch;
    } else if (ch === '\\') {
      if (i + 1 < chars.length) {
        re += literal(chars[++i]!, false);
      } else re += '\\\\';
    } else if (ch === '[') {
      inClass = true;
      re += '[';
      if (chars[i + 1] === '^' || chars[i + 1] === '!') { re += '^'; i++; }
      if (chars[i + 1] === ']') throw new Error('empty character class');
    } else if (ch === ']') {
      re += '\\]';
    } else {
      re += ch;
    }
  }
  if (inClass) throw new Error('unterminated character class');
  re += '$';
  return new RegExp(re, 'su');
}

/**
 * An escaped character as a literal of a `u`-flag RegExp: only syntax characters may carry a `\`
 * there (`\-` only inside a class), so `\#` must become `#` (Go's regexp takes any punctuation).
 */
function literal(c: string, inClass: boolean): string {
  return (inClass ? /[.*+?^${}()|[\]\\/-]/ : /[.*+?^${}()|[\]\\/]/).test(c) ? '\\' + c : c;
}

/** Parse `.dockerignore` text into patterns, in order. `file` is used for error spans. */
export function parseDockerignore(text: string, file = '.dockerignore'): IgnorePattern[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const out: IgnorePattern[] = [];
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n]!;
    if (line.startsWith('#')) continue;
    line = line.trim();
    if (line === '') continue;
    let exclusion = false;
    if (line[0] === '!') {
      exclusion = true;
      line = line.slice(1).trim();
    }
    const span: Span = { file, line: n + 1, col: 1 };
    if (line === '') {
      throw new TsbError('TSB3001', 'illegal exclusion pattern: "!"', { span, hint: 'write a path after the "!".' });
    }
    let p = cleanPath(line);
    if (p.length > 1 && p[0] === '/') p = p.slice(1);
    let re: RegExp;
    try { re = compilePattern(p); } catch (e) {
      throw new TsbError('TSB3002', `bad pattern in ${file}: ${line}`, { span, cause: e, hint: 'check the [ ] brackets and \\ escapes.' });
    }
    out.push({ pattern: p, exclusion, re, line: n + 1 });
  }
  return out;
}

export class IgnoreMatcher {
  readonly patterns: readonly IgnorePattern[];
  readonly hasExclusions: boolean;

  constructor(patterns: readonly IgnorePattern[]) {
    this.patterns = patterns;
    this.hasExclusions = patterns.some((p) => p.exclusion);
  }

  static fromText(text: string, file?: string): IgnoreMatcher {
    return new IgnoreMatcher(parseDockerignore(text, file));
  }

  get empty(): boolean { return this.patterns.length === 0; }

  /** True when the context-relative path `rel` (slash-separated, no leading `./`) is ignored. */
  ignores(rel: string): boolean {
    let matched = false;
    const slash = rel.lastIndexOf('/');
    const parentDirs = slash < 0 ? [] : rel.slice(0, slash).split('/');
    for (const p of this.patterns) {
      if (p.exclusion !== matched) continue;
      let m = p.re.test(rel);
      if (!m && parentDirs.length > 0) {
        let acc = '';
        for (const d of parentDirs) {
          acc = acc === '' ? d : `${acc}/${d}`;
          if (p.re.test(acc)) { m = true; break; }
        }
      }
      if (m) matched = !p.exclusion;
    }
    return matched;
  }

  /**
   * Whether the walk must look inside an ignored directory: only when some exclusion (`!`)
   * pattern could re-include something below it.
   */
  mayReincludeBelow(dir: string): boolean {
    if (!this.hasExclusions) return false;
    for (const p of this.patterns) {
      if (!p.exclusion) continue;
      // A pattern can only match below `dir` if its literal prefix is compatible with `dir/`.
      const lit = literalPrefix(p.pattern);
      const d = dir + '/';
      if (lit.startsWith(d) || d.startsWith(lit)) return true;
    }
    return false;
  }
}

/** The part of a pattern before its first meta character. */
function literalPrefix(p: string): string {
  const m = /[*?[\\]/.exec(p);
  return m ? p.slice(0, m.index) : p + '/';
}
