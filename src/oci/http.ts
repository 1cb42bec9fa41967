/**
 * HTTP transport for the registry client, on node:http/https (not fetch) because Node 20's fetch
 * ignores HTTP(S)_PROXY: here HTTPS_PROXY/HTTP_PROXY/NO_PROXY (and lower-case forms) are honoured
 * for non-loopback hosts — HTTPS through a CONNECT tunnel, HTTP through an absolute-URI request.
 * HTTPS verifies against Node's bundled roots plus the system bundle and NODE_EXTRA_CA_CERTS (trustedCAs).
 * Keep-alive agents so a push or pull reuses connections.
 *
 * Known gap: proxy authentication is Basic only (user:pass in the proxy URL).
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import type { Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { TsbError } from '../errors.js';

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** Buffer (retryable) or a stream (sent once). */
  body?: Buffer | Readable;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: http.IncomingMessage;
  url: URL;
}

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
const httpsAgents = new Map<string, https.Agent>();

/**
 * Trusted roots: Node's bundled Mozilla roots PLUS the system bundle (SSL_CERT_FILE, else Debian's
 * /etc/ssl/certs/ca-certificates.crt), so a CA added with update-ca-certificates is trusted as
 * docker/skopeo trust it. Node 20 has no API for the system store, hence reading the file.
 * PLUS the file NODE_EXTRA_CA_CERTS names, read here rather than left to Node: the `tsbuild`
 * command (bin/tsbuild.js) starts Node without it, to skip its ~40 ms parse at start-up.
 */
export function trustedCAs(env: NodeJS.ProcessEnv = process.env): string[] {
  const cas = [...tls.rootCertificates];
  for (const f of [env.SSL_CERT_FILE, '/etc/ssl/certs/ca-certificates.crt'].filter(Boolean) as string[]) {
    try { cas.push(readFileSync(f, 'utf8')); break; } catch { /* next */ }
  }
  // As Node treats it: a file that cannot be read adds nothing (Node only warns).
  const extra = env.NODE_EXTRA_CA_CERTS;
  if (extra) { try { cas.push(readFileSync(extra, 'utf8')); } catch { /* unreadable: ignored, as by Node */ } }
  return cas;
}

function httpsAgent(env: NodeJS.ProcessEnv = process.env): https.Agent {
  const key = `${env.SSL_CERT_FILE ?? ''}|${env.NODE_EXTRA_CA_CERTS ?? ''}`;
  let a = httpsAgents.get(key);
  if (!a) { a = new https.Agent({ keepAlive: true, maxSockets: 16, ca: trustedCAs(env) }); httpsAgents.set(key, a); }
  return a;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** The proxy URL to use for `url`, or undefined (loopback and NO_PROXY hosts go direct). */
export function proxyFor(url: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  if (isLoopback(url.hostname)) return undefined;
  const noProxy = env.NO_PROXY ?? env.no_proxy ?? '';
  const host = url.hostname.toLowerCase();
  for (const raw of noProxy.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    if (raw === '*') return undefined;
    const [h, port] = raw.split(':');
    if (port && url.port && port !== url.port) continue;
    const d = h!.replace(/^\*?\./, '');
    if (host === d || host.endsWith(`.${d}`)) return undefined;
  }
  const p = url.protocol === 'https:' ? (env.HTTPS_PROXY ?? env.https_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!p) return undefined;
  try { return new URL(p.includes('://') ? p : `http://${p}`); } catch {
    throw new TsbError('TSB6145', `the proxy setting "${p}" is not a URL`, { hint: 'fix HTTPS_PROXY / HTTP_PROXY.' });
  }
}

function proxyAuth(p: URL): Record<string, string> {
  if (!p.username) return {};
  return { 'Proxy-Authorization': `Basic ${Buffer.from(`${decodeURIComponent(p.username)}:${decodeURIComponent(p.password)}`).toString('base64')}` };
}

function tunnel(proxy: URL, target: URL, signal?: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const port = target.port || '443';
    const mod = proxy.protocol === 'https:' ? https : http;
    const req = mod.request({
      host: proxy.hostname, port: proxy.port || (proxy.protocol === 'https:' ? 443 : 80), method: 'CONNECT',
      path: `${target.hostname}:${port}`, headers: { Host: `${target.hostname}:${port}`, ...proxyAuth(proxy) }, signal,
    });
    req.on('connect', (res, socket) => {
      if (res.statusCode !== 200) { socket.destroy(); reject(new Error(`proxy CONNECT answered ${res.statusCode}`)); return; }
      resolve(socket);
    });
    req.on('error', reject);
    req.end();
  });
}

