/**
 * `tsbuild images [REPOSITORY[:TAG]]`: the store's names, like `docker images`.
 * Also the helpers the other store commands share (inspect, tag, rmi, history, cache, store):
 * opening the store, finding an image by name or ID, and docker's table/size/age formats.
 *
 * Names: refs are stored under the normalized full name (`docker.io/library/app:1.2`,
 * src/oci/reference.ts) and shown in docker's familiar form (`app:1.2`). A name that does not parse
 * as a docker reference (a store written by other tools) is shown and matched as it is.
 */
import type { ParsedArgs } from '../args.js';
import { usageError } from '../args.js';
import type { CliContext, Command } from '../command.js';
import { print, storeRoot } from '../command.js';
import { TsbError } from '../../errors.js';
import { parseReference, tryParseReference } from '../../oci/reference.js';
import { openStore, type Descriptor, type FsStore, type RefEntry } from '../../../store/index.js';

export const FORMAT_FLAG = { name: 'format', type: 'string', value: 'table|json', help: 'output format (json: one object per line, for scripts)' } as const;

export async function openStoreFor(args: ParsedArgs, ctx: CliContext): Promise<FsStore> {
  return openStore(storeRoot(args, ctx));
}

export function outputFormat(args: ParsedArgs): 'table' | 'json' {
  const f = args.str('format') ?? 'table';
  if (f !== 'table' && f !== 'json') throw usageError(`unknown --format "${f}"`, 'use --format table or --format json.');
  return f;
}

/** docker's units.HumanSizeWithPrecision(n, 3): decimal units, 3 significant digits. */
export function humanSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return `${Number(v.toPrecision(3))}${units[i]}`;
}

/** docker's units.HumanDuration (as in "2 weeks ago"). */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.floor(m / 60);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

export function ago(iso: string | undefined, now = Date.now()): string {
  if (!iso) return 'N/A';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return 'N/A';
  return `${humanDuration(Math.max(0, now - t))} ago`;
}

/** Parse a docker-style size (`10GB`, `512MiB`, `1.5g`, `1000`) into bytes. */
export function parseSize(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?\s*$/i.exec(s);
  if (!m) throw usageError(`"${s}" is not a size`, 'write a size like 500MB, 2GB or 1.5GiB.');
  const pow = ' kmgtp'.indexOf(m[2]!.toLowerCase() || ' ');
  const base = m[3] ? 1024 : 1000;
  return Math.round(Number(m[1]) * base ** pow);
}

/** Parse a Go-style duration (`24h`, `90m`, `1h30m`, `7d`, `2w`) into milliseconds. */
export function parseDuration(s: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
  let total = 0;
  let rest = s.trim();
  if (!rest) throw usageError('empty duration', 'write a duration like 24h, 90m or 7d.');
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/.exec(rest);
    if (!m) throw usageError(`"${s}" is not a duration`, 'write a duration like 24h, 90m, 1h30m or 7d.');
    total += Number(m[1]) * units[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return total;
}

/**
 * Plain docker-style table: columns padded to the widest cell, 3 spaces apart, trailing blanks
 * trimmed (as String#trimEnd on each line).
 */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return tableColumns(header, header.map((_, i) => rows.map((r) => r[i] ?? ''))).toString('utf8');
}

/** table() from column arrays (cols[i][row]), as UTF-8 bytes. */
export function tableColumns(header: readonly string[], cols: readonly (readonly string[])[]): Buffer {
  return tableRows(header, header.length ? cols[0]!.length : 0, (r, i) => cols[i]![r]!);
}

/**
 * A table of `rows` rows whose cells `cell(row, col)` gives, as UTF-8 bytes: what the 10,000-row
 * listings (`images`, `cache ls`) use. Two passes (widths, then text) calling `cell` each time, so
 * the caller keeps no per-cell strings alive: in a process that lists once, before the JIT warms
 * up, garbage collection of long-lived small strings was the largest cost (a young-generation
 * collection copies every live one). Lines are built as short-lived strings and written into one
 * growing buffer. Widths count UTF-16 units, like String#padEnd. `width`, when given, must equal
 * cell(row, col).length: the first pass then makes no strings.
 */
