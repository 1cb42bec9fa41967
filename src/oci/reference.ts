/**
 * Docker image references: parse, normalize, and print the familiar short form.
 *
 * Grammar (distribution/reference, as documented for `docker pull`/`docker tag`):
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] path-component ( "/" path-component )*
 *   domain     := host [ ":" port ]         host = DNS labels joined by "." or "[" IPv6 "]"
 *   path-comp  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [\w][\w.-]{0,127}
 *   digest     := algorithm ":" hex         (sha256 → 64 lowercase hex)
 *
 * Normalization (what `docker` does with a familiar name):
 *   - the first component is a domain only when it contains "." or ":" or is "localhost"
 *     (otherwise `foo/bar` is a Docker Hub repository, not a host named foo);
 *   - no domain → `docker.io`; a single Docker Hub component gets `library/`;
 *     `index.docker.io` is spelled `docker.io`;
 *   - neither tag nor digest → tag `latest` (unless `defaultTag: false`).
 * The familiar form reverses that: `docker.io/library/busybox:latest` → `busybox:latest`.
 *
 * Errors are TsbError TSB6001 (invalid reference) with a hint; the caller adds a span.
 */
import { TsbError } from '../errors.js';

export interface Reference {
  /** Registry host[:port], e.g. `docker.io`, `localhost:5000`. */
  readonly domain: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  readonly path: string;
  readonly tag: string | undefined;
  /** `algo:hex`, e.g. `sha256:…`. */
  readonly digest: string | undefined;
  /** `domain/path` (no tag or digest). */
  readonly repository: string;
  /** Full normalized string: `domain/path[:tag][@digest]`. */
  readonly full: string;
  /** Short form docker prints: `busybox:latest`, `me/app:1`, `localhost:5000/x:y`. */
  readonly familiar: string;
  /** `familiar` without tag/digest: `busybox`, `localhost:5000/x`. */
  readonly familiarName: string;
}

export const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';
const NAME_TOTAL_MAX = 255;

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_LABEL = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
/** A bare 64-hex id (what `docker inspect ID` accepts): never parsed as a repository name. */
const BARE_ID = /^[a-f0-9]{64}$/;

function bad(input: string, why: string, hint?: string): TsbError {
  return new TsbError('TSB6001', `invalid image reference "${input}": ${why}`, {
    hint: hint ?? 'write NAME[:TAG][@sha256:DIGEST], e.g. busybox:1.36 or registry.example.com:5000/team/app:1.2.',
  });
}

function validDomain(d: string): boolean {
  let host = d;
  let port: string | undefined;
  if (d.startsWith('[')) {
    const end = d.indexOf(']');
    if (end < 0) return false;
    const v6 = d.slice(1, end);
    if (!/^[0-9a-fA-F:.]+$/.test(v6) || !v6.includes(':')) return false;
    const rest = d.slice(end + 1);
    if (rest === '') return true;
    if (!rest.startsWith(':')) return false;
    port = rest.slice(1);
    return /^[0-9]+$/.test(port);
  }
  const colon = d.lastIndexOf(':');
  if (colon >= 0) { host = d.slice(0, colon); port = d.slice(colon + 1); if (!/^[0-9]+$/.test(port)) return false; }
  if (host === '') return false;
  return host.split('.').every((l) => DOMAIN_LABEL.test(l));
}

/** Is this string a digest (`sha256:<64 hex>`, or another algorithm's well-formed digest)? */
export function isDigest(s: string): boolean {
  return DIGEST.test(s) && (!s.startsWith('sha256:') || SHA256.test(s));
}

/** Would docker treat this first path component as a registry host? */
function looksLikeDomain(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase();
}

