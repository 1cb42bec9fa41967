/**
 * BuildKit's per-instruction argument rules (parser/split_command.go, parser/line_parsers.go),
 * reproduced behaviour for behaviour; the dump must be byte-identical.
 *
 * Offsets: every produced word carries the offsets of its raw text within the string it was cut
 * from (when known exactly), so src/syntax/parser.ts can give it a file:line:col span.
 */
import { decodeGoJsonArray } from './gojson.js';
import { fromByteString, goTrimLeftSpace, isAscii, isGoSpace, isRawByte, toByteString } from './gostrings.js';

export interface Word {
  readonly value: string;
  /** Offset of the raw word in the parsed string, or -1 when not known. */
  readonly start: number;
  readonly end: number;
}

/** An argument-rule failure; parser.ts turns it into a TsbError with a span. */
export class ArgError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly hint: string,
    /** Offsets of the offending text in the parsed string (-1: the whole instruction). */
    readonly start = -1,
    readonly end = -1,
  ) {
    super(message);
  }
}

const ASCII_WS = /[\t\v\f\r ]+/g;

function isByteSpace(b: number): boolean {
  // unicode.IsSpace(rune(b)) for one byte: Go's split_command and parseHealthConfig look at bytes.
  return b === 0x20 || (b >= 0x09 && b <= 0x0d) || b === 0x85 || b === 0xa0;
}

/**
 * extractBuilderFlags. Works on bytes like Go does (a non-ASCII byte becomes the rune of the same
 * number, and bytes 0x85/0xA0 count as spaces). Returns the remaining text and where it starts.
 * The escape character is the file's escape token (`# escape=` directive), as in BuildKit 0.25
 * (split_command.go compares with d.escapeToken), not always a backslash.
 */
export function extractBuilderFlags(line: string, escape = 0x5c): { rest: string; restStart: number; flags: Word[] } {
  // Fast path: no flag at the start.
  let k = 0;
  while (k < line.length && isByteSpace(line.charCodeAt(k))) k++;
  if (!(line.charCodeAt(k) === 0x2d && line.charCodeAt(k + 1) === 0x2d)) {
    return { rest: line.slice(k), restStart: k, flags: [] };
  }
  const ascii = isAscii(line);
  const b = ascii ? line : toByteString(line);
  // Offsets for spans only; exact when the cut falls on a character boundary.
  const toCharOffset = (bytePos: number): number => (ascii ? bytePos : Math.min(line.length, fromByteString(b.slice(0, bytePos)).length));
  // Go returns line[pos:], which can start inside a multi-byte character (after a 0x85 or 0xA0
  // continuation byte that unicode.IsSpace(rune(byte)) took for a space): decode the bytes.
  const restAt = (bytePos: number): { rest: string; restStart: number } => {
    if (ascii) return { rest: line.slice(bytePos), restStart: bytePos };
    const rest = fromByteString(b.slice(bytePos));
    return { rest, restStart: Math.max(0, line.length - rest.length) };
  };
  const flags: Word[] = [];
  const IN_SPACES = 0;
  const IN_WORD = 1;
  const IN_QUOTE = 2;
  let phase = IN_SPACES;
  let word = '';
  let wordStart = 0;
  let quote = 0;
  let blankOK = false;
  let ch = 0;
  const n = b.length;
  const push = (end: number) => {
    const s = toCharOffset(wordStart);
    flags.push({ value: word, start: s, end: toCharOffset(end) });
  };
  for (let pos = 0; pos <= n; pos++) {
    if (pos !== n) ch = b.charCodeAt(pos);
    if (phase === IN_SPACES) {
      if (pos === n) break;
      if (isByteSpace(ch)) continue;
      if (ch !== 0x2d || pos + 1 === n || b.charCodeAt(pos + 1) !== 0x2d) {
        return { ...restAt(pos), flags };
      }
      phase = IN_WORD;
      wordStart = pos;
    }
    if ((phase === IN_WORD || phase === IN_QUOTE) && pos === n) {
      if (word !== '--' && (blankOK || word.length > 0)) push(pos);
      break;
    }
    if (phase === IN_WORD) {
      if (isByteSpace(ch)) {
        phase = IN_SPACES;
        if (word === '--') return { ...restAt(pos), flags };
        if (blankOK || word.length > 0) push(pos);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === 0x27 || ch === 0x22) {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
        continue;
      }
      if (ch === escape) {
        if (pos + 1 === n) continue;
        pos++;
        ch = b.charCodeAt(pos);
      }
      word += String.fromCharCode(ch);
      continue;
    }
    // IN_QUOTE
    if (ch === quote) {
      phase = IN_WORD;
      continue;
    }
    if (ch === escape) {
      if (pos + 1 === n) {
        phase = IN_WORD;
        continue;
      }
      pos++;
      ch = b.charCodeAt(pos);
    }
    word += String.fromCharCode(ch);
  }
  return { rest: '', restStart: line.length, flags };
}

