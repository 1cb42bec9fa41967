/**
 * Image formats: media types, the OCI image config / manifest / index types, canonical JSON, and
 * the two helpers everything else uses to put images into the store and read them back.
 *
 * Store model (WHY it looks like this):
 * - The store keeps every layer UNCOMPRESSED, addressed by its diff_id. A manifest that tsbuild
 *   makes itself (`writeImage`) lists those uncompressed blobs (`application/vnd.oci.image.layer.v1.tar`,
 *   digest = diff_id). Exports compress on the way out (src/oci/export.ts) and remember the
 *   compressed blob in `store.compressed`, so each layer is compressed once.
 * - A manifest that came from elsewhere (pull, load) is kept byte for byte, so its digest survives
 *   a pull → push round trip. Its layer descriptors may be compressed; the compressed blob is kept
 *   too (so a push to another registry needs no recompression, which would change digests), and
 *   the uncompressed blob sits next to it under the diff_id from config.rootfs.diff_ids.
 *   So: layer i of any image = blob `config.rootfs.diff_ids[i]` (uncompressed, always present);
 *   `manifest.layers[i]` is how it is distributed.
 *
 * Canonical JSON: the bytes Docker/BuildKit write. BuildKit sorts the top-level keys of the image
 * config (it patches it as a map) while nested objects keep Go struct field order; map-valued
 * fields (Labels, ExposedPorts, Volumes, annotations) have sorted keys (Go sorts map keys); and Go
 * escapes <, >, & and U+2028/9 in strings. Same input → same bytes → same digest.
 *
 * Error codes of src/oci (TSB6001 is reference.ts):
 *   TSB6101 malformed image JSON (manifest, config, index)   TSB6102 unsupported media type
 *   TSB6103 platform not in index                            TSB6104 image not found in the store
 *   TSB6105 blob digest/size mismatch                        TSB6106 layer diff_id mismatch
 *   TSB61[1x] output specs/exports, TSB612x archives, TSB613x compression, TSB614x registry,
 *   TSB615x credentials (see the modules).
 */
import { TsbError } from '../errors.js';
import type { Descriptor, Digest, Platform, Store } from '../../store/types.js';
import type { ParsedArgs } from '../cli/args.js';
import { normalizeReference, isDigest } from './reference.js';

export type { Descriptor, Digest, Platform } from '../../store/types.js';

export const MediaType = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_LAYER_NONDIST: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCI_LAYER_NONDIST_GZIP: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCI_LAYER_NONDIST_ZSTD: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER: 'application/vnd.docker.image.rootfs.diff.tar',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DOCKER_LAYER_ZSTD: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  DOCKER_FOREIGN_LAYER_GZIP: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type Compression = 'gzip' | 'zstd' | 'uncompressed';

export const isManifestType = (mt: string | undefined): boolean =>
  mt === MediaType.OCI_MANIFEST || mt === MediaType.DOCKER_MANIFEST;
export const isIndexType = (mt: string | undefined): boolean =>
  mt === MediaType.OCI_INDEX || mt === MediaType.DOCKER_MANIFEST_LIST;

/** Compression of a layer media type, or undefined when it is not a layer type we know. */
export function layerCompression(mediaType: string): Compression | undefined {
  switch (mediaType) {
    case MediaType.OCI_LAYER: case MediaType.OCI_LAYER_NONDIST: case MediaType.DOCKER_LAYER:
      return 'uncompressed';
    case MediaType.OCI_LAYER_GZIP: case MediaType.OCI_LAYER_NONDIST_GZIP: case MediaType.DOCKER_LAYER_GZIP:
    case MediaType.DOCKER_FOREIGN_LAYER_GZIP:
      return 'gzip';
    case MediaType.OCI_LAYER_ZSTD: case MediaType.OCI_LAYER_NONDIST_ZSTD: case MediaType.DOCKER_LAYER_ZSTD:
      return 'zstd';
    default:
      return undefined;
  }
}

