/**
 * Build outputs (`--output`, `-o`): parse the spec, and export an image from the store as an OCI
 * archive/layout, a `docker load` archive, a registry push, the final filesystem (local) or a
 * flattened filesystem tar.
 *
 * Output spec (BuildKit's CSV syntax): `type=oci,dest=out.tar`, `type=docker,dest=-,name=app:1`,
 * `type=local,dest=DIR`, `type=tar,dest=FILE`, `type=registry,name=host/x:1` (= `type=image,push=true`);
 * a value with commas is quoted (`"name=a:1,b:1"`). Short form `-o DIR` = `type=local,dest=DIR`,
 * `-o -` = `type=tar,dest=-` (as docker). Keys: compression=gzip|zstd|uncompressed,
 * compression-level=N, force-compression=bool, oci-mediatypes=bool, rewrite-timestamp=bool,
 * name=…, push=bool, tar=bool (oci only: false writes a layout directory), registry.insecure=bool.
 * Errors: TSB6110 (bad spec).
 *
 * Media types: oci and registry default to OCI media types, docker to Docker's (what BuildKit does).
 * Layers are compressed once per (diff_id, compression) and remembered (compress.ts).
 */
import { availableParallelism } from 'node:os';
import { TsbError, isTsbError } from '../errors.js';
import type { Descriptor, Store } from '../../store/types.js';
import {
  MediaType, canonicalConfig, canonicalManifest, epochToRFC3339, layerCompression, layerMediaType,
  readImage, withLease, type Compression, type ImageConfig, type Manifest, type ReadImage,
} from './image.js';
import { compressedLayer } from './compress.js';
import { atomicFileFrom, writeArchive, writeLayoutDir, type ArchiveImage } from './archive.js';
import { parseReference } from './reference.js';
import { rewriteLayerTimestamps } from './timestamps.js';

export type OutputType = 'oci' | 'docker' | 'local' | 'tar' | 'image' | 'registry';

export interface OutputSpec {
  type: OutputType;
  /** File, directory, or `-` (stdout). Required for oci/docker/local/tar (oci/docker to stdout when `-`). */
  dest?: string;
  /** Image names (normalized full references) from `name=`. */
  names: string[];
  compression?: Compression;
  compressionLevel?: number;
  forceCompression: boolean;
  /** undefined = the type's default (oci/registry: true, docker: false). */
  ociMediaTypes?: boolean;
  rewriteTimestamp: boolean;
  push: boolean;
  /** oci/docker: write a tar (default) or, when false, an OCI layout directory. */
  tar: boolean;
  insecure: boolean;
  /** The spec as written, for messages. */
  raw: string;
}

function badSpec(raw: string, why: string, hint?: string): TsbError {
  return new TsbError('TSB6110', `invalid output "${raw}": ${why}`, {
    hint: hint ?? 'write e.g. type=oci,dest=out.tar or type=docker,dest=img.tar,name=app:1 or type=local,dest=DIR.',
    exitCode: 2,
  });
}

/** Split a CSV line like Go's encoding/csv: commas separate; "quoted, fields" with "" for a quote. */
export function splitCsv(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let i = 0;
  let quoted = false;
  let fieldStart = true;
  while (i < s.length) {
    const ch = s[i]!;
    if (quoted) {
      if (ch === '"') {
        if (s[i + 1] === '"') { cur += '"'; i += 2; continue; }
        quoted = false; i++; continue;
      }
      cur += ch; i++; continue;
    }
    if (ch === '"' && (fieldStart || /^[^=]*=$/.test(cur))) { quoted = true; fieldStart = false; i++; continue; }
    if (ch === ',') { out.push(cur); cur = ''; fieldStart = true; i++; continue; }
    cur += ch; fieldStart = false; i++;
  }
  if (quoted) throw new Error('unterminated quote');
  out.push(cur);
  return out;
}

