/**
 * bin/tsbuild.js is both a shell launcher (run as the `tsbuild` command: package.json "bin", linked
 * by npm as a symlink) and an ES module (`node bin/tsbuild.js`, the README's quick start). Both
 * must behave the same; the launcher keeps NODE_EXTRA_CA_CERTS out of Node's start-up and the
 * registry client trusts that file itself.
 */
import { describe, it, expect, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { trustedCAs } from '../../src/oci/http.js';

const repo = resolve(__dirname, '..', '..');
const bin = join(repo, 'bin', 'tsbuild.js');
const built = existsSync(join(repo, 'dist', 'src', 'cli', 'main.js'));

describe('bin/tsbuild.js as a command and as a module', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsb-launcher-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const env = { ...process.env, TSBUILD_FASTLOAD_DIR: join(dir, 'fastload') };

  it.skipIf(!built)('gives the same output run directly, through a symlink, and by node', () => {
    const link = join(dir, 'tsbuild');
    symlinkSync(bin, link);
    const store = join(dir, 'store');
    for (const args of [['--version'], ['help', 'images'], ['images', '--store', store], ['--store', store, 'images', '-q'], ['nope-command']]) {
      const byNode = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env, cwd: dir });
      for (const cmd of [bin, link]) {
        const r = spawnSync(cmd, args, { encoding: 'utf8', env, cwd: dir });
        expect({ args, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ args, status: byNode.status, stdout: byNode.stdout, stderr: byNode.stderr });
      }
    }
  });

  it.skipIf(!built)('run as a command, Node does not load NODE_EXTRA_CA_CERTS at start-up (node bin/tsbuild.js does)', () => {
    // Node warns on stderr when the file it loads at start-up is unreadable: the warning shows
    // whether Node itself parsed the variable.
    const e = { ...env, NODE_EXTRA_CA_CERTS: join(dir, 'no-such-bundle.pem') };
    const byNode = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8', env: e });
    expect(byNode.stderr).toMatch(/no-such-bundle\.pem/);
    const cmd = spawnSync(bin, ['--version'], { encoding: 'utf8', env: e });
    expect(cmd.status).toBe(0);
    expect(cmd.stdout).toMatch(/^tsbuild /);
    expect(cmd.stderr).toBe('');
  });

  it.skipIf(!built)('ends quietly, as killed by SIGPIPE, when the reader of its output goes away', () => {
    // More output than a pipe holds (64 KiB), so the writer surely meets the closed pipe.
    const df = join(dir, 'Dockerfile.big');
    writeFileSync(df, 'FROM scratch\n' + Array.from({ length: 3000 }, (_, i) => `LABEL k${i}="value number ${i}"\n`).join(''));
    const r = spawnSync('bash', ['-c', 'set -o pipefail; "$0" debug parse "$1" | true', bin, df], { encoding: 'utf8', env });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(141);
  });

  it.skipIf(!built)('results and plain progress go straight to the fd: the same bytes through pipes, into files, and in process', async () => {
    const ctx = join(dir, 'printctx');
    rmSync(ctx, { recursive: true, force: true });
    const { mkdirSync } = await import('node:fs');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'f'), 'f');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\nARG UNUSED\nCOPY f /f\n');
    const store = join(dir, 'printstore');
    const argv = ['build', ctx, '-t', 'p:1', '--store', store, '--build-arg', 'NOPE=1'];
    const { runMain } = await import('../helpers/cli.js');
    expect((await runMain([...argv, '--progress', 'plain'])).code).toBe(0); // then every build below is a no-op
    const piped = spawnSync(bin, [...argv, '--progress', 'plain'], { encoding: 'utf8', env });
    expect(piped.status, piped.stderr).toBe(0);
    const q = spawnSync(bin, [...argv, '-q'], { encoding: 'utf8', env });
    expect(q.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const files = spawnSync('bash', ['-c', '"$0" "$@" --progress plain >"$OUT" 2>"$ERR"', bin, ...argv],
      { encoding: 'utf8', env: { ...env, OUT: join(dir, 'out.txt'), ERR: join(dir, 'err.txt') } });
    expect(files.status).toBe(0);
    const inProcess = await runMain([...argv, '--progress', 'plain']);
    const norm = (t: string) => t.replace(/DONE \d+\.\d+s/g, 'DONE');
    expect(norm(piped.stderr)).toBe(norm(inProcess.stderr));
    expect(norm(readFileSync(join(dir, 'err.txt'), 'utf8'))).toBe(norm(inProcess.stderr));
    expect(piped.stderr).toContain('[Warning]');
    expect(piped.stderr).toMatch(/#2 CACHED\n/);
    expect(piped.stdout + readFileSync(join(dir, 'out.txt'), 'utf8')).toBe('');
  });

  it.skipIf(!built)('a listing whose reader goes away ends quietly, as killed by SIGPIPE', async () => {
    const { openStore } = await import('../../store/index.js');
    const { makeImage } = await import('../store/image.js');
    const store = join(dir, 'liststore');
    const s = await openStore(store);
    const img = await makeImage(s, undefined, [{ a: '1' }]);
    await s.refs.setMany(Array.from({ length: 2000 }, (_, i) => ({ name: `registry.example.com/team/app${i}:v${i}`, descriptor: img.manifest })));
    await s.close();
    const r = spawnSync('bash', ['-c', 'set -o pipefail; "$0" images --store "$1" | head -c 10 >/dev/null', bin, store], { encoding: 'utf8', env });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(141);
    const all = spawnSync(bin, ['images', '--store', store], { encoding: 'utf8', env, maxBuffer: 1 << 24 });
    expect(all.stdout.split('\n').length).toBe(2002);
  });

  it('the registry client trusts the NODE_EXTRA_CA_CERTS file itself', () => {
    const pem = join(dir, 'extra.pem');
    const text = '-----BEGIN CERTIFICATE-----\nTSBUILD-TEST-MARKER\n-----END CERTIFICATE-----\n';
    writeFileSync(pem, text);
    expect(trustedCAs({ NODE_EXTRA_CA_CERTS: pem })).toContain(text);
    expect(trustedCAs({})).not.toContain(text);
    // Unreadable: ignored, as Node ignores it (with a warning).
    expect(trustedCAs({ NODE_EXTRA_CA_CERTS: join(dir, 'missing.pem') }).length).toBe(trustedCAs({}).length);
    expect(readFileSync(pem, 'utf8')).toBe(text);
  });
});
