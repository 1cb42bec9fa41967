/**
 * Unit tests for the Go-compatibility pieces and parser rules that the corpora exercise thinly.
 * Expected values follow BuildKit's behaviour (FORMAT.md and BuildKit's parser sources).
 */
import { describe, expect, it } from 'vitest';
import { decodeGoJsonArray } from '../../src/syntax/gojson.js';
import { decodeDockerfile, goQuote } from '../../src/syntax/gostrings.js';
import { extractBuilderFlags, parseWords } from '../../src/syntax/args.js';
import { heredocsFromLine, parseHeredocWord } from '../../src/syntax/heredoc-words.js';
import { dumpBuildkit, parse } from '../../src/syntax/index.js';
import { TsbError } from '../../src/errors.js';

const dump = (t: string) => dumpBuildkit(parse(t, 'Dockerfile'));
function rejects(t: string): TsbError {
  try {
    parse(t, 'Dockerfile');
  } catch (e) {
    expect(e).toBeInstanceOf(TsbError);
    return e as TsbError;
  }
  throw new Error(`expected ${JSON.stringify(t)} to be rejected`);
}

describe('goQuote (strconv.Quote)', () => {
  it.each([
    ['plain', '"plain"'],
    ['a"b\\c', '"a\\"b\\\\c"'],
    ['\x07\b\f\n\r\t\v', '"\\a\\b\\f\\n\\r\\t\\v"'],
    ['\x00\x1b\x7f', '"\\x00\\x1b\\x7f"'],
    ['\u0085\u00a0\u00ad', '"\\u0085\\u00a0\\u00ad"'],
    ['é☃🐳', '"é☃🐳"'],
    ['\u200b\u2028\ufeff', '"\\u200b\\u2028\\ufeff"'],
    ['\u{e0001}', '"\\U000e0001"'],
    ['\udcff\udc80', '"\\xff\\x80"'], // raw (invalid UTF-8) bytes
    ['\u3000', '"\\u3000"'],
  ])('%j', (input, want) => expect(goQuote(input)).toBe(want));
});

describe('decodeDockerfile', () => {
  it('keeps invalid bytes as escapes and valid text as is', () => {
    expect(decodeDockerfile(Buffer.from([0x61, 0xe9, 0x62]))).toBe('a\udce9b');
    expect(decodeDockerfile(Buffer.from('☃\n', 'utf8'))).toBe('☃\n');
    expect(decodeDockerfile(Buffer.from([0xed, 0xa0, 0x80]))).toBe('\udced\udca0\udc80'); // encoded surrogate
    expect(decodeDockerfile(Buffer.from([0xef, 0xbb, 0xbf, 0x41]))).toBe('\ufeffA');
  });
  it('dumps invalid bytes as \\xNN like BuildKit', () => {
    expect(dump(decodeDockerfile(Buffer.from('RUN echo \xff\n', 'latin1')))).toBe('(run "echo \\xff")');
  });
});

describe('JSON arrays (Go encoding/json)', () => {
  const vals = (s: string) => decodeGoJsonArray(s, 0)?.elements.map((e) => e.value ?? null);
  it('decodes escapes, keeps non-strings as holes', () => {
    expect(vals('["a\\u00e9\\/\\n", 1, null, ["x"], {"k": 1}, true]')).toEqual(['aé/\n', null, null, null, null, null]);
    expect(vals('[ ]')).toEqual([]);
    expect(vals('["\\ud83d\\udc33"]')).toEqual(['🐳']);
    expect(vals('["\\ud800x"]')).toEqual(['\ufffdx']);
    expect(vals('["\udce9"]')).toEqual(['\ufffd']);
  });
  it('rejects what Go rejects', () => {
    for (const bad of ['["a"] x', '["a",]', "['a']", '["a"', '["\t"]', '[01]', '[1.]', '["\\x"]', '[1e999]', '[-]']) {
      expect(decodeGoJsonArray(bad, 0), bad).toBeUndefined();
    }
  });
  it('shell form vs exec form vs hard error', () => {
    expect(dump('CMD ["a"]  \t')).toBe('(cmd "a")');
    expect(dump('CMD ["a"] b')).toBe('(cmd "[\\"a\\"] b")');
    expect(dump('CMD [1e999]')).toBe('(cmd "[1e999]")');
    expect(rejects('CMD ["a", 1]').code).toBe('TSB1006');
    expect(rejects('COPY [["a"], "b"]').code).toBe('TSB1006');
    expect(dump('COPY ["a b", "c"]')).toBe('(copy "a b" "c")');
    expect(dump('COPY "a b" c')).toBe('(copy "\\"a" "b\\"" "c")');
  });
});

