/**
 * bin/tsbuild.js fast load: the packer's scanner on tricky JavaScript, and the pack of the real
 * dist/ against the ES modules it replaces (same export names for every module, same CLI output).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const repo = resolve(__dirname, '..', '..');
const bin = join(repo, 'bin', 'tsbuild.js');
const dist = join(repo, 'dist');

interface Analysis { imports: { spec: string; names: [string, string][]; def?: string; ns?: string; reexport?: unknown }[]; exports: [string, string][]; dynamic: (string | null)[]; edits: { s: number; e: number; text: string }[] }
let packer: { analyze: (src: string) => Analysis; tokenize: (src: string) => unknown[] };

beforeAll(async () => {
  packer = await import(pathToFileURL(join(repo, 'bin', 'fastload-build.js')).href);
});

describe('packer scanner', () => {
  it('finds imports and exports, not text that only looks like them', () => {
    const src = [
      "import { a, b as c } from './x.js';",
      "import def, * as ns from 'node:fs';",
      'const re = /[\'"`]export {/g;',
      'const t = `',
      'export const notReal = 1;',
      "import x from 'nowhere';",
      '${ { y: `inner ${1 + 2}` }.y }`;',
      "const s = 'export function nope() {}';",
      'class K { import(p) { return p; } }',
      'const v = a / 2 / c;',
      "export async function run() { return (await import('./lazy.js')).z + import.meta.url; }",
      'export class C {}',
      'export const k1 = 1, k2 = 2;',
      'function hidden() {}',
      'export { hidden as shown };',
      "export * from './all.js';",
      'export default k1;',
    ].join('\n');
    const a = packer.analyze(src);
    expect(a.imports.map((i) => i.spec)).toEqual(['./x.js', 'node:fs', './all.js']);
    expect(a.imports[0]!.names).toEqual([['a', 'a'], ['b', 'c']]);
    expect(a.imports[1]!.def).toBe('def');
    expect(a.imports[1]!.ns).toBe('ns');
    expect(a.exports).toEqual([['run', 'run'], ['C', 'C'], ['k1', 'k1'], ['k2', 'k2'], ['shown', 'hidden'], ['default', '__$dft']]);
    expect(a.dynamic).toEqual(['./lazy.js']);
    // The method named import is left alone; import() and import.meta are rewritten in place.
    const rewritten = a.edits.filter((e) => e.text === '__$imp').length;
    expect(rewritten).toBe(2);
    // Blanked statements keep their newlines, so line numbers do not move.
    for (const e of a.edits) expect(e.text.split('\n').length).toBe(src.slice(e.s, e.e).split('\n').length);
  });

  it('refuses what it cannot keep equivalent', () => {
    expect(() => packer.analyze('export let x = 1;')).toThrow(/export let/);
    expect(() => packer.analyze("import data from './d.json' with { type: 'json' };")).toThrow(/attributes/);
    expect(() => packer.analyze('let y = 1; export { y };')).toThrow(/let\/var/);
    expect(packer.analyze('const m = await import(name);').dynamic).toEqual([null]);
  });
});

describe('pack of dist/', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsb-fastload-'));
  const env = { ...process.env, TSBUILD_FASTLOAD_DIR: dir };
  const run = (args: string[], extra: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...env, ...extra } });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(!existsSync(join(dist, 'src', 'cli', 'main.js')))('is made after the first run and then used, with the same output', () => {
    const first = run(['--version']);
    expect(first.status).toBe(0);
    expect(existsSync(join(dir, 'pack.bin'))).toBe(true);
    expect(existsSync(join(dir, 'cache.bin'))).toBe(false);
    const example = join(repo, 'examples', 'hello', 'Dockerfile');
    for (const args of [['--version'], ['help', 'build'], ['debug', 'parse', example], ['build', '-f', '/nonexistent/Dockerfile', repo], ['build', '--debug', '-f', '/nonexistent/Dockerfile', repo]]) {
      const esm = run(args, { TSBUILD_FASTLOAD: '0' });
      const fast = run(args);
      expect({ status: fast.status, stdout: fast.stdout, stderr: fast.stderr }).toEqual({ status: esm.status, stdout: esm.stdout, stderr: esm.stderr });
    }
    // A packed run writes the code cache.
    expect(existsSync(join(dir, 'cache.bin'))).toBe(true);
  });

  it.skipIf(!existsSync(join(dist, 'src', 'cli', 'main.js')))('exports the same names as the ES modules, for every packed module', async () => {
    if (!existsSync(join(dir, 'pack.bin'))) run(['--version']);
    const r = run([], { TSBUILD_FASTLOAD_CHECK: '1' });
    expect(r.status).toBe(0);
    const packed = JSON.parse(r.stdout) as Record<string, string[]>;
    expect(Object.keys(packed).length).toBeGreaterThan(50);
    // The packages our modules import, packed as CommonJS files: the same exports as require() gives.
    const pkgs = Object.keys(packed).filter((k) => k.startsWith('package:'));
    expect(pkgs).toEqual(expect.arrayContaining(['package:lru-cache', 'package:moo', 'package:nearley', 'package:tar-stream']));
    const req = createRequire(join(dist, 'src', 'cli', 'main.js'));
    for (const k of pkgs) expect([k, packed[k]]).toEqual([k, Object.keys(req(k.slice('package:'.length)) as object).sort()]);
    for (const [rel, names] of Object.entries(packed)) {
      if (rel.startsWith('package:')) continue;
      const ns = await import(pathToFileURL(join(dist, rel)).href) as Record<string, unknown>;
      expect([rel, names]).toEqual([rel, Object.keys(ns).sort()]);
    }
  });

  it.skipIf(!existsSync(join(dist, 'src', 'cli', 'main.js')))('is not used once a module changed (its recorded size or mtime differs)', async () => {
    if (!existsSync(join(dir, 'pack.bin'))) run(['--version']);
    const { readFileSync, writeFileSync } = await import('node:fs');
    const buf = readFileSync(join(dir, 'pack.bin'));
    const n = buf.readUInt32LE(0);
    const head = JSON.parse(buf.toString('utf8', 4, 4 + n)) as { modules: Record<string, number[]> };
    head.modules['src/cli/args.js']![0]! += 1; // as if args.js had been rebuilt with another size
    const h = Buffer.from(JSON.stringify(head));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(h.length, 0);
    writeFileSync(join(dir, 'pack.bin'), Buffer.concat([len, h, buf.subarray(4 + n)]));
    // Stale: the run loads the ES modules, and repacks at exit with the real stamp.
    expect(run(['--version']).stdout).toMatch(/^tsbuild /);
    const again = readFileSync(join(dir, 'pack.bin'));
    const head2 = JSON.parse(again.toString('utf8', 4, 4 + again.readUInt32LE(0))) as { modules: Record<string, number[]> };
    expect(head2.modules['src/cli/args.js']![0]).toBe(head.modules['src/cli/args.js']![0]! - 1);
  });
});
