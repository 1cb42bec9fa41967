/**
 * Go string semantics that BuildKit's parser relies on, for byte-exact conformance.
 *
 * Representation of bytes: BuildKit works on Go strings (bytes). A Dockerfile is not always valid
 * UTF-8 (Latin-1 comments, UTF-16 files read as raw bytes), and BuildKit's dump shows such bytes
 * as `\xNN`. We decode files with `decodeDockerfile`, which maps every byte that is not part of a
 * valid UTF-8 sequence to the lone surrogate U+DC80+byte-0x80 ("surrogateescape", as Python does);
 * `toByteString` reverses that exactly. Everything else in src/syntax works on JS strings.
 */

/** Go's unicode.IsSpace. Note: U+0085 is a space, U+FEFF is not (unlike JS `\s`). */
export function isGoSpace(c: number): boolean {
  if (c <= 0xff) {
    return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0x85 || c === 0xa0;
  }
  return c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 ||
    c === 0x202f || c === 0x205f || c === 0x3000;
}

/** Go's strings.TrimLeftFunc(s, unicode.IsSpace). (No space is outside the BMP.) */
export function goTrimLeftSpace(s: string): string {
  let i = 0;
  while (i < s.length && isGoSpace(s.charCodeAt(i))) i++;
  return i === 0 ? s : s.slice(i);
}

/** Go's strings.TrimSpace. */
export function goTrimSpace(s: string): string {
  let i = 0;
  let j = s.length;
  while (i < j && isGoSpace(s.charCodeAt(i))) i++;
  while (j > i && isGoSpace(s.charCodeAt(j - 1))) j--;
  return i === 0 && j === s.length ? s : s.slice(i, j);
}

/** Is `c` one of the escaped raw bytes (see the module comment)? */
export function isRawByte(c: number): boolean {
  return c >= 0xdc80 && c <= 0xdcff;
}

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;
export function isAscii(s: string): boolean {
  return !NON_ASCII.test(s);
}

/**
 * Go's strings.ToLower: unicode.ToLower per rune (simple, one-to-one mapping); invalid bytes
 * become U+FFFD when the string is not pure ASCII (strings.Map re-encodes RuneError).
 */
export function goToLower(s: string): string {
  if (isAscii(s)) return s.toLowerCase();
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (isRawByte(c)) { out += '\ufffd'; continue; }
    if (c === 0x130) { out += 'i'; continue; } // JS gives "i̇" (two runes); Go's simple mapping gives "i"
    const l = ch.toLowerCase();
    out += [...l].length === 1 ? l : ch;
  }
  return out;
}

