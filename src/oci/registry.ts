/**
 * Registry client (OCI distribution spec / Docker registry v2): pull, push, base-image resolution.
 *
 * - Transport: http.ts (node:http/https, proxy env honoured). HTTP only for loopback hosts and
 *   registries the user marked insecure; HTTPS with the system CAs otherwise.
 * - Auth: anonymous first; on 401 the WWW-Authenticate challenge decides — Basic (credentials from
 *   auth.ts) or Bearer (token from realm?service=&scope=, with Basic credentials when we have some,
 *   or the identity token as a refresh token). Tokens are cached per client for their lifetime.
 * - Every byte is verified: manifests against the digest asked for (or the Docker-Content-Digest
 *   header), blobs against their descriptor while streaming into the store (TSB6105/TSB6147).
 * - Pull stores layers uncompressed by diff_id (checked against config.rootfs.diff_ids, TSB6106)
 *   AND keeps the compressed blob as downloaded, remembered in store.compressed, so pushing the
 *   image anywhere later sends the same bytes and the manifest keeps its digest.
 * - Push: HEAD per blob (present → skip), cross-repository mount from a repository on the same
 *   registry that the store knows has the blob, else upload (monolithic PUT, or PATCH chunks for
 *   blobs over CHUNK_THRESHOLD), then the manifest PUT by tag.
 * - Retries with exponential backoff (and Retry-After) for network errors, 429 and 5xx.
 *
 * Codes: TSB6140 401, TSB6141 403, TSB6142 404, TSB6143 429, TSB6144 5xx, TSB6145 network/TLS,
 * TSB6146 protocol error (unexpected reply), TSB6147 manifest digest mismatch.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { TsbError, isTsbError } from '../errors.js';
import type { Descriptor, Digest, Platform, Store } from '../../store/types.js';
import {
  MediaType, isIndexType, isManifestType, layerCompression, parseJSON, pickManifest, platformMatches, platformString,
  readImage, validateConfig, validateIndex, validateManifest, lookupName, withLease, DEFAULT_PLATFORM, type ReadImage,
} from './image.js';
import { parseReference, type Reference } from './reference.js';
import { discard, httpRequest, isLoopback, readBody, redirectTarget, type HttpResponse } from './http.js';
import { getCredentials, type AuthFileOptions, type Credentials } from './auth.js';
import { compressedKey, decompressStream } from './compress.js';
import { putVerified } from './archive.js';

export const MANIFEST_ACCEPT = [MediaType.OCI_INDEX, MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST_LIST, MediaType.DOCKER_MANIFEST].join(', ');
/** Blobs larger than this are uploaded in PATCH chunks of CHUNK_SIZE. */
export const CHUNK_THRESHOLD = 64 << 20;
export const CHUNK_SIZE = 32 << 20;
const MANIFEST_LIMIT = 4 << 20;
const PARALLEL = 4;

export interface RegistryOptions extends AuthFileOptions {
  /** Hosts (host[:port]) to talk plain HTTP to (besides loopback). */
  insecureRegistries?: string[];
  signal?: AbortSignal;
  onProgress?: (ev: { detail: string; bytes?: number; total?: number }) => void;
  /** Explicit credentials (login) instead of the config file. */
  credentials?: Credentials;
  /** Max attempts for retryable failures (default 4). */
  attempts?: number;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((res, rej) => {
    const t = setTimeout(res, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); rej(new TsbError('TSB6145', 'interrupted', { cause: signal.reason })); }, { once: true });
  });
}

interface Challenge { scheme: string; params: Record<string, string> }

export function parseChallenge(h: string | undefined): Challenge | undefined {
  if (!h) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/s.exec(h);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  let x: RegExpExecArray | null;
  while ((x = re.exec(m[2]!))) params[x[1]!.toLowerCase()] = x[2] !== undefined ? x[2].replace(/\\(.)/g, '$1') : x[3]!;
  return { scheme: m[1]!.toLowerCase(), params };
}

/** Registry endpoint host for a reference domain (docker.io is served by registry-1.docker.io). */
export function registryHost(domain: string): string {
  return domain === 'docker.io' ? 'registry-1.docker.io' : domain;
}

export class RegistryClient {
  readonly base: URL;
  private token: { value: string; expires: number } | undefined;
  private basic: string | undefined;
  private challenge: Challenge | undefined;
  private creds: Credentials | undefined | null = null; // null = not looked up yet
  private readonly scopes = new Set<string>();

  constructor(readonly domain: string, private readonly opts: RegistryOptions = {}) {
    const host = registryHost(domain);
    const hostname = host.replace(/:\d+$/, '');
    // TSBUILD_INSECURE_REGISTRIES is read here too (not only by the pull/push/login flags), so
    // every path that talks to a registry — build's FROM resolution and --push included — honours it.
    const env = opts.env ?? process.env;
    const fromEnv = (env.TSBUILD_INSECURE_REGISTRIES ?? '').split(',').map((h) => h.trim()).filter(Boolean);
    const insecure = isLoopback(hostname) || [...(opts.insecureRegistries ?? []), ...fromEnv].some((h) => h === domain || h === host);
    this.base = new URL(`${insecure ? 'http' : 'https'}://${host}`);
  }

