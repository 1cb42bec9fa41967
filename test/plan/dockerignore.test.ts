import { describe, expect, it } from 'vitest';
import { IgnoreMatcher, cleanPath, parseDockerignore } from '../../src/plan/dockerignore.js';
import { TsbError } from '../../src/errors.js';

const m = (text: string) => IgnoreMatcher.fromText(text);

describe('dockerignore parsing', () => {
  it('skips comments, blank lines, trims, cleans and drops a leading slash', () => {
    const ps = parseDockerignore('# comment\n\n  ./a/  \n/b//c\n!  d/../e\n \t\n');
    expect(ps.map((p) => [p.pattern, p.exclusion])).toEqual([['a', false], ['b/c', false], ['e', true]]);
  });
  it('a comment must start the line (an indented # is a pattern)', () => {
    expect(parseDockerignore('  #x').map((p) => p.pattern)).toEqual(['#x']);
  });
  it('rejects a bare ! and a bad class with a coded error and line', () => {
    expect(() => parseDockerignore('a\n!\n')).toThrow(TsbError);
    try { parseDockerignore('ok\n[abc\n'); } catch (e) { expect((e as TsbError).code).toBe('TSB3002'); expect((e as TsbError).span?.line).toBe(2); }
  });
  it('cleanPath is Go path.Clean', () => {
    expect(cleanPath('')).toBe('.');
    expect(cleanPath('a/./b/../c/')).toBe('a/c');
    expect(cleanPath('/../a')).toBe('/a');
    expect(cleanPath('../a')).toBe('../a');
  });
});

describe('escapes and punctuation', () => {
  it('\\x is the literal x for any x (\\# once threw "Invalid escape"), punctuation is literal', () => {
    const i = m('\\#hash.txt\na\\-b\n[\\#]x\nq\\*\npkg-*.json\nx{1}+\n');
    expect(i.ignores('#hash.txt')).toBe(true);
    expect(i.ignores('a-b')).toBe(true);
    expect(i.ignores('#x')).toBe(true);
    expect(i.ignores('q*')).toBe(true);
    expect(i.ignores('qq')).toBe(false);
    expect(i.ignores('pkg-lock.json')).toBe(true);
    expect(i.ignores('x{1}+')).toBe(true);
    expect(i.ignores('hash.txt')).toBe(false);
  });
});

describe('patternmatcher semantics', () => {
  it('* does not cross /, ? is one char', () => {
    const x = m('*.md\nsrc/?.ts');
    expect(x.ignores('README.md')).toBe(true);
    expect(x.ignores('docs/README.md')).toBe(false);
    expect(x.ignores('src/a.ts')).toBe(true);
    expect(x.ignores('src/ab.ts')).toBe(false);
  });
  it('** matches any depth including none', () => {
    const x = m('**/*.log\nbuild/**');
    expect(x.ignores('a.log')).toBe(true);
    expect(x.ignores('x/y/z.log')).toBe(true);
    expect(x.ignores('build/a/b')).toBe(true);
    expect(x.ignores('build')).toBe(false);
    expect(x.ignores('buildx/a')).toBe(false);
  });
  it('a matching parent directory ignores everything below it', () => {
    const x = m('node_modules');
    expect(x.ignores('node_modules/a/b.js')).toBe(true);
    expect(x.ignores('src/node_modules/a')).toBe(false);
  });
  it('later ! re-includes, later pattern wins again', () => {
    const x = m('*.md\n!README.md\nREADME*');
    expect(x.ignores('README.md')).toBe(true);
    const y = m('*.md\n!README.md');
    expect(y.ignores('README.md')).toBe(false);
    expect(y.ignores('CHANGES.md')).toBe(true);
  });
  it('! under an ignored directory re-includes that path', () => {
    const x = m('docs\n!docs/keep.txt');
    expect(x.ignores('docs/keep.txt')).toBe(false);
    expect(x.ignores('docs/other.txt')).toBe(true);
    expect(x.mayReincludeBelow('docs')).toBe(true);
    expect(x.mayReincludeBelow('src')).toBe(false);
  });
  it('escapes and classes', () => {
    const x = m('\\*.txt\n[ab].c\n[^x]y');
    expect(x.ignores('*.txt')).toBe(true);
    expect(x.ignores('a.txt')).toBe(false);
    expect(x.ignores('a.c')).toBe(true);
    expect(x.ignores('c.c')).toBe(false);
    expect(x.ignores('zy')).toBe(true);
    expect(x.ignores('xy')).toBe(false);
  });
  it('regex specials are literal', () => {
    const x = m('a+b.(c)');
    expect(x.ignores('a+b.(c)')).toBe(true);
    expect(x.ignores('aab.(c)')).toBe(false);
  });
});