/** The layer media type for a compression in the OCI or docker family. */
export function layerMediaType(compression: Compression, family: 'oci' | 'docker' = 'oci'): string {
  if (family === 'docker') {
    return compression === 'gzip' ? MediaType.DOCKER_LAYER_GZIP
      : compression === 'zstd' ? MediaType.DOCKER_LAYER_ZSTD : MediaType.DOCKER_LAYER;
  }
  return compression === 'gzip' ? MediaType.OCI_LAYER_GZIP
    : compression === 'zstd' ? MediaType.OCI_LAYER_ZSTD : MediaType.OCI_LAYER;
}

// ---------------------------------------------------------------------------------------------
// Types (OCI image-spec v1.1 config, with Docker's extensions)

export interface HealthConfig {
  /** `[]` inherit, `["NONE"]` disabled, `["CMD", …]` exec, `["CMD-SHELL", cmd]` shell. */
  Test?: string[];
  /** Nanoseconds (Go time.Duration), as docker writes them. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  /** Docker: Cmd/Entrypoint already escaped for Windows; written by docker for shell forms. */
  ArgsEscaped?: boolean;
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: HistoryEntry[];
  /** Unknown fields from configs made elsewhere are kept (and serialized after the known ones). */
  [extra: string]: unknown;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  manifests: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
}

// ---------------------------------------------------------------------------------------------
// Canonical JSON

type Shape =
  | { kind: 'struct'; order: readonly string[]; fields?: Record<string, Shape>; omitEmpty?: readonly string[]; sortTop?: boolean }
  | { kind: 'map'; value?: Shape }
  | { kind: 'array'; item: Shape }
  | { kind: 'any' };

const ANY: Shape = { kind: 'any' };
const STRMAP: Shape = { kind: 'map' };
const PLATFORM: Shape = { kind: 'struct', order: ['architecture', 'os', 'os.version', 'os.features', 'variant'] };
const DESCRIPTOR: Shape = {
  kind: 'struct',
  order: ['mediaType', 'digest', 'size', 'urls', 'annotations', 'data', 'platform', 'artifactType'],
  fields: { annotations: STRMAP, platform: PLATFORM },
};
const DESCRIPTORS: Shape = { kind: 'array', item: DESCRIPTOR };
const CONTAINER_CONFIG_FIELDS = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir',
  'Labels', 'StopSignal', 'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell'] as const;
const CONTAINER_CONFIG: Shape = {
  kind: 'struct',
  order: CONTAINER_CONFIG_FIELDS,
  omitEmpty: CONTAINER_CONFIG_FIELDS,
  fields: {
    ExposedPorts: { kind: 'map' }, Volumes: { kind: 'map' }, Labels: STRMAP,
    Healthcheck: { kind: 'struct', order: ['Test', 'Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'],
      omitEmpty: ['Test', 'Interval', 'Timeout', 'StartPeriod', 'StartInterval', 'Retries'] },
  },
};
const HISTORY: Shape = {
  kind: 'struct', order: ['created', 'created_by', 'author', 'comment', 'empty_layer'],
  omitEmpty: ['created', 'created_by', 'author', 'comment', 'empty_layer'],
};
const CONFIG_SHAPE: Shape = {
  kind: 'struct', sortTop: true, order: [],
  omitEmpty: ['created', 'author', 'os.version', 'os.features', 'variant', 'history'],
  fields: {
    config: CONTAINER_CONFIG,
    rootfs: { kind: 'struct', order: ['type', 'diff_ids'] },
    history: { kind: 'array', item: HISTORY },
  },
};
const MANIFEST_SHAPE: Shape = {
  kind: 'struct', order: ['schemaVersion', 'mediaType', 'artifactType', 'config', 'layers', 'subject', 'annotations'],
  omitEmpty: ['mediaType', 'artifactType', 'annotations'],
  fields: { config: DESCRIPTOR, layers: DESCRIPTORS, subject: DESCRIPTOR, annotations: STRMAP },
};
const INDEX_SHAPE: Shape = {
  kind: 'struct', order: ['schemaVersion', 'mediaType', 'artifactType', 'manifests', 'subject', 'annotations'],
  omitEmpty: ['mediaType', 'artifactType', 'annotations'],
  fields: { manifests: DESCRIPTORS, subject: DESCRIPTOR, annotations: STRMAP },
};

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null || v === '' || v === false || v === 0) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === 'object') return Object.keys(v as object).length === 0;
  return false;
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function orderValue(v: unknown, shape: Shape): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x) => orderValue(x, shape.kind === 'array' ? shape.item : ANY));
  const obj = v as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if (shape.kind === 'struct') {
    const known = shape.sortTop ? Object.keys(obj).sort(byCodeUnit) : shape.order;
    const omit = new Set(shape.omitEmpty ?? []);
    const put = (k: string) => {
      const x = obj[k];
      if (x === undefined || (omit.has(k) && isEmpty(x))) return;
      out[k] = orderValue(x, shape.fields?.[k] ?? ANY);
    };
    for (const k of known) if (Object.hasOwn(obj, k)) put(k);
    // Fields we do not know are kept, sorted, after the known ones.
    for (const k of Object.keys(obj).sort(byCodeUnit)) if (!Object.hasOwn(out, k) && !known.includes(k)) put(k);
    return out;
  }
  // Maps and unknown objects: sorted keys, as Go writes maps.
  for (const k of Object.keys(obj).sort(byCodeUnit)) {
    if (obj[k] === undefined) continue;
    out[k] = orderValue(obj[k], shape.kind === 'map' ? (shape.value ?? ANY) : ANY);
  }
  return out;
}

function goEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Canonical bytes of an image config. */
export function canonicalConfig(config: ImageConfig): Buffer {
  return Buffer.from(goEscape(JSON.stringify(orderValue(config, CONFIG_SHAPE))), 'utf8');
}
/** Canonical bytes of a manifest. */
export function canonicalManifest(manifest: Manifest): Buffer {
  return Buffer.from(goEscape(JSON.stringify(orderValue(manifest, MANIFEST_SHAPE))), 'utf8');
}
/** Canonical bytes of an index (also the `index.json` of an OCI layout). */
export function canonicalIndex(index: Index): Buffer {
  return Buffer.from(goEscape(JSON.stringify(orderValue(index, INDEX_SHAPE))), 'utf8');
}
/** Canonical bytes of a descriptor (used in docker-archive and layout files). */
export function canonicalDescriptor(d: Descriptor): Buffer {
  return Buffer.from(goEscape(JSON.stringify(orderValue(d, DESCRIPTOR))), 'utf8');
}

// ---------------------------------------------------------------------------------------------
// Validation of JSON that came from outside (registry, archive)

function malformed(what: string, why: string, cause?: unknown): TsbError {
  return new TsbError('TSB6101', `malformed ${what}: ${why}`, {
    hint: 'the image was written by a broken or hostile tool; rebuild or re-pull it.', cause,
  });
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function validateDescriptor(d: unknown, what: string): Descriptor {
  if (!d || typeof d !== 'object') throw malformed(what, 'descriptor is not an object');
  const o = d as Record<string, unknown>;
  if (typeof o.mediaType !== 'string') throw malformed(what, 'descriptor without mediaType');
  if (typeof o.digest !== 'string' || !isDigest(o.digest)) throw malformed(what, `bad digest ${JSON.stringify(o.digest)}`);
  if (!o.digest.startsWith('sha256:') || !DIGEST_RE.test(o.digest)) {
    throw new TsbError('TSB6102', `${what}: digest algorithm of ${o.digest} is not supported`, { hint: 'only sha256 digests are supported.' });
  }
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) throw malformed(what, `bad size ${JSON.stringify(o.size)}`);
  return o as unknown as Descriptor;
}