function parseBool(raw: string, key: string, v: string): boolean {
  const l = v.toLowerCase();
  if (l === 'true' || l === '1' || l === '') return true;
  if (l === 'false' || l === '0') return false;
  throw badSpec(raw, `${key} takes true or false, not "${v}"`);
}

/** Parse an `--output` value. Throws TSB6110 (exit code 2) on bad input. */
export function parseOutputSpec(str: string): OutputSpec {
  const raw = str;
  const s = str.trim();
  if (s === '') throw badSpec(raw, 'it is empty');
  const spec: OutputSpec = { type: 'local', names: [], forceCompression: false, rewriteTimestamp: false, push: false, tar: true, insecure: false, raw };
  if (!s.includes('=')) {
    // docker's short form: a directory, or "-" for a tar on stdout.
    if (s === '-') { spec.type = 'tar'; spec.dest = '-'; } else spec.dest = s;
    return spec;
  }
  let fields: string[];
  try { fields = splitCsv(s); } catch { throw badSpec(raw, 'it has an unterminated quote'); }
  let typeSeen = false;
  const seen = new Set<string>();
  for (const f of fields) {
    const eq = f.indexOf('=');
    const key = (eq < 0 ? f : f.slice(0, eq)).trim().toLowerCase();
    const value = eq < 0 ? '' : f.slice(eq + 1);
    if (key === '') throw badSpec(raw, 'it has an empty field');
    if (seen.has(key) && key !== 'name') throw badSpec(raw, `${key} is given twice`);
    seen.add(key);
    switch (key) {
      case 'type':
        if (!['oci', 'docker', 'local', 'tar', 'image', 'registry'].includes(value)) {
          throw badSpec(raw, `unknown type "${value}"`, 'type is one of oci, docker, local, tar, image, registry.');
        }
        spec.type = value as OutputType;
        typeSeen = true;
        break;
      case 'dest':
        if (value === '') throw badSpec(raw, 'dest is empty');
        spec.dest = value;
        break;
      case 'name':
        for (const n of value.split(',').map((x) => x.trim()).filter(Boolean)) {
          try { spec.names.push(parseReference(n).full); } catch (e) {
            throw new TsbError('TSB6110', `invalid output "${raw}": name ${JSON.stringify(n)} is not a valid image reference`, { cause: e, exitCode: 2, hint: isTsbError(e) ? e.hint : undefined });
          }
        }
        break;
      case 'compression':
        if (value !== 'gzip' && value !== 'zstd' && value !== 'uncompressed') {
          throw badSpec(raw, `unknown compression "${value}"`, 'compression is gzip, zstd or uncompressed.');
        }
        spec.compression = value;
        break;
      case 'compression-level': {
        if (!/^\d+$/.test(value)) throw badSpec(raw, `compression-level must be a number, not "${value}"`);
        spec.compressionLevel = Number(value);
        break;
      }
      case 'force-compression': spec.forceCompression = parseBool(raw, key, value); break;
      case 'oci-mediatypes': spec.ociMediaTypes = parseBool(raw, key, value); break;
      case 'rewrite-timestamp': spec.rewriteTimestamp = parseBool(raw, key, value); break;
      case 'push': spec.push = parseBool(raw, key, value); break;
      case 'tar': spec.tar = parseBool(raw, key, value); break;
      case 'registry.insecure': spec.insecure = parseBool(raw, key, value); break;
      default:
        throw badSpec(raw, `unknown key "${key}"`, 'keys: type, dest, name, compression, compression-level, force-compression, oci-mediatypes, rewrite-timestamp, push, tar, registry.insecure.');
    }
  }
  if (!typeSeen) throw badSpec(raw, 'it has no type=', 'add type=oci, type=docker, type=local, type=tar or type=registry.');
  if (spec.type === 'registry') { spec.type = 'image'; spec.push = true; }
  if (spec.compressionLevel !== undefined) {
    const c = spec.compression ?? 'gzip';
    const max = c === 'zstd' ? 19 : 9;
    const min = c === 'zstd' ? 1 : 0;
    if (c === 'uncompressed' || spec.compressionLevel < min || spec.compressionLevel > max) {
      throw badSpec(raw, `compression-level ${spec.compressionLevel} is out of range for ${c}`, c === 'uncompressed' ? 'drop compression-level for uncompressed output.' : `${c} levels are ${min}..${max}.`);
    }
  }
  if ((spec.type === 'oci' || spec.type === 'docker' || spec.type === 'local' || spec.type === 'tar') && !spec.dest) {
    throw badSpec(raw, `type=${spec.type} needs dest=`, `add dest=FILE${spec.type === 'local' ? ' (a directory)' : ' or dest=- for stdout'}.`);
  }
  if (spec.type === 'local' && spec.dest === '-') throw badSpec(raw, 'type=local writes a directory, not stdout', 'use type=tar,dest=- for a tar on stdout.');
  if (spec.type === 'image' && spec.push && spec.names.length === 0) {
    // names may still come from -t; checked by exportImage.
  }
  if (spec.type === 'docker' && !spec.tar) throw badSpec(raw, 'type=docker always writes a tar', 'use type=oci,tar=false for a layout directory.');
  return spec;
}

