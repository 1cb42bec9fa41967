/** `tsbuild run`: an image from a real store, run in the sandbox, exit status passed through. */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../../store/index.js';
import { main } from '../../../src/cli/main.js';
import type { CliContext } from '../../../src/cli/command.js';
import { layerDescriptor, writeImage } from '../../../src/oci/image.js';
import { busyboxRootfsTar } from '../../helpers/busybox.js';
import { scratchDir, skipReason } from './helpers.js';

let storeDir = '';

async function tsbuild(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (b) => { stdout += b; });
  err.on('data', (b) => { stderr += b; });
  const ctx: CliContext = { stdout: out, stderr: err, stdin: new PassThrough(), env, cwd: process.cwd(), signal: new AbortController().signal };
  const code = await main(['--store', storeDir, ...argv], ctx);
  return { code, stdout, stderr };
}

describe.skipIf(skipReason !== undefined)('tsbuild run', () => {
  beforeAll(async () => {
    storeDir = join(scratchDir(), 'store');
    const store = await openStore(storeDir);
    const tar = readFileSync(await busyboxRootfsTar());
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    await store.blobs.put(tar);
    const desc = await writeImage(store, {
      config: {
        architecture: 'amd64', os: 'linux',
        config: { Env: ['PATH=/bin', 'GREETING=hello'], Cmd: ['sh', '-c', 'echo $GREETING from $(id -un) in $(pwd)'], WorkingDir: '/home/app', User: 'app' },
        rootfs: { type: 'layers', diff_ids: [diffId] },
      },
      layers: [layerDescriptor(diffId, tar.length)],
    });
    await store.refs.set('bb:1', desc);
    await store.close();
  });

  it('runs the image\'s CMD with its Env, User and WorkingDir', async () => {
    const r = await tsbuild(['run', '--rm', 'bb:1']);
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, stdout: 'hello from app in /home/app\n' });
  });

  it('passes the exit status through; -e, -w, -u, --network none, -v', async () => {
    const host = scratchDir();
    writeFileSync(join(host, 'in'), 'from-host');
    mkdirSync(join(host, 'out'));
    const r = await tsbuild(['run', '-e', 'GREETING=hi', '-e', 'FROMHOST', '-w', '/tmp', '-u', '0', '--network', 'none',
      '-v', `${host}:/mnt:ro`, '-v', `${join(host, 'out')}:/out`, 'bb:1', '--',
      'sh', '-c', 'echo $GREETING $FROMHOST $(pwd) $(id -u); cat /mnt/in; echo; ls /sys/class/net; echo w > /out/w; touch /mnt/x || exit 7'], { FROMHOST: 'yes' });
    expect(r.stdout).toBe('hi yes /tmp 0\nfrom-host\nlo\n');
    expect(r.code).toBe(7);
    expect(readFileSync(join(host, 'out', 'w'), 'utf8')).toBe('w\n');
  });

  it('provides /etc/hostname as docker run does (a build RUN does not)', async () => {
    const r = await tsbuild(['run', '--rm', '--hostname', 'box1', 'bb:1', 'cat', '/etc/hostname']);
    expect(r.stderr).toBe('');
    expect(r).toMatchObject({ code: 0, stdout: 'box1\n' });
  });

  it('127 for a missing command, a clear error for a missing image, nothing left in the store\'s tmp', async () => {
    const nf = await tsbuild(['run', 'bb:1', 'nosuch']);
    expect(nf.code).toBe(127);
    expect(nf.stderr).toMatch(/executable file not found in \$PATH/);
    const mi = await tsbuild(['run', 'nope:1', 'true']);
    expect(mi.code).not.toBe(0);
    expect(mi.stderr).toMatch(/TSB6104/);
    const tmp = readdirSync(storeDir, { recursive: true }).map(String).filter((p) => /(^|\/)tmp\/.+/.test(p));
    expect(tmp).toEqual([]);
  });
});
