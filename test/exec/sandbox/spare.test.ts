/**
 * The spare init (index.ts makeSpare/takeSpare): the next RUN's C init is spawned while the
 * current one runs. What must hold: a RUN that uses the spare is the same sandbox as a freshly
 * spawned one (its own spec: network, output, exit code), a spare is dropped when idle, and it
 * never keeps a Node process alive.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sandboxInitKind, spareInitPid } from '../../../src/exec/sandbox/index.js';
import { busyboxRootfs } from '../../helpers/busybox.js';
import { scratchDir, sh, skipReason, transpiledSandbox } from './helpers.js';

const alive = (pid: number): boolean => {
  try { return !readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z'); } catch { return false; }
};
const tick = () => new Promise((r) => setImmediate(r));

describe.skipIf(skipReason !== undefined)('sandbox: spare init', () => {
  it('consecutive RUNs use the spare, each with its own spec, output and exit code', async () => {
    if (await sandboxInitKind() !== 'c' || process.env.TSBUILD_SANDBOX_UNSHARE === 'util-linux') return;
    const a = await sh('echo a', { network: 'default' });
    expect(a.exitCode).toBe(0);
    expect(a.stdout).toBe('a\n');
    await tick();
    const s1 = spareInitPid();
    expect(s1).toBeDefined();
    expect(alive(s1!)).toBe(true);
    // network none through the spare: only lo.
    const b = await sh('echo b; ls /sys/class/net; exit 3', { network: 'none' });
    expect(b.exitCode).toBe(3);
    expect(b.stdout).toBe('b\nlo\n');
    expect(b.stderr).toBe('');
    expect(alive(s1!)).toBe(false); // it ran b
    await tick();
    const s2 = spareInitPid();
    expect(s2).toBeDefined();
    expect(s2).not.toBe(s1);
    const c = await sh('hostname; echo err >&2', { hostname: 'other' });
    expect(c.stdout).toBe('other\n');
    expect(c.stderr).toBe('err\n');
    expect(alive(s2!)).toBe(false);
  });

  it('a file system mounted on the host after the spare started is seen (the spare is not used then)', async () => {
    if (await sandboxInitKind() !== 'c' || process.env.TSBUILD_SANDBOX_UNSHARE === 'util-linux') return;
    const dir = scratchDir('tsb-spare-mnt-');
    await sh('true');
    await tick();
    const pid = spareInitPid();
    expect(pid).toBeDefined();
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    try {
      writeFileSync(join(dir, 'f'), 'on the new tmpfs\n');
      const r = await sh('cat /mnt/f', { mounts: [{ type: 'bind', source: dir, target: '/mnt', readonly: true }] });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe('on the new tmpfs\n');
      expect(alive(pid!)).toBe(false); // dropped, not used
    } finally {
      await tick();
      // The next spare (made after the mount) pins it in its namespace: let it go before umount.
      await new Promise((res) => setTimeout(res, 3500));
      execFileSync('umount', [dir]);
    }
  });

  it('an idle spare is dropped', async () => {
    if (await sandboxInitKind() !== 'c' || process.env.TSBUILD_SANDBOX_UNSHARE === 'util-linux') return;
    await sh('true');
    await tick();
    const pid = spareInitPid();
    expect(pid).toBeDefined();
    const end = Date.now() + 8000;
    while (Date.now() < end && (spareInitPid() !== undefined || alive(pid!))) await new Promise((r) => setTimeout(r, 100));
    expect(spareInitPid()).toBeUndefined();
    expect(alive(pid!)).toBe(false);
  });

  it('a spare never keeps Node alive: a process that ran a RUN exits at once', async () => {
    if (await sandboxInitKind() !== 'c' || process.env.TSBUILD_SANDBOX_UNSHARE === 'util-linux') return;
    const out = await transpiledSandbox('tsbuild-sandbox-spare-test');
    writeFileSync(join(out, 'runner.js'), `
      import { runSandbox, spareInitPid } from './${relative(out, join(out, 'src/exec/sandbox/index.js'))}';
      const r = await runSandbox({ root: { dir: ${JSON.stringify(await busyboxRootfs())}, readonly: true }, argv: ['/bin/true'], env: [] });
      await new Promise((res) => setImmediate(res));
      process.stdout.write(JSON.stringify({ code: r.exitCode, spare: spareInitPid() ?? null, done: Date.now() }));
    `);
    const child = spawn(process.execPath, [join(out, 'runner.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.on('data', (b: Buffer) => { text += b.toString(); });
    const code = await new Promise<number | null>((res) => child.on('exit', res));
    const exitedAt = Date.now();
    expect(code).toBe(0);
    const r = JSON.parse(text) as { code: number; spare: number | null; done: number };
    expect(r.code).toBe(0);
    expect(r.spare).not.toBeNull(); // a spare was made …
    expect(exitedAt - r.done).toBeLessThan(2000); // … and did not hold the process for its idle time (3 s)
    const end = Date.now() + 3000; // … and died with its parent (PR_SET_PDEATHSIG)
    while (Date.now() < end && alive(r.spare!)) await new Promise((res) => setTimeout(res, 50));
    expect(alive(r.spare!)).toBe(false);
  });
});
