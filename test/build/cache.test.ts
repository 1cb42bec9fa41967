import { chmodSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, tmp, writeTree } from './helpers.js';
import { computeKey, explainMiss, normalizeText } from '../../src/plan/cachekey.js';

async function cacheWhy(argv: string[]) {
  const { command } = await import('../../src/cli/commands/cache-why.js');
  const { parseArgs } = await import('../../src/cli/args.js');
  const { PassThrough, Readable } = await import('node:stream');
  const out = new PassThrough(); let stdout = '';
  out.on('data', (d) => { stdout += d; });
  const code = await command.run(parseArgs(argv, command.flags, command.name), {
    stdout: out, stderr: new PassThrough(), stdin: Readable.from([]), env: process.env, cwd: process.cwd(), signal: new AbortController().signal,
  });
  return { code, stdout };
}

function setup(dockerfile: string, files: Record<string, string> = {}) {
  const dir = tmp();
  writeTree(dir, { Dockerfile: dockerfile, ...files });
  const store = tmp('tsb-store-');
  const build = (...extra: string[]) => cli(['build', dir, '-t', 'c:1', '--store', store, '--progress', 'plain', ...extra]);
  const edit = (df: string) => writeFileSync(join(dir, 'Dockerfile'), df);
  return { dir, store, build, edit };
}

const cachedCount = (s: string) => (s.match(/ CACHED\n/g) ?? []).length;

describe('cache keys', () => {
  it('recipe is versioned and order-independent over inputs', () => {
    const a = computeKey('p', { x: '1', y: '2' });
    expect(a).toMatch(/^v2:sha256:[0-9a-f]{64}$/);
    expect(computeKey('p', { y: '2', x: '1' })).toBe(a);
    expect(computeKey('q', { x: '1', y: '2' })).not.toBe(a);
    expect(normalizeText('COPY   a\t b  "x  y"')).toBe('COPY a b "x  y"');
  });

  it('a comment or whitespace edit hits; a mode change misses with the reason', async () => {
    const t = setup('FROM scratch\nCOPY app.sh /app/\n', { 'app.sh': 'echo\n' });
    expect((await t.build()).code).toBe(0);
    t.edit('# a comment\nFROM   scratch\n\nCOPY   app.sh   /app/\n');
    // The line moved, but the key is the same: a hit.
    let r = await t.build();
    expect(r.code).toBe(0);
    expect(cachedCount(r.stderr)).toBe(1);
    chmodSync(join(t.dir, 'app.sh'), 0o755);
    r = await t.build();
    expect(r.stderr).toMatch(/cache miss: file app.sh changed \(mode 0644 → 0755\)/);
    expect(cachedCount(r.stderr)).toBe(0);
  });

  it('touching a file (mtime only) still hits; content change misses naming the file', async () => {
    const t = setup('FROM scratch\nCOPY src /src\n', { 'src/app.ts': 'v1', 'src/other.ts': 'o' });
    expect((await t.build()).code).toBe(0);
    utimesSync(join(t.dir, 'src/app.ts'), new Date(), new Date(Date.now() + 5000));
    let r = await t.build();
    expect(cachedCount(r.stderr)).toBe(1);
    writeFileSync(join(t.dir, 'src/app.ts'), 'v2');
    r = await t.build();
    expect(r.stderr).toContain('cache miss: file src/app.ts changed');
    expect(r.stderr).not.toContain('src/other.ts');
    writeFileSync(join(t.dir, 'src/new.ts'), 'n');
    r = await t.build();
    expect(r.stderr).toContain('cache miss: file src/new.ts added');
  });

  it('an unrelated ARG does not change keys; a used one does and is named', async () => {
    const t = setup('FROM scratch\nARG VERSION=1.2\nARG OTHER=x\nCOPY f /v/$VERSION/\n', { f: 'f' });
    expect((await t.build()).code).toBe(0);
    let r = await t.build('--build-arg', 'OTHER=y');
    expect(cachedCount(r.stderr)).toBe(1);
    r = await t.build('--build-arg', 'VERSION=1.3');
    expect(r.stderr).toContain('cache miss: ARG VERSION 1.2 → 1.3');
    r = await cli(['build', t.dir, '-t', 'c:1', '--store', t.store, '--progress', 'plain', '--build-arg', 'VERSION=1.3', '--explain']);
    expect(r.stdout).toMatch(/HIT  line 4: \[2\/2\] COPY f \/v\/\$VERSION\//);
  });

  it('instruction text changes are named; --no-cache rebuilds; cache why explains without building', async () => {
    const t = setup('FROM scratch\nCOPY f /a\n', { f: 'f' });
    expect((await t.build()).code).toBe(0);
    t.edit('FROM scratch\nCOPY f /b\n');
    // `tsbuild cache why` (the command module; `cache` routes `why` to it).
    const why = await cacheWhy([t.dir, '-t', 'c:1', '--store', t.store]);
    expect(why.code).toBe(0);
    expect(why.stdout).toContain('MISS line 2: [2/2] COPY f /b');
    expect(why.stdout).toContain('instruction text changed');
    const r = await t.build();
    expect(r.stderr).toContain('cache miss: instruction text changed');
    const r2 = await t.build('--no-cache');
    expect(cachedCount(r2.stderr)).toBe(0);
    expect(r2.stderr).toContain('cache miss: --no-cache');
  });

  it('explains a changed parent step', () => {
    expect(explainMiss({ op: 'COPY', instruction: 'x' }, 'p2', { inputs: { op: 'COPY', instruction: 'x' }, parent: 'p1' })).toEqual(['an earlier step changed']);
    expect(explainMiss({ base: 'sha256:' + 'b'.repeat(64) }, 'p', { inputs: { base: 'sha256:' + 'a'.repeat(64) }, parent: 'p' })[0]).toMatch(/^base image digest changed/);
  });

  it('--no-cache-filter rebuilds only that stage', async () => {
    const t = setup('FROM scratch AS a\nCOPY f /f\nFROM scratch\nCOPY --from=a /f /g\nCOPY f /h\n', { f: 'f' });
    expect((await t.build()).code).toBe(0);
    const r = await t.build('--no-cache-filter', 'a');
    expect(r.code).toBe(0);
    expect(cachedCount(r.stderr)).toBe(2);
  });

  it('the stat cache makes an unchanged rebuild read no file contents', async () => {
    const { BuildContext } = await import('../../src/plan/context.js');
    const dir = tmp();
    writeTree(dir, { a: 'a'.repeat(1000), 'b/c': 'c' });
    const past = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'a'), past, past); utimesSync(join(dir, 'b/c'), past, past);
    await new Promise((r) => setTimeout(r, 200)); // out of the racy window (ctime is "now")
    const sc = tmp();
    const c1 = BuildContext.open(dir, { statCacheDir: sc });
    await c1.digest('a'); await c1.digest('b/c');
    expect(c1.bytesHashed).toBe(1001);
    c1.saveStatCache();
    const c2 = BuildContext.open(dir, { statCacheDir: sc });
    expect(await c2.digest('a')).toBe(await c1.digest('a'));
    await c2.digest('b/c');
    expect(c2.bytesHashed).toBe(0);
    writeFileSync(join(dir, 'a'), 'changed');
    await new Promise((r) => setTimeout(r, 200));
    const c3 = BuildContext.open(dir, { statCacheDir: sc });
    expect(await c3.digest('a')).not.toBe(await c1.digest('a'));
    expect(c3.bytesHashed).toBe(7);
  });

  it('a cold COPY of large files (hashed while written) gives the same image and keys as a warm one', async () => {
    const { randomBytes } = await import('node:crypto');
    const t = setup('FROM scratch\nCOPY . /data\n');
    writeFileSync(join(t.dir, 'big1.bin'), randomBytes(9 << 20));
    writeFileSync(join(t.dir, 'big2.bin'), randomBytes(9 << 20));
    await new Promise((r) => setTimeout(r, 200));
    const cold = await cli(['build', t.dir, '-t', 'c:1', '--store', t.store, '-q']);
    expect(cold.code, cold.stderr).toBe(0);
    // Warm stat cache, no layer cache: the plain path.
    const warm = await cli(['build', t.dir, '-t', 'c:1', '--store', t.store, '-q', '--no-cache']);
    expect(warm.stdout).toBe(cold.stdout);
    const hit = await t.build();
    expect(cachedCount(hit.stderr)).toBe(1);
    // A fresh store (cold again) agrees too.
    const other = await cli(['build', t.dir, '-t', 'c:1', '--store', tmp('tsb-store-'), '-q']);
    expect(other.stdout).toBe(cold.stdout);
  });
});