describe('flags (extractBuilderFlags)', () => {
  it('quotes, escapes, bare flags and --', () => {
    const r = extractBuilderFlags('--a="b c" --d=\'e\'\\ f --g -- --h x');
    expect(r.flags.map((f) => f.value)).toEqual(['--a=b c', '--d=e f', '--g']);
    expect(r.rest.trim()).toBe('--h x');
    expect(extractBuilderFlags('-x --y').flags).toEqual([]);
    expect(extractBuilderFlags('--').flags).toEqual([]);
  });
  it('works on bytes like Go (non-ASCII flag text is re-encoded per byte)', () => {
    expect(extractBuilderFlags('--chown=é a').flags.map((f) => f.value)).toEqual(['--chown=Ã©']);
    // U+0105 is C4 85 and 0x85 is a space for unicode.IsSpace(rune(byte)).
    expect(extractBuilderFlags('--x=ą y').flags.map((f) => f.value)).toEqual(['--x=Ä']);
  });
  it('dumps flags as Go %q of a []string', () => {
    expect(dump('COPY --from=build --chmod=755 a b')).toBe('(copy ["--from=build" "--chmod=755"] "a" "b")');
    expect(dump('RUN --mount=type=cache,target=/x --network=none make')).toBe('(run ["--mount=type=cache,target=/x" "--network=none"] "make")');
  });
});

describe('parseWords (ENV, LABEL, ARG)', () => {
  const words = (s: string, esc = '\\') => parseWords(s, esc.charCodeAt(0)).map((w) => w.value);
  it('keeps quotes and escapes', () => {
    expect(words('a="b c" d=\'e f\' g\\ h')).toEqual(['a="b c"', "d='e f'", 'g\\ h']);
    expect(words("a='b\\'")).toEqual(["a='b\\'"]);
    expect(words('a\\')).toEqual(['a']);
    expect(words('a=`"b', '`')).toEqual(['a=`"b']);
  });
  it('legacy and name=value forms', () => {
    expect(dump('ENV A B  C')).toBe('(env "A" "B  C" "")');
    expect(dump('ENV A=1 B="2 3"')).toBe('(env "A" "1" "=" "B" "\\"2 3\\"" "=")');
    expect(dump('LABEL a=')).toBe('(label "a" "" "=")');
    expect(dump('ENV')).toBe('(env)');
    expect(rejects('LABEL a').message).toBe('LABEL must have two arguments');
    const e = rejects('FROM x\nENV a=b  c\n');
    expect(e.code).toBe('TSB1008');
    expect(e.message).toBe('Syntax error - can\'t find = in "c". Must be of the form: name=value');
    expect([e.span?.line, e.span?.col]).toEqual([2, 10]);
  });
});

