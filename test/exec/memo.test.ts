/**
 * The build memo (src/exec/memo.ts): an unchanged rebuild is answered from it, with the output of
 * a full no-op; anything the build read that changes makes the next build run in full and give
 * what a build without the memo gives. TSBUILD_MEMO_TRACE=1 says which path a build took.
 */
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, readImageFromStore, tmp, writeTree } from '../build/helpers.js';
import { memoPath, memoRequest } from '../../src/exec/memo.js';

// Files changed less than 100 ms before a build are "racy": the build leaves no memo. Tests wait
// past that window after each change so the next build may leave one.
const settle = () => new Promise((r) => setTimeout(r, 150));

const USED = 'tsbuild memo: used';

function setup(dockerfile: string, files: Record<string, string | null> = {}) {
  const dir = tmp();
  writeTree(dir, { Dockerfile: dockerfile, ...files });
  const store = tmp('tsb-store-');
  const args = (extra: string[]) => ['build', dir, '-t', 'm:1', '--store', store, ...extra];
  /** A build with the memo; `trace` is what it said about the memo. */
  const build = async (extra: string[] = [], env: NodeJS.ProcessEnv = {}) => {
    const r = await cli(args(['--progress', 'plain', ...extra]), { env: { TSBUILD_MEMO_TRACE: '1', ...env } });
    const trace = r.stderr.split('\n').filter((l) => l.startsWith('tsbuild memo: ')).join('\n');
    const plain = r.stderr.split('\n').filter((l) => !l.startsWith('tsbuild memo: ')).join('\n');
    return { ...r, trace, plain, used: trace.includes(USED) };
  };
  /** The image id a build without the memo gives now. */
  const truth = async (extra: string[] = [], env: NodeJS.ProcessEnv = {}) => {
    const r = await cli(args(['--progress', 'quiet', ...extra]), { env: { TSBUILD_MEMO: '0', ...env } });
    expect(r.code, r.stderr).toBe(0);
    return r.stdout.trim();
  };
  const digest = async (extra: string[] = [], env: NodeJS.ProcessEnv = {}) => {
    const r = await cli(args(['--progress', 'quiet', ...extra]), { env: { TSBUILD_MEMO_TRACE: '1', ...env } });
    expect(r.code, r.stderr).toBe(0);
    return { id: r.stdout.trim(), used: r.stderr.includes(USED), trace: r.stderr };
  };
  /** Build until a memo is left (the first build of fresh files is racy), then check it is used. */
  const primed = async (extra: string[] = [], env: NodeJS.ProcessEnv = {}) => {
    await settle();
    const first = await build(extra, env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.trace).toContain('tsbuild memo: written');
    const again = await build(extra, env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.trace).toContain(USED);
    return again;
  };
  return { dir, store, build, truth, digest, primed };
}

const withoutTimes = (s: string) => s.replace(/DONE \d+\.\d+s/g, 'DONE');

