/** Credentials (docker config.json, credential helpers), proxy environment, multi-platform indexes. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import { join } from 'node:path';
import { getCredentials, removeCredentials, saveCredentials } from '../../src/oci/auth.js';
import { proxyFor } from '../../src/oci/http.js';
import { parseChallenge, pullImage, pushImage, RegistryClient } from '../../src/oci/registry.js';
import { canonicalIndex, MediaType, parsePlatform, readImage, writeImage } from '../../src/oci/image.js';
import { distributionImage } from '../../src/oci/export.js';
import { registryMissing, selfSignedCert, startRegistry, type TestRegistry } from '../helpers/registry.js';
import { makeImage, tempStore, type TempStore } from './fixtures.js';

let t: TempStore;
beforeAll(async () => { t = await tempStore(); });
afterAll(async () => { await t.cleanup(); });

describe('docker config.json', () => {
  it('reads auths (docker.io under index.docker.io/v1/), saves and removes', async () => {
    const f = join(t.dir, 'cfg1.json');
    await writeFile(f, JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth: Buffer.from('hub:pw').toString('base64') }, 'reg.example:5000': { auth: Buffer.from('u:p:with:colons').toString('base64') } } }));
    expect(await getCredentials('docker.io', { authFile: f })).toEqual({ username: 'hub', password: 'pw' });
    expect(await getCredentials('reg.example:5000', { authFile: f })).toEqual({ username: 'u', password: 'p:with:colons' });
    expect(await getCredentials('other.example', { authFile: f })).toBeUndefined();
    await saveCredentials('new.example', { username: 'n', password: 'q' }, { authFile: f });
    expect(await getCredentials('new.example', { authFile: f })).toEqual({ username: 'n', password: 'q' });
    expect(await removeCredentials('new.example', { authFile: f })).toBe(true);
    expect(await removeCredentials('new.example', { authFile: f })).toBe(false);
    expect(JSON.parse(await readFile(f, 'utf8')).auths['reg.example:5000']).toBeDefined();
    await writeFile(f, '{not json');
    await expect(getCredentials('x.example', { authFile: f })).rejects.toMatchObject({ code: 'TSB6150' });
  });

  it('uses credsStore / credHelpers through the docker-credential protocol', async () => {
    const bin = join(t.dir, 'bin');
    await mkdir(bin, { recursive: true });
    const db = join(t.dir, 'helper-db');
    await writeFile(db, '');
    // A real helper program speaking the protocol: get/store/erase on stdin, JSON on stdout.
    await writeFile(join(bin, 'docker-credential-testhelper'), `#!/bin/sh
db=${db}
case "$1" in
  get) read host; line=$(grep "^$host " "$db" | tail -1); if [ -z "$line" ]; then echo "credentials not found in native keychain"; exit 1; fi
       set -- $line; printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}' "$1" "$2" "$3";;
  store) input=$(cat); u=$(echo "$input" | sed 's/.*"Username":"\\([^"]*\\)".*/\\1/'); s=$(echo "$input" | sed 's/.*"Secret":"\\([^"]*\\)".*/\\1/'); h=$(echo "$input" | sed 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/'); echo "$h $u $s" >> "$db";;
  erase) read host; grep -v "^$host " "$db" > "$db.new"; mv "$db.new" "$db";;