/** The bytes of `s` as a "byte string" (one char per byte, 0..255). */
export function toByteString(s: string): string {
  if (isAscii(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) { out += s[i]; continue; }
    if (isRawByte(c)) { out += String.fromCharCode(c - 0xdc00); continue; }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate cannot be in a Go string
    if (c < 0x800) out += String.fromCharCode(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else if (c < 0x10000) out += String.fromCharCode(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
    else out += String.fromCharCode(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 0x3f), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  return out;
}

/** Decode bytes (array-like of 0..255) as Go's utf8.DecodeRune would, escaping invalid bytes. */
function decodeBytes(get: (i: number) => number, n: number): string {
  const parts: string[] = [];
  let out = '';
  let i = 0;
  while (i < n) {
    const b0 = get(i);
    if (b0 < 0x80) { out += String.fromCharCode(b0); i++; }
    else {
      let cp = -1;
      let w = 1;
      if (b0 >= 0xc2 && b0 <= 0xdf && i + 1 < n) {
        const b1 = get(i + 1);
        if ((b1 & 0xc0) === 0x80) { cp = ((b0 & 0x1f) << 6) | (b1 & 0x3f); w = 2; }
      } else if (b0 >= 0xe0 && b0 <= 0xef && i + 2 < n) {
        const b1 = get(i + 1);
        const b2 = get(i + 2);
        const lo = b0 === 0xe0 ? 0xa0 : 0x80;
        const hi = b0 === 0xed ? 0x9f : 0xbf;
        if (b1 >= lo && b1 <= hi && (b2 & 0xc0) === 0x80) {
          cp = ((b0 & 0x0f) << 12) | ((b1 & 0x3f) << 6) | (b2 & 0x3f); w = 3;
        }
      } else if (b0 >= 0xf0 && b0 <= 0xf4 && i + 3 < n) {
        const b1 = get(i + 1);
        const b2 = get(i + 2);
        const b3 = get(i + 3);
        const lo = b0 === 0xf0 ? 0x90 : 0x80;
        const hi = b0 === 0xf4 ? 0x8f : 0xbf;
        if (b1 >= lo && b1 <= hi && (b2 & 0xc0) === 0x80 && (b3 & 0xc0) === 0x80) {
          cp = ((b0 & 0x07) << 18) | ((b1 & 0x3f) << 12) | ((b2 & 0x3f) << 6) | (b3 & 0x3f); w = 4;
        }
      }
      if (cp < 0) out += String.fromCharCode(0xdc00 + b0);
      else out += String.fromCodePoint(cp);
      i += w;
    }
    if (out.length > 8192) { parts.push(out); out = ''; }
  }
  parts.push(out);
  return parts.join('');
}

/** Inverse of toByteString. */
export function fromByteString(bs: string): string {
  if (isAscii(bs)) return bs;
  return decodeBytes((i) => bs.charCodeAt(i), bs.length);
}

/**
 * Decode a Dockerfile read from disk. Valid UTF-8 decodes normally; invalid bytes are kept as
 * escaped raw bytes so that the dump shows `\xNN` like BuildKit's. The BOM is kept (parse strips it).
 */
export function decodeDockerfile(buf: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf);
  } catch {
    return decodeBytes((i) => buf[i]!, buf.length);
  }
}

/** UTF-8 length in bytes, as Go would count the string. */
export function goByteLength(s: string): number {
  if (isAscii(s)) return s.length;
  return toByteString(s).length;
}

// Go's strconv.IsPrint: letters, marks, numbers, punctuation, symbols and U+0020.
const PRINT = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

export function isGoPrint(c: number): boolean {
  if (c < 0x7f) return c >= 0x20;
  if (c < 0xa1) return false; // DEL, C1 controls, NBSP
  if (c === 0xad) return false; // soft hyphen is Cf
  return PRINT.test(String.fromCodePoint(c));
}

const HEX = '0123456789abcdef';

/** Go's strconv.Quote. */
export function goQuote(s: string): string {
  let out = '"';
  let plainFrom = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) continue;
    out += s.slice(plainFrom, i);
    let cp = c;
    let w = 1;
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { cp = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00); w = 2; }
    }
    if (cp === 0x22) out += '\\"';
    else if (cp === 0x5c) out += '\\\\';
    else if (isRawByte(cp)) out += '\\x' + HEX[(cp - 0xdc00) >> 4] + HEX[(cp - 0xdc00) & 15];
    else if (cp >= 0xd800 && cp <= 0xdfff) out += '\ufffd'; // lone surrogate: Go would hold U+FFFD
    else if (isGoPrint(cp)) out += String.fromCodePoint(cp);
    else if (cp === 7) out += '\\a';
    else if (cp === 8) out += '\\b';
    else if (cp === 12) out += '\\f';
    else if (cp === 10) out += '\\n';
    else if (cp === 13) out += '\\r';
    else if (cp === 9) out += '\\t';
    else if (cp === 11) out += '\\v';
    else if (cp < 0x20 || cp === 0x7f) out += '\\x' + HEX[cp >> 4] + HEX[cp & 15];
    else if (cp < 0x10000) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += '\\U' + cp.toString(16).padStart(8, '0');
    i += w - 1;
    plainFrom = i + 1;
  }
  return out + s.slice(plainFrom) + '"';
}