describe('build memo', () => {
  it('an unchanged rebuild is answered from the memo with what a full no-op build prints', async () => {
    const t = setup('FROM scratch\nARG UNUSED_HERE\nENV A=1\nCOPY src /src\nWORKDIR /w\nCOPY f /f\n', { 'src/a.txt': 'a', 'src/b/c.txt': 'c', f: 'f' });
    const memo = await t.primed(['--build-arg', 'NOPE=1']);
    const full = await cli(['build', t.dir, '-t', 'm:1', '--store', t.store, '--progress', 'plain', '--build-arg', 'NOPE=1'], { env: { TSBUILD_MEMO: '0' } });
    expect(full.code).toBe(0);
    // The same step lines (CACHED), the same warning, the same closing line.
    expect(withoutTimes(memo.plain)).toBe(withoutTimes(full.stderr));
    expect(memo.plain).toMatch(/#\d+ CACHED/);
    expect(memo.plain).toContain('NOPE');
    // The same image, and --iidfile, --explain and quiet output as a full build.
    const iid = join(t.dir, '..', `iid-${Date.now()}`);
    const m = await cli(['build', t.dir, '-t', 'm:1', '--store', t.store, '-q', '--build-arg', 'NOPE=1', '--iidfile', iid, '--explain'], { env: { TSBUILD_MEMO_TRACE: '1' } });
    const f = await cli(['build', t.dir, '-t', 'm:1', '--store', t.store, '-q', '--build-arg', 'NOPE=1', '--explain'], { env: { TSBUILD_MEMO: '0' } });
    expect(m.stderr).toContain(USED);
    expect(m.stdout).toBe(f.stdout);
    expect(m.stdout).toMatch(/HIT  line 4: \[2\/4\] COPY src \/src/);
    expect(readFileSync(iid, 'utf8')).toBe(f.stdout.trim().split('\n').pop());
    rmSync(iid);
  });

  it('is left and used when nothing traces it (the trace is off by default)', async () => {
    const t = setup('FROM scratch\nCOPY f /f\n', { f: 'f' });
    await settle();
    const quiet = () => cli(['build', t.dir, '-t', 'm:1', '--store', t.store, '-q'], { env: { TSBUILD_MEMO_TRACE: undefined } });
    const first = await quiet();
    expect(first.code).toBe(0);
    expect(first.stderr).toBe('');
    const memos = readdirSync(join(t.store, 'tsbuild', 'memo', 'v1')).filter((n) => n.endsWith('.json'));
    expect(memos).toHaveLength(1);
    expect((await t.digest()).used).toBe(true);
  });

  it('every context change the build could read makes the next build run in full, with its result', async () => {
    const t = setup('FROM scratch\nCOPY . /app\n', { 'a.txt': 'one', 'sub/b.txt': 'bbb', '.dockerignore': 'ignored/\n', 'ignored/x': 'x' });
    await t.primed();
    const changes: [string, () => void][] = [
      // Same size and mtime put back: only ctime and the bytes differ.
      ['content, same size and mtime', () => { const p = join(t.dir, 'a.txt'); writeFileSync(p, 'two'); utimesSync(p, new Date(1e12), new Date(1e12)); }],
      ['mode', () => chmodSync(join(t.dir, 'sub/b.txt'), 0o600)],
      ['a new file', () => writeFileSync(join(t.dir, 'sub/new.txt'), 'n')],
      ['a removed file', () => unlinkSync(join(t.dir, 'sub/new.txt'))],
      ['a symlink', () => symlinkSync('a.txt', join(t.dir, 'link'))],
      ['a symlink retargeted', () => { unlinkSync(join(t.dir, 'link')); symlinkSync('sub/b.txt', join(t.dir, 'link')); }],
      ['the Dockerfile', () => writeFileSync(join(t.dir, 'Dockerfile'), 'FROM scratch\nCOPY . /app/\n')],
      ['.dockerignore letting a file in', () => writeFileSync(join(t.dir, '.dockerignore'), '')],
    ];
    for (const [what, change] of changes) {
      change();
      await settle();
      const r = await t.digest();
      expect(r.used, `${what}: ${r.trace}`).toBe(false);
      expect(r.id, what).toBe(await t.truth());
      // And the full build left a memo for the new state.
      expect((await t.digest()).used, what).toBe(true);
    }
    // A change inside an ignored directory is not part of the build: the memo stays valid.
    writeFileSync(join(t.dir, '.dockerignore'), 'ignored/\n');
    await settle();
    await t.digest();
    expect((await t.digest()).used).toBe(true);
    writeFileSync(join(t.dir, 'ignored/x'), 'changed, same size');
    await settle();
    expect((await t.digest()).used).toBe(true);
  });

  it('flags and their environment values are part of the request', async () => {
    const t = setup('FROM scratch\nARG V=1\nARG W\nCOPY f /v$V$W\n', { f: 'f' });
    await t.primed(['--build-arg', 'W']);
    const r = await t.digest(['--build-arg', 'W'], { W: 'fromenv' });
    expect(r.used).toBe(false);
    expect(r.id).toBe(await t.truth(['--build-arg', 'W'], { W: 'fromenv' }));
    expect((await t.digest(['--build-arg', 'V=2'])).used).toBe(false);
    expect((await t.digest(['--label', 'a=b'])).used).toBe(false);
    const e = await t.digest([], { SOURCE_DATE_EPOCH: '100' });
    expect(e.used).toBe(false);
    expect(e.id).toBe(await t.truth([], { SOURCE_DATE_EPOCH: '100' }));
    // Output-only flags are not: --progress/-q/--iidfile/--explain builds share a memo.
    expect((await t.digest(['--build-arg', 'W'])).used).toBe(true);
    expect(memoRequest({ a: 1, b: 2 })).toBe(memoRequest({ b: 2, a: 1 }));
    // The code's identity starts with the package version (npm installs share one file mtime).
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
    expect((JSON.parse(memoRequest({})) as { code: string }).code.startsWith(`${pkg.version}:`)).toBe(true);
    expect(memoPath('/s', 'x')).toMatch(/\/s\/tsbuild\/memo\/v1\/[0-9a-f]{64}\.json$/);
    expect(memoPath('/s', 'x')).not.toBe(memoPath('/s', 'y'));
  });

  it('store changes: a pruned cache, a moved base image and missing blobs make it run in full; moved tags are put back', async () => {
    const base = setup('FROM scratch\nCOPY f /f\n', { f: 'base one' });
    const t = setup('FROM base:1\nCOPY g /g\n', { g: 'g' });
    const store = t.store;
    const baseBuild = async (content: string) => {
      writeFileSync(join(base.dir, 'f'), content);
      const r = await cli(['build', base.dir, '-t', 'base:1', '--store', store, '-q']);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    await baseBuild('base one');
    await t.primed();
    // The base image moves: FROM gives another image, so the build must see it.
    await baseBuild('base two');
    await settle();
    let r = await t.digest();
    expect(r.used).toBe(false);
    expect(r.id).toBe(await t.truth());
    expect((await t.digest()).used).toBe(true);

    // Other builds tag other names in a shared store: the memo still holds (only its base's name counts).
    const other0 = setup('FROM scratch\nCOPY z /z\n', { z: 'z' });
    expect((await cli(['build', other0.dir, '-t', 'unrelated:1', '--store', store, '-q'])).code).toBe(0);
    r = await t.digest();
    expect(r.used, r.trace).toBe(true);
    expect(r.id).toBe(await t.truth());

    // A cache prune removes the steps' records: the next build runs them again, as in Docker.
    expect((await cli(['cache', 'prune', '--all', '--store', store])).code).toBe(0);
    r = await t.digest();
    expect(r.used).toBe(false);
    expect(r.trace).toContain('cache record');
    expect((await t.digest()).used).toBe(true);

    // The tag is moved elsewhere: a memo answer puts it back, like a full build (which tags).
    const u = setup('FROM scratch\nCOPY h /h\n', { h: 'h' });
    const other = await cli(['build', u.dir, '-t', 'other:1', '--store', store, '-q']);
    expect((await cli(['tag', 'other:1', 'm:1', '--store', store])).code).toBe(0);
    // The memo still holds (its base did not move) and puts the tag back, as a full build would.
    r = await t.digest();
    expect(r.used, r.trace).toBe(true);
    const tagged = readImageFromStore(store, 'm:1').manifestDigest;
    expect(tagged).toBe(r.id);
    expect(tagged).not.toBe(other.stdout.trim());
  });

  it('a build that uses no base image finds its tag moved and puts it back from the memo', async () => {
    const t = setup('FROM scratch\nCOPY f /f\n', { f: 'f' });
    await t.primed();
    const id = (await t.digest()).id;
    const u = setup('FROM scratch\nCOPY h /h\n', { h: 'h' });
    expect((await cli(['build', u.dir, '-t', 'm:1', '--store', t.store, '-q'])).code).toBe(0);
    const r = await t.digest();
    expect(r.used).toBe(true);
    expect(r.id).toBe(id);
    expect(readImageFromStore(t.store, 'm:1').manifestDigest).toBe(id);
  });

  it('an untagged image whose blobs gc removed is built again', async () => {
    const dir = tmp();
    writeTree(dir, { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'untagged' });
    const store = tmp('tsb-store-');
    const b = () => cli(['build', dir, '--store', store, '-q'], { env: { TSBUILD_MEMO_TRACE: '1' } });
    await settle();
    await b(); await b();
    const first = await b();
    expect(first.stderr).toContain(USED);
    // Nothing names the image, so a gc may take its manifest (the cache keeps the layer; gc's
    // grace period for new blobs would keep it in this test, so it is removed here as gc would).
    rmSync(join(store, 'blobs', 'sha256', first.stdout.trim().slice(7)));
    const r = await b();
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('is no longer in the store');
    const m = r.stdout.trim();
    expect(existsSync(join(store, 'blobs', 'sha256', m.slice(7)))).toBe(true);
  });

  it('is never used with --no-cache, --pull=always, stdin, or after ADD of a URL; not left by a racy build', async () => {
    const t = setup('FROM scratch\nCOPY f /f\n', { f: 'f' });
    await t.primed();
    for (const flags of [['--no-cache'], ['--no-cache-filter', '0'], ['--pull=always']]) {
      const r = await t.build(flags);
      expect(r.code, r.stderr).toBe(0);
      expect(r.used, flags.join(' ')).toBe(false);
    }
    const stdin = await cli(['build', '-', '-t', 'm:1', '--store', t.store, '-q'], { stdin: 'FROM scratch\nENV A=1\n', env: { TSBUILD_MEMO_TRACE: '1' } });
    expect(stdin.code).toBe(0);
    expect(stdin.stderr).toContain('not used for this build');

    // A file changed just before the build: no memo is left (a change in the same timestamp
    // granule could go unseen), and the next build runs in full.
    const racy = setup('FROM scratch\nCOPY f /f\n', { f: 'f' });
    await settle();
    await racy.build();
    writeFileSync(join(racy.dir, 'f'), 'g');
    const r1 = await racy.build();
    expect(r1.trace).toContain('not written: a context file changed less than 100 ms');
    expect((await racy.build()).used).toBe(false);
  });

  it('ADD of a URL leaves no memo (its content can change with nothing local changing)', async () => {
    const { createServer } = await import('node:http');
    let body = 'v1';
    const server = createServer((_q, res) => { res.end(body); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const t = setup(`FROM scratch\nADD http://127.0.0.1:${port}/x /x\n`);
      await settle();
      const a = await t.build();
      expect(a.code, a.stderr).toBe(0);
      expect(a.trace).toContain('not written: a step read a remote source');
      body = 'v2';
      const r = await t.digest();
      expect(r.used).toBe(false);
      expect(r.id).toBe(await t.truth());
    } finally {
      server.close();
    }
  });

  it('a damaged memo is a miss, never an error', async () => {
    const t = setup('FROM scratch\nCOPY f /f\n', { f: 'f' });
    await t.primed();
    const dir = join(t.store, 'tsbuild', 'memo', 'v1');
    const file = join(dir, readdirSync(dir).find((n) => n.endsWith('.json'))!);
    const good = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const truth = await t.truth();
    for (const bad of ['{"v":1', JSON.stringify({ ...good, image: null }), JSON.stringify({ ...good, steps: [{ id: 'x' }] }), JSON.stringify({ ...good, bases: 'k' }), JSON.stringify({ ...good, steps: [{ id: 1, name: 'x', status: 'cached' }] })]) {
      writeFileSync(file, bad);
      const r = await t.digest();
      expect(r.used).toBe(false);
      expect(r.id).toBe(truth);
    }
  });

  it('gc keeps a fresh memo and the memo area is a derived area', async () => {
    const t = setup('FROM scratch\nCOPY f /f\n', { f: 'f' });
    await t.primed();
    expect((await cli(['store', 'gc', '--store', t.store])).code).toBe(0);
    expect(readdirSync(join(t.store, 'tsbuild', 'memo', 'v1')).filter((n) => n.endsWith('.json'))).toHaveLength(1);
    expect((await t.digest()).used).toBe(true);
    const v = await cli(['store', 'verify', '--store', t.store]);
    expect(v.code, v.stdout + v.stderr).toBe(0);
  });
});