  /** Ask for these token scopes (e.g. `repository:x/y:pull,push`) when a token is fetched. */
  addScope(scope: string): void {
    if (!this.scopes.has(scope)) { this.scopes.add(scope); this.token = undefined; }
  }

  private async credentials(): Promise<Credentials | undefined> {
    if (this.creds === null) this.creds = this.opts.credentials ?? (await getCredentials(this.domain, this.opts));
    return this.creds;
  }

  private async authHeader(): Promise<Record<string, string>> {
    if (this.token && this.token.expires > Date.now()) return { Authorization: `Bearer ${this.token.value}` };
    if (this.challenge?.scheme === 'bearer') { await this.fetchToken(); return { Authorization: `Bearer ${this.token!.value}` }; }
    if (this.basic) return { Authorization: this.basic };
    return {};
  }

  private async fetchToken(): Promise<void> {
    const ch = this.challenge!;
    const realm = ch.params.realm;
    if (!realm) throw new TsbError('TSB6146', `${this.domain} asked for a Bearer token without a realm`);
    let url: URL;
    try { url = new URL(realm); } catch { throw new TsbError('TSB6146', `${this.domain} gave a token realm that is not a URL: ${realm}`); }
    if (ch.params.service) url.searchParams.set('service', ch.params.service);
    const scopes = new Set(this.scopes);
    if (ch.params.scope) for (const s of ch.params.scope.split(' ')) scopes.add(s);
    for (const s of scopes) url.searchParams.append('scope', s);
    const creds = await this.credentials();
    const headers: Record<string, string> = { Accept: 'application/json' };
    let res: HttpResponse;
    if (creds?.identityToken) {
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identityToken, service: ch.params.service ?? '', client_id: 'tsbuild', scope: [...scopes].join(' ') });
      res = await this.raw({ method: 'POST', url: new URL(url.origin + url.pathname), headers: { ...headers, 'Content-Type': 'application/x-www-form-urlencoded' }, body: Buffer.from(form.toString()) });
    } else {
      if (creds) headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      res = await this.raw({ method: 'GET', url, headers });
    }
    const body = await readBody(res, 1 << 20);
    if (res.status === 401 || res.status === 403) {
      throw new TsbError('TSB6140', `${this.domain}: the token server refused ${creds ? `the credentials of ${creds.username || 'the saved identity'}` : 'anonymous access'} (HTTP ${res.status})`, {
        hint: creds ? `check the password; run "tsbuild login ${this.domain}" again.` : `run "tsbuild login ${this.domain}" first.`,
        details: registryErrors(body),
      });
    }
    if (res.status !== 200) throw httpError(res, body, `token from ${url.host}`, this.domain);
    let v: { token?: string; access_token?: string; expires_in?: number };
    try { v = JSON.parse(body.toString('utf8')) as typeof v; } catch (e) { throw new TsbError('TSB6146', `${url.host} answered the token request with something that is not JSON`, { cause: e }); }
    const value = v.token ?? v.access_token;
    if (!value || typeof value !== 'string') throw new TsbError('TSB6146', `${url.host} answered the token request without a token`);
    const life = typeof v.expires_in === 'number' && v.expires_in > 0 ? v.expires_in : 60;
    this.token = { value, expires: Date.now() + Math.max(10, life - 10) * 1000 };
  }

  private async raw(r: { method: string; url: URL; headers?: Record<string, string>; body?: Buffer | Readable }): Promise<HttpResponse> {
    try {
      return await httpRequest({ ...r, ...(this.opts.signal ? { signal: this.opts.signal } : {}), ...(this.opts.env ? { env: this.opts.env } : {}) });
    } catch (e) {
      if (this.opts.signal?.aborted) throw new TsbError('TSB6145', 'interrupted', { cause: this.opts.signal.reason });
      const code = (e as { code?: string }).code ?? '';
      const tlsHint = /CERT|SSL|TLS|self.signed/i.test(`${code} ${(e as Error).message}`)
        ? `the TLS certificate of ${r.url.host} is not trusted; add its CA to the system store (or NODE_EXTRA_CA_CERTS), or use --insecure-registry ${r.url.host} for a plain-HTTP registry.`
        : r.url.protocol === 'https:' && /ECONNRESET|EPROTO|wrong version/i.test(`${code} ${(e as Error).message}`)
          ? `if ${r.url.host} speaks plain HTTP, pass --insecure-registry ${r.url.host}.`
          : `check that ${r.url.host} is reachable (and the proxy settings).`;
      throw new TsbError('TSB6145', `cannot reach ${r.url.host}: ${(e as Error).message}`, { cause: e, hint: tlsHint });
    }
  }

  /**
   * A request with auth (challenge handled once), retries for idempotent/buffer bodies, and
   * redirects for GET/HEAD (Authorization dropped when the host changes, as S3 presigned URLs need).
   */
  async request(method: string, pathOrUrl: string | URL, init: { headers?: Record<string, string>; body?: Buffer | (() => Readable); okStatus?: number[] } = {}): Promise<HttpResponse> {
    const attempts = this.opts.attempts ?? 4;
    let url = typeof pathOrUrl === 'string' ? new URL(pathOrUrl, this.base) : pathOrUrl;
    let authRetried = false;
    for (let attempt = 1; ; attempt++) {
      const sameHost = url.host === this.base.host;
      const headers = { ...(init.headers ?? {}), ...(sameHost ? await this.authHeader() : {}) };
      const body = typeof init.body === 'function' ? init.body() : init.body;
      let res: HttpResponse;
      try {
        res = await this.raw({ method, url, headers, ...(body !== undefined ? { body } : {}) });
      } catch (e) {
        if (attempt < attempts && isTsbError(e) && e.code === 'TSB6145' && !this.opts.signal?.aborted && !/certificate|TLS/i.test(e.hint ?? '')) {
          await sleep(backoff(attempt), this.opts.signal);
          continue;
        }
        throw e;
      }
      if (res.status === 401 && !authRetried && sameHost) {
        const ch = parseChallenge(res.headers['www-authenticate'] as string | undefined);
        discard(res);
        if (ch && (ch.scheme === 'bearer' || ch.scheme === 'basic')) {
          authRetried = true;
          this.challenge = ch;
          this.token = undefined;
          if (ch.scheme === 'basic') {
            const c = await this.credentials();
            if (!c) throw new TsbError('TSB6140', `${this.domain} needs a login (HTTP 401)`, { hint: `run "tsbuild login ${this.domain}".` });
            this.basic = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
          }
          attempt--; // an auth round trip is not a failed attempt
          continue;
        }
        return res401(this.domain, url);
      }
      const next = method === 'GET' || method === 'HEAD' ? redirectTarget(res) : undefined;
      if (next) {
        discard(res);
        url = next;
        continue;
      }
      if ((res.status === 429 || res.status >= 500) && attempt < attempts && (method === 'GET' || method === 'HEAD' || Buffer.isBuffer(init.body))) {
        const ra = Number(res.headers['retry-after']);
        discard(res);
        await sleep(Number.isFinite(ra) && ra > 0 ? Math.min(ra * 1000, 30_000) : backoff(attempt), this.opts.signal);
        continue;
      }
      return res;
    }
  }
}

