import { describe, expect, it } from 'vitest';
import { parseArgs, didYouMean } from '../../src/cli/args.js';
import { TsbError } from '../../src/errors.js';

const specs = [
  { name: 'tag', short: 't', type: 'list' as const },
  { name: 'file', short: 'f', type: 'string' as const },
  { name: 'no-cache', type: 'bool' as const },
  { name: 'interactive', short: 'i', type: 'bool' as const },
  { name: 'tty', type: 'bool' as const, short: 'T' },
];

describe('parseArgs', () => {
  it('reads every flag shape', () => {
    const a = parseArgs(['-t', 'a:1', '--tag=b:2', '-tc:3', '--file', 'X', '--no-cache', '.', '--', '--not-a-flag'], specs, 'build');
    expect(a.list('tag')).toEqual(['a:1', 'b:2', 'c:3']);
    expect(a.str('file')).toBe('X');
    expect(a.bool('no-cache')).toBe(true);
    expect(a.positional).toEqual(['.', '--not-a-flag']);
  });
  it('bundles short booleans', () => {
    const a = parseArgs(['-iT'], specs, 'run');
    expect(a.bool('interactive') && a.bool('tty')).toBe(true);
  });
  it('rejects unknown flags with a hint and exit code 2', () => {
    try {
      parseArgs(['--no-cach'], specs, 'build');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(TsbError);
      const err = e as TsbError;
      expect(err.code).toBe('TSB0001');
      expect(err.exitCode).toBe(2);
      expect(err.hint).toContain('--no-cache');
    }
  });
  it('stops at the first positional when asked (tsbuild run IMAGE CMD -flags)', () => {
    const a = parseArgs(['-i', 'busybox:1', 'ls', '-la', '--tag', 'x'], specs, 'run', { stopAtPositional: true });
    expect(a.bool('interactive')).toBe(true);
    expect(a.positional).toEqual(['busybox:1', 'ls', '-la', '--tag', 'x']);
    expect(a.list('tag')).toEqual([]);
    // A `--` right after IMAGE only separates; a later one is the command's.
    expect(parseArgs(['busybox:1', '--', 'echo', '--'], specs, 'run', { stopAtPositional: true }).positional).toEqual(['busybox:1', 'echo', '--']);
    // Without the option, flags anywhere are flags.
    expect(parseArgs(['busybox:1', '-i'], specs, 'run').bool('interactive')).toBe(true);
  });
  it('suggests close words only', () => {
    expect(didYouMean('imagse', ['images', 'inspect'])).toBe('images');
    expect(didYouMean('zzzzzz', ['images', 'inspect'])).toBeUndefined();
  });
});