describe('miss explanations name the cause', () => {
  it('a changed ENV above, a changed base stage, and the first changed step', async () => {
    const t = setup('FROM scratch AS base\nCOPY b /b\nFROM base\nENV X=1\nCOPY f /f\nCOPY g /g\n', { b: 'b', f: 'f', g: 'g' });
    expect((await t.build()).code).toBe(0);
    t.edit('FROM scratch AS base\nCOPY b /b\nFROM base\nENV X=2\nCOPY f /f\nCOPY g /g\n');
    let r = await t.build();
    expect(r.stderr).toContain('cache miss: instruction above changed: ENV X=1 → ENV X=2');
    expect(r.stderr).toMatch(/cache miss: an earlier step changed \(line 5: instruction above changed/);
    writeFileSync(join(t.dir, 'b'), 'b2');
    r = await t.build();
    expect(r.stderr).toContain('cache miss: file b changed');
    expect(r.stderr).toMatch(/#4 cache miss: base stage 0 changed/);
  });
});

describe('large contexts', () => {
  it('keeps cache records small (file lists in a side file) and still names the changed file', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 300; i++) files[`src/f${i}.txt`] = `f${i}`;
    const t = setup('FROM scratch\nCOPY src /src\n', files);
    expect((await t.build()).code).toBe(0);
    const { readFileSync, readdirSync } = await import('node:fs');
    // Whatever files the store keeps its cache index in, together they stay small.
    const cacheDir = join(t.store, 'tsbuild/v1/cache');
    const total = readdirSync(cacheDir).reduce((n, f) => n + readFileSync(join(cacheDir, f)).length, 0);
    expect(total).toBeGreaterThan(0);
    expect(total).toBeLessThan(4000);
    expect(readdirSync(join(t.store, 'tsbuild/inputs/v1')).length).toBe(1);
    writeFileSync(join(t.dir, 'src/f123.txt'), 'changed');
    const r = await t.build();
    expect(r.stderr).toContain('cache miss: file src/f123.txt changed');
    expect(r.stderr).not.toContain('pruned');
  });
});
