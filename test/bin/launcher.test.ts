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