export function tableRows(header: readonly string[], rows: number, cell: (row: number, col: number) => string, width?: (row: number, col: number) => number): Buffer {
  const n = header.length;
  const w = header.map((h) => h.length);
  // The width pass: `width` (when given) says cell(row, col).length without making the string.
  const len = width ?? ((r: number, i: number) => cell(r, i).length);
  let lastTotal = header[n - 1]?.length ?? 0; // UTF-16 units of the last column, for the buffer size
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n - 1; i++) { const l = len(r, i); if (l > w[i]!) w[i] = l; }
    if (n) lastTotal += len(r, n - 1);
  }
  const pads: string[] = [''];
  const pad = (k: number): string => { while (pads.length <= k) pads.push(pads[pads.length - 1]! + ' '); return pads[k]!; };
  // Sized for the whole table (exact for ASCII: every line is at most the padded widths plus its
  // last cell), so a 1 MB listing is not copied into a buffer twice its size near the end.
  let lineMax = 1;
  for (let i = 0; i < n - 1; i++) lineMax += w[i]! + 3;
  let buf = Buffer.allocUnsafe(64 + (rows + 1) * lineMax + lastTotal);
  let pos = 0;
  const line = (row: number): void => {
    let s = '';
    let blank = 0; // padding owed before the next non-empty cell (trailing blanks are never written)
    for (let i = 0; i < n; i++) {
      const c = row < 0 ? header[i]! : cell(row, i);
      if (c.length) { s += blank ? pad(blank) + c : c; blank = 0; }
      if (i < n - 1) blank += w[i]! - c.length + 3;
    }
    const tail = s.charCodeAt(s.length - 1);
    if (tail <= 32 || tail > 127) s = s.trimEnd(); // as trimEnd on the joined line
    chunk += s + '\n';
    if (chunk.length > 16384) flush();
  };
  // Lines are gathered into ~16 KB strings, each encoded with one native call.
  let chunk = '';
  const flush = (): void => {
    const need = Buffer.byteLength(chunk, 'utf8');
    if (buf.length - pos < need) {
      const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, pos + need));
      buf.copy(bigger, 0, 0, pos);
      buf = bigger;
    }
    pos += buf.write(chunk, pos, 'utf8');
    chunk = '';
  };
  line(-1);
  for (let r = 0; r < rows; r++) line(r);
  flush();
  return buf.subarray(0, pos);
}

/** f, remembering results: listings repeat the same sizes and dates many times. */
export function memo<K, V>(f: (k: K) => V): (k: K) => V {
  const m = new Map<K, V>();
  return (k) => { let v = m.get(k); if (v === undefined && !m.has(k)) { v = f(k); m.set(k, v); } return v as V; };
}

export function jsonLines(objs: readonly unknown[]): string {
  return objs.map((o) => JSON.stringify(o)).join('\n') + (objs.length ? '\n' : '');
}

export function shortId(digest: string | undefined, noTrunc = false): string {
  if (!digest) return '<none>';
  return noTrunc ? digest : digest.replace(/^sha256:/, '').slice(0, 12);
}

/** How a stored name is shown: repository and tag in docker's familiar form. */
export function displayName(name: string): { repository: string; tag: string; digest?: string } {
  // Stored names are normalized (or foreign names as given): splitting is enough, and much cheaper
  // than re-validating 10,000 names for a listing.
  const c = new Int32Array(4);
  splitName(name, c);
  const repository = name.slice(c[0], c[1]);
  const tag = c[2] < 0 ? '<none>' : name.slice(c[2], c[3]);
  return c[3] < name.length ? { repository, tag, digest: name.slice(c[3] + 1) } : { repository, tag };
}

/** End of a stored name before any `@digest`. */
function nameEnd(name: string): number {
  const at = name.indexOf('@');
  return at < 0 ? name.length : at;
}

/**
 * displayName() as offsets, for listings: out[0], out[1] = the repository's start and end in
 * `name`; out[2] = where the tag starts, -1 when untagged; out[3] = where it ends (the `@` or the end).
 */
export function splitName(name: string, out: Int32Array): void {
  const end = nameEnd(name);
  const colon = name.lastIndexOf(':', end - 1);
  const tagged = colon > name.lastIndexOf('/', end - 1);
  const repoEnd = tagged ? colon : end;
  let start = 0;
  if (name.startsWith('docker.io/')) {
    start = 10;
    if (name.startsWith('library/', 10)) {
      const slash = name.indexOf('/', 18);
      if (slash < 0 || slash >= repoEnd) start = 18;
    }
  }
  out[0] = start;
  out[1] = repoEnd;
  out[2] = tagged ? colon + 1 : -1;
  out[3] = end;
}

export function familiar(name: string): string {
  const d = displayName(name);
  return d.tag === '<none>' ? (d.digest ? `${d.repository}@${d.digest}` : d.repository) : `${d.repository}:${d.tag}`;
}

/** The store name for a user-typed name: normalized full form (busybox → docker.io/library/busybox:latest). */
export function storeName(input: string): string {
  return parseReference(input).full;
}

export function noSuchImage(what: string): TsbError {
  return new TsbError('TSB5011', `no such image: ${what}`, { hint: 'run "tsbuild images" to see the names in this store.' });
}

