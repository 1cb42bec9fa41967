import { chmodSync, readFileSync, symlinkSync, writeFileSync, utimesSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, listing, readImageFromStore, tmp, writeTree } from './helpers.js';

async function build(files: Record<string, string | null>, extra: string[] = [], opts: { store?: string; env?: NodeJS.ProcessEnv; setup?: (dir: string) => void } = {}) {
  const dir = tmp();
  writeTree(dir, files);
  opts.setup?.(dir);
  const store = opts.store ?? tmp('tsb-store-');
  const r = await cli(['build', dir, '-t', 'test:1', '--store', store, '--progress', 'plain', ...extra], opts.env ? { env: opts.env } : {});
  return { ...r, dir, store };
}

async function files(store: string, name = 'test:1') {
  return listing(readImageFromStore(store, name).fs);
}

describe('examples/hello (README quick start)', () => {
  it('builds and has the expected config and files', async () => {
    const store = tmp('tsb-store-');
    const r = await cli(['examples/hello', '-t', 'hello:1', '--store', store, '--progress', 'plain']);
    expect(r.stderr).toContain('COPY greeting.txt ./');
    expect(r.code).toBe(0);
    const img = readImageFromStore(store, 'hello:1');
    expect(img.config.config.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'GREETING=hello from tsbuild']);
    expect(img.config.config.WorkingDir).toBe('/app');
    expect(img.config.config.Cmd).toEqual(['/app/greeting.txt']);
    expect(img.config.history.map((h: any) => h.created_by)).toEqual([
      'LABEL org.opencontainers.image.title=hello', 'ENV GREETING=hello from tsbuild', 'WORKDIR /app',
      'COPY greeting.txt ./ # buildkit', 'CMD ["/app/greeting.txt"]',
    ]);
    const l = await listing(img.fs);
    expect(l).toContain('/app dir 0755 0:0');
    expect(l.find((x) => x.startsWith('/app/greeting.txt file 0644 0:0'))).toBeTruthy();
  });
});