esac
`);
    await chmod(join(bin, 'docker-credential-testhelper'), 0o755);
    const env = { ...process.env, PATH: `${bin}:${process.env.PATH}` };
    const f = join(t.dir, 'cfg2.json');
    await writeFile(f, JSON.stringify({ credsStore: 'testhelper', credHelpers: { 'special.example': 'missinghelper' } }));
    expect(await getCredentials('reg.example', { authFile: f, env })).toBeUndefined();
    const r = await saveCredentials('reg.example', { username: 'alice', password: 'pw1' }, { authFile: f, env });
    expect(r.where).toBe('docker-credential-testhelper');
    expect(await getCredentials('reg.example', { authFile: f, env })).toEqual({ username: 'alice', password: 'pw1' });
    expect(await removeCredentials('reg.example', { authFile: f, env })).toBe(true);
    expect(await getCredentials('reg.example', { authFile: f, env })).toBeUndefined();
    await expect(getCredentials('special.example', { authFile: f, env })).rejects.toMatchObject({ code: 'TSB6151' });
  });
});

describe('WWW-Authenticate and proxy settings', () => {
  it('parses challenges', () => {
    expect(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"')).toEqual({
      scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' },
    });
    expect(parseChallenge('Basic realm="x"')).toEqual({ scheme: 'basic', params: { realm: 'x' } });
  });
  it('honours HTTP(S)_PROXY and NO_PROXY, never for loopback', () => {
    const env = { HTTPS_PROXY: 'http://proxy:3128', HTTP_PROXY: 'proxy2:8080', NO_PROXY: 'internal.example,.corp' };
    expect(proxyFor(new URL('https://registry-1.docker.io/v2/'), env)?.host).toBe('proxy:3128');
    expect(proxyFor(new URL('http://plain.example/v2/'), env)?.host).toBe('proxy2:8080');
    expect(proxyFor(new URL('https://internal.example/v2/'), env)).toBeUndefined();
    expect(proxyFor(new URL('https://a.b.corp/v2/'), env)).toBeUndefined();
    expect(proxyFor(new URL('http://127.0.0.1:5000/v2/'), env)).toBeUndefined();
    expect(proxyFor(new URL('http://localhost:5000/v2/'), env)).toBeUndefined();
  });
  it('talks HTTPS except to loopback, --insecure-registry hosts and TSBUILD_INSECURE_REGISTRIES (read by the client, so build FROM/--push get it too)', () => {
    const env = { TSBUILD_INSECURE_REGISTRIES: 'envreg.example:5000, other.example' };
    expect(new RegistryClient('reg.example:5000', { env }).base.href).toBe('https://reg.example:5000/');
    expect(new RegistryClient('reg.example:5000', { env, insecureRegistries: ['reg.example:5000'] }).base.href).toBe('http://reg.example:5000/');
    expect(new RegistryClient('envreg.example:5000', { env }).base.href).toBe('http://envreg.example:5000/');
    expect(new RegistryClient('envreg.example:5001', { env }).base.href).toBe('https://envreg.example:5001/');
    expect(new RegistryClient('127.0.0.1:5000', { env: {} }).base.protocol).toBe('http:');
    expect(new RegistryClient('docker.io', { env: {} }).base.href).toBe('https://registry-1.docker.io/');
  });
});

const missing = registryMissing();
describe.skipIf(!!missing)('through a proxy, and multi-platform indexes', () => {
  let reg: TestRegistry;
  beforeAll(async () => { reg = await startRegistry(); });
  afterAll(async () => { await reg?.stop(); });

  it('pushes and pulls through an HTTP proxy named by HTTP_PROXY', async () => {
    // A real forwarding proxy: absolute-URI requests are sent on to the registry.
    let proxied = 0;
    const proxy = http.createServer((req, res) => {
      proxied++;
      const u = new URL(req.url!);
      const up = http.request({ host: '127.0.0.1', port: reg.port, path: u.pathname + u.search, method: req.method, headers: { ...req.headers, host: `127.0.0.1:${reg.port}` } }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    const pport = await new Promise<number>((r) => proxy.listen(0, '127.0.0.1', () => r((proxy.address() as net.AddressInfo).port)));
    try {
      const env = { ...process.env, HTTP_PROXY: `http://127.0.0.1:${pport}`, NO_PROXY: '' };
      const host = `registry.proxied.test:${reg.port}`; // not resolvable: only the proxy can reach it
      const d = await makeImage(t.store, { layers: [{ 'px.txt': 'proxied' }] });
      const dist = await distributionImage(t.store, await readImage(t.store, d), {});
      await pushImage(t.store, dist, `${host}/px/img:1`, { env, insecureRegistries: [host] });
      const t2 = await tempStore();
      try {
        const p = await pullImage(t2.store, `${host}/px/img:1`, { env, insecureRegistries: [host] });
        expect(p.descriptor.digest).toBe(dist.digest);
      } finally { await t2.cleanup(); }
      expect(proxied).toBeGreaterThan(5);
      await expect(pullImage(t.store, `${host}/px/img:1`, { insecureRegistries: [host], attempts: 1 })).rejects.toMatchObject({ code: 'TSB6145' });
    } finally {
      proxy.closeAllConnections();
      proxy.close();
    }
  });

  it('pushes an index and pulls the asked platform from it', async () => {
    const amd = await makeImage(t.store, { layers: [{ 'arch.txt': 'amd64' }] });
    const l = (await readImage(t.store, amd)).manifest.layers;
    const armCfg = { architecture: 'arm64', os: 'linux', variant: 'v8', rootfs: { type: 'layers' as const, diff_ids: [(await readImage(t.store, amd)).config.rootfs.diff_ids[0]!] } };
    const arm = await writeImage(t.store, { config: armCfg, layers: l });
    const amdD = await distributionImage(t.store, await readImage(t.store, amd), {});
    const armD = await distributionImage(t.store, await readImage(t.store, arm), {});
    const idxBytes = canonicalIndex({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [
      { ...amdD, platform: { architecture: 'amd64', os: 'linux' } }, { ...armD, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } }] });
    const put = await t.store.blobs.put(idxBytes);
    const idx = { mediaType: MediaType.OCI_INDEX, digest: put.digest, size: put.size };
    await pushImage(t.store, idx, `${reg.host}/multi/img:1`);
    const t2 = await tempStore();
    try {
      const a = await pullImage(t2.store, `${reg.host}/multi/img:1`);
      expect(a).toMatchObject({ indexDigest: idx.digest, descriptor: { digest: amdD.digest } });
      const b = await pullImage(t2.store, `${reg.host}/multi/img:1`, { platform: parsePlatform('linux/arm64') });
      expect(b.descriptor.digest).toBe(armD.digest);
      await expect(pullImage(t2.store, `${reg.host}/multi/img:1`, { platform: parsePlatform('linux/ppc64le') })).rejects.toMatchObject({ code: 'TSB6103' });
      // Pinned by the index digest, the image resolves from the store.
      expect((await readImage(t2.store, `${reg.host}/multi/img@${idx.digest}`)).descriptor.digest).toBe(amdD.digest);
    } finally { await t2.cleanup(); }
  });
});

