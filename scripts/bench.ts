/**
 * `npm run bench [FILTER]`: runs every bench/*.ts module (compiled to dist/bench) whose file name
 * contains FILTER, one after another, and prints what each reports. A bench module exports
 * `default async function (report: (line: string) => void): Promise<void>`.
 * Benchmarks measure; they do not assert timing in the test suite.
 */
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'bench');
const filter = process.argv[2] ?? '';
const files = readdirSync(dir).filter((f) => f.endsWith('.js') && f.includes(filter)).sort();
let failed = 0;
for (const f of files) {
  const name = f.replace(/\.js$/, '');
  console.log(`== ${name}`);
  try {
    const mod = (await import(pathToFileURL(join(dir, f)).href)) as { default: (r: (l: string) => void) => Promise<void> };
    await mod.default((line) => console.log(`${name}: ${line}`));
  } catch (e) {
    failed++;
    console.log(`${name}: FAILED ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  }
}
process.exitCode = failed ? 1 : 0;
