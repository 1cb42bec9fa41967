/** The OCI commands end to end, through the real CLI dispatcher (in process). */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runMain } from '../helpers/cli.js';
import { openStore } from '../../store/index.js';
import { readImage } from '../../src/oci/image.js';
import { busyboxMissing, busyboxRootfsTar } from '../helpers/busybox.js';
import { registryMissing, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { tempStore, type TempStore } from './fixtures.js';

let t: TempStore;
beforeAll(async () => { t = await tempStore(); });
afterAll(async () => { await t.cleanup(); });

async function cli(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const r = await runMain(['--store', t.root, ...argv], { stdin, cwd: t.dir, env: { ...process.env, HOME: t.dir, DOCKER_CONFIG: join(t.dir, 'docker') } });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

const bbMissing = busyboxMissing();

describe('import / save / load', () => {
  it.skipIf(!!bbMissing)('imports a busybox rootfs with --change, saves it, loads it elsewhere', async () => {
    const tarPath = await busyboxRootfsTar();
    const r = await cli(['import', tarPath, 'bb:imp', '--change', 'CMD ["/bin/sh", "-c", "echo hi"]', '--change', 'ENV A=1 B=$A-2', '--change', 'ENV C=$A-3',
      '--change', 'EXPOSE 8080 53/udp', '--change', 'WORKDIR /srv', '--change', 'LABEL x=y', '-m', 'imported for test']);
    expect(r.err + r.out).toMatch(/sha256:/);
    expect(r.code).toBe(0);
    await t.store.close();
    const s = await openStore(t.root);
    const im = await readImage(s, 'bb:imp');
    await s.close();
    t.store = await openStore(t.root);
    expect(im.config.config).toMatchObject({ Cmd: ['/bin/sh', '-c', 'echo hi'], Env: ['A=1', 'B=-2', 'C=1-3'], ExposedPorts: { '8080/tcp': {}, '53/udp': {} }, WorkingDir: '/srv', Labels: { x: 'y' } });
    expect(im.config.history?.[0]?.comment).toBe('imported for test');
    const ociOut = join(t.dir, 'bb-oci.tar');
    expect((await cli(['save', 'bb:imp', '-o', ociOut, '--format', 'oci'])).code).toBe(0);
    if (spawnSync('sh', ['-c', 'command -v skopeo']).status === 0) {
      const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${ociOut}:imp`], { encoding: 'utf8' }));
      expect(info.Env).toEqual(['A=1', 'B=-2', 'C=1-3']);
    }
    const dockerOut = join(t.dir, 'bb-docker.tar');
    expect((await cli(['save', 'bb:imp', '-o', dockerOut])).code).toBe(0);
    expect(execFileSync('tar', ['-tf', dockerOut], { encoding: 'utf8' })).toContain('manifest.json');
    const t2 = await tempStore();
    try {
      const { code, stdout: out } = await runMain(['--store', t2.root, 'load', '-i', dockerOut], { cwd: t.dir });
      expect(code).toBe(0);
      expect(out).toBe('Loaded image: bb:imp\n');
    } finally { await t2.cleanup(); }
  });

  it('rejects a disallowed --change and a bad --format with coded errors', async () => {
    writeFileSync(join(t.dir, 'empty.tar'), Buffer.alloc(1024));
    const r = await cli(['import', join(t.dir, 'empty.tar'), 'x:1', '--change', 'RUN echo no']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('TSB6124');
    const s = await cli(['save', 'x:1', '--format', 'tarball', '-o', join(t.dir, 'x.tar')]);
    expect(s.code).toBe(2);
    expect(s.err).toContain('TSB0001');
    const l = await cli(['load', '-i', join(t.dir, 'does-not-exist.tar')]);
    expect(l.err).toContain('TSB6120');
  });
});

const regMissing = registryMissing('basic');
describe.skipIf(!!regMissing)('login / push / pull / logout', () => {
  let reg: TestRegistry;
  beforeAll(async () => { reg = await startRegistry({ auth: 'basic' }); });
  afterAll(async () => { await reg?.stop(); });

  it('logs in (checked against the registry), pushes, pulls, logs out', async () => {
    const bad = await cli(['login', reg.host, '-u', reg.username, '--password-stdin'], 'wrong\n');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('TSB6140');
    const ok = await cli(['login', reg.host, '-u', reg.username, '--password-stdin'], `${reg.password}\n`);
    expect(ok.out).toContain('Login Succeeded');
    const cfg = JSON.parse(readFileSync(join(t.dir, 'docker', 'config.json'), 'utf8'));
    expect(Buffer.from(cfg.auths[reg.host].auth, 'base64').toString()).toBe(`${reg.username}:${reg.password}`);
    writeFileSync(join(t.dir, 'one.tar'), execFileSync('tar', ['-cf', '-', '-C', t.dir, 'empty.tar']));
    expect((await cli(['import', join(t.dir, 'one.tar'), `${reg.host}/cli/img:1`])).code).toBe(0);
    const push = await cli(['push', `${reg.host}/cli/img:1`]);
    expect(push.err).toBe('');
    expect(push.out).toMatch(/Pushed 127\.0\.0\.1:\d+\/cli\/img:1: digest: sha256:[a-f0-9]{64} \(2 uploaded/);
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(push.out)![1];
    const pull = await cli(['pull', `${reg.host}/cli/img:1`]);
    expect(pull.out).toContain(`Digest: ${digest}`);
    const out = await cli(['logout', reg.host]);
    expect(out.out).toContain('Removing login credentials');
    const denied = await cli(['pull', `${reg.host}/cli/img:1`]);
    expect(denied.err).toContain('TSB6140');
    expect(denied.code).toBe(1);
  });
});