describe.skipIf(!!missing)('HTTP failures are retried or reported with their own code', () => {
  let reg: TestRegistry;
  let proxy: http.Server;
  let mode: { status: number; times: number; seen: number } = { status: 0, times: 0, seen: 0 };
  let env: NodeJS.ProcessEnv;
  const host = () => `faulty.registry.test:${reg.port}`;
  beforeAll(async () => {
    reg = await startRegistry();
    // A forwarding proxy that answers the first `times` requests with `status` instead.
    proxy = http.createServer((req, res) => {
      mode.seen++;
      if (mode.times > 0) {
        mode.times--;
        res.writeHead(mode.status, { 'Content-Type': 'application/json', 'Retry-After': '0' });
        res.end(JSON.stringify({ errors: [{ code: mode.status === 429 ? 'TOOMANYREQUESTS' : 'DENIED', message: `injected ${mode.status}` }] }));
        req.resume();
        return;
      }
      const u = new URL(req.url!);
      const up = http.request({ host: '127.0.0.1', port: reg.port, path: u.pathname + u.search, method: req.method, headers: { ...req.headers, host: `127.0.0.1:${reg.port}` } }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    const pport = await new Promise<number>((r) => proxy.listen(0, '127.0.0.1', () => r((proxy.address() as net.AddressInfo).port)));
    env = { ...process.env, HTTP_PROXY: `http://127.0.0.1:${pport}`, NO_PROXY: '' };
    const d = await makeImage(t.store, { layers: [{ 'f.txt': 'faults' }] });
    await pushImage(t.store, d, `${reg.host}/faulty/img:1`);
  });
  afterAll(async () => { proxy?.closeAllConnections(); proxy?.close(); await reg?.stop(); });

  const pull = async () => {
    const t2 = await tempStore();
    try { return await pullImage(t2.store, `${host()}/faulty/img:1`, { env, insecureRegistries: [host()], attempts: 3 }); } finally { await t2.cleanup(); }
  };

  it('retries 503 and 429 with backoff, then succeeds', async () => {
    mode = { status: 503, times: 2, seen: 0 };
    await expect(pull()).resolves.toMatchObject({ name: expect.stringContaining('faulty/img:1') });
    expect(mode.seen).toBeGreaterThan(2);
    mode = { status: 429, times: 1, seen: 0 };
    await expect(pull()).resolves.toBeDefined();
  });

  it('gives up with TSB6144 (5xx), TSB6143 (429), TSB6141 (403), carrying the registry message', async () => {
    for (const [status, code] of [[500, 'TSB6144'], [429, 'TSB6143'], [403, 'TSB6141']] as const) {
      mode = { status, times: 100, seen: 0 };
      let err: unknown;
      try { await pull(); } catch (e) { err = e; }
      expect(err, String(status)).toMatchObject({ code, details: [expect.stringContaining(`injected ${status}`)] });
    }
    mode = { status: 0, times: 0, seen: 0 };
  });
});

describe.skipIf(!!registryMissing('tls'))('HTTPS registry through a CONNECT proxy', () => {
  let reg: TestRegistry;
  let proxy: http.Server;
  let pport = 0;
  let cert = '';
  let connects = 0;
  const name = 'registry.tls.test';
  beforeAll(async () => {
    const c = selfSignedCert(t.dir, name);
    cert = c.cert;
    reg = await startRegistry({ tls: c });
    proxy = http.createServer((_req, res) => { res.writeHead(405); res.end(); });
    proxy.on('connect', (req, client: net.Socket, head: Buffer) => {
      // Only the registry's name is tunnelled, to the registry's loopback port.
      if (!req.url?.startsWith(`${name}:`)) { client.end('HTTP/1.1 403 Forbidden\r\n\r\n'); return; }
      connects++;
      const up = net.connect(reg.port, '127.0.0.1', () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) up.write(head);
        up.pipe(client);
        client.pipe(up);
      });
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
    });
    pport = await new Promise<number>((r) => proxy.listen(0, '127.0.0.1', () => r((proxy.address() as net.AddressInfo).port)));
  });
  afterAll(async () => { proxy?.closeAllConnections(); proxy?.close(); await reg?.stop(); });

  it('verifies the certificate against the trusted CAs (SSL_CERT_FILE) and round-trips', async () => {
    const host = `${name}:${reg.port}`;
    const env = { ...process.env, HTTPS_PROXY: `http://127.0.0.1:${pport}`, NO_PROXY: '', SSL_CERT_FILE: cert };
    const d = await makeImage(t.store, { layers: [{ 'tls.txt': 'over tls' }] });
    const r = await pushImage(t.store, d, `${host}/tls/img:1`, { env });
    const t2 = await tempStore();
    try {
      const p = await pullImage(t2.store, `${host}/tls/img:1`, { env });
      expect(p.descriptor.digest).toBe(r.digest);
      // Kept-alive tunnels: far fewer CONNECTs than requests (push + pull make ~15 requests).
      expect(connects).toBeGreaterThan(0);
      expect(connects).toBeLessThanOrEqual(5);
      // Without the CA the certificate is refused, with a hint about trust.
      const untrusted = { ...process.env, HTTPS_PROXY: `http://127.0.0.1:${pport}`, NO_PROXY: '', SSL_CERT_FILE: '/nonexistent' };
      await expect(pullImage(t2.store, `${host}/tls/img:1`, { env: untrusted, attempts: 1 })).rejects.toMatchObject({ code: 'TSB6145', hint: expect.stringContaining('not trusted') });
    } finally { await t2.cleanup(); }
  });
});