export interface DistributionOptions {
  /** Wanted layer compression; undefined keeps already-compressed layers and gzips uncompressed ones. */
  compression?: Compression;
  compressionLevel?: number;
  force?: boolean;
  /** Media type family of the result; undefined keeps the manifest's. */
  mediaTypes?: 'oci' | 'docker';
  signal?: AbortSignal;
}

/**
 * The manifest to distribute (push, save) for an image: layers compressed as wanted (made at most
 * once, remembered), media types of the wanted family. When nothing changes, the manifest is the
 * original one, byte for byte (so a pulled image pushes back with the same digests).
 * The result's blobs are all in the store.
 */
export async function distributionImage(store: Store, image: ReadImage, opts: DistributionOptions = {}): Promise<Descriptor> {
  const m = image.manifest;
  const curFamily: 'oci' | 'docker' = (m.mediaType ?? image.descriptor.mediaType) === MediaType.DOCKER_MANIFEST ? 'docker' : 'oci';
  const family = opts.mediaTypes ?? curFamily;
  let changed = family !== curFamily;
  const layers: Descriptor[] = new Array(m.layers.length);
  // Layers compress in parallel (zlib runs on the libuv threadpool; zstd is a process each).
  const width = Math.max(1, Math.min(m.layers.length, availableParallelism()));
  let next = 0;
  const one = async (i: number): Promise<void> => {
    const cur = m.layers[i]!;
    const diffId = image.config.rootfs.diff_ids[i]!;
    const curC = layerCompression(cur.mediaType) ?? 'uncompressed';
    const want: Compression = opts.compression ?? (curC === 'uncompressed' ? 'gzip' : curC);
    let d: Descriptor;
    if (curC === want && !opts.force && (await store.blobs.has(cur.digest))) {
      d = { ...cur, mediaType: layerMediaType(want, family) };
    } else {
      const c = await compressedLayer(store, diffId, want, { ...(opts.compressionLevel !== undefined ? { level: opts.compressionLevel } : {}), force: !!opts.force, ...(opts.signal ? { signal: opts.signal } : {}) });
      d = { mediaType: layerMediaType(want, family), digest: c.digest, size: c.size, ...(cur.annotations ? { annotations: cur.annotations } : {}) };
    }
    if (d.digest !== cur.digest || d.mediaType !== cur.mediaType) changed = true;
    layers[i] = d;
  };
  let failed: unknown;
  await Promise.all(Array.from({ length: width }, async () => {
    while (failed === undefined && next < m.layers.length) {
      const i = next++;
      try { await one(i); } catch (e) { failed ??= e; }
    }
  }));
  if (failed !== undefined) throw failed;
  if (!changed) return image.descriptor;
  const configMt = family === 'docker' ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG;
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: family === 'docker' ? MediaType.DOCKER_MANIFEST : MediaType.OCI_MANIFEST,
    config: { mediaType: configMt, digest: m.config.digest, size: m.config.size },
    layers,
    ...(m.annotations && family === 'oci' ? { annotations: m.annotations } : {}),
  };
  const bytes = canonicalManifest(manifest);
  const put = await store.blobs.put(bytes);
  return { mediaType: manifest.mediaType!, digest: put.digest, size: put.size };
}