/** Go's regexp `[\t\v\f\r ]+` Split(s, -1) for a non-empty string without leading/trailing ws. */
export function splitWhitespace(rest: string, base = 0): Word[] {
  const out: Word[] = [];
  let from = 0;
  ASCII_WS.lastIndex = 0;
  for (let m = ASCII_WS.exec(rest); m; m = ASCII_WS.exec(rest)) {
    out.push({ value: rest.slice(from, m.index), start: base + from, end: base + m.index });
    from = m.index + m[0].length;
  }
  out.push({ value: rest.slice(from), start: base + from, end: base + rest.length });
  return out;
}

/** parseJSON: undefined when `rest` is not a JSON array (shell form); throws on non-string elements. */
export function parseJson(rest: string, base = 0): Word[] | undefined {
  const t = goTrimLeftSpace(rest);
  if (t.charCodeAt(0) !== 0x5b) return undefined;
  const off = rest.length - t.length;
  const arr = decodeGoJsonArray(t, 0);
  if (!arr) return undefined;
  const words: Word[] = [];
  for (const el of arr.elements) {
    if (el.value === undefined) {
      throw new ArgError('TSB1006', 'when using JSON array syntax, arrays must be comprised of strings only',
        'quote every element ("…"), or write the command in shell form without brackets.',
        base + off + el.start, base + off + el.end);
    }
    words.push({ value: el.value, start: base + off + el.start, end: base + off + el.end });
  }
  return words;
}

export interface Parsed {
  readonly args: Word[];
  readonly json: boolean;
}

const NONE: Parsed = { args: [], json: false };

export function parseMaybeJson(rest: string, base = 0): Parsed {
  if (rest === '') return NONE;
  const j = parseJson(rest, base);
  if (j) return { args: j, json: true };
  return { args: [{ value: rest, start: base, end: base + rest.length }], json: false };
}

export function parseMaybeJsonToList(rest: string, base = 0): Parsed {
  const j = parseJson(rest, base);
  if (j) return { args: j, json: true };
  if (rest === '') return NONE;
  return { args: splitWhitespace(rest, base), json: false };
}

export function parseStringsWhitespaceDelimited(rest: string, base = 0): Parsed {
  if (rest === '') return NONE;
  return { args: splitWhitespace(rest, base), json: false };
}

export function parseString(rest: string, base = 0): Parsed {
  if (rest === '') return NONE;
  return { args: [{ value: rest, start: base, end: base + rest.length }], json: false };
}

/**
 * parseWords: quote-aware whitespace split that keeps quotes and escapes; an escape token as the
 * very last character is dropped; invalid UTF-8 bytes become U+FFFD (Go appends RuneError).
 */