describe('heredoc words', () => {
  it.each([
    ['<<EOF', { name: 'EOF', expand: true, chomp: false, fileDescriptor: 0 }],
    ['<<-EOF', { name: 'EOF', expand: true, chomp: true, fileDescriptor: 0 }],
    ["<<'EOF'", { name: 'EOF', expand: false, chomp: false, fileDescriptor: 0 }],
    ['3<<"E"', { name: 'E', expand: false, chomp: false, fileDescriptor: 3 }],
    ["<<eo\\'f", { name: "eo'f", expand: true, chomp: false, fileDescriptor: 0 }],
    ["<<'e'o\\'f", { name: "eo'f", expand: false, chomp: false, fileDescriptor: 0 }],
    ['<<$EOF', { name: '$EOF', expand: true, chomp: false, fileDescriptor: 0 }],
  ])('%s', (w, want) => expect(parseHeredocWord(w)).toEqual(want));
  it('is not a heredoc', () => {
    for (const w of ['<<', 'a<<EOF', '<<<EOF', '"<<EOF"', '<<a<b']) expect(parseHeredocWord(w), w).toBeUndefined();
  });
  it('splits lines like BuildKit\'s lexer', () => {
    expect(heredocsFromLine('RUN <<  EOF  > foo').map((h) => h.name)).toEqual(['EOF']);
    expect(heredocsFromLine('COPY <<A <<B /d').map((h) => h.name)).toEqual(['A', 'B']);
    expect(heredocsFromLine('RUN cat <<< "x"')).toEqual([]);
    expect(heredocsFromLine('RUN echo "<<EOF"')).toEqual([]);
    expect(heredocsFromLine('RUN <<EOF "unterminated')).toEqual([]); // lexer error: no heredocs
  });
  it('reads bodies, raw and chomped', () => {
    const ast = parse('FROM x\nRUN <<-EOT\n\techo a\r\n\tEOT\nCOPY <<A <<B /d\nB\nA\nA\nB\n', 'D');
    const [run, copy] = [ast.instructions[1]!, ast.instructions[2]!];
    expect(run.heredocs[0]).toMatchObject({ name: 'EOT', content: 'echo a\r\n', rawContent: '\techo a\r\n', chomp: true });
    expect(run.heredocs[0]!.span).toMatchObject({ line: 3, endLine: 3 });
    expect([run.span.line, run.span.endLine]).toEqual([2, 4]);
    expect(copy.heredocs.map((h) => [h.name, h.content])).toEqual([['A', 'B\n'], ['B', 'A\n']]);
    expect(dump('RUN ["<<EOF"]\n')).toBe('(run "<<EOF")');
    expect(parse('ONBUILD RUN <<EOF\nx\nEOF\n', 'D').instructions[0]!.heredocs[0]!.content).toBe('x\n');
    expect(parse('USER <<EOF\nEOF\n', 'D').instructions.length).toBe(2); // only RUN/COPY/ADD have heredocs
  });
  it('unterminated heredoc is an error at the heredoc', () => {
    const e = rejects('FROM x\nRUN cat <<EOF\nhello\n');
    expect(e.code).toBe('TSB1005');
    expect([e.span?.line, e.span?.col]).toEqual([2, 9]);
  });
});

