/**
 * Compiles store/ and the test worker to a temp directory so child processes run plain node
 * (tests run from TS source; a child cannot). node_modules is linked in for lru-cache/tar-stream.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..', '..');

export async function buildWorker(): Promise<{ worker: string; cleanup: () => Promise<void> }> {
  const out = await mkdtemp(join(tmpdir(), 'tsb-worker-'));
  await symlink(join(repo, 'node_modules'), join(out, 'node_modules'));
  await import('node:fs/promises').then((fs) => fs.writeFile(join(out, 'package.json'), '{"type":"module"}'));
  execFileSync(join(repo, 'node_modules', '.bin', 'tsc'), [
    '--ignoreConfig', '--outDir', out, '--rootDir', repo, '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
    '--skipLibCheck', '--types', 'node', '--noCheck',
    join(repo, 'store', 'index.ts'), join(repo, 'test', 'store', 'worker.ts'),
  ], { cwd: repo, stdio: 'pipe' });
  return { worker: join(out, 'test', 'store', 'worker.js'), cleanup: () => rm(out, { recursive: true, force: true }) };
}