function backoff(attempt: number): number {
  return Math.min(200 * 2 ** (attempt - 1), 5000) + Math.floor(Math.random() * 100);
}

function res401(domain: string, url: URL): never {
  throw new TsbError('TSB6140', `${domain} refused access to ${url.pathname} (HTTP 401 unauthorized)`, {
    hint: `run "tsbuild login ${domain}" with an account that may access it.`,
  });
}

function registryErrors(body: Buffer): string[] | undefined {
  try {
    const v = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string; detail?: unknown }[] };
    if (Array.isArray(v.errors) && v.errors.length) return v.errors.map((e) => `${e.code ?? 'ERROR'}: ${e.message ?? ''}`.slice(0, 300));
  } catch { /* not JSON */ }
  const t = body.toString('utf8').trim();
  return t ? [t.slice(0, 300)] : undefined;
}

/** A coded error for an unexpected HTTP status. */
export function httpError(res: HttpResponse, body: Buffer, what: string, domain: string): TsbError {
  const details = registryErrors(body);
  const s = res.status;
  if (s === 401) return new TsbError('TSB6140', `${domain}: ${what}: unauthorized (HTTP 401)`, { hint: `run "tsbuild login ${domain}".`, details });
  if (s === 403) return new TsbError('TSB6141', `${domain}: ${what}: access denied (HTTP 403)`, { hint: 'the account may read but not write here, or has no access at all.', details });
  if (s === 404) return new TsbError('TSB6142', `${domain}: ${what}: not found (HTTP 404)`, { hint: 'check the repository name and tag (names are case-sensitive; docker.io names need a namespace).', details });
  if (s === 429) return new TsbError('TSB6143', `${domain}: ${what}: too many requests (HTTP 429)`, { hint: 'the registry rate-limits you; wait, or log in for a higher limit.', details });
  if (s >= 500) return new TsbError('TSB6144', `${domain}: ${what}: the registry failed (HTTP ${s})`, { hint: 'retry later; the registry is having problems.', details });
  return new TsbError('TSB6146', `${domain}: ${what}: unexpected reply HTTP ${s}`, { details });
}

