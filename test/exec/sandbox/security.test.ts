/**
 * Escape attempts that must all FAIL from inside the sandbox, and the confinement that makes them
 * fail (capabilities, seccomp, masked/read-only paths, device cgroup, pivot_root).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDir, sh, skipReason } from './helpers.js';

describe.skipIf(skipReason !== undefined)('sandbox: escapes fail', () => {
  it('has Docker\'s default capabilities, seccomp on, no_new_privs off (like Docker for root)', async () => {
    const r = await sh('grep -E "^(Cap|Seccomp|NoNewPrivs)" /proc/self/status');
    expect(r.stdout).toBe([
      'CapInh:\t0000000000000000', 'CapPrm:\t00000000a80425fb', 'CapEff:\t00000000a80425fb',
      'CapBnd:\t00000000a80425fb', 'CapAmb:\t0000000000000000', 'NoNewPrivs:\t0', 'Seccomp:\t2', 'Seccomp_filters:\t1', '',
    ].join('\n'));
  });

  it('cannot mount, umount, pivot_root or unshare', async () => {
    const r = await sh([
      'mount -t tmpfs none /tmp 2>&1; echo rc=$?',
      'umount /proc 2>&1; echo rc=$?',
      'umount -l /etc/hosts 2>&1; echo rc=$?',
      'unshare -m true 2>&1; echo rc=$?',
      'unshare -U true 2>&1; echo rc=$?',
      'mkdir -p /n/old && pivot_root /n /n/old 2>&1; echo rc=$?',
    ].join('; '));
    const rcs = r.stdout.split('\n').filter((l) => l.startsWith('rc='));
    expect(rcs).toHaveLength(6);
    for (const rc of rcs) expect(rc).not.toBe('rc=0');
    expect(r.stdout).toMatch(/Operation not permitted|Permission denied/);
    // the host's mount table is unchanged and nothing was mounted
    expect((await sh('grep -c " /tmp " /proc/self/mountinfo')).stdout.trim()).toBe('0');
  });

  it('cannot load a kernel module', async () => {
    const r = await sh('head -c 4096 /dev/urandom > /tmp/x.ko; insmod /tmp/x.ko 2>&1; echo rc=$?; grep CapBnd /proc/self/status');
    expect(r.stdout).toMatch(/Operation not permitted/);
    expect(r.stdout).toMatch(/rc=1/);
    // CAP_SYS_MODULE (16) is not in the bounding set
    const bnd = BigInt(`0x${/CapBnd:\s+([0-9a-f]+)/.exec(r.stdout)![1]}`);
    expect(bnd & (1n << 16n)).toBe(0n);
  });

  it('can mknod but cannot open a host block device (device cgroup)', async () => {
    const r = await sh('mknod /tmp/sda b 8 0 && echo made; head -c 1 /tmp/sda >/dev/null 2>&1; echo rc=$?; mknod /tmp/mem c 1 1; head -c 1 /tmp/mem > /dev/null 2>&1; echo rc=$?; head -c 1 /dev/null; echo null-ok');
    expect(r.stdout).toBe('made\nrc=1\nrc=1\nnull-ok\n');
  });

  it('cannot see host processes, mounts or files', async () => {
    const dir = scratchDir();
    writeFileSync(join(dir, 'host-secret'), 'top secret');
    const r0 = await sh(`cat ${dir}/host-secret 2>&1`);
    expect(r0.stdout).not.toMatch(/top secret/);
    expect(r0.stdout).toMatch(/No such file or directory/);
    const r = await sh('cat /proc/self/mountinfo');
    // no host path appears in the mount table (overlay options use short relative names)
    expect(r.stdout).not.toContain(dir);
    expect(r.stdout).not.toMatch(/\/work\/|tsbuild-sandbox|\/run\/tsbuild/);
    // /sys/fs/cgroup is there as in a BuildKit RUN, every mount of it read-only, and the host's
    // processes are not listed in any cgroup.procs (only the sandbox's own PIDs are visible)
    const cg = r.stdout.split('\n').filter((l) => l.includes(' /sys/fs/cgroup'));
    for (const l of cg) expect(l.split(' ')[5]).toMatch(/^ro,/);
    const procs = await sh('cat /sys/fs/cgroup/*/cgroup.procs 2>/dev/null | sort -un | wc -l');
    expect(Number(procs.stdout)).toBeLessThan(5);
    const host = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;
    expect(r.stdout.split('\n').length).toBeLessThan(host + 40);
  });

  it('a chroot inside does not lead out: / is the pivoted root, .. of / is /', async () => {
    const r = await sh('mkdir -p /jail/bin && cp /bin/busybox /jail/bin/ && chroot /jail /bin/busybox sh -c "cd ../../../..; /bin/busybox ls /" ; cd /../../..; ls');
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines[0]).toBe('bin'); // inside the jail: only bin
    expect(lines.slice(1).sort()).toEqual(['bin', 'dev', 'etc', 'home', 'jail', 'proc', 'root', 'sys', 'tmp']);
  });

  it('masked and read-only paths, read-only /sys', async () => {
    const files = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug', '/proc/latency_stats']
      .filter((f) => existsSync(f));
    const dirs = ['/sys/firmware', '/proc/acpi', '/proc/scsi'].filter((f) => existsSync(f));
    expect(files.length + dirs.length).toBeGreaterThan(0);
    const r = await sh([
      ...files.map((f) => `wc -c < ${f}`), ...dirs.map((d) => `ls ${d} | wc -l`),
      'echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || echo sys-ro',
      'echo h > /proc/sysrq-trigger 2>/dev/null || echo sysrq-ro',
      'touch /sys/kernel/x 2>/dev/null || echo sysfs-ro',
    ].join('; '));
    expect(r.stdout.split('\n').map((s) => s.trim())).toEqual([...files.map(() => '0'), ...dirs.map(() => '0'), 'sys-ro', 'sysrq-ro', 'sysfs-ro', '']);
  });

  it('/sys/fs/cgroup: read-only tmpfs with one read-only bind per v1 hierarchy (as a BuildKit RUN on cgroup v1)', async () => {
    const { readdirSync, statfsSync } = await import('node:fs');
    const hier = existsSync('/sys/fs/cgroup') ? readdirSync('/sys/fs/cgroup').filter((n) => {
      try { return statfsSync(`/sys/fs/cgroup/${n}`).type === 0x27e0eb; } catch { return false; }
    }).sort() : [];
    if (hier.length === 0) return;
    const r = await sh('ls /sys/fs/cgroup | tr "\\n" " "; echo; grep " /sys/fs/cgroup" /proc/self/mountinfo | awk \'{print $5, substr($6,1,2)}\' | sort -u | tr "\\n" " "; echo; '
      + 'mkdir /sys/fs/cgroup/memory/evil 2>/dev/null && echo MKDIR || echo no-mkdir; echo 1 > /sys/fs/cgroup/pids/cgroup.procs 2>/dev/null && echo MOVED || echo no-move; '
      + 'touch /sys/fs/cgroup/x 2>/dev/null && echo TOUCH || echo no-touch');
    const lines = r.stdout.split('\n');
    expect(lines[0]!.trim().split(' ').sort()).toEqual(hier);
    expect(lines[1]!.trim().split(' ').filter((x) => x.startsWith('/')).length).toBeGreaterThan(hier.length);
    expect(lines[1]).not.toMatch(/ rw/);
    expect(lines.slice(2, 5)).toEqual(['no-mkdir', 'no-move', 'no-touch']);
  });

  it('/proc/interrupts is readable (BuildKit 0.25 does not mask it), /proc/kcore is', async () => {
    if (!existsSync('/proc/interrupts')) return;
    const r = await sh('grep -c CPU0 /proc/interrupts; grep " /proc/interrupts " /proc/self/mountinfo | wc -l');
    expect(r.stdout).toBe('1\n0\n');
  });

  it('escape probes: mount, remount rw, new user ns, core_pattern, /proc/1/root, mknod+open all fail or stay inside', async () => {
    const r = await sh([
      'mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED || echo no-mount',
      'mount -o remount,rw /proc/sys 2>/dev/null && echo REMOUNTED || echo no-remount',
      'mount -o remount,rw /sys 2>/dev/null && echo SYSRW || echo no-sysrw',
      'unshare -U -r true 2>/dev/null && echo USERNS || echo no-userns',
      'echo "|/tmp/x" > /proc/sys/kernel/core_pattern 2>/dev/null && echo CORE || echo no-core',
      'ls /proc/1/root/ | tr "\n" " "; echo',
      'readlink /proc/1/root',
      'mknod /tmp/sda b 8 0 2>/dev/null; head -c1 /tmp/sda >/dev/null 2>&1 && echo READDISK || echo no-disk',
      'ls /proc | grep -c "^[0-9]"',
    ].join('; '));
    const lines = r.stdout.split('\n');
    expect(lines.slice(0, 5)).toEqual(['no-mount', 'no-remount', 'no-sysrw', 'no-userns', 'no-core']);
    expect(lines[5]!.trim().split(' ').sort()).toEqual(['bin', 'dev', 'etc', 'home', 'proc', 'root', 'sys', 'tmp']);
    expect(lines[6]).toBe('/');
    expect(lines[7]).toBe('no-disk');
    expect(Number(lines[8])).toBeLessThan(10); // only the sandbox's own processes
  });

  it('seccomp (and capabilities) refuse clock setting, sethostname, setns', async () => {
    // busybox has no direct syscall tool; these applets hit the filtered calls.
    const r = await sh('date -s "2001-01-01" 2>&1; echo rc=$?; hostname evil 2>&1; echo rc=$?; hostname; nsenter -t 1 -m true 2>&1; echo rc=$?');
    expect(r.stdout).toMatch(/date: can't set date: Operation not permitted/);
    expect(r.stdout).toMatch(/hostname: sethostname: Operation not permitted\nrc=1\nbuildkitsandbox/);
    expect(r.stdout).toMatch(/rc=1\n?$/);
  });

  it('cannot write outside its upper dir through any path', async () => {
    const r = await sh('for d in / /etc /bin /tmp /root /home/app; do echo x > $d/probe-file; done; ls /probe-file');
    expect(r.stdout).toBe('/probe-file\n');
    // every write landed in the upper dir
    const { listTree } = await import('./helpers.js');
    expect(listTree(r.upperdir).filter((l) => l.endsWith('probe-file'))).toHaveLength(6);
  });

  it('insecure: all capabilities and no seccomp (only behind an explicit flag)', async () => {
    const r = await sh('grep -E "^(CapEff|Seccomp):" /proc/self/status', { security: 'insecure' });
    const hostEff = /CapEff:\t([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1];
    expect(r.stdout).toContain(`CapEff:\t${hostEff}`);
    expect(r.stdout).toMatch(/Seccomp:\t0/);
  });
});