describe('lines, continuations, directives', () => {
  it('continuations keep indentation, drop comments and empty lines (with a warning)', () => {
    const ast = parse('RUN a \\\n  # c\n\n   b\n', 'D');
    expect(dumpBuildkit(ast)).toBe('(run "a    b")');
    expect(ast.warnings).toEqual([{ rule: 'NoEmptyContinuation', message: 'Empty continuation line found in: RUN a    b', span: { file: 'D', line: 3, col: 1 } }]);
    expect(dump('RUN a \\\\\nRUN b')).toBe('(run "a \\\\\\\\")\n(run "b")');
    expect(dump('RUN a \\')).toBe('(run "a")');
  });
  it('escape directive, backtick continuation, directives only at the top', () => {
    expect(dump('# escape=`\nRUN a `\n b\nCOPY c:\\x d')).toBe('(run "a  b")\n(copy "c:\\\\x" "d")');
    expect(dump('\n# escape=`\nRUN a `\n')).toBe('(run "a `")');
    expect(rejects('# escape=x\nFROM a').code).toBe('TSB1003');
    expect(rejects('# syntax=a\n#syntax=b\nFROM a').code).toBe('TSB1004');
    const ast = parse('# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a', 'D');
    expect(ast.directives.map((d) => [d.name, d.value, d.span.line])).toEqual([['syntax', 'docker/dockerfile:1', 1], ['check', 'skip=all', 2]]);
  });
  it('CRLF, BOM, and line numbers', () => {
    const ast = parse('\ufeffFROM a\r\n\r\nRUN b \\\r\n  c\r\n', 'D');
    expect(dumpBuildkit(ast)).toBe('(from "a")\n(run "b   c")');
    expect(ast.instructions.map((i) => [i.span.line, i.span.endLine])).toEqual([[1, 1], [3, 4]]);
  });
  it('empty and comment-only files are rejected', () => {
    expect(rejects('').code).toBe('TSB1001');
    expect(rejects('# syntax=x\n\n# hi\n').code).toBe('TSB1001');
  });
  it('lines over 65535 bytes are rejected, 65535 is fine', () => {
    expect(dump('RUN ' + 'a'.repeat(65531))).toBe(`(run "${'a'.repeat(65531)}")`);
    const e = rejects('FROM x\nRUN ' + 'é'.repeat(32766) + '\n');
    expect(e.code).toBe('TSB1002');
    expect(e.span?.line).toBe(2);
  });
  it('keywords are case-insensitive; unknown ones parse as BuildKit\'s parseIgnore', () => {
    expect(dump('from A as B\nRuN x\nfoo bar baz')).toBe('(from "A" "as" "B")\n(run "x")\n(foo "")');
    expect(parse('CoPy a b', 'D').instructions[0]!.keyword).toBe('CoPy');
  });
  it('ONBUILD nests, HEALTHCHECK takes a type word', () => {
    const ins = parse('ONBUILD COPY --from=a b c', 'D').instructions[0]!;
    expect(ins.sub?.keyword).toBe('COPY');
    expect(ins.sub?.flags.map((f) => f.value)).toEqual(['--from=a']);
    expect(dump('ONBUILD COPY --from=a b c')).toBe('(onbuild (copy ["--from=a"] "b" "c"))');
    expect(dump('HEALTHCHECK --retries=3 CMD ["a", "b"]')).toBe('(healthcheck ["--retries=3"] "CMD" "a" "b")');
    expect(parse('HEALTHCHECK CMD ["a"]', 'D').instructions[0]!.json).toBe(true);
  });
  it('spans point at words', () => {
    const ast = parse('FROM x\n  COPY --chown=1 a \\\n    b\n', 'D');
    const c = ast.instructions[1]!;
    expect(c.span).toMatchObject({ line: 2, col: 3, endLine: 3 });
    expect(c.flags[0]!.span).toMatchObject({ line: 2, col: 8, endCol: 17 });
    expect(c.args.map((a) => [a.value, a.span.line, a.span.col])).toEqual([['a', 2, 18], ['b', 3, 5]]);
  });
});

describe('pathological nesting does not overflow the stack', () => {
  it('JSON arrays nest up to Go\'s 10000 levels', () => {
    expect(rejects('CMD ' + '['.repeat(10000) + ']'.repeat(10000)).code).toBe('TSB1006');
    // one level more is a JSON syntax error in Go → shell form
    expect(dump('CMD ' + '['.repeat(10001) + ']'.repeat(10001)).startsWith('(cmd "[[[')).toBe(true);
  });
  it('ONBUILD chains as long as a line allows', () => {
    const d = dump('ONBUILD '.repeat(8000) + 'RUN x');
    expect(d.startsWith('(onbuild (onbuild (onbuild')).toBe(true);
    expect(d.endsWith('(run "x")' + ')'.repeat(7999) + ')')).toBe(true);
  });
});
