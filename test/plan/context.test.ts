/**
 * The context walk (src/plan/context.ts): BuildContext and contextSignature (what the build memo
 * compares) see exactly the same entries, .dockerignore re-inclusion included.
 */
import { chmodSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BuildContext, contextSignature, loadIgnore } from '../../src/plan/context.js';
import { tmp, writeTree } from '../build/helpers.js';

function tree(files: Record<string, string | null>): string {
  const dir = tmp('tsb-ctx-');
  writeTree(dir, files);
  return dir;
}

/** Paths named by a signature's lines, in order. */
function signed(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    const n = Number(text.slice(i, colon));
    out.push(text.slice(colon + 1, colon + 1 + n));
    i = text.indexOf('\n', colon + 1 + n) + 1;
  }
  return out;
}

describe('context walk', () => {
  it('contextSignature names exactly the entries BuildContext includes, in walk order', () => {
    const dir = tree({
      'a.txt': 'a', 'b/c.txt': 'c', 'b/d/e.txt': 'e', 'logs/x.log': 'x', 'logs/keep/k.txt': 'k', 'empty/': null,
      'node_modules/m/index.js': 'm', 'sub/ignored/deep/f': 'f', 'weird\tname\n.txt': 'w', '.dockerignore': '',
    });
    symlinkSync('a.txt', join(dir, 'link'));
    writeFileSync(join(dir, '.dockerignore'), 'logs\n!logs/keep\nnode_modules\nsub/ignored\n!sub/ignored/deep/nothing-here\n');
    const ignore = loadIgnore(dir, undefined).matcher;
    const ctx = BuildContext.open(dir, { ignore });
    const sig = contextSignature(dir, ignore);
    expect(signed(sig.text)).toEqual([...ctx.entries.keys()]);
    // A build signs its own (exact, BigInt) walk: the same text as the plain-stat walk.
    expect(ctx.signature().text).toBe(sig.text);
    expect([...ctx.entries.keys()]).toContain('logs/keep/k.txt');
    expect([...ctx.entries.keys()]).not.toContain('logs/x.log');
    expect([...ctx.entries.keys()]).not.toContain('sub/ignored'); // entered for a `!` rule, nothing kept
    expect([...ctx.entries.keys()]).toContain('weird\tname\n.txt');
    expect(sig.racy).toBe(true); // just written
  });

  it('the signature changes with every stat a build depends on, and not without', () => {
    const dir = tree({ 'a.txt': 'one', 'd/b.txt': 'bbb' });
    const old = new Date(Date.now() - 10_000);
    for (const p of ['a.txt', 'd/b.txt', 'd', '.']) utimesSync(join(dir, p), old, old);
    const none = loadIgnore(dir, undefined).matcher;
    const s0 = contextSignature(dir, none).text;
    expect(contextSignature(dir, none).text).toBe(s0);
    writeFileSync(join(dir, 'a.txt'), 'two');
    utimesSync(join(dir, 'a.txt'), old, old); // same size and mtime: the ctime still moves
    const s1 = contextSignature(dir, none).text;
    expect(s1).not.toBe(s0);
    chmodSync(join(dir, 'd/b.txt'), 0o600);
    const s2 = contextSignature(dir, none).text;
    expect(s2).not.toBe(s1);
    expect(BuildContext.open(dir, { ignore: none }).signature().text).toBe(s2);
    expect(contextSignature(dir, none).racy).toBe(true);
  });
});
