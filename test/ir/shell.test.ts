import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TsbError } from '../../src/errors.js';
import { expandShellWord, expandWord, processWord, processWords } from '../../src/ir/shell.js';

const CASES = fileURLToPath(new URL('../../../shared/corpus/buildkit-parser/shell-cases/', import.meta.url));

function rows(name: string): Record<string, unknown>[] {
  return readFileSync(CASES + name, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
}

const haveCorpus = existsSync(CASES + 'envVarTest.jsonl');
if (!haveCorpus) console.warn(`skipping BuildKit shell tables: ${CASES} is absent`);

describe.skipIf(!haveCorpus)('BuildKit envVarTest (ProcessWord)', () => {
  const all = haveCorpus ? rows('envVarTest.jsonl') : [];
  it('has the 230 rows', () => { expect(all.length).toBe(230); });
  for (const r of all.filter((r) => r.platform !== 'W')) {
    const src = r.source as string;
    const env = r.envs as Record<string, string>;
    it(`line ${r.line as number}: ${src}`, () => {
      if (r.expect_error) {
        expect(() => processWord(src, env, '\\')).toThrow(TsbError);
      } else {
        expect(processWord(src, env, '\\')).toBe(r.expected);
      }
    });
  }
});

describe.skipIf(!haveCorpus)('BuildKit wordsTest (ProcessWords)', () => {
  const all = haveCorpus ? rows('wordsTest.jsonl') : [];
  it('has the 24 rows', () => { expect(all.length).toBe(24); });
  for (const r of all) {
    const input = r.input as string;
    const env = new Map(Object.entries(r.envs as Record<string, string>));
    it(`line ${r.line as number}: ${input}`, () => {
      if (r.expect_error) expect(() => processWords(input, env, '\\')).toThrow(TsbError);
      else expect(processWords(input, env, '\\')).toEqual(r.expected);
    });
  }
});

describe('pattern modifiers (bash semantics, as BuildKit implements them)', () => {
  const env = { P: '/usr/local/bin/tool.tar.gz', A: 'aXbXc', E: '', U: 'héllo wörld' };
  const t: [string, string][] = [
    ['${P#*/}', 'usr/local/bin/tool.tar.gz'],
    ['${P##*/}', 'tool.tar.gz'],
    ['${P%.*}', '/usr/local/bin/tool.tar'],
    ['${P%%.*}', '/usr/local/bin/tool'],
    ['${P%/*}', '/usr/local/bin'],
    ['${P#/usr}', '/local/bin/tool.tar.gz'],
    ['${P#nomatch}', '/usr/local/bin/tool.tar.gz'],
    ['${P%?z}', '/usr/local/bin/tool.tar.'],
    ['${A/X/-}', 'a-bXc'],
    ['${A//X/-}', 'a-b-c'],
    ['${A/X*/}', 'a'],
    ['${A//[/_}', 'aXbXc'],
    ['${U//ö/o}', 'héllo world'],
    ['${UNSET#a}', ''],
    ['${E:-d}', 'd'],
    ['${E-d}', ''],
    ['${A/\\//x}', 'aXbXc'],
    ['${P//\\//:}', ':usr:local:bin:tool.tar.gz'],
    // `$$` is the special parameter $ (always unset), so the replacement is empty.
    ['${A//X/$$}', 'abc'],
    ['${A//X/${A}}', 'aaXbXcbaXbXcc'],
  ];
  for (const [src, want] of t) it(src, () => { expect(processWord(src, env)).toBe(want); });

  it('replace-all with an empty-matching pattern follows Go (no double replacement after a match)', () => {
    expect(processWord('${A//*/-}', { A: 'abc' })).toBe('-');
  });
  it('${v/pat} without a replacement is a syntax error, as in BuildKit', () => {
    expect(() => processWord('${A//X}', env)).toThrow("missing '/' in ${}");
  });
  it('invalid escape in a pattern is TSB2033', () => {
    expect(() => processWord('${P#\\a}', env)).toThrow(/TSB2033|invalid escape/);
    try { processWord('${P#\\a}', env); } catch (e) { expect((e as TsbError).code).toBe('TSB2033'); }
  });
});

describe('errors and matches', () => {
  const code = (f: () => unknown) => { try { f(); } catch (e) { return (e as TsbError).code; } return 'none'; };
  it('codes', () => {
    expect(code(() => processWord('"abc', {}))).toBe('TSB2030');
    expect(code(() => processWord('${X', {}))).toBe('TSB2030');
    expect(code(() => processWord('${}', {}))).toBe('TSB2030');
    expect(code(() => processWord('${X:=1}', {}))).toBe('TSB2031');
    expect(code(() => processWord('${X^^}', {}))).toBe('TSB2031');
    expect(code(() => processWord('${X:?must be set}', {}))).toBe('TSB2032');
  });
  it('${X:?msg} carries the message', () => {
    expect(() => processWord('${X:?must be set}', {})).toThrow('failed to process "${X:?must be set}": X: must be set');
    expect(() => processWord('${X?}', {})).toThrow('X: is not allowed to be unset');
    expect(() => processWord('${X:?}', { X: '' })).toThrow('X: is not allowed to be empty');
  });
  it('reports matched and unmatched names', () => {
    const r = expandShellWord('$A ${B:-x} ${C} $1 \\$D \'$E\'', new Map([['A', '1'], ['C', '3']]));
    expect(r.value).toBe('1 x 3  $D $E');
    expect([...r.matched].sort()).toEqual(['A', 'C']);
    expect([...r.unmatched].sort()).toEqual(['1', 'B']);
  });
  it('backtick escape token', () => {
    expect(processWord('a`$b`"c', { b: 'X' }, '`')).toBe('a$b"c');
    expect(processWord('C:\\dir\\$b', { b: 'X' }, '`')).toBe('C:\\dir\\X');
  });
  it('skipUnsetEnv keeps unset references', () => {
    expect(processWord('$A-${B}-${C:-x}-$D', { D: 'd' }, '\\', { skipUnsetEnv: true })).toBe('$A-${B}-${C:-x}-d');
  });
  it('skipProcessQuotes keeps quotes (heredoc bodies)', () => {
    expect(processWord('echo "$A" \'$A\'', { A: 'v' }, '\\', { skipProcessQuotes: true })).toBe('echo "v" \'v\'');
  });
  it('expandWord spans its errors and leaves non-expanding words alone', () => {
    const span = { file: 'Dockerfile', line: 3, col: 9 };
    expect(expandWord({ raw: '$A', expand: false, span }, { A: 'x' }).value).toBe('$A');
    expect(expandWord({ raw: '"$A"', expand: true, span }, { A: 'x' }).value).toBe('x');
    try { expandWord({ raw: '${A', expand: true, span }, {}); expect.unreachable(); } catch (e) {
      expect((e as TsbError).span).toEqual(span);
    }
  });
});
