/**
 * Golden build cases: testdata/build/<case>/context (Dockerfile + files) and expected.json (the
 * image config and the merged filesystem listing: path, type, mode, owner, content hash).
 * Optional args.json: extra CLI flags. UPDATE_GOLDEN=1 rewrites expected.json.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, listing, readImageFromStore, tmp } from './helpers.js';

const root = join(process.cwd(), 'testdata', 'build');
const cases = existsSync(root) ? readdirSync(root).filter((d) => existsSync(join(root, d, 'context'))).sort() : [];

describe('golden builds', () => {
  for (const c of cases) {
    it(c, async () => {
      const dir = join(root, c);
      const extra: string[] = existsSync(join(dir, 'args.json')) ? JSON.parse(readFileSync(join(dir, 'args.json'), 'utf8')) : [];
      const store = tmp('tsb-golden-');
      const r = await cli(['build', join(dir, 'context'), '-t', `golden-${c}:1`, '--store', store, '--progress', 'plain', ...extra]);
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
