/**
 * BuildKit's parseJSON: `json.Unmarshal(rest, &[]interface{})` after a `[` check.
 * Reproduced behaviours (they decide exec form vs shell form):
 * - text after the closing `]` other than JSON whitespace is an error → shell form
 *   (`RUN ["a"]x` runs the shell command `["a"]x`);
 * - strict JSON syntax otherwise (Go's scanner): whitespace is space/tab/CR/LF only, control
 *   characters inside strings are errors, escapes are \" \\ \/ \b \f \n \r \t \uXXXX;
 * - a lone \uD800 escape and invalid UTF-8 inside strings decode to U+FFFD;
 * - a number that does not fit a float64 is a (non-fatal, saved) decode error, so the whole line
 *   falls back to shell form even though the array also holds a non-string.
 */

export interface JsonElement {
  /** The string value, or undefined when the element is not a string. */
  readonly value: string | undefined;
  /** Offsets in the input of the element's first character and just past its last. */
  readonly start: number;
  readonly end: number;
}

export interface JsonArray {
  readonly elements: JsonElement[];
  /** Offset just past the closing bracket. */
  readonly end: number;
}

class Fail {}
const FAIL = new Fail();

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

/**
 * Decode the JSON array starting at `s[start]` (which must be `[`). Returns undefined when Go's
 * decoder returns an error (syntax error, unexpected EOF, float overflow).
 */
export function decodeGoJsonArray(s: string, start: number): JsonArray | undefined {
  let i = start;
  let overflow = false;
  const n = s.length;

  const skipWs = () => { while (i < n && isWs(s.charCodeAt(i))) i++; };

  const parseString = (): string => {
    // s[i] === '"'
    i++;
    let out = '';
    let from = i;
    for (;;) {
      if (i >= n) throw FAIL;
      const c = s.charCodeAt(i);
      if (c === 0x22) { out += s.slice(from, i); i++; return out; }
      if (c < 0x20) throw FAIL;
      if (c === 0x5c) {
        out += s.slice(from, i);
        i++;
        if (i >= n) throw FAIL;
        const e = s[i]!;
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            const u1 = hex4(i + 1);
            i += 4;
            if (u1 >= 0xd800 && u1 <= 0xdbff) {
              // A pair only when the next escape is a low surrogate; otherwise U+FFFD and the next
              // escape is decoded on its own (Go's unquote).
              if (s[i + 1] === '\\' && s[i + 2] === 'u') {
                const u2 = hex4Soft(i + 3);
                if (u2 >= 0xdc00 && u2 <= 0xdfff) {
                  out += String.fromCharCode(u1, u2);
                  i += 6;
                  break;
                }
              }
              out += '\ufffd';
            } else if (u1 >= 0xdc00 && u1 <= 0xdfff) {
              out += '\ufffd';
            } else {
              out += String.fromCharCode(u1);
            }
            break;
          }
          default: throw FAIL;
        }
        i++;
        from = i;
        continue;
      }
      if (c >= 0xd800 && c <= 0xdfff) {
        // Raw (invalid UTF-8) bytes and lone surrogates decode to U+FFFD; valid pairs stay.
        const d = s.charCodeAt(i + 1);
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) { i += 2; continue; } // a real pair
        out += s.slice(from, i) + '\ufffd';
        i++;
        from = i;
        continue;
      }
      i++;
    }
  };

  const hexVal = (c: number): number => {
    if (c >= 0x30 && c <= 0x39) return c - 0x30;
    if (c >= 0x61 && c <= 0x66) return c - 0x57;
    if (c >= 0x41 && c <= 0x46) return c - 0x37;
    return -1;
  };
  const hex4Soft = (at: number): number => {
    if (at + 4 > n) return -1;
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const h = hexVal(s.charCodeAt(at + k));
      if (h < 0) return -1;
      v = v * 16 + h;
    }
    return v;
  };
  const hex4 = (at: number): number => {
    const v = hex4Soft(at);
    if (v < 0) throw FAIL;
    return v;
  };

  const parseNumber = (): void => {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = i;
    const r = m.exec(s);
    if (!r || r[0] === '-' || r[0] === '') throw FAIL;
    // Partial forms like "1." or "1e" are syntax errors in Go's scanner.
    const after = s.charCodeAt(i + r[0].length);
    if (after === 0x2e || after === 0x65 || after === 0x45) throw FAIL;
    if (!Number.isFinite(Number(r[0]))) overflow = true;
    i += r[0].length;
  };

  // Any value; returns the string for strings, undefined for the rest. Containers are walked with
  // an explicit stack (Go allows 10000 levels; JS recursion would overflow first).
  const parseValue = (depth: number): string | undefined => {
    if (i >= n) throw FAIL;
    const c0 = s[i]!;
    if (c0 === '"') return parseString();
    if (c0 !== '[' && c0 !== '{') { parseScalar(); return undefined; }
    const stack: string[] = []; // ']' or '}' per open container
    const open = (c: string) => {
      stack.push(c === '[' ? ']' : '}');
      if (depth + stack.length > 10000) throw FAIL; // Go's maxNestingDepth (the outer array is level 1)
      i++;
      skipWs();
      if (s[i] === stack[stack.length - 1]) { i++; stack.pop(); return false; }
      return true; // expecting a member
    };
    let expectMember = open(c0);
    for (;;) {
      if (expectMember) {
        // a member: for objects, "key": first
        if (stack[stack.length - 1] === '}') {
          skipWs();
          if (s[i] !== '"') throw FAIL;
          parseString();
          skipWs();
          if (s[i] !== ':') throw FAIL;
          i++;
        }
        skipWs();
        if (i >= n) throw FAIL;
        const c = s[i]!;
        if (c === '[' || c === '{') { expectMember = open(c); if (expectMember) continue; }
        else if (c === '"') parseString();
        else parseScalar();
      }
      // after a member (or an empty container that just closed)
      if (stack.length === 0) return undefined;
      skipWs();
      if (s[i] === ',') { i++; expectMember = true; continue; }
      if (s[i] === stack[stack.length - 1]) {
        i++;
        stack.pop();
        if (stack.length === 0) return undefined;
        expectMember = false;
        continue;
      }
      throw FAIL;
    }
  };

  const parseScalar = (): void => {
    const c = s[i];
    if (s.startsWith('true', i)) { i += 4; return; }
    if (s.startsWith('false', i)) { i += 5; return; }
    if (s.startsWith('null', i)) { i += 4; return; }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) { parseNumber(); return; }
    throw FAIL;
  };

  try {
    if (s[i] !== '[') return undefined;
    i++;
    const elements: JsonElement[] = [];
    skipWs();
    if (s[i] === ']') i++;
    else for (;;) {
      skipWs();
      const at = i;
      const isString = s[i] === '"';
      const v = parseValue(1);
      elements.push({ value: isString ? v : undefined, start: at, end: i });
      skipWs();
      if (s[i] === ',') { i++; continue; }
      if (s[i] === ']') { i++; break; }
      throw FAIL;
    }
    // json.Unmarshal validates the whole input: only JSON whitespace may follow the array
    // (`RUN ["a"] x` is shell form).
    const end = i;
    skipWs();
    if (i < n) return undefined;
    if (overflow) return undefined;
    return { elements, end };
  } catch (e) {
    if (e === FAIL) return undefined;
    throw e;
  }
}