function build(domain: string, path: string, tag: string | undefined, digest: string | undefined): Reference {
  const repository = `${domain}/${path}`;
  const suffix = `${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
  let familiarName = repository;
  if (domain === DEFAULT_DOMAIN) {
    familiarName = path.startsWith(OFFICIAL_PREFIX) && !path.slice(OFFICIAL_PREFIX.length).includes('/')
      ? path.slice(OFFICIAL_PREFIX.length) : path;
  }
  return { domain, path, tag, digest, repository, full: repository + suffix, familiar: familiarName + suffix, familiarName };
}

export interface ParseOptions {
  /** Add `:latest` when neither tag nor digest is given (default true, as docker does). */
  defaultTag?: boolean;
}

/** Parse and normalize a reference (`busybox` → docker.io/library/busybox:latest). Throws TSB6001. */
export function parseReference(input: string, opts: ParseOptions = {}): Reference {
  const s = input.trim();
  if (s === '') throw bad(input, 'it is empty');
  if (BARE_ID.test(s)) {
    throw bad(input, 'a 64-hex image ID is not a repository name', 'name an image, or use sha256:ID where an ID is accepted.');
  }
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw bad(input, `"${digest}" is not a digest`, 'a digest looks like sha256: followed by 64 lowercase hex digits.');
  }
  let tag: string | undefined;
  // A tag is after the last ":" that comes after the last "/" (a ":" before it is a port).
  const slash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > slash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(input, `"${tag}" is not a valid tag`, 'a tag is up to 128 letters, digits, "_", "." or "-", not starting with "." or "-".');
  }
  if (rest === '') throw bad(input, 'the repository name is empty');
  const parts = rest.split('/');
  let domain = DEFAULT_DOMAIN;
  if (parts.length > 1 && looksLikeDomain(parts[0]!)) {
    domain = parts.shift()!;
    if (!validDomain(domain)) throw bad(input, `"${domain}" is not a valid registry host`);
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  for (const p of parts) {
    if (p === '') throw bad(input, 'it has an empty path component');
    if (!PATH_COMPONENT.test(p)) {
      if (p.toLowerCase() !== p && PATH_COMPONENT.test(p.toLowerCase())) {
        throw bad(input, 'repository name must be lowercase', `write ${input.replace(p, p.toLowerCase())}.`);
      }
      throw bad(input, `"${p}" is not a valid repository path component`,
        'path components are lowercase letters and digits, separated by ".", "_", "__" or "-".');
    }
  }
  let path = parts.join('/');
  if (domain === DEFAULT_DOMAIN && parts.length === 1) path = OFFICIAL_PREFIX + path;
  if (`${domain}/${path}`.length > NAME_TOTAL_MAX) throw bad(input, `the repository name is longer than ${NAME_TOTAL_MAX} characters`);
  if (tag === undefined && digest === undefined && opts.defaultTag !== false) tag = 'latest';
  return build(domain, path, tag, digest);
}

/** Like parseReference but returns undefined instead of throwing. */
export function tryParseReference(input: string, opts?: ParseOptions): Reference | undefined {
  try { return parseReference(input, opts); } catch { return undefined; }
}

/** `busybox` → `docker.io/library/busybox:latest`. Throws TSB6001. */
export function normalizeReference(input: string, opts?: ParseOptions): string {
  return parseReference(input, opts).full;
}

/** `docker.io/library/busybox:latest` → `busybox:latest` (accepts any form parseReference accepts). */
export function familiarString(input: string | Reference): string {
  return (typeof input === 'string' ? parseReference(input, { defaultTag: false }) : input).familiar;
}

/** The same repository with another tag (drops any digest). */
export function withTag(ref: Reference, tag: string): Reference {
  if (!TAG.test(tag)) throw bad(tag, `"${tag}" is not a valid tag`);
  return build(ref.domain, ref.path, tag, undefined);
}

/** The same repository pinned to a digest (drops any tag). */
export function withDigest(ref: Reference, digest: string): Reference {
  if (!isDigest(digest)) throw bad(digest, `"${digest}" is not a digest`);
  return build(ref.domain, ref.path, undefined, digest);
}