export function parseJSON(bytes: Buffer | string, what: string): unknown {
  try {
    return JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (e) {
    throw malformed(what, 'not valid JSON', e);
  }
}

export function validateManifest(v: unknown, what = 'manifest'): Manifest {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw malformed(what, 'not a JSON object');
  const m = v as Record<string, unknown>;
  if (m.schemaVersion !== 2) throw malformed(what, `schemaVersion ${JSON.stringify(m.schemaVersion)} (only 2 is supported)`);
  if (m.mediaType !== undefined && !isManifestType(m.mediaType as string)) {
    throw new TsbError('TSB6102', `${what}: unsupported media type ${String(m.mediaType)}`, { hint: 'tsbuild reads OCI and Docker v2 schema 2 images.' });
  }
  validateDescriptor(m.config, `${what} config`);
  if (!Array.isArray(m.layers)) throw malformed(what, 'layers is not a list');
  m.layers.forEach((l, i) => {
    const d = validateDescriptor(l, `${what} layer ${i}`);
    if (layerCompression(d.mediaType) === undefined) {
      throw new TsbError('TSB6102', `${what}: layer ${i} has unsupported media type ${d.mediaType}`, {
        hint: 'tsbuild reads tar layers (uncompressed, gzip or zstd).',
      });
    }
  });
  return m as unknown as Manifest;
}

export function validateIndex(v: unknown, what = 'index'): Index {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw malformed(what, 'not a JSON object');
  const m = v as Record<string, unknown>;
  if (m.schemaVersion !== 2) throw malformed(what, `schemaVersion ${JSON.stringify(m.schemaVersion)} (only 2 is supported)`);
  if (!Array.isArray(m.manifests)) throw malformed(what, 'manifests is not a list');
  m.manifests.forEach((d, i) => validateDescriptor(d, `${what} entry ${i}`));
  return m as unknown as Index;
}

export function validateConfig(v: unknown, what = 'image config'): ImageConfig {
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw malformed(what, 'not a JSON object');
  const c = v as Record<string, unknown>;
  const rootfs = c.rootfs as Record<string, unknown> | undefined;
  if (!rootfs || rootfs.type !== 'layers' || !Array.isArray(rootfs.diff_ids)) throw malformed(what, 'rootfs is not {type: "layers", diff_ids: [...]}');
  for (const d of rootfs.diff_ids) {
    if (typeof d !== 'string' || !DIGEST_RE.test(d)) throw malformed(what, `bad diff_id ${JSON.stringify(d)}`);
  }
  if (typeof c.architecture !== 'string' || typeof c.os !== 'string') throw malformed(what, 'architecture and os must be strings');
  if (c.config !== undefined && c.config !== null && (typeof c.config !== 'object' || Array.isArray(c.config))) throw malformed(what, 'config is not an object');
  return c as ImageConfig;
}

// ---------------------------------------------------------------------------------------------
// Store helpers

/** Descriptor of an uncompressed layer blob in our store (digest = diff_id). */
export function layerDescriptor(diffId: Digest, size: number): Descriptor {
  return { mediaType: MediaType.OCI_LAYER, digest: diffId, size };
}

export interface WriteImageInput {
  config: ImageConfig;
  /** Layer descriptors, normally uncompressed blobs in the store (layerDescriptor). */
  layers: Descriptor[];
  annotations?: Record<string, string>;
  /** Media type family of manifest and config (default oci). */
  mediaTypes?: 'oci' | 'docker';
}

/**
 * Puts the config and manifest blobs (canonical bytes) and returns the manifest descriptor. Layers
 * must already be in the store. Checks that the layers match config.rootfs.diff_ids when they are
 * uncompressed (a mismatch is a bug in the caller, reported as TSB6106).
 */
export async function writeImage(store: Store, input: WriteImageInput): Promise<Descriptor> {
  const docker = input.mediaTypes === 'docker';
  const diffIds = input.config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== input.layers.length) {
    throw new TsbError('TSB6106', `image has ${input.layers.length} layers but its config lists ${diffIds.length} diff_ids`);
  }
  input.layers.forEach((l, i) => {
    if (layerCompression(l.mediaType) === 'uncompressed' && l.digest !== diffIds[i]) {
      throw new TsbError('TSB6106', `layer ${i} is ${l.digest} but the config's diff_id is ${diffIds[i]}`);
    }
  });
  const configBytes = canonicalConfig(input.config);
  const c = await store.blobs.put(configBytes);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DOCKER_MANIFEST : MediaType.OCI_MANIFEST,
    config: { mediaType: docker ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG, digest: c.digest, size: c.size },
    layers: input.layers.map((l) => ({ ...l })),
    ...(input.annotations && Object.keys(input.annotations).length ? { annotations: input.annotations } : {}),
  };
  const mbytes = canonicalManifest(manifest);
  const m = await store.blobs.put(mbytes);
  return { mediaType: manifest.mediaType!, digest: m.digest, size: m.size };
}

