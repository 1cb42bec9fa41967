/**
 * Registry credentials, the way docker keeps them: `$DOCKER_CONFIG/config.json` (default
 * `~/.docker/config.json`) with `auths` (base64 user:pass or identitytoken), `credsStore` (one
 * docker-credential-<name> helper for every registry) and `credHelpers` (per registry). Helpers
 * speak docker's credential-helper protocol: `get` (host on stdin → {ServerURL, Username, Secret}),
 * `store` ({ServerURL, Username, Secret} on stdin), `erase` (host on stdin).
 *
 * Docker Hub credentials live under `https://index.docker.io/v1/`, as docker writes them.
 * Codes: TSB6150 config file unreadable/malformed, TSB6151 credential helper failed.
 */
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { mkdir, readFile, rename, writeFile, chmod } from 'node:fs/promises';
import { TsbError, errnoCode } from '../errors.js';

export interface Credentials { username: string; password: string; /** identity token (OAuth refresh token) */ identityToken?: string }

export interface AuthFileOptions {
  /** Explicit config.json path (tests, --authfile). */
  authFile?: string;
  env?: NodeJS.ProcessEnv;
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
  [k: string]: unknown;
}

export function authFilePath(opts: AuthFileOptions = {}): string {
  if (opts.authFile) return opts.authFile;
  const env = opts.env ?? process.env;
  if (env.DOCKER_CONFIG) return join(env.DOCKER_CONFIG, 'config.json');
  return join(env.HOME || homedir(), '.docker', 'config.json');
}

/** The key docker uses in config.json for a registry domain. */
export function authKey(domain: string): string {
  return domain === 'docker.io' ? 'https://index.docker.io/v1/' : domain;
}

function keysFor(domain: string): string[] {
  if (domain === 'docker.io') return ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io', 'https://registry-1.docker.io'];
  return [domain, `https://${domain}`, `http://${domain}`, `https://${domain}/v1/`, `https://${domain}/v2/`];
}

async function readConfig(path: string): Promise<DockerConfig> {
  let text: string;
  try { text = await readFile(path, 'utf8'); } catch (e) {
    if (errnoCode(e) === 'ENOENT') return {};
    throw new TsbError('TSB6150', `could not read ${path}`, { cause: e });
  }
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as DockerConfig;
  } catch (e) {
    throw new TsbError('TSB6150', `${path} is not valid JSON`, { cause: e, hint: 'fix or remove the file (it is docker’s credential file).' });
  }
}

function runHelper(helper: string, action: 'get' | 'store' | 'erase', input: string, env?: NodeJS.ProcessEnv): Promise<string> {
  const prog = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = spawn(prog, [action], { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
    child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
    child.on('error', (e) => reject(new TsbError('TSB6151', `credential helper ${prog} could not be run`, {
      cause: e, hint: errnoCode(e) === 'ENOENT' ? `install ${prog} or remove "${helper}" from the docker config file.` : undefined,
    })));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(Object.assign(new TsbError('TSB6151', `credential helper ${prog} ${action} failed: ${(out || err).trim().split('\n')[0] ?? ''}`), { helperOutput: out || err }));
    });
    child.stdin.on('error', () => { /* helper exited early; reported by close */ });
    child.stdin.end(input);
  });
}

/** Credentials for a registry domain, or undefined (anonymous). */
export async function getCredentials(domain: string, opts: AuthFileOptions = {}): Promise<Credentials | undefined> {
  const cfg = await readConfig(authFilePath(opts));
  const keys = keysFor(domain);
  const helper = keys.map((k) => cfg.credHelpers?.[k]).find(Boolean) ?? cfg.credsStore;
  if (helper) {
    for (const k of [authKey(domain), ...keys.filter((k) => k !== authKey(domain))]) {
      let out: string;
      try { out = await runHelper(helper, 'get', k, opts.env); } catch (e) {
        const msg = (e as { helperOutput?: string }).helperOutput ?? '';
        if (/credentials not found/i.test(msg)) continue;
        throw e;
      }
      try {
        const v = JSON.parse(out) as { Username?: string; Secret?: string };
        if (typeof v.Secret !== 'string') continue;
        if (v.Username === '<token>') return { username: '', password: '', identityToken: v.Secret };
        return { username: v.Username ?? '', password: v.Secret };
      } catch (e) {
        throw new TsbError('TSB6151', `credential helper docker-credential-${helper} answered something that is not JSON`, { cause: e });
      }
    }
    // Fall through to auths: docker does the same when the helper has nothing.
  }
  for (const k of keys) {
    const a = cfg.auths?.[k];
    if (!a) continue;
    if (a.identitytoken) return { username: a.username ?? '', password: '', identityToken: a.identitytoken };
    if (a.auth) {
      const dec = Buffer.from(a.auth, 'base64').toString('utf8');
      const i = dec.indexOf(':');
      if (i < 0) throw new TsbError('TSB6150', `the saved credentials for ${domain} are malformed`, { hint: `run "tsbuild login ${domain}" again.` });
      return { username: dec.slice(0, i), password: dec.slice(i + 1) };
    }
    if (a.username && a.password) return { username: a.username, password: a.password };
  }
  return undefined;
}

async function writeConfig(path: string, cfg: DockerConfig): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(cfg, null, '\t')}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** Save credentials (helper when one is configured for the domain, else base64 in auths). */
export async function saveCredentials(domain: string, creds: Credentials, opts: AuthFileOptions = {}): Promise<{ where: string }> {
  const path = authFilePath(opts);
  const cfg = await readConfig(path);
  const key = authKey(domain);
  const helper = keysFor(domain).map((k) => cfg.credHelpers?.[k]).find(Boolean) ?? cfg.credsStore;
  if (helper) {
    await runHelper(helper, 'store', JSON.stringify({ ServerURL: key, Username: creds.username, Secret: creds.password }), opts.env);
    cfg.auths = { ...(cfg.auths ?? {}), [key]: {} };
    await writeConfig(path, cfg);
    return { where: `docker-credential-${helper}` };
  }
  cfg.auths = { ...(cfg.auths ?? {}), [key]: { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') } };
  await writeConfig(path, cfg);
  return { where: path };
}

/** Remove credentials; false when there were none. */
export async function removeCredentials(domain: string, opts: AuthFileOptions = {}): Promise<boolean> {
  const path = authFilePath(opts);
  const cfg = await readConfig(path);
  let removed = false;
  const helper = keysFor(domain).map((k) => cfg.credHelpers?.[k]).find(Boolean) ?? cfg.credsStore;
  if (helper) {
    try { await runHelper(helper, 'erase', authKey(domain), opts.env); removed = true; } catch (e) {
      const msg = (e as { helperOutput?: string }).helperOutput ?? '';
      if (!/not found/i.test(msg)) throw e;
    }
  }
  for (const k of keysFor(domain)) {
    if (cfg.auths && Object.hasOwn(cfg.auths, k)) { delete cfg.auths[k]; removed = true; }
  }
  if (removed) await writeConfig(path, cfg);
  return removed;
}