export interface Found {
  /** Ref names that point at the image (all of them when found by ID). */
  names: string[];
  /** The name as resolved when the user typed a name (undefined when found by ID/digest). */
  name?: string;
  descriptor: Descriptor;
  /** Config digest (docker's image ID) when known. */
  id?: string;
}

/**
 * Find an image by name (`app`, `app:1`, `docker.io/library/app:1`, a name as stored), by ID
 * (`sha256:…` or a hex prefix of ≥ 4 of the config digest, like docker), or by manifest digest.
 */
export async function findImage(store: FsStore, input: string): Promise<Found> {
  const refs = await store.refs.list();
  const byName = (n: string) => refs.find((r) => r.name === n);
  const parsed = tryParseReference(input);
  const direct = byName(input) ?? (parsed ? byName(parsed.full) ?? byName(parsed.familiar) : undefined);
  if (direct && !(parsed?.digest)) {
    return { name: direct.name, names: [direct.name], descriptor: direct.descriptor, ...(direct.summary?.config ? { id: direct.summary.config } : {}) };
  }
  // name@digest: that repository pinned to a manifest digest.
  if (parsed?.digest) {
    const same = refs.filter((r) => r.descriptor.digest === parsed.digest);
    if (same.length) return fromRefs(same);
    if (await store.blobs.has(parsed.digest)) return { names: [], descriptor: await descriptorFor(store, parsed.digest) };
    throw noSuchImage(input);
  }
  const hex = input.replace(/^sha256:/, '');
  if (/^[a-f0-9]{4,64}$/.test(hex)) {
    const byId = refs.filter((r) => r.summary?.config?.slice(7).startsWith(hex));
    const ids = new Set(byId.map((r) => r.summary!.config));
    if (ids.size > 1) {
      throw new TsbError('TSB5011', `image ID prefix ${hex} is ambiguous (${ids.size} images)`, { hint: 'type more of the ID.' });
    }
    if (byId.length) return fromRefs(byId);
    const byManifest = refs.filter((r) => r.descriptor.digest.slice(7).startsWith(hex));
    if (byManifest.length) return fromRefs(byManifest);
    if (hex.length === 64 && (await store.blobs.has(`sha256:${hex}`))) return { names: [], descriptor: await descriptorFor(store, `sha256:${hex}`) };
  }
  throw noSuchImage(input);
}

function fromRefs(rs: RefEntry[]): Found {
  const f: Found = { names: rs.map((r) => r.name), descriptor: rs[0]!.descriptor };
  if (rs[0]!.summary?.config) f.id = rs[0]!.summary.config;
  return f;
}

async function descriptorFor(store: FsStore, digest: string): Promise<Descriptor> {
  const doc = await store.blobs.readJSON<{ mediaType?: string; manifests?: unknown }>(digest);
  const mediaType = doc.mediaType ?? (Array.isArray(doc.manifests) ? 'application/vnd.oci.image.index.v1+json' : 'application/vnd.oci.image.manifest.v1+json');
  return { mediaType, digest, size: (await store.blobs.size(digest)) ?? 0 };
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  config?: Record<string, unknown>;
  rootfs?: { type: string; diff_ids: string[] };
  history?: { created?: string; created_by?: string; author?: string; comment?: string; empty_layer?: boolean }[];
}

export interface Manifest { mediaType?: string; config: Descriptor; layers: Descriptor[] }

/** Host platform in OCI terms (for picking a manifest out of an index). */
function hostPlatform(): { os: string; architecture: string } {
  const arch: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return { os: 'linux', architecture: arch[process.arch] ?? process.arch };
}

/** The image manifest for a descriptor: itself, or the host platform's (else first present) from an index. */
export async function resolveManifest(store: FsStore, d: Descriptor): Promise<{ descriptor: Descriptor; manifest: Manifest }> {
  const doc = await store.blobs.readJSON<Manifest & { manifests?: Descriptor[] }>(d.digest);
  if (!Array.isArray(doc.manifests)) return { descriptor: d, manifest: doc };
  const host = hostPlatform();
  const present: Descriptor[] = [];
  for (const m of doc.manifests) if (await store.blobs.has(m.digest)) present.push(m);
  const pick = present.find((m) => m.platform?.os === host.os && m.platform.architecture === host.architecture) ?? present[0];
  if (!pick) throw new TsbError('TSB5008', `no platform manifest of index ${d.digest} is in the store`, { hint: 'pull the image again.' });
  return resolveManifest(store, pick);
}

