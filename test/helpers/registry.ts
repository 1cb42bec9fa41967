/**
 * Shared test helper: a real registry (Debian's `docker-registry`, distribution 2.x) on 127.0.0.1 with
 * a random free port, in one of three modes:
 *   none    anonymous push/pull
 *   basic   htpasswd (bcrypt via `htpasswd -Bbn`, apache2-utils)
 *   token   Bearer tokens from a tiny token server (node:http, 127.0.0.1) signing RS256 JWTs with a
 *           key made here by `openssl`; the registry trusts its self-signed cert (rootcertbundle)
 *           and the token carries it in `x5c`.
 * Usage:
 *   const why = registryMissing(); if (why) skip…
 *   const reg = await startRegistry({ auth: 'basic' }); … reg.host … await reg.stop();
 * Each registry has its own temp storage, removed by stop().
 * The token server runs in the calling process: never block its event loop while a client talks to
 * the registry (use async execFile, not execFileSync, for skopeo).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createSign, randomUUID, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export function registryMissing(mode: 'none' | 'basic' | 'token' | 'tls' = 'none'): string | undefined {
  if (!existsSync(REGISTRY_BIN)) return `${REGISTRY_BIN} is missing (apt-get install docker-registry): skipping registry tests`;
  const need = mode === 'basic' ? 'htpasswd' : mode === 'token' || mode === 'tls' ? 'openssl' : undefined;
  if (need) {
    try { execFileSync('sh', ['-c', `command -v ${need}`], { stdio: 'ignore' }); } catch {
      return `${need} is missing (apt-get install ${need === 'htpasswd' ? 'apache2-utils' : 'openssl'}): skipping ${mode} registry tests`;
    }
  }
  return undefined;
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` (use as the reference domain: tsbuild talks plain HTTP to loopback). */
  host: string;
  port: number;
  auth: 'none' | 'basic' | 'token';
  username: string;
  password: string;
  /** Token mode: how many tokens the token server issued (to assert the flow ran). */
  tokensIssued(): number;
  /** Storage root (to inspect or corrupt in tests). */
  storage: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  auth?: 'none' | 'basic' | 'token';
  /** Serve HTTPS with this PEM certificate and key (paths). */
  tls?: { cert: string; key: string };
  username?: string;
  password?: string;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => res(port));
    });
  });
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

async function startTokenServer(dir: string, service: string, issuer: string, user: string, pass: string): Promise<{ url: string; certPath: string; close: () => Promise<void>; count: () => number }> {
  const keyPath = join(dir, 'token.key');
  const certPath = join(dir, 'token.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=tsbuild-test-token'], { stdio: 'ignore' });
  const key = createPrivateKey(await readFile(keyPath));
  const certDer = new X509Certificate(await readFile(certPath)).raw;
  let issued = 0;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const auth = req.headers.authorization ?? '';
    const ok = auth === `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
    if (url.pathname !== '/token' || !ok) {
      res.writeHead(401, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] }));
      return;
    }
    const access = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean).map((s) => {
      const [type, ...rest] = s.split(':');
      const actions = rest.pop() ?? '';
      return { type, name: rest.join(':'), actions: actions.split(',').filter(Boolean) };
    });
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: 'JWT', alg: 'RS256', x5c: [certDer.toString('base64')] };
    const claims = { iss: issuer, sub: user, aud: url.searchParams.get('service') ?? service, exp: now + 600, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const sig = createSign('RSA-SHA256').update(input).sign(key);
    issued++;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ token: `${input}.${b64url(sig)}`, expires_in: 600, issued_at: new Date().toISOString() }));
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
  return {
    url: `http://127.0.0.1:${port}/token`, certPath,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
    count: () => issued,
  };
}

async function waitUp(port: number, child: ChildProcess, log: () => string, tls = false): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${log()}`);
    const up = await new Promise<boolean>((r) => {
      const req = tls
        ? new net.Socket().connect(port, '127.0.0.1', () => { req.destroy(); r(true); })
        : http.get({ host: '127.0.0.1', port, path: '/v2/', agent: false }, (res) => { res.resume(); r(true); });
      req.on('error', () => r(false));
      req.setTimeout(1000, () => { req.destroy(); r(false); });
    });
    if (up) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not start on port ${port}: ${log()}`);
}

export async function startRegistry(opts: StartOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? 'none';
  const username = opts.username ?? 'tester';
  const password = opts.password ?? 's3cret-pass';
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-registry-'));
  const storage = join(dir, 'storage');
  const port = await freePort();
  let authYaml = '';
  let token: Awaited<ReturnType<typeof startTokenServer>> | undefined;
  if (auth === 'basic') {
    const line = execFileSync('htpasswd', ['-Bbn', username, password], { encoding: 'utf8' }).trim();
    await writeFile(join(dir, 'htpasswd'), `${line}\n`);
    authYaml = `auth:\n  htpasswd:\n    realm: tsbuild-test\n    path: ${join(dir, 'htpasswd')}\n`;
  } else if (auth === 'token') {
    token = await startTokenServer(dir, 'tsbuild-test-registry', 'tsbuild-test-issuer', username, password);
    authYaml = `auth:\n  token:\n    realm: ${token.url}\n    service: tsbuild-test-registry\n    issuer: tsbuild-test-issuer\n    rootcertbundle: ${token.certPath}\n`;
  }
  const config = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: 127.0.0.1:${port}`,
    '  secret: tsbuild-test-secret',
    ...(opts.tls ? ['  tls:', `    certificate: ${opts.tls.cert}`, `    key: ${opts.tls.key}`] : []),
    authYaml,
  ].join('\n');
  await writeFile(join(dir, 'config.yml'), config);
  const child = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => { if (out.length < 20000) out += b.toString(); });
  child.stderr!.on('data', (b: Buffer) => { if (out.length < 20000) out += b.toString(); });
  try {
    await waitUp(port, child, () => out, !!opts.tls);
  } catch (e) {
    child.kill('SIGKILL');
    await token?.close();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    host: `127.0.0.1:${port}`, port, auth, username, password, storage,
    tokensIssued: () => token?.count() ?? 0,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      await token?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A self-signed certificate (openssl) for `dnsName`, for TLS registry tests: {cert, key} paths in `dir`. */
export function selfSignedCert(dir: string, dnsName: string): { cert: string; key: string } {
  const cert = join(dir, `${dnsName}.crt`);
  const key = join(dir, `${dnsName}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2',
    '-subj', `/CN=${dnsName}`, '-addext', `subjectAltName=DNS:${dnsName}`], { stdio: 'ignore' });
  return { cert, key };
}