/**
 * SOURCE_DATE_EPOCH applied to an image: config `created` and history `created` clamped to the
 * epoch, and (rewriteLayers) every layer's file mtimes clamped too (new layers, new diff_ids).
 */
export async function applySourceDateEpoch(store: Store, image: ReadImage, epoch: number, rewriteLayers: boolean, signal?: AbortSignal): Promise<ReadImage> {
  const when = epochToRFC3339(epoch);
  const clamp = (t: string | undefined) => (t === undefined || Date.parse(t) > epoch * 1000 ? when : t);
  const config: ImageConfig = { ...image.config, created: clamp(image.config.created) };
  if (image.config.history) config.history = image.config.history.map((h) => ({ ...h, created: clamp(h.created) }));
  let layers = image.manifest.layers;
  if (rewriteLayers) {
    const diffIds: string[] = [];
    layers = [];
    for (const diffId of image.config.rootfs.diff_ids) {
      const r = await rewriteLayerTimestamps(store, diffId, epoch, signal);
      diffIds.push(r.digest);
      layers.push({ mediaType: MediaType.OCI_LAYER, digest: r.digest, size: r.size });
    }
    config.rootfs = { type: 'layers', diff_ids: diffIds };
  }
  const cbytes = canonicalConfig(config);
  const c = await store.blobs.put(cbytes);
  const family = image.manifest.mediaType === MediaType.DOCKER_MANIFEST ? 'docker' : 'oci';
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: image.manifest.mediaType ?? MediaType.OCI_MANIFEST,
    config: { mediaType: family === 'docker' ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG, digest: c.digest, size: c.size },
    layers: layers.map((l) => ({ ...l, ...(rewriteLayers ? { mediaType: layerMediaType('uncompressed', family) } : {}) })),
    ...(image.manifest.annotations ? { annotations: image.manifest.annotations } : {}),
  };
  const mb = canonicalManifest(manifest);
  const put = await store.blobs.put(mb);
  return { descriptor: { mediaType: manifest.mediaType!, digest: put.digest, size: put.size }, manifest, config };
}

export interface ExportOptions {
  /** Names from -t (normalized or not); used when the spec has no name=. */
  names?: string[];
  signal?: AbortSignal;
  onProgress?: (ev: { phase: string; detail?: string; bytes?: number }) => void;
  /** Where dest=- writes (default process.stdout). */
  stdout?: NodeJS.WritableStream;
  /** SOURCE_DATE_EPOCH (seconds), for rewrite-timestamp and the archive entries' mtime. */
  sourceDateEpoch?: number;
  /** Platform when the descriptor is an index. */
  platform?: import('../../store/types.js').Platform;
  /** Registry options for type=image,push=true. */
  registry?: { insecureRegistries?: string[]; authFile?: string; env?: NodeJS.ProcessEnv };
}

/** Export one image (a manifest, or an index resolved to the platform) as `spec` says. */
export async function exportImage(store: Store, manifestDescriptor: Descriptor, spec: OutputSpec, opts: ExportOptions = {}): Promise<void> {
  return withLease(store, `export ${spec.type}`, () => exportUnderLease(store, manifestDescriptor, spec, opts));
}