export interface ReadImage {
  /** The manifest's own descriptor (after index resolution). */
  descriptor: Descriptor;
  manifest: Manifest;
  config: ImageConfig;
  /** The index the name pointed at, when it was one. */
  index?: { descriptor: Descriptor; index: Index };
}

export interface ReadImageOptions {
  /** Platform to pick from an index; default linux/amd64. */
  platform?: Platform;
}

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

/** Parse `linux/amd64`, `linux/arm64/v8`, `amd64` into a Platform (TSB6103 when malformed). */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().toLowerCase().split('/');
  if (parts.some((p) => p === '') || parts.length > 3) {
    throw new TsbError('TSB6103', `invalid platform "${s}"`, { hint: 'write OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm64/v8.' });
  }
  if (parts.length === 1) return { os: 'linux', architecture: normArch(parts[0]!) };
  const p: Platform = { os: parts[0]!, architecture: normArch(parts[1]!) };
  if (parts[2]) p.variant = parts[2];
  return p;
}

/** `--platform` of a command that takes one (pull, save, import), parsed; undefined when absent. */
export function platformFlag(args: ParsedArgs): Platform | undefined {
  const p = args.str('platform');
  return p ? parsePlatform(p) : undefined;
}

function normArch(a: string): string {
  return a === 'x86_64' || a === 'x86-64' ? 'amd64' : a === 'aarch64' ? 'arm64' : a;
}

export function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Does an index entry's platform satisfy the wanted one (variant only compared when wanted)? */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || normArch(have.architecture) !== normArch(want.architecture)) return false;
  if (want.variant) {
    const hv = have.variant ?? (have.architecture === 'arm64' ? 'v8' : undefined);
    return hv === want.variant;
  }
  return true;
}

/** Pick the manifest for a platform from an index (TSB6103 naming the platforms present). */
export function pickManifest(index: Index, want: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter((d) => isManifestType(d.mediaType) && platformMatches(d.platform, want));
  if (candidates.length === 0) {
    const have = index.manifests.filter((d) => d.platform).map((d) => platformString(d.platform!));
    throw new TsbError('TSB6103', `${what} has no image for ${platformString(want)}`, {
      hint: have.length ? `it has ${[...new Set(have)].join(', ')}; pass --platform to choose one.` : 'the index names no platforms.',
    });
  }
  // Prefer an exact variant match when several match (arm/v6 vs arm/v7 never both match because variant compared).
  return candidates[0]!;
}

/**
 * Resolve a name (`app:1`, `docker.io/library/busybox:latest`, `sha256:…` of a manifest) or a
 * descriptor to {manifest, config}. An index resolves to linux/amd64 (or opts.platform).
 */
