/**
 * Deterministic Dockerfile mutator for robustness testing (test/syntax/fuzz.test.ts, bench/parse.ts).
 * The contract being checked: whatever the input, parse() returns an AST or throws a TsbError —
 * never any other exception, never a hang.
 */

/** mulberry32: small, seeded, good enough for fuzzing. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fragments that hit the parser's special cases. */
const PIECES = [
  '\\', '\\\n', '`', '`\n', '\n', '\r\n', '\r', ' ', '\t', '\v', '\f', '#', '# ', '# escape=`\n', '# escape=\\\n',
  '# syntax=x\n', '# check=skip=all\n', '#escape=y\n', '<<', '<<EOF', '<<-EOF', "<<'EOF'", '<<"EOF"', '3<<EOF', '<< EOF',
  'EOF\n', '\tEOF\n', '[', ']', '["a"]', '[1]', '[null]', '["a",', '"', "'", '=', '--', '--flag=', '--mount=type=cache ',
  '$', '${', '}', '${a:-b}', '${a/b/c}', '$(x)', 'ONBUILD ', 'RUN ', 'COPY ', 'ADD ', 'ENV ', 'LABEL ', 'ARG ', 'FROM ',
  'HEALTHCHECK ', 'CMD ', 'ENTRYPOINT ', 'SHELL ', 'VOLUME ', 'EXPOSE ', 'USER ', 'WORKDIR ', 'MAINTAINER ', 'STOPSIGNAL ',
  '\u00a0', '\u0085', '\u2028', '\u3000', '\ufeff', '\udc80', '\udcff', '\ud800', 'é', '☃', '🐳', '\u0000', '\u0130',
  '\\u0000', '\\ud800', '1e999', 'NONE', 'CMD', 'x'.repeat(40),
];

/** Apply 1..4 random edits to `text`. */
export function mutate(text: string, r: () => number): string {
  let s = text;
  const edits = 1 + Math.floor(r() * 4);
  for (let e = 0; e < edits; e++) {
    const pos = Math.floor(r() * (s.length + 1));
    const op = r();
    if (op < 0.45) {
      s = s.slice(0, pos) + PIECES[Math.floor(r() * PIECES.length)] + s.slice(pos);
    } else if (op < 0.65) {
      s = s.slice(0, pos) + s.slice(pos + 1 + Math.floor(r() * 12));
    } else if (op < 0.8) {
      const lines = s.split('\n');
      const a = Math.floor(r() * lines.length);
      const b = Math.floor(r() * lines.length);
      [lines[a], lines[b]] = [lines[b]!, lines[a]!];
      s = lines.join('\n');
    } else if (op < 0.9) {
      const lines = s.split('\n');
      const a = Math.floor(r() * lines.length);
      lines.splice(a, 0, lines[Math.floor(r() * lines.length)]!);
      s = lines.join('\n');
    } else {
      s = s.slice(0, pos) + String.fromCharCode(Math.floor(r() * 0x3000)) + s.slice(pos);
    }
  }
  return s;
}
