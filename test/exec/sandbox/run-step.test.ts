/** runStep: what the build engine calls for a RUN (real sandbox, real overlay). */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runStep, runStepError } from '../../../src/exec/run-step.js';
import { busyboxRootfs } from '../../helpers/busybox.js';
import { listTree, scratchDir, skipReason } from './helpers.js';

describe.skipIf(skipReason !== undefined)('runStep', () => {
  it('runs over the snapshots, leaves only the command\'s changes in the upper dir, removes its work dir', async () => {
    const base = scratchDir();
    const upper = join(base, 'upper');
    mkdirSync(upper);
    const cache = join(base, 'cache'); mkdirSync(cache);
    const stageA = join(base, 'stageA'); mkdirSync(stageA); writeFileSync(join(stageA, 'artifact'), 'from-stage');
    const stageB = join(base, 'stageB'); mkdirSync(stageB); writeFileSync(join(stageB, 'other'), 'b');
    const secret = join(base, 'secret.txt'); writeFileSync(secret, 'hunter2');
    let out = '';
    const r = await runStep({
      lowerdirs: [await busyboxRootfs()], upperdir: upper,
      argv: ['/bin/sh', '-c', [
        'cp /src/artifact /app/copied', 'echo c >> cache/log', 'cat /run/secrets/pw > /dev/null',
        'echo tmp > /tmp/t/x', 'echo discard > /src/other', 'grep -c myhost /etc/hosts', 'pwd',
      ].join(' && ')],
      env: ['PATH=/bin'], cwd: '/app', user: '',
      mounts: [
        { type: 'bind', source: cache, target: 'cache' },
        { type: 'layers', lowerdirs: [stageA, stageB], target: '/src', readwrite: true },
        { type: 'secret', sourceFile: secret, target: '/run/secrets/pw' },
        { type: 'tmpfs', target: '/tmp/t' },
      ],
      extraHosts: [{ host: 'myhost', ip: '10.1.2.3' }],
      onStdout: (b) => { out += b; },
    });
    expect(r.exitCode).toBe(0);
    expect(out).toBe('1\n/app\n');
    expect(listTree(upper)).toEqual(['d app', 'f app/copied']);
    expect(readFileSync(join(cache, 'log'), 'utf8')).toBe('c\n');
    expect(readFileSync(join(stageB, 'other'), 'utf8')).toBe('b'); // rw bind writes are discarded
    expect(readdirSync(base).filter((n) => n.includes('work'))).toEqual([]);
  });

  it('a failing RUN becomes a BuildKit-worded error with the output tail', async () => {
    const base = scratchDir();
    const upper = join(base, 'u'); mkdirSync(upper);
    const argv = ['/bin/sh', '-c', 'echo compiling; exit 3'];
    const r = await runStep({ lowerdirs: [await busyboxRootfs()], upperdir: upper, argv, env: ['PATH=/bin'] });
    expect(r.exitCode).toBe(3);
    const e = runStepError(r, argv, { outputTail: 'compiling\n' });
    expect(e.code).toBe('TSB4110');
    expect(e.message).toBe('process "/bin/sh -c echo compiling; exit 3" did not complete successfully: exit code: 3');
    expect(e.details).toEqual(['compiling']);
    const nf = await runStep({ lowerdirs: [await busyboxRootfs()], upperdir: upper, argv: ['nope'], env: ['PATH=/bin'] });
    expect(runStepError(nf, ['nope']).code).toBe('TSB4111');
    expect(existsSync(join(upper, 'proc'))).toBe(false);
  });
  it('the root overlay is volatile where the kernel has it (no syncfs of the host at teardown); its work dir still goes', async () => {
    const [maj, min] = release().split('.').map(Number) as [number, number];
    const base = scratchDir();
    const upper = join(base, 'upper');
    mkdirSync(upper);
    let out = '';
    const r = await runStep({
      lowerdirs: [await busyboxRootfs()], upperdir: upper, env: ['PATH=/bin'],
      argv: ['/bin/sh', '-c', 'grep " / / " /proc/self/mountinfo; echo data > /f; sync /f'],
      onStdout: (b) => { out += b; },
    });
    expect(r.exitCode).toBe(0);
    expect(out).toMatch(/ - overlay /);
    if (maj > 5 || (maj === 5 && min >= 10)) expect(out).toMatch(/volatile/);
    expect(readFileSync(join(upper, 'f'), 'utf8')).toBe('data\n');
    expect(readdirSync(base).sort()).toEqual(['upper']); // work dir (with its volatile marker) removed
  });
});
