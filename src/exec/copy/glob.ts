/**
 * Go's `filepath.Match` for one path element, as BuildKit uses it to expand COPY/ADD source
 * wildcards (per element: `*` and `?` never match `/`; `[a-z]`, `[^a-z]`, `\x` escapes).
 * A malformed pattern throws (Go's ErrBadPattern); the caller turns it into a TsbError with a span.
 */

/** Whether `p` contains glob meta characters (Go's hasMeta: `*?[` and `\`). */
export function hasMeta(p: string): boolean {
  return /[*?[\\]/.test(p);
}

const cache = new Map<string, RegExp>();

/** Compile one element pattern to an anchored RegExp. */
export function compileElement(pattern: string): RegExp {
  const hit = cache.get(pattern);
  if (hit) return hit;
  let re = '^';
  const chars = Array.from(pattern);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === '*') re += '[^/]*';
    else if (ch === '?') re += '[^/]';
    else if (ch === '\\') {
      if (i + 1 >= chars.length) throw new Error('bad pattern: trailing backslash');
      re += escapeRe(chars[++i]!);
    } else if (ch === '[') {
      let j = i + 1;
      let cls = '[';
      if (chars[j] === '^') { cls += '^'; j++; }
      let first = true;
      for (;; j++) {
        if (j >= chars.length) throw new Error('bad pattern: unterminated [');
        const c = chars[j]!;
        if (c === ']' && !first) break;
        first = false;
        if (c === '\\') {
          if (j + 1 >= chars.length) throw new Error('bad pattern: trailing backslash');
          cls += escapeRe(chars[++j]!, true);
        } else if (c === '-' ) cls += '-';
        else cls += escapeRe(c, true);
      }
      if (cls === '[' || cls === '[^') throw new Error('bad pattern: empty class');
      re += cls + ']';
      i = j;
    } else re += escapeRe(ch);
  }
  const r = new RegExp(re + '$', 'su');
  cache.set(pattern, r);
  return r;
}

/**
 * A literal character in a `u`-flag RegExp: only syntax characters may be escaped there (`\-` is
 * legal inside a class only, `\#` nowhere), so `package-*.json` must compile to `package-…`.
 */
function escapeRe(c: string, inClass = false): string {
  return (inClass ? /[.*+?^${}()|[\]\\/-]/ : /[.*+?^${}()|[\]\\/]/).test(c) ? '\\' + c : c;
}

export function matchElement(pattern: string, name: string): boolean {
  return compileElement(pattern).test(name);
}

/** Remove `\` escapes from a literal (meta-free after unescaping) element. */
export function unescapeElement(p: string): string {
  return p.replace(/\\(.)/gsu, '$1');
}
