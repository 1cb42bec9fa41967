/**
 * RUN through the sandbox (real namespaces + overlayfs), on a busybox rootfs added with ADD.
 * Skipped with a message when busybox-static is missing or the sandbox module is absent.
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { busyboxMissing, busyboxRootfsTar } from '../helpers/busybox.js';
import { cli, listing, readImageFromStore, tmp } from './helpers.js';

const why = busyboxMissing() ?? (existsSync('src/exec/run-step.ts') ? undefined : 'src/exec/run-step.ts is missing');
if (why) console.warn(`run.test: skipping: ${why}`);

async function ctxWith(dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = tmp();
  copyFileSync(await busyboxRootfsTar(), join(dir, 'rootfs.tar'));
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  for (const [k, v] of Object.entries(files)) writeFileSync(join(dir, k), v);
  return dir;
}

describe.skipIf(!!why)('RUN', () => {
  it('runs commands, commits their changes as a layer, writes BuildKit history, caches', async () => {
    const dir = await ctxWith('FROM scratch\nADD rootfs.tar /\nARG V=1\nRUN echo hi $V > /x && mkdir -p /d && echo y > /d/y\nRUN rm /bin/ls\nUSER app\nWORKDIR /home/app/w\nRUN touch made\n');
    const store = tmp('tsb-store-');
    const r = await cli(['build', dir, '-t', 'run:1', '--store', store, '--progress', 'plain']);
    expect(r.code, r.stderr).toBe(0);
    const img = readImageFromStore(store, 'run:1');
    expect(img.fs.readFileSync('/x')!.toString()).toBe('hi 1\n');
    const l = await listing(img.fs);
    expect(l).toContain('/d dir 0755 0:0');
    expect(l.some((x) => x.startsWith('/bin/ls '))).toBe(false); // whiteout applied
    expect(l.find((x) => x.startsWith('/home/app/w/made '))).toMatch(/ file 0644 1000:1000/);
    const hist = img.config.history.map((h: any) => h.created_by);
    expect(hist).toContain('RUN |1 V=1 /bin/sh -c echo hi $V > /x && mkdir -p /d && echo y > /d/y # buildkit');
    const again = await cli(['build', dir, '-t', 'run:1', '--store', store, '--progress', 'plain']);
    expect((again.stderr.match(/CACHED/g) ?? []).length).toBe(4);
    const changed = await cli(['build', dir, '-t', 'run:1', '--store', store, '--progress', 'plain', '--build-arg', 'V=2']);
    expect(changed.stderr).toContain('cache miss: ARG V 1 → 2');
  });

  it('a failing RUN exits 1 with the command, exit code and output tail, pointing at the line', async () => {
    const dir = await ctxWith('FROM scratch\nADD rootfs.tar /\nRUN echo before-failing && exit 3\n');
    const r = await cli(['build', dir, '-t', 'run:2', '--store', tmp('tsb-store-'), '--progress', 'plain']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('did not complete successfully: exit code: 3');
    expect(r.stderr).toContain('Dockerfile:3:1');
    expect(r.stderr).toContain('before-failing');
  });

  it('RUN heredocs, cache mounts, secrets and build args as env', async () => {
    const secret = join(tmp(), 's.txt');
    writeFileSync(secret, 'TOPSECRET');
    const dir = await ctxWith([
      'FROM scratch', 'ADD rootfs.tar /', 'ARG GREETING=hello',
      'RUN <<EOF', 'echo "$GREETING from heredoc" > /h.txt', 'EOF',
      'RUN --mount=type=cache,target=/c echo cached > /c/f',
      'RUN --mount=type=cache,target=/c cat /c/f > /from-cache',
      'RUN --mount=type=secret,id=tok cat /run/secrets/tok > /leak-check && test -s /leak-check && rm /leak-check',
      'RUN --mount=type=bind,source=.,target=/ctx cp /ctx/data.txt /copied.txt',
    ].join('\n') + '\n', { 'data.txt': 'DATA' });
    const store = tmp('tsb-store-');
    const r = await cli(['build', dir, '-t', 'run:3', '--store', store, '--progress', 'plain', '--secret', `id=tok,src=${secret}`]);
    expect(r.code, r.stderr).toBe(0);
    const img = readImageFromStore(store, 'run:3');
    expect(img.fs.readFileSync('/h.txt')!.toString()).toBe('hello from heredoc\n');
    expect(img.fs.readFileSync('/from-cache')!.toString()).toBe('cached\n');
    expect(img.fs.readFileSync('/copied.txt')!.toString()).toBe('DATA');
    const l = await listing(img.fs);
    expect(l.some((x) => x.startsWith('/run/secrets'))).toBe(false);
    expect(l.some((x) => x.startsWith('/c '))).toBe(false);
  });

  it('ONBUILD triggers run when a later build uses the image', async () => {
    const store = tmp('tsb-store-');
    const base = await ctxWith('FROM scratch\nADD rootfs.tar /\nONBUILD RUN echo triggered > /onbuild.txt\n');
    expect((await cli(['build', base, '-t', 'onb:1', '--store', store, '--progress', 'plain'])).code).toBe(0);
    const child = tmp();
    writeFileSync(join(child, 'Dockerfile'), 'FROM onb:1\nRUN cat /onbuild.txt\n');
    const r = await cli(['build', child, '-t', 'onb:2', '--store', store, '--progress', 'plain']);
    expect(r.code, r.stderr).toBe(0);
    const img = readImageFromStore(store, 'onb:2');
    expect(img.fs.readFileSync('/onbuild.txt')!.toString()).toBe('triggered\n');
    expect(img.config.config.OnBuild ?? null).toBeNull();
  });

  it('independent stages run in parallel and one failure cancels the others', async () => {
    // Each stage records when its RUN started and ended (seconds); run in parallel, the two
    // intervals overlap, which sequential stages never do (the second starts after the first ends).
    const dir = await ctxWith([
      'FROM scratch AS base', 'ADD rootfs.tar /',
      'FROM base AS slow1', 'RUN date +%s > /s1 && sleep 3 && date +%s > /e1',
      'FROM base AS slow2', 'RUN date +%s > /s2 && sleep 3 && date +%s > /e2',
      'FROM base', 'COPY --from=slow1 /s1 /e1 /t/', 'COPY --from=slow2 /s2 /e2 /t/',
    ].join('\n') + '\n');
    const store = tmp('tsb-store-');
    const r = await cli(['build', dir, '-t', 'par:1', '--store', store, '--progress', 'plain']);
    expect(r.code, r.stderr).toBe(0);
    const img = readImageFromStore(store, 'par:1');
    const n = (p: string) => Number(img.fs.readFileSync(p)!.toString().trim());
    expect(n('/t/s2')).toBeLessThan(n('/t/e1'));
    expect(n('/t/s1')).toBeLessThan(n('/t/e2'));
    const failing = await ctxWith([
      'FROM scratch AS base', 'ADD rootfs.tar /',
      'FROM base AS slow', 'RUN sleep 60',
      'FROM base AS bad', 'RUN sleep 1 && exit 7',
      'FROM base', 'COPY --from=slow /etc/passwd /a', 'COPY --from=bad /etc/passwd /b',
    ].join('\n') + '\n');
    const t1 = Date.now();
    const f = await cli(['build', failing, '-t', 'par:2', '--store', store, '--progress', 'plain']);
    expect(f.code).toBe(1);
    expect(f.stderr).toContain('exit code: 7');
    expect(Date.now() - t1).toBeLessThan(30_000);
  });

  it('a writable bind of the context never writes to the host, and its content keys the step', async () => {
    const dir = await ctxWith('FROM scratch\nADD rootfs.tar /\nRUN --mount=type=bind,target=/ctx,rw echo scribble > /ctx/a.txt && cat /ctx/a.txt > /seen\nRUN --mount=type=bind,source=a.txt,target=/m/a.txt cat /m/a.txt > /copy\n', { 'a.txt': 'orig\n' });
    const store = tmp('tsb-store-');
    const r = await cli(['build', dir, '-t', 'bind:1', '--store', store, '--progress', 'plain']);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('orig\n');
    expect(readImageFromStore(store, 'bind:1').fs.readFileSync('/seen')!.toString()).toBe('scribble\n');
    writeFileSync(join(dir, 'a.txt'), 'changed\n');
    const again = await cli(['build', dir, '-t', 'bind:1', '--store', store, '--progress', 'plain']);
    expect(again.code).toBe(0);
    expect(readImageFromStore(store, 'bind:1').fs.readFileSync('/copy')!.toString()).toBe('changed\n');
  });

  it('the build\'s --pids-limit and --memory apply to every RUN; an OOM kill names the limit', async () => {
    const dir = await ctxWith('FROM scratch\nADD rootfs.tar /\nRUN cat /sys/fs/cgroup/pids/pids.max 2>/dev/null > /pids || echo none > /pids; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 2 & done; wait\n');
    const store = tmp('tsb-store-');
    const limited = await cli(['build', dir, '-t', 'lim:1', '--store', store, '--progress', 'plain', '--pids-limit', '8']);
    expect(limited.code).toBe(1); // the 9th process cannot fork
    expect(limited.stderr).toMatch(/fork|Resource temporarily unavailable|can't fork/i);
    const oom = await ctxWith('FROM scratch\nADD rootfs.tar /\nRUN head -c 300m /dev/zero | tail -c 200m > /dev/null\n');
    const r = await cli(['build', oom, '-t', 'oom:1', '--store', store, '--progress', 'plain', '--memory', '32m']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/memory limit 33554432 bytes/);
    const bad = await cli(['build', oom, '--store', store, '--memory', 'lots']);
    expect(bad.code).toBe(2);
  });

  it('RUN --security=insecure needs --allow security.insecure', async () => {
    const dir = await ctxWith('FROM scratch\nADD rootfs.tar /\nRUN --security=insecure grep CapEff /proc/self/status > /caps\n');
    const store = tmp('tsb-store-');
    const refused = await cli(['build', dir, '-t', 'ins:1', '--store', store, '--progress', 'plain']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('TSB4034');
    expect(refused.stderr).toContain('Dockerfile:3:1');
    const allowed = await cli(['build', dir, '-t', 'ins:1', '--store', store, '--progress', 'plain', '--allow', 'security.insecure']);
    expect(allowed.code, allowed.stderr).toBe(0);
    // insecure = every capability tsbuild itself holds (this machine's bounding set lacks a few).
    const host = /CapBnd:\s+([0-9a-f]+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1];
    expect(readImageFromStore(store, 'ins:1').fs.readFileSync('/caps')!.toString().trim()).toBe(`CapEff:\t${host}`);
  });

  it('cache mounts: sharing=locked serialises parallel steps, sharing=private gives a busy cache\'s second user its own dir', async () => {
    const step = (sharing: string, tag: string) => `RUN --mount=type=cache,id=c-${sharing},target=/c,sharing=${sharing} echo start-${tag} >> /c/log && ls /c > /seen-${tag} && sleep 1 && echo end-${tag} >> /c/log && cp /c/log /log-${tag}`;
    const df = (sharing: string) => `FROM scratch AS base\nADD rootfs.tar /\nFROM base AS a\n${step(sharing, 'a')}\nFROM base AS b\n${step(sharing, 'b')}\nFROM base\nCOPY --from=a /log-a /seen-a /\nCOPY --from=b /log-b /seen-b /\n`;
    const store = tmp('tsb-store-');
    const locked = await ctxWith(df('locked'));
    const r = await cli(['build', locked, '-t', 'lk:1', '--store', store, '--progress', 'plain']);
    expect(r.code, r.stderr).toBe(0);
    const fs = readImageFromStore(store, 'lk:1').fs;
    const logs = [fs.readFileSync('/log-a')!.toString(), fs.readFileSync('/log-b')!.toString()].sort((x, y) => x.length - y.length);
    // One ran entirely before the other: the shorter log is a prefix of the longer one.
    expect(logs[0]).toMatch(/^start-(a|b)\nend-\1\n$/);
    expect(logs[1]!.startsWith(logs[0]!)).toBe(true);
    expect(logs[1]!.split('\n').filter(Boolean)).toHaveLength(4);
    const priv = await ctxWith(df('private'));
    const p = await cli(['build', priv, '-t', 'pv:1', '--store', store, '--progress', 'plain']);
    expect(p.code, p.stderr).toBe(0);
    const pf = readImageFromStore(store, 'pv:1').fs;
    // Both ran at once (parallel stages), each saw only its own log.
    expect(pf.readFileSync('/log-a')!.toString()).toBe('start-a\nend-a\n');
    expect(pf.readFileSync('/log-b')!.toString()).toBe('start-b\nend-b\n');
  });
});