describe('COPY rules', () => {
  it('a directory source copies its contents; a file goes into a dest ending in /', async () => {
    const r = await build({
      Dockerfile: 'FROM scratch\nCOPY src /app\nCOPY one.txt /dst/\nCOPY one.txt /file\n',
      'src/a.txt': 'a', 'src/sub/b.txt': 'b', 'one.txt': '1',
    });
    expect(r.code, r.stderr).toBe(0);
    const l = await files(r.store);
    const paths = l.map((x) => x.split(' ')[0]);
    expect(paths).toEqual(['/app', '/app/a.txt', '/app/sub', '/app/sub/b.txt', '/dst', '/dst/one.txt', '/file']);
  });

  it('multiple sources and wildcards land in the destination directory; empty wildcard is allowed', async () => {
    const r = await build({
      Dockerfile: 'FROM scratch\nCOPY a.txt b.txt /m/\nCOPY *.md /docs/\nCOPY nothing* /none/\n',
      'a.txt': 'a', 'b.txt': 'b', 'x.md': 'x', 'y.md': 'y', 'z.txt': 'z',
    });
    expect(r.code, r.stderr).toBe(0);
    const paths = (await files(r.store)).map((x) => x.split(' ')[0]);
    expect(paths).toEqual(['/docs', '/docs/x.md', '/docs/y.md', '/m', '/m/a.txt', '/m/b.txt']);
  });

  it('a missing literal source fails with TSB4004 pointing at the line', async () => {
    const r = await build({ Dockerfile: 'FROM scratch\n\nCOPY missing.txt /x\n' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Dockerfile:3:6: error TSB4004/);
    expect(r.stderr).toContain('> 3 | COPY missing.txt /x');
  });

  it('keeps modes, owns files by root, honours --chmod (octal and symbolic) and --chown numbers', async () => {
    const r = await build({
      Dockerfile: 'FROM scratch\nCOPY run.sh /a/\nCOPY --chmod=600 run.sh /b/\nCOPY --chmod=u-x,g+w run.sh /c/\nCOPY --chown=10:20 run.sh /d/\n',
      'run.sh': '#!/bin/sh\n',
    }, [], { setup: (d) => chmodSync(join(d, 'run.sh'), 0o755) });
    expect(r.code, r.stderr).toBe(0);
    const l = await files(r.store);
    expect(l.find((x) => x.startsWith('/a/run.sh'))).toMatch(/ file 0755 0:0 /);
    expect(l.find((x) => x.startsWith('/b/run.sh'))).toMatch(/ file 0600 0:0 /);
    expect(l.find((x) => x.startsWith('/c/run.sh'))).toMatch(/ file 0675 0:0 /);
    expect(l.find((x) => x.startsWith('/d/run.sh'))).toMatch(/ file 0755 10:20 /);
    expect(l.find((x) => x.startsWith('/d '))).toMatch(/ dir 0755 10:20/);
  });

  it('--chown names resolve in the image /etc/passwd and /etc/group', async () => {
    const r = await build({
      Dockerfile: 'FROM scratch\nCOPY etc /etc\nCOPY --chown=app:staff f /home/\nCOPY --chown=app f /home2/\n',
      'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n',
      'etc/group': 'root:x:0:\nstaff:x:50:\n', f: 'f',
    });
    expect(r.code, r.stderr).toBe(0);
    const l = await files(r.store);
    expect(l.find((x) => x.startsWith('/home/f'))).toMatch(/ 1000:50 /);
    expect(l.find((x) => x.startsWith('/home2/f'))).toMatch(/ 1000:1001 /);
    const bad = await build({ Dockerfile: 'FROM scratch\nCOPY --chown=nobody f /x\n', f: 'f' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('unable to find user nobody: the image has no /etc/passwd');
  });

  it('COPY --from a stage (by name and index), --parents, --exclude, heredoc', async () => {
    const r = await build({
      Dockerfile: [
        'FROM scratch AS one', 'COPY --chown=5:6 a /out/a', 'FROM scratch', 'COPY --from=one /out /got1', 'COPY --from=0 /out/a /got2',
        'COPY --parents x/y/z.txt /p/', 'COPY --exclude=*.log logs /logs', 'COPY <<EOF /h.txt\nhello $V\nEOF', 'COPY <<EOF /hd/\nx\nEOF',
      ].join('\n') + '\n',
      a: 'A', 'x/y/z.txt': 'z', 'logs/a.log': 'l', 'logs/keep.txt': 'k',
    });
    expect(r.code, r.stderr).toBe(0);
    const l = await files(r.store);
    const paths = l.map((x) => x.split(' ')[0]);
    expect(paths).toContain('/got1/a');
    expect(l.find((x) => x.startsWith('/got1/a'))).toMatch(/ 5:6 /); // --from keeps the source owner
    expect(paths).toContain('/got2');
    expect(paths).toContain('/p/x/y/z.txt');
    expect(paths).toContain('/logs/keep.txt');
    expect(paths).not.toContain('/logs/a.log');
    expect(paths).toContain('/h.txt');
    expect(paths).toContain('/hd/EOF');
    const img = readImageFromStore(r.store, 'test:1');
    expect(img.fs.readFileSync('/h.txt')!.toString()).toBe('hello \n');
  });

  it('a symlink source leading out of the context is refused; links inside are copied as links', async () => {
    const r = await build({ Dockerfile: 'FROM scratch\nCOPY link /x\n' }, [], { setup: (d) => symlinkSync('/etc/passwd', join(d, 'link')) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TSB4001');
    const r2 = await build({ Dockerfile: 'FROM scratch\nCOPY dir /d\nCOPY inlink /f\n', 'dir/t.txt': 't', 'real.txt': 'real' }, [], {
      setup: (d) => { symlinkSync('t.txt', join(d, 'dir/l')); symlinkSync('real.txt', join(d, 'inlink')); },
    });
    expect(r2.code, r2.stderr).toBe(0);
    const l = await files(r2.store);
    expect(l).toContain('/d/l symlink 0777 0:0 -> t.txt');
    expect(l.find((x) => x.startsWith('/f '))).toMatch(/ file 0644 /);
  });
});

describe('COPY through symlinks in the image (as BuildKit 0.25)', () => {
  it('follows links in the destination, the last one too, even dangling ones', async () => {
    const r = await build({
      Dockerfile: 'FROM scratch\nCOPY base /\nCOPY f /xb/\nCOPY f /abs/f2\nCOPY d /xb/sub/\nWORKDIR /xb/w\nCOPY f .\nCOPY f /dangle\n',
      'base/usr/xbin/.keep': '', f: 'f', 'd/g': 'g',
    }, [], { setup: (dir) => {
      symlinkSync('usr/xbin', join(dir, 'base/xb'));
      symlinkSync('/usr/xbin', join(dir, 'base/abs'));
      symlinkSync('nothing', join(dir, 'base/dangle'));
    } });
    expect(r.code, r.stderr).toBe(0);
    const paths = (await files(r.store)).map((x) => x.split(' ').slice(0, 2).join(' '));
    expect(paths).toEqual(expect.arrayContaining([
      '/usr/xbin/f file', '/usr/xbin/f2 file', '/usr/xbin/sub/g file', '/usr/xbin/w/f file', '/nothing file', '/dangle symlink', '/xb symlink',
    ]));
    expect(paths.some((p) => p.startsWith('/xb/'))).toBe(false);
  });
});

describe('.dockerignore', () => {
  it('ignored files are not in the context; ! re-includes; <Dockerfile>.dockerignore wins', async () => {
    const r = await build({
      Dockerfile: 'FROM scratch\nCOPY . /ctx\n', '.dockerignore': '*.log\nsecret\ndocs\n!docs/keep.md\n',
      'a.log': 'x', secret: 's', 'docs/keep.md': 'k', 'docs/drop.md': 'd', 'src/app.ts': 'a', 'src/b.log': 'b',
    });
    expect(r.code, r.stderr).toBe(0);
    const paths = (await files(r.store)).map((x) => x.split(' ')[0]);
    expect(paths).toEqual(['/ctx', '/ctx/.dockerignore', '/ctx/Dockerfile', '/ctx/docs', '/ctx/docs/keep.md', '/ctx/src', '/ctx/src/app.ts', '/ctx/src/b.log']);
  });
  it('COPY of an ignored file fails like a missing one', async () => {
    const r = await build({ Dockerfile: 'FROM scratch\nCOPY secret /s\n', '.dockerignore': 'secret\n', secret: 's' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TSB4004');
  });
  it('the Dockerfile-specific ignore file takes precedence', async () => {
    const dir = tmp();
    writeTree(dir, { 'build/app.Dockerfile': 'FROM scratch\nCOPY . /ctx\n', 'build/app.Dockerfile.dockerignore': 'b\nbuild\n', '.dockerignore': 'a\n', a: 'a', b: 'b' });
    const store = tmp('tsb-store-');
    const r = await cli(['build', dir, '-f', join(dir, 'build/app.Dockerfile'), '-t', 'test:1', '--store', store, '--progress', 'plain']);
    expect(r.code, r.stderr).toBe(0);
    const paths = (await files(store)).map((x) => x.split(' ')[0]);
    expect(paths).toEqual(['/ctx', '/ctx/.dockerignore', '/ctx/a']);
  });
});

describe('config instructions', () => {
  it('writes Docker-compatible config and history', async () => {
    const r = await build({
      Dockerfile: [
        'FROM scratch', 'ARG V=1.0', 'ENV A=b C="d e"', 'LABEL x=$V', 'EXPOSE 80 53/udp', 'VOLUME /data', 'USER 1000:1000',
        'WORKDIR rel', 'WORKDIR /abs', 'WORKDIR sub', 'STOPSIGNAL SIGKILL', 'SHELL ["/bin/bash", "-c"]',
        'HEALTHCHECK --interval=5m --timeout=3s --retries=3 CMD curl -f http://localhost/', 'ENTRYPOINT ["/bin/app"]', 'ONBUILD RUN echo hi', 'MAINTAINER me',
      ].join('\n') + '\n',
    });
    expect(r.code, r.stderr).toBe(0);
    const c = readImageFromStore(r.store, 'test:1').config;
    expect(c.config.Env).toContain('A=b');
    expect(c.config.Env).toContain('C=d e');
    expect(c.config.Labels).toEqual({ x: '1.0' });
    expect(c.config.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {} });
    expect(c.config.Volumes).toEqual({ '/data': {} });
    expect(c.config.User).toBe('1000:1000');
    expect(c.config.WorkingDir).toBe('/abs/sub');
    expect(c.config.StopSignal).toBe('SIGKILL');
    expect(c.config.Shell).toEqual(['/bin/bash', '-c']);
    expect(c.config.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'curl -f http://localhost/'], Interval: 300e9, Timeout: 3e9, Retries: 3 });
    expect(c.config.Entrypoint).toEqual(['/bin/app']);
    expect(c.config.Cmd).toBeUndefined();
    expect(c.config.OnBuild).toEqual(['RUN echo hi']);
    expect(c.author).toBe('me');
    const hist = c.history.map((h: any) => h.created_by);
    expect(hist).toContain('ARG V=1.0');
    expect(hist).toContain('EXPOSE [53/udp 80/tcp]');
    expect(hist).toContain('VOLUME [/data]');
    expect(hist).toContain('WORKDIR /rel');
    expect(hist).toContain('SHELL [/bin/bash -c]');
    expect(hist).toContain(`HEALTHCHECK &{["CMD-SHELL" "curl -f http://localhost/"] "5m0s" "3s" "0s" "0s" '\\x03'}`);
    expect(hist).toContain('ENTRYPOINT ["/bin/app"]');
    // WORKDIR made directories owned by USER.
    const l = await files(r.store);
    expect(l).toContain('/abs/sub dir 0755 1000:1000');
  });
  it('CMD shell form uses the shell; ENTRYPOINT after CMD in the same stage keeps CMD', async () => {
    const r = await build({ Dockerfile: 'FROM scratch\nCMD echo hi\nENTRYPOINT ["x"]\n' });
    expect(r.code, r.stderr).toBe(0);
    const c = readImageFromStore(r.store, 'test:1').config;
    expect(c.config.Cmd).toEqual(['/bin/sh', '-c', 'echo hi']);
    expect(c.config.Entrypoint).toEqual(['x']);
  });
  it('--label, --iidfile, --target and the unused build-arg warning', async () => {
    const iid = join(tmp(), 'iid');
    const r = await build({ Dockerfile: 'FROM scratch AS a\nLABEL s=a\nFROM scratch AS b\nLABEL s=b\n' },
      ['--label', 'k=v', '--iidfile', iid, '--target', 'a', '--build-arg', 'UNUSED=1']);
    expect(r.code, r.stderr).toBe(0);
    const img = readImageFromStore(r.store, 'test:1');
    expect(img.config.config.Labels).toEqual({ s: 'a', k: 'v' });
    expect(readFileSync(iid, 'utf8')).toBe(img.manifestDigest);
    expect(r.stderr).toContain('One or more build-args [UNUSED] were not consumed');
    const bad = await build({ Dockerfile: 'FROM scratch AS a\n' }, ['--target', 'nope']);
    expect(bad.code).toBe(2);
  });
  it('usage errors exit 2', async () => {
    const r = await cli(['build', '.', '--progress', 'fancy']);
    expect(r.code).toBe(2);
    const r2 = await cli(['build', '.', '--platform', 'linux/s390x', '--store', tmp()], { cwd: 'examples/hello' });
    expect(r2.code).toBe(2);
  });
});

describe('multi-stage', () => {
  it('builds only the stages the target needs', async () => {
    const r = await build({ Dockerfile: 'FROM scratch AS unused\nCOPY missing /x\nFROM scratch AS dep\nCOPY f /f\nFROM scratch\nCOPY --from=dep /f /g\n', f: 'f' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('missing');
    expect((await files(r.store)).map((x) => x.split(' ')[0])).toEqual(['/g']);
  });
  it('a failing stage fails the build', async () => {
    const r = await build({ Dockerfile: 'FROM scratch AS bad\nCOPY missing /x\nFROM scratch AS ok\nCOPY f /f\nFROM scratch\nCOPY --from=bad /x /x\nCOPY --from=ok /f /f\n', f: 'f' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TSB4004');
  });
  it('FROM an earlier stage and ARG in FROM', async () => {
    const r = await build({ Dockerfile: 'ARG BASE=base\nFROM scratch AS base\nENV X=1\nCOPY f /f\nFROM ${BASE}\nENV Y=2\n', f: 'f' });
    expect(r.code, r.stderr).toBe(0);
    const img = readImageFromStore(r.store, 'test:1');
    expect(img.config.config.Env).toContain('X=1');
    expect(img.config.config.Env).toContain('Y=2');
    expect(img.layers.length).toBe(1);
  });
});

describe('ADD', () => {
  it('unpacks local tar archives (gzip, bzip2, xz) into the destination', async () => {
    const { execFileSync } = await import('node:child_process');
    const r = await build({ Dockerfile: 'FROM scratch\nADD a.tar.gz /gz/\nADD a.tar.bz2 /bz/\nADD a.tar.xz /xz\nADD plain.txt /p/\n', 'plain.txt': 'p' }, [], {
      setup: (d) => {
        writeTree(join(d, 'src'), { 'in/file.txt': 'inside' });
        execFileSync('tar', ['-czf', join(d, 'a.tar.gz'), '-C', join(d, 'src'), 'in']);
        execFileSync('tar', ['-cjf', join(d, 'a.tar.bz2'), '-C', join(d, 'src'), 'in']);
        execFileSync('tar', ['-cJf', join(d, 'a.tar.xz'), '-C', join(d, 'src'), 'in']);
      },
    });
    expect(r.code, r.stderr).toBe(0);
    const paths = (await files(r.store)).map((x) => x.split(' ')[0]);
    for (const d of ['/gz', '/bz', '/xz']) expect(paths).toContain(`${d}/in/file.txt`);
    expect(paths).toContain('/p/plain.txt');
  });
  it('downloads http URLs with --checksum verified', async () => {
    const http = await import('node:http');
    const { createHash } = await import('node:crypto');
    const body = 'remote content\n';
    const server = http.createServer((req, res) => {
      if (req.url === '/file.txt') { res.writeHead(200, { 'last-modified': 'Wed, 21 Oct 2015 07:28:00 GMT' }); res.end(body); }
      else if (req.url === '/moved') { res.writeHead(302, { location: '/file.txt' }); res.end(); }
      else { res.writeHead(404); res.end(); }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const port = (server.address() as { port: number }).port;
    try {
      const sum = createHash('sha256').update(body).digest('hex');
      const r = await build({ Dockerfile: `FROM scratch\nADD --checksum=sha256:${sum} http://127.0.0.1:${port}/file.txt /dl/\n` });
      expect(r.code, r.stderr).toBe(0);
      const l = await files(r.store);
      expect(l.find((x) => x.startsWith('/dl/file.txt'))).toMatch(/ file 0600 0:0 /);
      const bad = await build({ Dockerfile: `FROM scratch\nADD --checksum=sha256:${'0'.repeat(64)} http://127.0.0.1:${port}/file.txt /dl/\n` });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('digest mismatch');
      const nf = await build({ Dockerfile: `FROM scratch\nADD http://127.0.0.1:${port}/nope /x\n` });
      expect(nf.code).toBe(1);
      // A redirect is followed (the checksum is of what it leads to).
      const moved = await build({ Dockerfile: `FROM scratch\nADD --checksum=sha256:${sum} http://127.0.0.1:${port}/moved /r/\n` });
      expect(moved.code, moved.stderr).toBe(0);
      expect((await files(moved.store)).some((x) => x.startsWith('/r/'))).toBe(true);
    } finally { server.close(); }
  });
});

describe('reproducibility', () => {
  it('the same inputs give the same image digest in different stores', async () => {
    const dir = tmp();
    writeTree(dir, { Dockerfile: 'FROM scratch\nCOPY . /app\nWORKDIR /w\n', 'a.txt': 'a', 'b/c.txt': 'c' });
    const s1 = tmp('tsb-store-'); const s2 = tmp('tsb-store-');
    const r1 = await cli(['build', dir, '-t', 'r:1', '--store', s1, '-q']);
    utimesSync(join(dir, 'a.txt'), new Date(), new Date(2020, 1, 1));
    const r2 = await cli(['build', dir, '-t', 'r:1', '--store', s2, '-q', '--build-arg', 'SOURCE_DATE_EPOCH=1000']);
    const r3 = await cli(['build', dir, '-t', 'r:1', '--store', tmp('tsb-store-'), '-q', '--build-arg', 'SOURCE_DATE_EPOCH=1000']);
    expect(r1.code).toBe(0);
    expect(r2.stdout).toBe(r3.stdout);
    expect(r2.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    const img = readImageFromStore(s2, 'r:1');
    expect(img.config.created).toBe('1970-01-01T00:16:40Z');
  });
});

describe('context from stdin', () => {
  it('reads a tar archive context from stdin', async () => {
    const { execFileSync } = await import('node:child_process');
    const dir = tmp();
    writeTree(dir, { Dockerfile: 'FROM scratch\nCOPY x /x\n', x: 'x' });
    const tar = execFileSync('tar', ['-cf', '-', '-C', dir, '.']);
    const store = tmp('tsb-store-');
    const r = await cli(['build', '-', '-t', 'test:1', '--store', store, '--progress', 'plain'], { stdin: tar });
    expect(r.code, r.stderr).toBe(0);
    expect((await files(store)).map((x) => x.split(' ')[0])).toEqual(['/x']);
  });
  it('reads a Dockerfile from stdin (no context)', async () => {
    const store = tmp('tsb-store-');
    const r = await cli(['build', '-', '-t', 'test:1', '--store', store], { stdin: 'FROM scratch\nENV A=1\n' });
    expect(r.code, r.stderr).toBe(0);
    const r2 = await cli(['build', '-', '-t', 'test:1', '--store', store], { stdin: 'FROM scratch\nCOPY x /x\n' });
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('TSB4007');
  });
});
void existsSync; void writeFileSync;

describe('progress modes', () => {
  it('json is one event per line; plain is BuildKit-style; quiet prints the id; tty draws frames', async () => {
    const files = { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'f' };
    const j = await build(files, ['--progress', 'json']);
    expect(j.code).toBe(0);
    const events = j.stderr.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['start', 'miss', 'done']));
    expect(events.find((e) => e.type === 'start' && /COPY f \/f/.test(e.name))).toBeTruthy();
    const p = await build(files);
    expect(p.stderr).toMatch(/^#1 \[1\/2\] FROM scratch$/m);
    expect(p.stderr).toMatch(/^#2 \[2\/2\] COPY f \/f$/m);
    expect(p.stderr).toMatch(/^#2 DONE \d+\.\ds$/m);
    const q = await build(files, ['-q']);
    expect(q.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(q.stderr).toBe('');
    const t = await build(files, ['--progress', 'tty']);
    expect(t.code).toBe(0);
    expect(t.stderr).toContain('[+] Building');
    expect(t.stderr).toContain('\x1b[2K');
  });
});

describe('more BuildKit 0.25 rules (from the differential cases)', () => {
  it('context links resolve as if the context were /; several files onto a non-dir path; dir onto a file fails', async () => {
    const r = await build({
      Dockerfile: 'FROM scratch\nCOPY abs /abs\nCOPY up /up\nCOPY a.txt b.txt /notadir\nCOPY etc /etc\nCOPY d /etc/hostname\n',
      'etc/hostname': 'ctx-host\n', 'a.txt': 'a', 'b.txt': 'b', 'd/x': 'x',
    }, [], { setup: (dir) => { symlinkSync('/etc/hostname', join(dir, 'abs')); symlinkSync('../../etc/hostname', join(dir, 'up')); } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('TSB4012');
    expect(r.stderr).toContain('cannot copy to non-directory: /etc/hostname');
    const ok = await build({
      Dockerfile: 'FROM scratch\nCOPY abs /abs\nCOPY up /up\nCOPY a.txt b.txt /notadir\n',
      'etc/hostname': 'ctx-host\n', 'a.txt': 'a', 'b.txt': 'b',
    }, [], { setup: (dir) => { symlinkSync('/etc/hostname', join(dir, 'abs')); symlinkSync('../../etc/hostname', join(dir, 'up')); } });
    expect(ok.code, ok.stderr).toBe(0);
    const img = readImageFromStore(ok.store, 'test:1');
    expect(img.fs.readFileSync('/abs')!.toString()).toBe('ctx-host\n');
    expect(img.fs.readFileSync('/up')!.toString()).toBe('ctx-host\n');
    expect(img.fs.readFileSync('/notadir')!.toString()).toBe('b');
  });
  it('hardlinks in the context stay hardlinks within one COPY', async () => {
    const { linkSync } = await import('node:fs');
    const r = await build({ Dockerfile: 'FROM scratch\nCOPY d /d\n', 'd/t': 'target' }, [], { setup: (dir) => linkSync(join(dir, 'd/t'), join(dir, 'd/h')) });
    expect(r.code, r.stderr).toBe(0);
    const img = readImageFromStore(r.store, 'test:1');
    const raw = [img.fs.raw('d/h')!, img.fs.raw('d/t')!];
    expect(raw.map((e) => e.type).sort()).toEqual(['file', 'hardlink']);
  });
});
