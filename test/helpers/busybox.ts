/**
 * Shared test fixture: a tiny root filesystem made of the host's static busybox.
 *
 * Layout (stable: other helpers' tests rely on it):
 *   bin/busybox                 copy of the host's /bin/busybox (Debian busybox-static)
 *   bin/<applet> -> busybox     one relative symlink per applet (sh, ls, cat, id, echo, …)
 *   etc/passwd                  root (0), app (1000, home /home/app), nobody (65534)
 *   etc/group                   root (0), staff (50, member app), app (1000), nogroup (65534)
 *   home/app                    0755 owned 1000:1000
 *   root                        0700
 *   tmp                         1777
 * There is deliberately no dev/, proc/, sys/ or etc/hosts: like a `FROM scratch` image, the
 * sandbox must create its mount points without leaving them in the diff.
 *
 * Cached under os.tmpdir()/tsbuild-test-fixtures/, keyed by the busybox binary's size and mtime;
 * built in a temp dir and renamed into place, so concurrent test workers never see half a tree.
 * Never write into the returned directory: copy it (or use it as a read-only overlay lower).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { chmod, chown, copyFile, mkdir, mkdtemp, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const HOST_BUSYBOX = '/bin/busybox';

/** Why busybox tests are skipped, or undefined when they can run. */
export function busyboxMissing(): string | undefined {
  if (!existsSync(HOST_BUSYBOX)) return `${HOST_BUSYBOX} is missing (apt-get install busybox-static): skipping busybox-based tests`;
  try {
    const out = execFileSync('file', ['-L', HOST_BUSYBOX], { encoding: 'utf8' });
    if (!/statically linked|static-pie/.test(out)) return `${HOST_BUSYBOX} is not statically linked (install busybox-static): skipping`;
  } catch { /* `file` not installed: assume it is the static one */ }
  return undefined;
}

export function hasBusybox(): boolean {
  return busyboxMissing() === undefined;
}

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'app:x:1000:1000:app:/home/app:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
  '',
].join('\n');
const GROUP = ['root:x:0:', 'staff:x:50:app', 'app:x:1000:', 'nogroup:x:65534:', ''].join('\n');

function fixturesDir(): string {
  return join(tmpdir(), 'tsbuild-test-fixtures');
}

function cacheKey(): string {
  const st = statSync(HOST_BUSYBOX);
  return createHash('sha256').update(`v1\0${st.size}\0${st.mtimeMs}\0${PASSWD}\0${GROUP}`).digest('hex').slice(0, 16);
}

function applets(): string[] {
  const out = execFileSync(HOST_BUSYBOX, ['--list'], { encoding: 'utf8' });
  return out.split('\n').map((s) => s.trim()).filter((s) => s && !s.includes('/') && s !== 'busybox');
}

async function build(dir: string): Promise<void> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await copyFile(HOST_BUSYBOX, join(dir, 'bin', 'busybox'));
  await chmod(join(dir, 'bin', 'busybox'), 0o755);
  for (const a of applets()) await symlink('busybox', join(dir, 'bin', a));
  await mkdir(join(dir, 'etc'));
  await writeFile(join(dir, 'etc', 'passwd'), PASSWD, { mode: 0o644 });
  await writeFile(join(dir, 'etc', 'group'), GROUP, { mode: 0o644 });
  await mkdir(join(dir, 'home', 'app'), { recursive: true });
  await chown(join(dir, 'home', 'app'), 1000, 1000);
  await mkdir(join(dir, 'root'), { mode: 0o700 });
  await chmod(join(dir, 'root'), 0o700);
  await mkdir(join(dir, 'tmp'));
  await chmod(join(dir, 'tmp'), 0o1777);
}

/** Publish `make(tmp)`'s result at `final` atomically; a concurrent winner's copy is kept. */
async function atomically(final: string, make: (tmp: string) => Promise<void>): Promise<string> {
  if (existsSync(final)) return final;
  await mkdir(fixturesDir(), { recursive: true });
  const tmp = await mkdtemp(join(fixturesDir(), '.tmp-'));
  try {
    await make(tmp);
    try {
      await rename(tmp, final);
    } catch (e) {
      if (!existsSync(final)) throw e; // someone else won the race: theirs is identical
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return final;
}

/** Directory holding the busybox rootfs (see the layout above). */
export async function busyboxRootfs(): Promise<string> {
  const why = busyboxMissing();
  if (why) throw new Error(why);
  const final = join(fixturesDir(), `busybox-${cacheKey()}`);
  return atomically(final, async (tmp) => build(tmp));
}

/**
 * The same tree as an uncompressed tar (entries `bin/`, `bin/busybox`, …, no `./` prefix,
 * numeric owners, mtime 0, sorted), for `FROM scratch` + `ADD rootfs.tar /` style tests.
 */
export async function busyboxRootfsTar(): Promise<string> {
  const root = await busyboxRootfs();
  const final = join(fixturesDir(), `busybox-${cacheKey()}.tar`);
  if (existsSync(final)) return final;
  await mkdir(fixturesDir(), { recursive: true });
  const tmp = join(fixturesDir(), `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}.tar`);
  try {
    execFileSync('tar', ['-C', root, '--numeric-owner', '--sort=name', '--mtime=@0', '--format=posix',
      '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime', '-cf', tmp, 'bin', 'etc', 'home', 'root', 'tmp']);
    await rename(tmp, final);
  } finally {
    await rm(tmp, { force: true });
  }
  return final;
}
