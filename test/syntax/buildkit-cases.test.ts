/**
 * testdata/syntax/<case>/: a Dockerfile and buildkit.json, the answer of BuildKit 0.25's own
 * parser.Parse for it (dump, each instruction's lines and heredoc bodies, or the rejection), in
 * the _buildkit format of ../shared/corpus/buildkit-parser/FORMAT.md §6. These are regression
 * cases for differences found by running BuildKit's parser on real-world and generated files;
 * the answers are BuildKit's, never regenerated from tsbuild's output (see testdata/syntax/README.md).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compareWithBuildkit, type BuildkitAnswer } from '../../scripts/conformance.js';
import { decodeDockerfile } from '../../src/syntax/index.js';

const root = join(import.meta.dirname, '..', '..', 'testdata', 'syntax');

describe('BuildKit-answered parse cases (testdata/syntax)', () => {
  const cases = readdirSync(root).filter((d) => existsSync(join(root, d, 'buildkit.json'))).sort();
  it('has cases', () => expect(cases.length).toBeGreaterThan(0));
  for (const c of cases) {
    it(c, () => {
      const want = JSON.parse(readFileSync(join(root, c, 'buildkit.json'), 'utf8')) as BuildkitAnswer;
      const text = decodeDockerfile(readFileSync(join(root, c, 'Dockerfile')));
      expect(compareWithBuildkit(text, 'Dockerfile', want)).toEqual([]);
    });
  }
});