async function exportUnderLease(store: Store, manifestDescriptor: Descriptor, spec: OutputSpec, opts: ExportOptions): Promise<void> {
  let image = await readImage(store, manifestDescriptor, opts.platform ? { platform: opts.platform } : {});
  const names = spec.names.length ? spec.names : (opts.names ?? []).map((n) => parseReference(n).full);
  if (spec.rewriteTimestamp) {
    if (opts.sourceDateEpoch === undefined) {
      throw new TsbError('TSB6110', 'rewrite-timestamp=true needs SOURCE_DATE_EPOCH', { hint: 'set SOURCE_DATE_EPOCH (seconds since 1970) or pass --build-arg SOURCE_DATE_EPOCH=….', exitCode: 2 });
    }
    opts.onProgress?.({ phase: 'rewrite-timestamp' });
    image = await applySourceDateEpoch(store, image, opts.sourceDateEpoch, true, opts.signal);
  }
  const mtime = opts.sourceDateEpoch ?? 0;
  switch (spec.type) {
    case 'oci': case 'docker': {
      const family = spec.ociMediaTypes === undefined ? (spec.type === 'docker' ? 'docker' : 'oci') : spec.ociMediaTypes ? 'oci' : 'docker';
      opts.onProgress?.({ phase: 'compress' });
      const desc = await distributionImage(store, image, distOpts(spec, family, opts.signal));
      const images: ArchiveImage[] = [{ descriptor: desc, names }];
      opts.onProgress?.({ phase: 'write', detail: spec.dest });
      const progress = (ev: { blob: string; bytes: number }) => opts.onProgress?.({ phase: 'write', detail: ev.blob, bytes: ev.bytes });
      if (!spec.tar) { await writeLayoutDir(store, images, spec.dest!); return; }
      if (spec.dest === '-') {
        await writeArchive(store, images, opts.stdout ?? process.stdout, { format: spec.type, mtime, ...(opts.signal ? { signal: opts.signal } : {}), onProgress: progress });
      } else {
        await atomicFileFrom(spec.dest!, (w) => writeArchive(store, images, w, { format: spec.type as 'oci' | 'docker', mtime, ...(opts.signal ? { signal: opts.signal } : {}), onProgress: progress }));
      }
      return;
    }
    case 'image': {
      if (!spec.push) {
        // Naming in the store is the engine's job (-t); type=image without push is only that.
        for (const n of names) await store.refs.set(n, image.descriptor);
        return;
      }
      if (names.length === 0) throw new TsbError('TSB6110', `output "${spec.raw}" pushes but names no image`, { hint: 'add name=REGISTRY/REPO:TAG or -t.', exitCode: 2 });
      const family = spec.ociMediaTypes === false ? 'docker' : 'oci';
      const desc = await distributionImage(store, image, distOpts(spec, family, opts.signal));
      const { pushImage } = await import('./registry.js');
      for (const n of names) {
        await pushImage(store, desc, n, {
          ...(opts.signal ? { signal: opts.signal } : {}),
          insecureRegistries: [...(opts.registry?.insecureRegistries ?? []), ...(spec.insecure ? [parseReference(n).domain] : [])],
          ...(opts.registry?.authFile ? { authFile: opts.registry.authFile } : {}),
          ...(opts.registry?.env ? { env: opts.registry.env } : {}),
          ...(opts.onProgress ? { onProgress: (ev) => opts.onProgress!({ phase: 'push', detail: ev.detail, ...(ev.bytes !== undefined ? { bytes: ev.bytes } : {}) }) } : {}),
        });
      }
      return;
    }
    case 'local': case 'tar': {
      const { exportFilesystem } = await import('./rootfs.js');
      await exportFilesystem(store, image, spec.type, spec.dest!, { ...(opts.stdout ? { stdout: opts.stdout } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
      return;
    }
  }
}

function distOpts(spec: OutputSpec, family: 'oci' | 'docker', signal?: AbortSignal): DistributionOptions {
  // Docker's media types have no zstd layer type: zstd output uses OCI media types (as BuildKit does).
  if (spec.compression === 'zstd') family = 'oci';
  return {
    ...(spec.compression ? { compression: spec.compression } : {}),
    ...(spec.compressionLevel !== undefined ? { compressionLevel: spec.compressionLevel } : {}),
    force: spec.forceCompression,
    mediaTypes: family,
    ...(signal ? { signal } : {}),
  };
}
