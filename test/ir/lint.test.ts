// BuildKit's linter expectations (../shared/corpus/buildkit-parser/lint-cases.jsonl) for the rules
// src/syntax + src/ir implement: the (rule, line) pairs must match exactly, except for the cases
// listed in KNOWN with the reason we differ.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { TsbError } from '../../src/errors.js';
import { toIR } from '../../src/ir/index.js';
import { parse } from '../../src/syntax/index.js';

const FILE = fileURLToPath(new URL('../../../shared/corpus/buildkit-parser/lint-cases.jsonl', import.meta.url));
const have = existsSync(FILE);
if (!have) console.warn(`skipping lint cases: ${FILE} is absent`);

const RULES = new Set(['StageNameCasing', 'FromAsCasing', 'ConsistentInstructionCasing', 'JSONArgsRecommended', 'MaintainerDeprecated',
  'LegacyKeyValueFormat', 'ReservedStageName', 'ExposeProtoCasing', 'NoEmptyContinuation', 'SecretsUsedInArgOrEnv', 'WorkdirRelativePath',
  'ExposeInvalidFormat', 'UndefinedArgInFrom', 'RedundantTargetPlatform', 'FromPlatformFlagConstDisallowed']);

const KNOWN: Record<string, string> = {
  'bk-lint-019': 'check options come from the BUILDKIT_DOCKERFILE_CHECK build-arg (src/plan)',
  'bk-lint-020': 'check options come from the BUILDKIT_DOCKERFILE_CHECK build-arg (src/plan)',
  'bk-lint-023': 'NoEmptyContinuation line is src/syntax\'s (it reports the empty line, BuildKit the next one)',
  'bk-lint-033': 'duplicate stage names are an error in tsbuild (TSB2005), a warning in BuildKit',
  'bk-lint-048': 'BuildKit reports lint warnings of a file it then rejects; toIR stops at the error',
  'bk-lint-056': 'the corpus row pairs another Dockerfile of the same Go test with this expectation',
  'bk-lint-057': 'the corpus row pairs another Dockerfile of the same Go test with this expectation',
  'bk-lint-072': 'BuildKit lints only the stages the target needs; toIR lints every stage',
  'bk-lint-077': 'the Dockerfile is a Go template (dockerfile is null in the corpus)',
};

interface Case { id: string; dockerfile: string | null; expected_warnings: { RuleName: string; Line: number }[] | null; build_err: unknown }

describe.skipIf(!have)('BuildKit lint cases', () => {
  const cases = have ? readFileSync(FILE, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Case) : [];
  for (const c of cases) {
    it(`${c.id}${KNOWN[c.id] ? ' (known difference)' : ''}`, () => {
      const want = (c.expected_warnings ?? []).filter((w) => RULES.has(w.RuleName)).map((w) => `${w.RuleName}@${w.Line}`).sort();
      let got: string[];
      if (typeof c.build_err === 'string' && c.build_err.startsWith('lint violation found') && !KNOWN[c.id]) {
        // `# check=error=true`: the build fails with the same message.
        expect(() => toIR(parse(c.dockerfile ?? '', 'Dockerfile'))).toThrow(c.build_err as string);
        return;
      }
      try {
        got = toIR(parse(c.dockerfile ?? '', 'Dockerfile')).warnings.filter((w) => RULES.has(w.rule)).map((w) => `${w.rule}@${w.span.line}`).sort();
      } catch (e) {
        if (!(e instanceof TsbError)) throw e;
        got = [`error ${e.code}`];
      }
      if (KNOWN[c.id]) expect(got).not.toEqual(want);
      else expect(got).toEqual(want);
    });
  }
});
