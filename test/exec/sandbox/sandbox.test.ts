/**
 * The RUN sandbox, for real: namespaces, overlayfs, pivot_root, cgroups, seccomp (issue 5).
 * Every test runs busybox inside the sandbox; nothing is mocked.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runSandbox, sandboxInitKind } from '../../../src/exec/sandbox/index.js';
import { busyboxRootfs } from '../../helpers/busybox.js';
import { freshUpper, listTree, scratchDir, sh, skipReason } from './helpers.js';

describe.skipIf(skipReason !== undefined)('sandbox: filesystem', () => {
  it('uses the C init when a compiler is available (else the Node one)', async () => {
    const kind = await sandboxInitKind();
    if (process.env.TSBUILD_SANDBOX_INIT === 'node' || !existsSync('/usr/bin/cc')) expect(kind).toBe('node');
    else expect(kind).toBe('c');
  });

  it('creates, modifies and deletes files in the upper dir only; its own mount points leave no trace', async () => {
    const bb = await busyboxRootfs();
    const before = listTree(bb);
    const r = await sh('echo new > /new && echo more >> /etc/passwd && rm /etc/group && mkdir -p /a/b && echo x > /a/b/c');
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(listTree(r.upperdir)).toEqual(['d a', 'd a/b', 'f a/b/c', 'd etc', 'c etc/group', 'f etc/passwd', 'f new']);
    expect(readFileSync(join(r.upperdir, 'etc/passwd'), 'utf8')).toMatch(/more\n$/);
    // whiteout = char device 0/0
    expect(lstatSync(join(r.upperdir, 'etc/group')).rdev).toBe(0);
    // the lower is untouched
    expect(listTree(bb)).toEqual(before);
    expect(readFileSync(join(bb, 'etc/passwd'), 'utf8')).not.toMatch(/more/);
  });

  it('keeps a directory it created for a mount point when the command put something in it', async () => {
    // The busybox image has no /etc/hosts but has /etc; no /dev: creating /dev/shm/x is a tmpfs write.
    const r = await sh('touch /etc/newconf && echo ok > /dev/shm/x && cat /dev/shm/x');
    expect(r.stdout).toBe('ok\n');
    expect(listTree(r.upperdir)).toEqual(['d etc', 'f etc/newconf']);
  });

  it('an empty command leaves an empty upper dir', async () => {
    const r = await sh('true');
    expect(r.exitCode).toBe(0);
    expect(listTree(r.upperdir)).toEqual([]);
  });

  it('mounts deep stacks (200 lowers), top layer wins', async () => {
    const base = scratchDir();
    const lowers: string[] = [];
    for (let i = 0; i < 200; i++) {
      const d = join(base, `layer-with-a-long-name-to-overflow-the-option-page-${String(i).padStart(4, '0')}`);
      mkdirSync(join(d, 'layers'), { recursive: true });
      writeFileSync(join(d, 'layers', `f${i}`), String(i));
      writeFileSync(join(d, 'top'), String(i));
      lowers.push(d);
    }
    const r = await sh('ls /layers | wc -l; cat /top', { lowers });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').map((s) => s.trim())).toEqual(['200', '199']);
  });

  it('FROM scratch: an empty lower list works (the command comes from a bind mount)', async () => {
    const bb = await busyboxRootfs();
    const up = freshUpper();
    let out = '';
    const r = await runSandbox({
      root: { lowerdirs: [], upperdir: up.upperdir, workdir: up.workdir },
      argv: ['/bb/bin/busybox', 'sh', '-c', '/bb/bin/busybox ls /'],
      env: [], mounts: [{ type: 'bind', source: bb, target: '/bb', readonly: true }],
      onStdout: (b) => { out += b; },
    });
    expect(r.exitCode).toBe(0);
    expect(out.split('\n').filter(Boolean).sort()).toEqual(['bb', 'dev', 'etc', 'proc', 'sys']);
    expect(listTree(up.upperdir)).toEqual([]);
  });

  it('a plain writable dir root gets the changes directly, a read-only one refuses them', async () => {
    const bb = await busyboxRootfs();
    const dir = join(scratchDir(), 'root');
    execFileSync('cp', ['-a', bb, dir]);
    const before = listTree(dir);
    let out = '';
    const r = await runSandbox({ root: { dir }, argv: ['/bin/sh', '-c', 'echo hi > /hello; ls /proc/1 >/dev/null'], env: [], onStderr: (b) => { out += b; } });
    expect(out).toBe('');
    expect(r.exitCode).toBe(0);
    expect(listTree(dir)).toEqual([...before, 'f hello'].sort((a, b) => (a.slice(2) < b.slice(2) ? -1 : 1)));
    let err = '';
    const ro = await runSandbox({ root: { dir: bb, readonly: true }, argv: ['/bin/sh', '-c', 'touch /x'], env: [], onStderr: (b) => { err += b; } });
    expect(ro.exitCode).not.toBe(0);
    expect(err).toMatch(/Read-only file system/);
    expect(existsSync(join(bb, 'x'))).toBe(false);
    expect(existsSync(join(bb, 'proc'))).toBe(false);
  });

  it('bind (ro/rw), tmpfs, overlay-ro mounts and provided files; none of them lands in the diff', async () => {
    const base = scratchDir();
    const rw = join(base, 'rw'); mkdirSync(rw);
    const ro = join(base, 'ro'); mkdirSync(ro); writeFileSync(join(ro, 'f'), 'ro-content');
    const l1 = join(base, 'l1'); mkdirSync(l1); writeFileSync(join(l1, 'a'), 'l1a'); writeFileSync(join(l1, 'b'), 'l1b');
    const l2 = join(base, 'l2'); mkdirSync(l2); writeFileSync(join(l2, 'b'), 'l2b');
    const r = await sh([
      'cat /ro/f; echo', 'touch /ro/x 2>/dev/null || echo ro-refused', 'echo w > /cache/w',
      'echo t > /scratch/t && cat /scratch/t', 'cat /stage/a /stage/b; echo', 'touch /stage/c 2>/dev/null || echo stage-refused',
      'cat /run/secrets/tok; echo', 'stat -c %a:%u /run/secrets/tok',
    ].join('; '), {
      mounts: [
        { type: 'bind', source: ro, target: '/ro', readonly: true },
        { type: 'bind', source: rw, target: '/var/cache/thing' },
        { type: 'bind', source: rw, target: '/cache' },
        { type: 'tmpfs', target: '/scratch', size: 1 << 20 },
        { type: 'overlay-ro', lowerdirs: [l1, l2], target: '/stage' },
      ],
      files: [{ target: '/run/secrets/tok', content: 's3cret', mode: 0o400, readonly: true }],
    });
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')).toEqual(['ro-content', 'ro-refused', 't', 'l1al2b', 'stage-refused', 's3cret', '400:0', '']);
    expect(readFileSync(join(rw, 'w'), 'utf8')).toBe('w\n');
    expect(listTree(r.upperdir)).toEqual([]);
  });

  it('resolves mount targets inside the root: an image symlink to /.. cannot place a mount on the host', async () => {
    const base = scratchDir();
    const layer = join(base, 'layer');
    mkdirSync(layer);
    execFileSync('ln', ['-s', '../../../../../../../tmp/escape-target', join(layer, 'evil')]);
    const src = join(base, 'src'); mkdirSync(src); writeFileSync(join(src, 'm'), 'mounted');
    const r = await sh('ls /tmp/escape-target; readlink /evil', { lowers: [layer], mounts: [{ type: 'bind', source: src, target: '/evil' }] });
    expect(r.stdout).toBe('m\n../../../../../../../tmp/escape-target\n');
    // the mount point was created inside the root's /tmp (in the upper dir, then removed), not on the host
    expect(existsSync('/tmp/escape-target')).toBe(false);
    expect(listTree(r.upperdir)).toEqual([]);
  });
});

describe.skipIf(skipReason !== undefined)('sandbox: process', () => {
  it('USER by name: uid, gid, supplementary groups, HOME', async () => {
    const r = await sh('id; echo $HOME', { user: 'app' });
    expect(r.stdout).toBe('uid=1000(app) gid=1000(app) groups=50(staff),1000(app)\n/home/app\n');
  });

  it('USER uid:gid, name:group, numeric unknown uid; root by default', async () => {
    expect((await sh('id -u; id -g; id -G', { user: '1234:5678' })).stdout).toBe('1234\n5678\n5678\n');
    expect((await sh('id', { user: 'app:root' })).stdout).toBe('uid=1000(app) gid=0(root) groups=0(root)\n');
    expect((await sh('id; echo $HOME')).stdout).toBe('uid=0(root) gid=0(root) groups=0(root)\n/root\n');
    // a non-root user has no capabilities
    expect((await sh('grep -E "^Cap(Eff|Prm)" /proc/self/status', { user: 'app' })).stdout).toBe('CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n');
  });

  it('an unknown USER is an error with Docker wording', async () => {
    await expect(sh('id', { user: 'nosuch' })).rejects.toMatchObject({ code: 'TSB4105', message: 'unable to find user nosuch: no matching entries in passwd file' });
    await expect(sh('id', { user: 'app:nogrp' })).rejects.toMatchObject({ code: 'TSB4105' });
  });

  it('env is passed as given; cwd is created when missing and kept in the diff', async () => {
    const r = await sh('echo "$FOO|$BAR"; pwd', { env: ['FOO=a b', 'BAR=', 'PATH=/bin'], cwd: '/work/dir' });
    expect(r.stdout).toBe('a b|\n/work/dir\n');
    expect(listTree(r.upperdir)).toEqual(['d work', 'd work/dir']);
  });

  it('exit codes, signals and not-found commands', async () => {
    expect((await sh('exit 0')).exitCode).toBe(0);
    expect((await sh('exit 42')).exitCode).toBe(42);
    // The command is PID 1: signals it has no handler for are ignored (like in `docker build`).
    const k = await sh('kill -TERM $$; echo survived');
    expect(k).toMatchObject({ exitCode: 0, stdout: 'survived\n' });
    const nf = await sh('unused', { argv: ['nosuchcmd', 'x'] });
    expect(nf).toMatchObject({ exitCode: 127, startError: 'exec: "nosuchcmd": executable file not found in $PATH' });
    const np = await sh('unused', { argv: ['/etc/passwd'] });
    expect(np).toMatchObject({ exitCode: 126 });
  });

  it('streams stdout and stderr separately, while the command runs; /dev/stdout works', async () => {
    const dir = scratchDir();
    let out = '';
    let err = '';
    const p = sh('echo first; echo e1 >&2; while [ ! -e /sig/go ]; do sleep 0.05; done; echo second > /dev/stdout; echo e2 > /dev/stderr', {
      mounts: [{ type: 'bind', source: dir, target: '/sig' }],
      onStdout: (b) => { out += b; if (out.includes('first') && !existsSync(join(dir, 'go'))) writeFileSync(join(dir, 'go'), ''); },
      onStderr: (b) => { err += b; },
    });
    const r = await p;
    expect(r.exitCode).toBe(0);
    expect(out).toBe('first\nsecond\n');
    expect(err).toBe('e1\ne2\n');
  });

  it('sees only its own processes, PID 1 is the command', async () => {
    const r = await sh(`sleep 30 & ps -o pid,comm | tail -n +2; ls /proc | grep -E "^[0-9]+$" | wc -l; test -e /proc/${process.pid} && echo host-pid-visible`);
    const lines = r.stdout.trim().split('\n').map((l) => l.trim());
    expect(lines[0]).toMatch(/^1 sh$/);
    expect(Number(lines.at(-1))).toBeLessThanOrEqual(6);
    expect(r.stdout).not.toMatch(/host-pid-visible/);
  });

  it('only fds 0, 1, 2 are open (plus ls\'s own directory fd)', async () => {
    const r = await sh('ls /proc/self/fd');
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['0', '1', '2', '3']);
    await expect(sh('pwd', { cwd: '/proc/self/fd/9' })).rejects.toMatchObject({ code: 'TSB4106' });
  });

  it('hostname (UTS), /etc/hosts and resolv.conf are provided; no /etc/hostname, as in a BuildKit RUN', async () => {
    const r = await sh('hostname; test -e /etc/hostname && echo has-etc-hostname; grep -c localhost /etc/hosts; test -s /etc/resolv.conf && echo dns; grep -c " /etc/" /proc/self/mountinfo');
    expect(r.stdout).toBe('buildkitsandbox\n2\ndns\n2\n');
  });

  it('/etc/resolv.conf keeps the host file\'s mtime (older than the RUN, like BuildKit\'s per-daemon copy)', async () => {
    if (!existsSync('/etc/resolv.conf')) return;
    const r = await sh('stat -c %Y /etc/resolv.conf');
    expect(Number(r.stdout)).toBe(Math.floor(statSync('/etc/resolv.conf').mtimeMs / 1000));
  });

  it('etcHostname: true provides /etc/hostname (as docker run does)', async () => {
    const r = await sh('cat /etc/hostname', { etcHostname: true });
    expect(r.stdout).toBe('buildkitsandbox\n');
  });

  it('stdin is an empty pipe whose write end is closed (BuildKit RUN), not /dev/null', async () => {
    const r = await sh('readlink /proc/self/fd/0; cat; echo rc=$?');
    expect(r.stdout).toMatch(/^pipe:\[\d+\]\nrc=0\n$/);
  });
});

describe.skipIf(skipReason !== undefined)('sandbox: network', () => {
  it('none: only lo, up, and no route out', async () => {
    const r = await sh('cat /proc/net/dev | tail -n +3 | cut -d: -f1; ip link show lo | head -1; ip route | wc -l; nc -w 2 1.1.1.1 80 </dev/null 2>&1; echo rc=$?', { network: 'none' });
    const lines = r.stdout.split('\n');
    expect(lines[0]!.trim()).toBe('lo');
    expect(lines[1]).toMatch(/<LOOPBACK,UP,LOWER_UP>/);
    expect(lines[2]!.trim()).toBe('0');
    expect(r.stdout).toMatch(/Network is unreachable/);
    expect(r.stdout).toMatch(/rc=1/);
  });

  it('default and host share the host network namespace', async () => {
    const host = readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter(Boolean).sort();
    for (const network of ['default', 'host'] as const) {
      const r = await sh('tail -n +3 /proc/net/dev | cut -d: -f1', { network });
      expect(r.stdout.split('\n').map((s) => s.trim()).filter(Boolean).sort()).toEqual(host);
    }
  });
});

describe.skipIf(skipReason !== undefined)('sandbox: terminal', () => {
  it('tty: the command gets a pty as its controlling terminal, with the given size; input reaches it', async () => {
    const { PassThrough } = await import('node:stream');
    const input = new PassThrough();
    let out = '';
    const bb = await busyboxRootfs();
    const up = freshUpper();
    const r = await runSandbox({
      root: { lowerdirs: [bb], upperdir: up.upperdir, workdir: up.workdir },
      argv: ['/bin/sh', '-c', '[ -t 0 ] && [ -t 1 ] && echo is-a-tty; stty size; read line; echo got:$line'],
      env: ['PATH=/bin'],
      tty: { input, rows: 30, cols: 100 },
      // Send once the whole `stty size` line is out (a pty may deliver "30 100" and its "\r\n" apart).
      onStdout: (b) => { out += b; if (out.replace(/\r/g, '').includes('30 100\n') && !out.includes('sent')) { out += '(sent)'; input.write('hello\n'); } },
    });
    expect(r.exitCode).toBe(0);
    expect(out.replace(/\r/g, '')).toMatch(/is-a-tty\n30 100\n\(sent\)(hello\n)?got:hello\n/);
  });
});