export function parseWords(rest: string, escape: number, base = 0): Word[] {
  const words: Word[] = [];
  const IN_SPACES = 0;
  const IN_WORD = 1;
  const IN_QUOTE = 2;
  let phase = IN_SPACES;
  let word = '';
  let wordStart = 0;
  let quote = 0;
  let blankOK = false;
  let ch = 0;
  let w = 1;
  const n = rest.length;
  const dec = (pos: number) => {
    const c = rest.codePointAt(pos)!;
    w = c > 0xffff ? 2 : 1;
    ch = isRawByte(c) || (c >= 0xd800 && c <= 0xdfff) ? 0xfffd : c;
  };
  const str = (c: number) => String.fromCodePoint(c);
  for (let pos = 0; pos <= n; pos += w) {
    if (pos !== n) dec(pos);
    if (phase === IN_SPACES) {
      if (pos === n) break;
      if (isGoSpace(ch)) continue;
      phase = IN_WORD;
      wordStart = pos;
    }
    if ((phase === IN_WORD || phase === IN_QUOTE) && pos === n) {
      if (blankOK || word.length > 0) words.push({ value: word, start: base + wordStart, end: base + pos });
      break;
    }
    if (phase === IN_WORD) {
      if (isGoSpace(ch)) {
        phase = IN_SPACES;
        if (blankOK || word.length > 0) words.push({ value: word, start: base + wordStart, end: base + pos });
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === 0x27 || ch === 0x22) {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
      }
      if (ch === escape) {
        if (pos + w === n) continue;
        word += str(ch);
        pos += w;
        dec(pos);
      }
      word += str(ch);
      continue;
    }
    // IN_QUOTE
    if (ch === quote) phase = IN_WORD;
    if (ch === escape && quote !== 0x27) {
      if (pos + w === n) {
        phase = IN_WORD;
        continue;
      }
      pos += w;
      word += str(ch);
      dec(pos);
    }
    word += str(ch);
  }
  return words;
}

/** parseNameVal (ENV, LABEL): triplets key, value, "=" (or "" for the legacy `KEY value` form). */
export function parseNameVal(rest: string, key: string, escape: number, base = 0): Parsed {
  const words = parseWords(rest, escape, base);
  if (words.length === 0) return NONE;
  if (!words[0]!.value.includes('=')) {
    ASCII_WS.lastIndex = 0;
    const m = ASCII_WS.exec(rest);
    if (!m) {
      throw new ArgError('TSB1007', `${key} must have two arguments`,
        `write ${key} name=value (or the legacy ${key} name value).`, base, base + rest.length);
    }
    const vStart = m.index + m[0].length;
    return {
      args: [
        { value: rest.slice(0, m.index), start: base, end: base + m.index },
        { value: rest.slice(vStart), start: base + vStart, end: base + rest.length },
        { value: '', start: -1, end: -1 },
      ],
      json: false,
    };
  }
  const args: Word[] = [];
  for (const word of words) {
    const eq = word.value.indexOf('=');
    if (eq < 0) {
      throw new ArgError('TSB1008', `Syntax error - can't find = in ${goQuoteForMessage(word.value)}. Must be of the form: name=value`,
        `every word after ${key} must be name=value once the first one is; quote values that contain spaces.`,
        word.start, word.end);
    }
    args.push({ value: word.value.slice(0, eq), start: -1, end: -1 });
    args.push({ value: word.value.slice(eq + 1), start: -1, end: -1 });
    args.push({ value: '=', start: -1, end: -1 });
  }
  // Keys and values: the raw word's offsets are exact when the word is unprocessed text.
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const raw = rest.slice(w.start - base, w.end - base);
    if (raw === w.value) {
      const eq = raw.indexOf('=');
      args[i * 3] = { value: args[i * 3]!.value, start: w.start, end: w.start + eq };
      args[i * 3 + 1] = { value: args[i * 3 + 1]!.value, start: w.start + eq + 1, end: w.end };
    }
  }
  return { args, json: false };
}

function goQuoteForMessage(s: string): string {
  // fmt %q; the message is for humans, JSON quoting is close enough except for non-ASCII.
  return JSON.stringify(s);
}

/** parseNameOrNameVal (ARG). */
export function parseNameOrNameVal(rest: string, escape: number, base = 0): Parsed {
  return { args: parseWords(rest, escape, base), json: false };
}

/** parseHealthConfig: the type word (byte-wise split), then parseMaybeJSON of the remainder. */
export function parseHealthConfig(rest: string, base = 0): Parsed {
  const ascii = isAscii(rest);
  const b = ascii ? rest : toByteString(rest);
  let sep = 0;
  while (sep < b.length && !isByteSpace(b.charCodeAt(sep))) sep++;
  let next = sep;
  while (next < b.length && isByteSpace(b.charCodeAt(next))) next++;
  if (sep === 0) return NONE;
  const typ = ascii ? rest.slice(0, sep) : fromByteString(b.slice(0, sep));
  const remainder = ascii ? rest.slice(next) : fromByteString(b.slice(next));
  const remStart = rest.length - remainder.length;
  const cmd = parseMaybeJson(remainder, base + remStart);
  return { args: [{ value: typ, start: base, end: base + typ.length }, ...cmd.args], json: cmd.json };
}

