/**
 * Golden build cases: testdata/build/<case>/context (Dockerfile + files) and expected.json (the
 * image config and the merged filesystem listing: path, type, mode, owner, content hash).
 * Optional args.json: extra CLI flags. UPDATE_GOLDEN=1 rewrites expected.json.
 * COPY keeps the context's mtimes (as Docker does) and they are in the layer digests, but a git
 * checkout stamps files with the checkout time: the case is built from a copy whose every mtime is
 * pinned, so the expected diff_ids hold on any clone.
 */
import { cpSync, existsSync, lutimesSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, listing, readImageFromStore, tmp } from './helpers.js';

const root = join(process.cwd(), 'testdata', 'build');
const PINNED = new Date('2021-02-03T04:05:06Z');

function pinnedCopy(src: string): string {
  const dst = join(tmp('tsb-golden-ctx-'), 'context');
  cpSync(src, dst, { recursive: true, verbatimSymlinks: true });
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      lutimesSync(p, PINNED, PINNED);
    }
  };
  walk(dst);
  lutimesSync(dst, PINNED, PINNED);
  return dst;
}

const cases = existsSync(root) ? readdirSync(root).filter((d) => existsSync(join(root, d, 'context'))).sort() : [];

describe('golden builds', () => {
  for (const c of cases) {
    it(c, async () => {
      const dir = join(root, c);
      const extra: string[] = existsSync(join(dir, 'args.json')) ? JSON.parse(readFileSync(join(dir, 'args.json'), 'utf8')) : [];
      const store = tmp('tsb-golden-');
      const r = await cli(['build', pinnedCopy(join(dir, 'context')), '-t', `golden-${c}:1`, '--store', store, '--progress', 'plain', ...extra]);
      expect(r.code, r.stderr).toBe(0);
      const img = readImageFromStore(store, `golden-${c}:1`);
      const actual = { config: img.config, files: await listing(img.fs) };
      const file = join(dir, 'expected.json');
      if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) {
        writeFileSync(file, JSON.stringify(actual, null, 2) + '\n');
      }
      expect(actual).toEqual(JSON.parse(readFileSync(file, 'utf8')));
    });
  }
});