const tunnelAgents = new Map<string, https.Agent>();

/** An https.Agent whose connections are TLS over a CONNECT tunnel through `proxy` (keep-alive pooled). */
function tunnelAgent(proxy: URL, env: NodeJS.ProcessEnv = process.env): https.Agent {
  const key = `${proxy.href}|${env.SSL_CERT_FILE ?? ''}|${env.NODE_EXTRA_CA_CERTS ?? ''}`;
  let a = tunnelAgents.get(key);
  if (a) return a;
  const ca = trustedCAs(env);
  a = new https.Agent({ keepAlive: true, maxSockets: 16 });
  // Node's agent calls createConnection(options, callback) and accepts the socket through the
  // callback, so the tunnel can be asynchronous (an instance property: @types/node types it sync).
  (a as unknown as { createConnection: unknown }).createConnection = (options: https.RequestOptions & { servername?: string }, cb: (err: Error | null, s?: Socket) => void): undefined => {
    const target = new URL(`https://${options.host}:${options.port ?? 443}`);
    tunnel(proxy, target).then((sock) => {
      const secure = tls.connect({ socket: sock, servername: options.servername ?? String(options.host), ca });
      secure.once('secureConnect', () => cb(null, secure));
      secure.once('error', (e) => cb(e));
    }, (e: Error) => cb(e));
    return undefined;
  };
  tunnelAgents.set(key, a);
  return a;
}

/** One HTTP exchange (no retries, no redirects). Network failures reject with a plain Error. */
export async function httpRequest(r: HttpRequest): Promise<HttpResponse> {
  const proxy = proxyFor(r.url, r.env);
  const isHttps = r.url.protocol === 'https:';
  const headers: Record<string, string> = { 'User-Agent': 'tsbuild/0.1', ...(r.headers ?? {}) };
  if (Buffer.isBuffer(r.body)) headers['Content-Length'] = String(r.body.length);
  let options: https.RequestOptions;
  if (proxy && isHttps) {
    // Pooled tunnels: one CONNECT + TLS handshake per kept-alive connection, not per request.
    options = { host: r.url.hostname, port: r.url.port || 443, path: r.url.pathname + r.url.search, method: r.method, headers, agent: tunnelAgent(proxy, r.env), servername: r.url.hostname };
  } else if (proxy) {
    options = { host: proxy.hostname, port: proxy.port || 80, path: r.url.href, method: r.method, headers: { ...headers, Host: r.url.host, ...proxyAuth(proxy) }, agent: httpAgent };
  } else {
    options = { host: r.url.hostname.replace(/^\[|\]$/g, ''), port: r.url.port || (isHttps ? 443 : 80), path: r.url.pathname + r.url.search, method: r.method, headers, agent: isHttps ? httpsAgent(r.env) : httpAgent, ...(isHttps ? { servername: r.url.hostname } : {}) };
  }
  const mod = isHttps && !(proxy && !isHttps) ? https : http;
  return new Promise<HttpResponse>((resolve, reject) => {
    const req = (proxy && !isHttps ? http : mod).request({ ...options, ...(r.signal ? { signal: r.signal } : {}) }, (res) => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url: r.url });
    });
    req.on('error', reject);
    if (r.body === undefined) req.end();
    else if (Buffer.isBuffer(r.body)) req.end(r.body);
    else {
      r.body.on('error', (e) => req.destroy(e));
      r.body.pipe(req);
    }
  });
}

/** Read a response body to a Buffer (capped). */
export async function readBody(res: HttpResponse, limit = 16 << 20): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of res.body) {
    n += (c as Buffer).length;
    if (n > limit) {
      res.body.destroy();
      throw new TsbError('TSB6146', `registry reply from ${res.url.host} is larger than ${limit} bytes`, { hint: 'the registry is misbehaving or hostile.' });
    }
    parts.push(c as Buffer);
  }
  return Buffer.concat(parts);
}

/** Drain and discard a body so the connection can be reused. */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Where a redirect reply sends a GET or HEAD (undefined when the reply is not a redirect). */
export function redirectTarget(res: HttpResponse): URL | undefined {
  const loc = res.headers.location;
  return REDIRECTS.has(res.status) && loc ? new URL(loc, res.url) : undefined;
}

export function discard(res: HttpResponse): void {
  res.body.resume();
}
