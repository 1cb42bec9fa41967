/** Test helpers for the sandbox tests: fresh upper/work dirs, a run() that collects output. */
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { transformWithOxc } from 'vite';
import { afterAll } from 'vitest';
import { runSandbox, sandboxUnavailable, type SandboxResult, type SandboxSpec } from '../../../src/exec/sandbox/index.js';
import { busyboxMissing, busyboxRootfs } from '../../helpers/busybox.js';

export const skipReason = sandboxUnavailable() ?? busyboxMissing();
if (skipReason) console.warn(`sandbox tests skipped: ${skipReason}`);

const made: string[] = [];
afterAll(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

export function scratchDir(prefix = 'tsb-sbx-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
}

/** A fresh upper + work dir pair on the same filesystem. */
export function freshUpper(): { upperdir: string; workdir: string; base: string } {
  const base = scratchDir();
  mkdirSync(join(base, 'u'));
  mkdirSync(join(base, 'w'));
  return { upperdir: join(base, 'u'), workdir: join(base, 'w'), base };
}

export interface Ran extends SandboxResult { stdout: string; stderr: string; upperdir: string }

/** Run `sh -c script` over the busybox rootfs (plus extra lowers on top) with a fresh upper. */
export async function sh(script: string, opts: Partial<SandboxSpec> & { lowers?: string[] } = {}): Promise<Ran> {
  const bb = await busyboxRootfs();
  const up = freshUpper();
  let stdout = '';
  let stderr = '';
  const { lowers, ...rest } = opts;
  const r = await runSandbox({
    root: { lowerdirs: [bb, ...(lowers ?? [])], upperdir: up.upperdir, workdir: up.workdir },
    argv: ['/bin/sh', '-c', script],
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    onStdout: (b) => { stdout += b.toString(); },
    onStderr: (b) => { stderr += b.toString(); },
    ...rest,
  });
  return { ...r, stdout, stderr, upperdir: up.upperdir };
}

/** Every path in a tree, relative, sorted, with a type letter: `d etc`, `f etc/passwd`, `c etc/group` (whiteout). */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, r));
      const t = st.isDirectory() ? 'd' : st.isFile() ? 'f' : st.isSymbolicLink() ? 'l' : st.isCharacterDevice() ? 'c' : '?';
      out.push(`${t} ${r}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/**
 * The sandbox modules transpiled to plain JS under node_modules/.cache/NAME, so a test can run
 * them in a separate Node process (to SIGKILL it, or to see that it exits). Returns the directory;
 * `src/exec/sandbox/index.js` inside it is the entry.
 */
export async function transpiledSandbox(name: string): Promise<string> {
  const repo = join(dirname(new URL(import.meta.url).pathname), '..', '..', '..');
  const out = join(repo, 'node_modules', '.cache', name);
  const files = ['src/errors.ts', 'store/errors.ts', ...readdirSync(join(repo, 'src/exec/sandbox')).filter((f) => f.endsWith('.ts')).map((f) => `src/exec/sandbox/${f}`)];
  for (const f of files) {
    const res = await transformWithOxc(readFileSync(join(repo, f), 'utf8'), f, { lang: 'ts' });
    mkdirSync(dirname(join(out, f)), { recursive: true });
    writeFileSync(join(out, f.replace(/\.ts$/, '.js')), res.code);
  }
  writeFileSync(join(out, 'package.json'), '{"type":"module"}');
  return out;
}
