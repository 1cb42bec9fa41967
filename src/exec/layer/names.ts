/**
 * File names are BYTES on Linux; JS strings are UTF-16. The layer machinery keeps paths as strings
 * (sorting, maps, joins) and converts only at the filesystem and tar boundaries:
 *
 * - decodeName(bytes): valid UTF-8 decodes as usual; every byte that is not part of a valid UTF-8
 *   sequence becomes the lone surrogate U+DC80..U+DCFF ("surrogateescape", as Python does), so
 *   `printf 'latin\351'` survives as 'latin\uDCE9'.
 * - encodeName(string): the exact inverse (lone U+DC80..U+DCFF → that byte).
 * - fsPath(path): what to hand to node:fs / libc: the string itself when it holds no escape (the
 *   fast, common case), else the raw bytes as a Buffer (node:fs takes Buffer paths).
 *
 * Why not latin1 or Buffers everywhere: UTF-8 names (the vast majority) must stay readable in
 * errors and comparable as strings, and every consumer of LayerEntry.path would have to change.
 */

// eslint-disable-next-line no-control-regex
const SURROGATE = /[\uD800-\uDFFF]/;

/** True when s carries escaped (non-UTF-8) bytes or other surrogates. */
export function hasEscapes(s: string): boolean {
  return SURROGATE.test(s);
}

/** Bytes → string, invalid UTF-8 bytes as U+DC80..U+DCFF. */
export function decodeName(b: Uint8Array): string {
  const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const s = buf.toString('utf8');
  if (!s.includes('\uFFFD') && !SURROGATE.test(s)) return s;
  if (Buffer.from(s, 'utf8').equals(buf)) return s; // a genuine U+FFFD
  let out = '';
  let i = 0;
  const n = buf.length;
  while (i < n) {
    const c = buf[i]!;
    if (c < 0x80) { out += String.fromCharCode(c); i++; continue; }
    let len = 0, cp = 0, min = 0;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; min = 0x10000; }
    let ok = len > 0 && i + len <= n;
    for (let k = 1; ok && k < len; k++) {
      const d = buf[i + k]!;
      if ((d & 0xc0) !== 0x80) ok = false; else cp = (cp << 6) | (d & 0x3f);
    }
    // Overlong forms, UTF-16 surrogates encoded in UTF-8 and values above U+10FFFF are invalid.
    if (ok && (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)) ok = false;
    if (!ok) { out += String.fromCharCode(0xdc00 + c); i++; continue; }
    out += String.fromCodePoint(cp);
    i += len;
  }
  return out;
}

/** String → bytes: the inverse of decodeName. */
export function encodeName(s: string): Buffer {
  if (!SURROGATE.test(s)) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let run = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { run += s[i]! + s[i + 1]!; i++; continue; }
    }
    if (c >= 0xdc80 && c <= 0xdcff) {
      if (run) { parts.push(Buffer.from(run, 'utf8')); run = ''; }
      parts.push(Buffer.from([c - 0xdc00]));
      continue;
    }
    run += s[i]!;
  }
  if (run) parts.push(Buffer.from(run, 'utf8'));
  return Buffer.concat(parts);
}

/** A path for node:fs / libc calls: the string, or its raw bytes when it holds escapes. */
export function fsPath(p: string): string | Buffer {
  return SURROGATE.test(p) ? encodeName(p) : p;
}

/** The NUL-terminated bytes libc wants (koffi passes a Buffer as `const char *`). */
export function cPath(p: string): string | Buffer {
  return SURROGATE.test(p) ? Buffer.concat([encodeName(p), Buffer.from([0])]) : p;
}
