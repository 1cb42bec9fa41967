/**
 * The README's examples, run as a user runs them (bin/tsbuild.js from dist/, which `npm test`
 * builds first), each against its own store.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { busyboxMissing } from '../helpers/busybox.js';
import { tmp } from './helpers.js';

const built = existsSync('dist/src/cli/main.js') ? undefined : 'dist/ is missing (npm run build)';
const sh = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, SOURCE_DATE_EPOCH: '' } });

describe.skipIf(!!built)('README examples', () => {
  it('examples/hello builds and lists', () => {
    const store = tmp('tsb-ex-');
    const b = sh('node', ['bin/tsbuild.js', 'examples/hello', '-t', 'hello:1', '--progress', 'plain', '--store', store]);
    expect(b.status, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/writing image sha256:[0-9a-f]{64} naming to docker\.io\/library\/hello:1 done/);
    const ls = sh('node', ['bin/tsbuild.js', 'images', '--store', store]);
    expect(ls.stdout).toMatch(/hello\s+1\s/);
  });

  it.skipIf(!!busyboxMissing())('examples/busybox-app: make-base.sh, build with RUN, run', () => {
    const store = tmp('tsb-ex-');
    const base = sh('sh', ['examples/busybox-app/make-base.sh', '--store', store]);
    expect(base.status, base.stderr).toBe(0);
    const b = sh('node', ['bin/tsbuild.js', 'examples/busybox-app', '-t', 'app:1', '--store', store, '--progress', 'plain']);
    expect(b.status, b.stderr).toBe(0);
    expect(b.stderr).toMatch(/RUN chmod 0755 app\.sh/);
    const r = sh('node', ['bin/tsbuild.js', 'run', '--store', store, 'app:1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^hello from a RUN \(running as nobody in \S+\)\n$/);
  });
});
