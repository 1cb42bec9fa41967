// Compiles grammar/dockerfile.ne (nearley + moo) into src/syntax/grammar.generated.ts.
// Run by `npm run build`; the generated file is not committed.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'grammar', 'dockerfile.ne');
const out = join(root, 'src', 'syntax', 'grammar.generated.ts');
if (!existsSync(src)) {
  console.error(`build-grammar: ${src} is missing`);
  process.exit(1);
}
mkdirSync(dirname(out), { recursive: true });
execFileSync(process.execPath, [join(root, 'node_modules', 'nearley', 'bin', 'nearleyc.js'), src, '-o', out], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
// nearleyc's TypeScript output is not written for `strict`; it is generated, so it is not checked.
writeFileSync(out, '// @ts-nocheck\n// Generated from grammar/dockerfile.ne by scripts/build-grammar.mjs. Do not edit.\n' + readFileSync(out, 'utf8'));