function sha256(b: Buffer): Digest {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

export interface FetchedManifest { descriptor: Descriptor; bytes: Buffer }

/** GET a manifest or index by tag or digest, verified. */
export async function fetchManifest(client: RegistryClient, ref: Reference, reference: string): Promise<FetchedManifest> {
  const what = `manifest ${ref.path}:${reference}`.replace(/:sha256:/, '@sha256:');
  const res = await client.request('GET', `/v2/${ref.path}/manifests/${reference}`, { headers: { Accept: MANIFEST_ACCEPT } });
  const bytes = await readBody(res, MANIFEST_LIMIT);
  if (res.status !== 200) throw httpError(res, bytes, `${what}${res.status === 404 ? ` (${ref.familiarName}:${reference} does not exist)` : ''}`, client.domain);
  const digest = sha256(bytes);
  if (reference.startsWith('sha256:') && digest !== reference) {
    throw new TsbError('TSB6147', `${client.domain} sent a manifest for ${reference} whose content hashes to ${digest}`, { hint: 'the registry is broken or hostile; nothing was stored.' });
  }
  const header = res.headers['docker-content-digest'];
  if (typeof header === 'string' && header.startsWith('sha256:') && header !== digest) {
    throw new TsbError('TSB6147', `${client.domain} sent manifest ${ref.path}:${reference} with Docker-Content-Digest ${header} but content hashing to ${digest}`, { hint: 'the registry is broken or hostile; nothing was stored.' });
  }
  const v = parseJSON(bytes, what) as { mediaType?: string; manifests?: unknown };
  let mt = typeof v.mediaType === 'string' ? v.mediaType : String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
  if (!isManifestType(mt) && !isIndexType(mt)) mt = Array.isArray(v.manifests) ? MediaType.OCI_INDEX : MediaType.OCI_MANIFEST;
  return { descriptor: { mediaType: mt, digest, size: bytes.length }, bytes };
}

async function getBlobStream(client: RegistryClient, path: string, d: Descriptor, what: string): Promise<HttpResponse> {
  const res = await client.request('GET', `/v2/${path}/blobs/${d.digest}`);
  if (res.status !== 200) {
    const body = await readBody(res, 1 << 20).catch(() => Buffer.alloc(0));
    throw httpError(res, body, `${what} ${d.digest}`, client.domain);
  }
  return res;
}

async function pool<T>(items: T[], n: number, fn: (t: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: unknown;
  const worker = async () => {
    while (failed === undefined && next < items.length) {
      const i = next++;
      try { await fn(items[i]!, i); } catch (e) { failed ??= e; }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  if (failed !== undefined) throw failed;
}

export interface PullOptions extends RegistryOptions {
  platform?: Platform;
  /** Set a ref for the name (default true). */
  tag?: boolean;
}

export interface PullResult {
  /** Full normalized name the ref was set under. */
  name: string;
  /** The platform manifest stored (what the ref points at). */
  descriptor: Descriptor;
  /** The index the tag pointed at, when it was one. */
  indexDigest?: Digest;
  /** Blobs downloaded (not already in the store). */
  downloaded: number;
}

/** Pull `name` (tag or digest) into the store; the ref is set to the platform's manifest. */
export async function pullImage(store: Store, name: string, opts: PullOptions = {}): Promise<PullResult> {
  return withLease(store, `pull ${name}`, () => pullUnderLease(store, name, opts));
}

async function pullUnderLease(store: Store, name: string, opts: PullOptions): Promise<PullResult> {
  const ref = parseReference(name);
  const client = new RegistryClient(ref.domain, opts);
  client.addScope(`repository:${ref.path}:pull`);
  const want = opts.platform ?? DEFAULT_PLATFORM;
  let top = await fetchManifest(client, ref, ref.digest ?? ref.tag ?? 'latest');
  let indexDigest: Digest | undefined;
  let mf = top;
  if (isIndexType(top.descriptor.mediaType)) {
    const idx = validateIndex(parseJSON(top.bytes, 'index'), `index of ${ref.familiar}`);
    await store.blobs.put(top.bytes, { expectDigest: top.descriptor.digest });
    indexDigest = top.descriptor.digest;
    const pick = pickManifest(idx, want, ref.familiar);
    mf = await fetchManifest(client, ref, pick.digest);
    if (!isManifestType(mf.descriptor.mediaType)) throw new TsbError('TSB6102', `${ref.familiar}: the index entry for ${platformString(want)} is not an image manifest`);
    top = mf;
  }
  const manifest = validateManifest(parseJSON(mf.bytes, 'manifest'), `manifest of ${ref.familiar}`);
  opts.onProgress?.({ detail: `manifest ${mf.descriptor.digest}` });
  let downloaded = 0;
  // Config
  if (!(await store.blobs.has(manifest.config.digest))) {
    const res = await getBlobStream(client, ref.path, manifest.config, 'config');
    await putVerified(store, res.body, manifest.config.digest, `config ${manifest.config.digest} from ${client.domain}`, manifest.config.size);
    downloaded++;
  }
  const config = validateConfig(parseJSON(await store.blobs.read(manifest.config.digest), 'image config'));
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new TsbError('TSB6106', `${ref.familiar}: manifest has ${manifest.layers.length} layers but the config lists ${config.rootfs.diff_ids.length} diff_ids`);
  }
  if (opts.platform === undefined && (config.os !== want.os || config.architecture !== want.architecture) && !indexDigest) {
    // A single-platform image of another platform: docker warns and uses it; so do we (no error).
  }
  await pool(manifest.layers, PARALLEL, async (layer, i) => {
    const diffId = config.rootfs.diff_ids[i]!;
    const c = layerCompression(layer.mediaType) ?? 'uncompressed';
    const haveCompressed = await store.blobs.has(layer.digest);
    const haveDiff = await store.blobs.has(diffId);
    if (haveCompressed && haveDiff) {
      if (c === 'gzip' || c === 'zstd') await store.compressed.set(diffId, { mediaType: compressedKey(c), digest: layer.digest, size: layer.size });
      return;
    }
    const what = `layer ${i} (${layer.digest.slice(7, 19)}) of ${ref.familiar}`;
    const res = await getBlobStream(client, ref.path, layer, 'layer');
    const onBytes = opts.onProgress ? (n: number) => opts.onProgress!({ detail: layer.digest, bytes: n, total: layer.size }) : undefined;
    if (c === 'uncompressed') {
      if (layer.digest !== diffId) throw new TsbError('TSB6106', `${what} is uncompressed but its digest is not the config's diff_id ${diffId}`);
      await putVerified(store, onBytes ? counted(res.body, onBytes) : res.body, layer.digest, what, layer.size);
    } else {
      // One download, two blobs written while it arrives: the compressed bytes as sent and the
      // uncompressed layer. The body is read in flowing mode and every chunk goes, without a copy,
      // to a queue feeding the compressed blob and to the decompressor (whose 1 MiB output chunks
      // feed the uncompressed blob); the slower consumer pauses the socket (backpressure).
      const { compressed, uncompressed } = splitDownload(res.body, c, what, haveDiff, onBytes);
      const pA = putVerified(store, compressed, layer.digest, what, layer.size, { rechunk: false });
      const pB = haveDiff ? Promise.resolve() : putVerified(store, uncompressed!, diffId, `${what} (uncompressed)`, undefined, { rechunk: false }).catch((e: unknown) => {
        if (isTsbError(e) && e.code === 'TSB6105') {
          throw new TsbError('TSB6106', `${what} uncompresses to content that is not the config's diff_id ${diffId}`, { hint: 'the registry sent an inconsistent image; nothing was kept.', cause: e });
        }
        throw e;
      });
      const settled = await Promise.allSettled([pA, pB]);
      // A compressed-side mismatch explains an uncompressed-side failure: report it first.
      for (const s of settled) if (s.status === 'rejected') throw s.reason;
      await store.compressed.set(diffId, { mediaType: compressedKey(c), digest: layer.digest, size: layer.size });
    }
    downloaded++;
  });
  await store.blobs.put(mf.bytes, { expectDigest: mf.descriptor.digest });
  const descriptor: Descriptor = { mediaType: mf.descriptor.mediaType, digest: mf.descriptor.digest, size: mf.descriptor.size };
  const refName = ref.full;
  if (opts.tag !== false) {
    await store.refs.set(refName, descriptor);
  }
  return { name: refName, descriptor, ...(indexDigest ? { indexDigest } : {}), downloaded };
}

export interface PushOptions extends RegistryOptions {
  /**
   * Push the manifest exactly as given. By default a manifest with uncompressed layers (what a build
   * writes to the store) is first turned into its gzip distribution form (distributionImage: each
   * layer compressed once and remembered), as `docker push` does; already-compressed manifests
   * (pulled, loaded, or from distributionImage) are pushed byte for byte either way.
   */
  asIs?: boolean;
}

export interface PushResult { name: string; digest: Digest; uploaded: number; mounted: number; skipped: number }

/**
 * Push a manifest (or index) that is in the store, with all its blobs, to `name` (a tag or digest
 * reference). The manifest bytes are sent exactly as stored, so the pushed digest is the stored one.
 */
export async function pushImage(store: Store, desc: Descriptor, name: string, opts: PushOptions = {}): Promise<PushResult> {
  const ref = parseReference(name);
  if (!opts.asIs && !isIndexType(desc.mediaType)) {
    const { distributionImage } = await import('./export.js');
    desc = await distributionImage(store, await readImage(store, desc), opts.signal ? { signal: opts.signal } : {});
  }
  const client = new RegistryClient(ref.domain, opts);
  client.addScope(`repository:${ref.path}:pull,push`);
  const stats = { uploaded: 0, mounted: 0, skipped: 0 };
  const sources = await mountSources(store, ref);
  for (const s of new Set(sources.values())) client.addScope(`repository:${s}:pull`);

  const pushManifest = async (d: Descriptor, reference: string): Promise<void> => {
    const bytes = await store.blobs.read(d.digest);
    const raw = parseJSON(bytes, `manifest ${d.digest}`) as { mediaType?: string; manifests?: unknown };
    const mt = raw.mediaType ?? d.mediaType;
    if (isIndexType(mt) || Array.isArray(raw.manifests)) {
      const idx = validateIndex(raw);
      for (const m of idx.manifests) {
        if (await store.blobs.has(m.digest)) await pushManifest(m, m.digest);
        else throw new TsbError('TSB6104', `cannot push ${ref.familiar}: manifest ${m.digest} of its index is not in the store`, { hint: 'pull all platforms first, or push a single-platform image.' });
      }
    } else {
      const m = validateManifest(raw);
      const blobs = [m.config, ...m.layers];
      // HEAD first for the config (small) so auth is settled before parallel uploads.
      await pushBlob(store, client, ref, blobs[0]!, sources, stats, opts);
      await pool(blobs.slice(1), PARALLEL, (b) => pushBlob(store, client, ref, b, sources, stats, opts));
    }
    const res = await client.request('PUT', `/v2/${ref.path}/manifests/${reference}`, { headers: { 'Content-Type': mt ?? MediaType.OCI_MANIFEST }, body: bytes });
    const body = await readBody(res, 1 << 20);
    if (res.status !== 201 && res.status !== 200) throw httpError(res, body, `PUT manifest ${ref.path}:${reference}`, client.domain);
    const got = res.headers['docker-content-digest'];
    if (typeof got === 'string' && got.startsWith('sha256:') && got !== d.digest) {
      throw new TsbError('TSB6147', `${client.domain} stored manifest ${ref.path}:${reference} as ${got}, not ${d.digest}`, { hint: 'the registry rewrote the manifest; it is not content-addressed as expected.' });
    }
  };
  await pushManifest(desc, ref.digest ?? ref.tag ?? 'latest');
  return { name: ref.full, digest: desc.digest, ...stats };
}

/** Repositories on the same registry that the store's refs show holding each blob (for mounts). */
async function mountSources(store: Store, target: Reference): Promise<Map<Digest, string>> {
  const out = new Map<Digest, string>();
  for (const e of await store.refs.list()) {
    let r: Reference;
    try { r = parseReference(e.name); } catch { continue; }
    if (r.domain !== target.domain || r.path === target.path) continue;
    try {
      const im = await readImage(store, e.descriptor);
      for (const l of [im.manifest.config, ...im.manifest.layers]) if (!out.has(l.digest)) out.set(l.digest, r.path);
    } catch { /* not readable: ignore for mounting */ }
  }
  return out;
}

async function pushBlob(store: Store, client: RegistryClient, ref: Reference, d: Descriptor, sources: Map<Digest, string>, stats: { uploaded: number; mounted: number; skipped: number }, opts: PushOptions): Promise<void> {
  const head = await client.request('HEAD', `/v2/${ref.path}/blobs/${d.digest}`);
  discard(head);
  if (head.status === 200) { stats.skipped++; opts.onProgress?.({ detail: `${d.digest} exists` }); return; }
  if (head.status !== 404) throw httpError(head, Buffer.alloc(0), `HEAD blob ${d.digest}`, client.domain);
  if (!(await store.blobs.has(d.digest))) throw new TsbError('TSB6104', `cannot push ${ref.familiar}: blob ${d.digest} is not in the store`, { hint: 'run "tsbuild store verify"; pull or rebuild the image.' });
  const size = (await store.blobs.size(d.digest))!;
  if (size !== d.size) throw new TsbError('TSB6105', `blob ${d.digest} is ${size} bytes in the store but the manifest says ${d.size}`);
  for (let attempt = 1; ; attempt++) {
    try {
      const from = sources.get(d.digest);
      let location: string;
      if (from) {
        const res = await client.request('POST', `/v2/${ref.path}/blobs/uploads/?mount=${encodeURIComponent(d.digest)}&from=${encodeURIComponent(from)}`, { body: Buffer.alloc(0) });
        const body = await readBody(res, 1 << 20);
        if (res.status === 201) { stats.mounted++; opts.onProgress?.({ detail: `${d.digest} mounted from ${from}` }); return; }
        if (res.status !== 202) throw httpError(res, body, `mount blob ${d.digest}`, client.domain);
        location = uploadLocation(res, client);
      } else {
        const res = await client.request('POST', `/v2/${ref.path}/blobs/uploads/`, { body: Buffer.alloc(0) });
        const body = await readBody(res, 1 << 20);
        if (res.status !== 202) throw httpError(res, body, `start upload of ${d.digest}`, client.domain);
        location = uploadLocation(res, client);
      }
      if (size <= CHUNK_THRESHOLD) {
        const url = new URL(location, client.base);
        url.searchParams.set('digest', d.digest);
        const res = await client.request('PUT', url, {
          headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(size) },
          // Read the file directly (not blobs.open, which re-hashes): the registry verifies ?digest=.
          body: () => progressStream(createReadStream(store.blobs.path(d.digest), { highWaterMark: 1 << 20 }), d.digest, size, opts),
        });
        const body = await readBody(res, 1 << 20);
        if (res.status !== 201) throw httpError(res, body, `upload blob ${d.digest}`, client.domain);
      } else {
        let offset = 0;
        while (offset < size) {
          const end = Math.min(size, offset + CHUNK_SIZE);
          const start = offset;
          const res = await client.request('PATCH', new URL(location, client.base), {
            headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(end - start), 'Content-Range': `${start}-${end - 1}` },
            body: () => progressStream(rangeStream(store, d.digest, start, end), d.digest, size, opts, start),
          });
          const body = await readBody(res, 1 << 20);
          if (res.status !== 202) throw httpError(res, body, `upload chunk ${start}-${end - 1} of ${d.digest}`, client.domain);
          location = uploadLocation(res, client);
          opts.onProgress?.({ detail: `${d.digest} chunk ${start}-${end - 1}`, bytes: end, total: size });
          offset = end;
        }
        const url = new URL(location, client.base);
        url.searchParams.set('digest', d.digest);
        const res = await client.request('PUT', url, { headers: { 'Content-Length': '0' }, body: Buffer.alloc(0) });
        const body = await readBody(res, 1 << 20);
        if (res.status !== 201) throw httpError(res, body, `finish upload of ${d.digest}`, client.domain);
      }
      stats.uploaded++;
      return;
    } catch (e) {
      const retryable = isTsbError(e) && (e.code === 'TSB6144' || e.code === 'TSB6145' || e.code === 'TSB6143') && !opts.signal?.aborted;
      if (!retryable || attempt >= (opts.attempts ?? 4)) throw e;
      await sleep(backoff(attempt), opts.signal);
    }
  }
}

function uploadLocation(res: HttpResponse, client: RegistryClient): string {
  const loc = res.headers.location;
  if (!loc) throw new TsbError('TSB6146', `${client.domain} started an upload without a Location header`);
  return loc;
}

function rangeStream(store: Store, digest: Digest, start: number, end: number): Readable {
  // Blob files are immutable once in the store: reading a byte range from the path is safe.
  return createReadStream(store.blobs.path(digest), { start, end: end - 1, highWaterMark: 1 << 20 });
}

function progressStream(src: Readable, digest: Digest, total: number, opts: PushOptions, base = 0): Readable {
  if (!opts.onProgress) return src;
  return counted(src, (n) => opts.onProgress!({ detail: digest, bytes: base + n, total }));
}

/**
 * An async-iterable byte queue (no concatenation, unlike a PassThrough read by an async iterator,
 * which joins everything buffered into one new Buffer). push() returns false above `limit` queued
 * bytes; `drained` resolves when the consumer has taken the queue below it again.
 */
class ChunkQueue implements AsyncIterable<Buffer> {
  private chunks: Buffer[] = [];
  private queued = 0;
  private done = false;
  private err: unknown;
  private wake: (() => void) | undefined;
  private onDrain: (() => void)[] = [];
  constructor(private readonly limit = 8 << 20) {}
  push(b: Buffer): boolean {
    this.chunks.push(b);
    this.queued += b.length;
    this.wake?.();
    return this.queued < this.limit;
  }
  end(): void { this.done = true; this.wake?.(); }
  fail(e: unknown): void { this.err ??= e; this.done = true; this.wake?.(); }
  drained(): Promise<void> {
    return this.queued < this.limit ? Promise.resolve() : new Promise((r) => this.onDrain.push(r));
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<Buffer> {
    for (;;) {
      if (this.err !== undefined) throw this.err;
      const b = this.chunks.shift();
      if (b) {
        this.queued -= b.length;
        if (this.queued < this.limit && this.onDrain.length) for (const r of this.onDrain.splice(0)) r();
        yield b;
        continue;
      }
      if (this.done) return;
      await new Promise<void>((r) => { this.wake = r; });
      this.wake = undefined;
    }
  }
}

/**
 * Fan a compressed download out to (a) the compressed blob and (b) its decompression, both as
 * object-mode Readables whose chunks are the original Buffers. A body cut off or a corrupt stream
 * errors both sides (putVerified turns that into TSB6122/TSB6131).
 */
function splitDownload(body: Readable, c: 'gzip' | 'zstd', what: string, skipUncompressed: boolean, onBytes?: (n: number) => void): { compressed: Readable; uncompressed?: Readable } {
  const qa = new ChunkQueue();
  const qb = skipUncompressed ? undefined : new ChunkQueue();
  const dec = skipUncompressed ? undefined : c === 'gzip' ? createGunzip({ chunkSize: 1 << 20 }) : decompressStream(c, what);
  let n = 0;
  let paused = 0;
  const pause = (p: Promise<void>) => {
    if (paused++ === 0) body.pause();
    void p.then(() => { if (--paused === 0) body.resume(); });
  };
  const failAll = (e: unknown) => { qa.fail(e); qb?.fail(e); dec?.destroy(); };
  body.on('data', (ch: Buffer) => {
    n += ch.length;
    onBytes?.(n);
    if (!qa.push(ch)) pause(qa.drained());
    if (dec && !dec.write(ch)) pause(new Promise((r) => dec.once('drain', r)));
  });
  let ended = false;
  body.on('end', () => { ended = true; qa.end(); dec?.end(); });
  body.on('close', () => { if (!ended) failAll(new TsbError('TSB6145', `${what}: the download was cut off`)); });
  body.on('aborted', () => failAll(new TsbError('TSB6145', `${what}: the download was cut off`)));
  body.on('error', failAll);
  if (dec && qb) {
    dec.on('data', (ch: Buffer) => { if (!qb.push(ch)) { dec.pause(); void qb.drained().then(() => dec.resume()); } });
    dec.on('end', () => qb.end());
    dec.on('error', (e) => qb.fail(isTsbError(e) ? e : new TsbError('TSB6131', `${what}: ${c} data is corrupt or truncated`, { cause: e })));
  }
  const compressed = Readable.from(qa);
  const uncompressed = qb ? Readable.from(qb) : undefined;
  // If a consumer stops early (a store failure), stop the download too.
  compressed.on('close', () => { if (!compressed.readableEnded) body.destroy(); });
  uncompressed?.on('close', () => { if (!uncompressed.readableEnded) body.destroy(); });
  return { compressed, ...(uncompressed ? { uncompressed } : {}) };
}

/** src piped through a counter calling `onBytes(total so far)`; src errors come out of the result. */
function counted(src: Readable, onBytes: (n: number) => void): Readable {
  let n = 0;
  const t = new Transform({
    highWaterMark: 1 << 20,
    transform(chunk: Buffer, _e, cb) { n += chunk.length; onBytes(n); cb(null, chunk); },
  });
  src.on('error', (e) => t.destroy(e));
  src.on('aborted', () => t.destroy(new TsbError('TSB6145', 'the download was cut off')));
  return src.pipe(t);
}

// ---------------------------------------------------------------------------------------------
// FROM resolution

export type PullPolicy = 'always' | 'missing' | 'never';

export interface ResolveOptions extends RegistryOptions {
  pull?: PullPolicy;
  platform?: Platform;
}

export interface ResolvedBase {
  /** Full normalized reference as resolved. */
  name: string;
  image: ReadImage;
  /** Where it came from. */
  source: 'store' | 'registry';
}

/**
 * The engine's FROM: a name resolves in the store first when pinned by digest or with pull=never;
 * with pull=missing (the default, like `docker build`), the store is used when it has the name,
 * else the registry is asked; pull=always asks the registry each time (cheap when nothing changed:
 * only the manifest is fetched; blobs already present are not downloaded again).
 */
export async function resolveBaseImage(store: Store, name: string, opts: ResolveOptions = {}): Promise<ResolvedBase> {
  const ref = parseReference(name);
  const policy = opts.pull ?? 'missing';
  const readOpts = opts.platform ? { platform: opts.platform } : {};
  if (ref.digest || policy !== 'always') {
    const local = await lookupName(store, ref.full).catch(() => undefined) ?? (ref.digest ? await lookupName(store, ref.digest) : undefined);
    if (local) {
      try {
        const image = await readImage(store, local, readOpts);
        const pinnedOk = !ref.digest || image.descriptor.digest === ref.digest || image.index?.descriptor.digest === ref.digest || local.digest === ref.digest;
        // A single-platform image of another platform (pulled earlier for another --platform) does not count.
        const c = image.config;
        const platformOk = !opts.platform || platformMatches({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }, opts.platform);
        if (pinnedOk && platformOk) return { name: ref.full, image, source: 'store' };
        if (!platformOk && policy === 'never') {
          throw new TsbError('TSB6103', `image "${ref.familiar}" in the store is ${platformString({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) })}, not ${platformString(opts.platform!)}, and --pull=never forbids pulling`, { hint: `pull it with --platform ${platformString(opts.platform!)}.` });
        }
      } catch (e) {
        if (policy === 'never') throw e;
      }
    }
    if (policy === 'never') {
      throw new TsbError('TSB6104', `image "${ref.familiar}" is not in the store and --pull=never forbids pulling it`, { hint: `pull it first (tsbuild pull ${ref.familiar}) or drop --pull=never.` });
    }
  }
  const r = await pullImage(store, ref.full, { ...opts, ...(opts.platform ? { platform: opts.platform } : {}) });
  const image = await readImage(store, r.descriptor, readOpts);
  return { name: r.name, image, source: 'registry' };
}

/** Check credentials against a registry (for `tsbuild login`): GET /v2/ must succeed. */
export async function checkLogin(domain: string, creds: Credentials, opts: RegistryOptions = {}): Promise<void> {
  const client = new RegistryClient(domain, { ...opts, credentials: creds });
  const res = await client.request('GET', '/v2/');
  const body = await readBody(res, 1 << 20);
  if (res.status !== 200) throw httpError(res, body, 'login', domain);
}