export async function readImage(store: Store, target: Descriptor | string, opts: ReadImageOptions = {}): Promise<ReadImage> {
  let desc: Descriptor;
  if (typeof target === 'string') {
    const found = await lookupName(store, target);
    if (!found) {
      throw new TsbError('TSB6104', `image "${target}" is not in the store`, {
        hint: `pull it (tsbuild pull ${target}), load it, or build it first; "tsbuild images" lists what is there.`,
      });
    }
    desc = found;
  } else desc = target;
  const want = opts.platform ?? DEFAULT_PLATFORM;
  let indexInfo: ReadImage['index'];
  const raw = await readBlobJSON(store, desc, 'image');
  let mdesc = desc;
  let mraw: unknown = raw;
  const rawMt = (raw as { mediaType?: string }).mediaType;
  if (isIndexType(desc.mediaType) || isIndexType(rawMt) || (!rawMt && Array.isArray((raw as { manifests?: unknown }).manifests))) {
    const index = validateIndex(raw, `index ${desc.digest}`);
    indexInfo = { descriptor: desc, index };
    mdesc = pickManifest(index, want, typeof target === 'string' ? `"${target}"` : `index ${desc.digest}`);
    mraw = await readBlobJSON(store, mdesc, 'manifest');
  }
  const manifest = validateManifest(mraw, `manifest ${mdesc.digest}`);
  const config = validateConfig(await readBlobJSON(store, manifest.config, 'image config'), `image config ${manifest.config.digest}`);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new TsbError('TSB6106', `manifest ${mdesc.digest} has ${manifest.layers.length} layers but its config lists ${config.rootfs.diff_ids.length} diff_ids`);
  }
  return { descriptor: { mediaType: manifest.mediaType ?? mdesc.mediaType, digest: mdesc.digest, size: mdesc.size }, manifest, config, ...(indexInfo ? { index: indexInfo } : {}) };
}

async function readBlobJSON(store: Store, d: Descriptor, what: string): Promise<unknown> {
  if (!(await store.blobs.has(d.digest))) {
    throw new TsbError('TSB6104', `${what} blob ${d.digest} is missing from the store`, { hint: 'run "tsbuild store verify", then pull or load the image again.' });
  }
  return parseJSON(await store.blobs.read(d.digest), `${what} ${d.digest}`);
}

/**
 * Find a name in the store's refs: as given, then normalized (`busybox` → docker.io/library/busybox:latest).
 * A bare `sha256:…` (or `NAME@sha256:…` with the blob present) resolves to that manifest blob.
 */
export async function lookupName(store: Store, name: string): Promise<Descriptor | undefined> {
  const direct = await store.refs.get(name);
  if (direct) return direct;
  if (DIGEST_RE.test(name)) return blobAsImage(store, name);
  let full: string | undefined;
  try { full = normalizeReference(name); } catch { return undefined; }
  if (full !== name) {
    const d = await store.refs.get(full);
    if (d) return d;
  }
  const at = full.indexOf('@');
  if (at >= 0) {
    const digest = full.slice(at + 1);
    const d = await blobAsImage(store, digest);
    if (d) return d;
  }
  return undefined;
}

async function blobAsImage(store: Store, digest: Digest): Promise<Descriptor | undefined> {
  if (!DIGEST_RE.test(digest) || !(await store.blobs.has(digest))) return undefined;
  let raw: unknown;
  try { raw = JSON.parse((await store.blobs.read(digest)).toString('utf8')); } catch { return undefined; }
  const mt = (raw as { mediaType?: string } | null)?.mediaType;
  const size = (await store.blobs.size(digest)) ?? 0;
  if (isIndexType(mt) || (raw && typeof raw === 'object' && Array.isArray((raw as { manifests?: unknown }).manifests))) {
    return { mediaType: mt ?? MediaType.OCI_INDEX, digest, size };
  }
  if (raw && typeof raw === 'object' && (raw as { config?: unknown }).config) return { mediaType: mt ?? MediaType.OCI_MANIFEST, digest, size };
  return undefined;
}

/** The uncompressed layer blobs of an image, in order: {diffId, size?} (size known when in the store). */
export function diffIds(image: Pick<ReadImage, 'config'>): Digest[] {
  return [...image.config.rootfs.diff_ids];
}

/** RFC 3339 with seconds precision, UTC (what BuildKit writes for SOURCE_DATE_EPOCH). */
export function epochToRFC3339(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

/**
 * Run `fn` under a store lease, so a concurrent `gc` keeps every blob written meanwhile (pull,
 * load and export write blobs before any ref names them).
 */
export async function withLease<T>(store: Store, label: string, fn: () => Promise<T>): Promise<T> {
  const lease = await store.lease(label);
  try { return await fn(); } finally { await lease.release().catch(() => undefined); }
}