export const command: Command = {
  name: 'images',
  summary: 'list images in the store',
  usage: 'tsbuild images [REPOSITORY[:TAG]] [--format table|json] [-q] [--digests] [--no-trunc]',
  flags: [
    FORMAT_FLAG,
    { name: 'quiet', short: 'q', type: 'bool', help: 'only show image IDs' },
    { name: 'digests', type: 'bool', help: 'show manifest digests' },
    { name: 'no-trunc', type: 'bool', help: 'do not truncate IDs' },
  ],
  details: 'IMAGE ID is the config digest (what docker shows); SIZE is the uncompressed size of the layers.',
  async run(args, ctx) {
    const format = outputFormat(args);
    if (args.positional.length > 1) throw usageError('images takes at most one REPOSITORY[:TAG] filter');
    const store = await openStoreFor(args, ctx);
    const now = Date.now();
    // Columns, names already newest first then by name (code-unit order: localeCompare costs ~1 µs
    // a call, too slow for 10,000 names, and depends on the locale): see RefListingTable.
    const t = await store.refs.listingTable();
    let sel: number[] | undefined; // rows shown (all when undefined)
    const filter = args.positional[0];
    if (filter !== undefined) {
      const f = tryParseReference(filter, { defaultTag: false });
      sel = [];
      for (let i = 0; i < t.names.length; i++) {
        const name = t.names[i]!;
        const p = tryParseReference(name, { defaultTag: false });
        if (!f || !p ? name === filter : p.repository === f.repository && (f.tag === undefined || p.tag === f.tag)) sel.push(i);
      }
    }
    const count = sel ? sel.length : t.names.length;
    const at = sel ? (r: number) => sel![r]! : (r: number) => r;
    const noTrunc = args.bool('no-trunc');
    if (args.bool('quiet')) {
      const ids = new Set<string>();
      for (let r = 0; r < count; r++) { const img = t.image[at(r)]!; ids.add(shortId(t.config[img] ?? t.digest[img], noTrunc)); }
      print(ctx, [...ids].map((i) => i + '\n').join(''));
      return 0;
    }
    if (format === 'json') {
      const objs: unknown[] = [];
      for (let r = 0; r < count; r++) {
        const name = t.names[at(r)]!;
        const img = t.image[at(r)]!;
        const d = displayName(name);
        const created = t.created[img] ?? '';
        objs.push({ ID: t.config[img] ?? '', Repository: d.repository, Tag: d.tag, Name: name, Digest: t.digest[img], CreatedAt: created, CreatedSince: ago(created || undefined, now), Size: t.size[img] ?? 0 });
      }
      print(ctx, jsonLines(objs));
      return 0;
    }
    const digests = args.bool('digests');
    const header = digests ? ['REPOSITORY', 'TAG', 'DIGEST', 'IMAGE ID', 'CREATED', 'SIZE'] : ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];
    // Per image, not per name: many names share an image.
    const nImg = t.digest.length;
    const idCol: string[] = new Array<string>(nImg);
    const agoCol: string[] = new Array<string>(nImg);
    const sizeCol: string[] = new Array<string>(nImg);
    const agoOf = memo((c: string) => ago(c || undefined, now));
    const sizeOf = memo((n: number) => humanSize(n));
    for (let i = 0; i < nImg; i++) {
      idCol[i] = shortId(t.config[i] ?? undefined, noTrunc);
      agoCol[i] = agoOf(t.created[i] ?? '');
      sizeCol[i] = sizeOf(t.size[i] ?? 0);
    }
    const k = digests ? 1 : 0;
    // Repository and tag as offsets into the name (docker's familiar form, as displayName): the
    // width pass makes no strings at all.
    const cut = new Int32Array(4);
    let cutRow = -1;
    const parts = (r: number): Int32Array => {
      if (r === cutRow) return cut;
      cutRow = r;
      splitName(t.names[at(r)]!, cut);
      return cut;
    };
    const cellOf = (r: number, i: number): string => {
      if (i === 0) { const c = parts(r); return t.names[at(r)]!.slice(c[0], c[1]); }
      if (i === 1) { const c = parts(r); return c[2] < 0 ? '<none>' : t.names[at(r)]!.slice(c[2], c[3]); }
      const img = t.image[at(r)]!;
      if (k && i === 2) return t.digest[img]!;
      const j = i - k;
      return j === 2 ? idCol[img]! : j === 3 ? agoCol[img]! : sizeCol[img]!;
    };
    const widthOf = (r: number, i: number): number => {
      if (i === 0) { const c = parts(r); return c[1] - c[0]; }
      if (i === 1) { const c = parts(r); return c[2] < 0 ? 6 : c[3] - c[2]; }
      return cellOf(r, i).length; // strings kept per image: nothing made
    };
    print(ctx, tableRows(header, count, cellOf, widthOf));
    return 0;
  },
};

