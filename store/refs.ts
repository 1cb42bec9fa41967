/**
 * Names → manifests, kept in the OCI layout's own index.json so skopeo/umoci see every tag
 * (`org.opencontainers.image.ref.name` = the name as given to set()).
 *
 * Every change is a read-modify-write of index.json under the `index` lock, written temp + fsync
 * + rename: concurrent tags from many processes are all kept, and readers (who take no lock) see
 * the old or the new file, never a torn one.
 *
 * set() refuses a descriptor whose image is not complete in the store (manifest, config, layers;
 * for an index: the index and every child manifest present, each complete, at least one present,
 * because a pull may keep only one platform). gc sweeps while holding the same lock, so a tag can
 * never point at something a concurrent gc is removing: "every ref resolves" holds at every instant.
 *
 * Each entry also carries summary annotations (config digest, created, size) so `images` lists
 * 10,000 tags from index.json alone, without opening 20,000 manifests and configs.
 *
 * Listing snapshot (`tsbuild/v1/refs-listing.v1`; what `images` reads): index.json with 10,000
 * tags is 4.4 MB, and parsing it makes ~100,000 objects — in a cold process reading, decoding,
 * parsing and collecting them cost ~150 ms. The snapshot holds only what a listing shows, in
 * columns (one string per name, one entry per distinct image), names already in listing order.
 * Format, version 1:
 *   tsbuild-refs-listing\t1\t<index.json inode>\t<size>\t<mtimeMs>\t<hex of its last 64 bytes>\t<count>\n
 *   then one line of JSON: {"names":[…],"image":[…],"digest":[…],"config":[…],"created":[…],"size":[…]}
 *   (names[i] is an image of index image[i]; config/created are null when unknown)
 * It is a cache, never the truth: used only while index.json is the same file (inode, size,
 * mtime and its tail bytes, as index.json is only ever replaced by rename); anything else
 * (missing, torn, foreign, stale) falls back to reading index.json, which then rewrites it.
 * Written by readers, without the lock (a snapshot is valid for the file state it names), temp +
 * rename, not fsynced (after a power cut it is stale or unreadable, and so ignored).
 */
import { statSync } from 'node:fs';
import { open, readFile } from './afs.js';
import { dirname, join } from 'node:path';
import { TsbError, errnoCode } from './errors.js';
import { E, atomicWrite, decodeText, ioError } from './fsutil.js';
import { withLock } from './lock.js';
import type { FsBlobStore } from './blobs.js';
import type { Descriptor, Digest, ImageSummary, RefEntry, RefStore } from './types.js';

export const REF_NAME = 'org.opencontainers.image.ref.name';
export const A_CREATED = 'org.opencontainers.image.created';
export const A_CONFIG = 'dev.tsbuild.image.config';
export const A_SIZE = 'dev.tsbuild.image.size';
const INTERNAL = new Set([REF_NAME, A_CONFIG, A_SIZE, A_CREATED]);

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
};

export interface OciIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

interface ManifestLike {
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
}

export function isIndexDescriptor(d: Descriptor, doc?: ManifestLike): boolean {
  if (d.mediaType === MT.ociIndex || d.mediaType === MT.dockerList) return true;
  if (d.mediaType === MT.ociManifest || d.mediaType === MT.dockerManifest) return false;
  return Array.isArray(doc?.manifests);
}

/** Layers a store may legitimately lack (foreign layers are fetched from their urls). */
function optionalLayer(d: Descriptor): boolean {
  return (d.urls?.length ?? 0) > 0 || d.mediaType.includes('nondistributable') || d.mediaType.includes('foreign');
}

export interface Closure {
  /** Every blob digest the image needs (manifest(s), config(s), layers) that is present. */
  digests: Set<Digest>;
  /** Config digests of every manifest present (gc derives snapshot chain ids from their diff_ids). */
  configs: Digest[];
  missing: string[];
  summary: ImageSummary;
}

/** Walk an image (manifest or index) and check that every part is present. */
export async function imageClosure(blobs: FsBlobStore, d: Descriptor): Promise<Closure> {
  const digests = new Set<Digest>();
  const configs: Digest[] = [];
  const missing: string[] = [];
  const summary: ImageSummary = { size: 0 };
  const manifest = async (md: Descriptor, required: boolean): Promise<boolean> => {
    if (!(await blobs.has(md.digest))) {
      if (required) missing.push(`manifest ${md.digest}`);
      return false;
    }
    let doc: ManifestLike;
    try {
      doc = await blobs.readJSON<ManifestLike>(md.digest);
    } catch (e) {
      missing.push(`manifest ${md.digest} (${e instanceof Error ? e.message : String(e)})`);
      return false;
    }
    digests.add(md.digest);
    if (isIndexDescriptor(md, doc)) {
      let present = 0;
      for (const child of doc.manifests ?? []) if (await manifest(child, false)) present++;
      if (present === 0) missing.push(`any platform manifest of index ${md.digest}`);
      return true;
    }
    if (!doc.config) { missing.push(`config field of manifest ${md.digest}`); return false; }
    if (!(await blobs.has(doc.config.digest))) missing.push(`config ${doc.config.digest}`);
    else {
      digests.add(doc.config.digest);
      configs.push(doc.config.digest);
      if (summary.config === undefined) {
        summary.config = doc.config.digest;
        try {
          const cfg = await blobs.readJSON<{ created?: string }>(doc.config.digest);
          if (typeof cfg.created === 'string') summary.created = cfg.created;
        } catch (e) {
          missing.push(`config ${doc.config.digest} (${e instanceof Error ? e.message : String(e)})`);
        }
      }
    }
    for (const l of doc.layers ?? []) {
      if (await blobs.has(l.digest)) { digests.add(l.digest); summary.size += l.size; }
      else if (!optionalLayer(l)) missing.push(`layer ${l.digest}`);
    }
    return true;
  };
  await manifest(d, true);
  return { digests, configs, missing, summary };
}

function stripInternal(d: Descriptor): Descriptor {
  const a = d.annotations;
  if (!a) return d;
  let extra: Record<string, string> | undefined;
  for (const k in a) {
    if (INTERNAL.has(k)) continue;
    (extra ??= {})[k] = a[k]!;
  }
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  for (const k in d) {
    if (k !== 'annotations' && k !== 'mediaType' && k !== 'digest' && k !== 'size') (out as unknown as Record<string, unknown>)[k] = (d as unknown as Record<string, unknown>)[k];
  }
  if (extra) out.annotations = extra;
  return out;
}

function summaryOf(d: Descriptor): ImageSummary {
  const a = d.annotations ?? {};
  const s: ImageSummary = { size: Number(a[A_SIZE] ?? 0) };
  if (a[A_CONFIG]) s.config = a[A_CONFIG];
  if (a[A_CREATED]) s.created = a[A_CREATED];
  return s;
}

/** One name as `images` lists it (RefStore.list() without the descriptor). */

/**
 * Every name as `images` lists it, in columns: names[i] (in listing order: newest image first, then
 * by name in code-unit order) is an image of index image[i], whose manifest digest is
 * digest[image[i]] and so on. Few objects: a cold 10,000-name listing is mostly garbage collection
 * when each name is an object of its own.
 */
export interface RefListingTable {
  names: string[];
  image: number[];
  digest: Digest[];
  config: (Digest | null)[];
  created: (string | null)[];
  size: number[];
}

const LISTING_MAGIC = 'tsbuild-refs-listing';
const LISTING_VERSION = 1;
const FP = 64;

function parseIndex(text: string): OciIndex {
  try {
    const index = JSON.parse(text) as OciIndex;
    if (index.schemaVersion !== 2 || !Array.isArray(index.manifests)) throw new Error('not an OCI image index (schemaVersion 2 with manifests)');
    return index;
  } catch (e) {
    throw new TsbError(E.CORRUPT_INDEX, `the store's index.json is corrupt: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e, hint: 'run "tsbuild store verify --repair": it sets the bad file aside and keeps what can be read.',
    });
  }
}

/** The listing table of an index (names sorted: created descending, then name). */
export function listingTableOf(index: OciIndex): RefListingTable {
  const t: RefListingTable = { names: [], image: [], digest: [], config: [], created: [], size: [] };
  const ids = new Map<string, number>();
  const rows: { name: string; img: number; created: string }[] = [];
  for (const m of index.manifests) {
    const a = m.annotations;
    const name = a?.[REF_NAME];
    if (name === undefined) continue;
    const config = a![A_CONFIG] ?? null;
    const created = a![A_CREATED] ?? null;
    const size = Number(a![A_SIZE] ?? 0);
    const id = `${m.digest} ${config} ${created} ${size}`;
    let img = ids.get(id);
    if (img === undefined) {
      img = t.digest.length;
      ids.set(id, img);
      t.digest.push(m.digest); t.config.push(config); t.created.push(created); t.size.push(size);
    }
    rows.push({ name, img, created: created ?? '' });
  }
  rows.sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const r of rows) { t.names.push(r.name); t.image.push(r.img); }
  return t;
}

export class FsRefStore implements RefStore {
  private readonly file: string;
  private cached: { key: string; index: OciIndex } | undefined;

  constructor(private readonly root: string, private readonly tmpDir: string, private readonly lockDir: string, private readonly blobs: FsBlobStore) {
    this.file = join(root, 'index.json');
  }

  get lockPath(): string { return join(this.lockDir, 'index.lock'); }

  /** Parsed index.json (cached by its stamp()). Throws TSB5006 when it is not an OCI index. */
  async readIndex(): Promise<OciIndex> {
    const key = await this.stamp();
    if (key === 'none') return { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] };
    if (this.cached?.key === key) return this.cached.index;
    let text: string;
    try { text = decodeText(await readFile(this.file)); } catch (e) {
      if (errnoCode(e) === 'ENOENT') return { schemaVersion: 2, mediaType: MT.ociIndex, manifests: [] };
      throw ioError(e, 'reading index.json', this.file);
    }
    const index = parseIndex(text);
    this.cached = { key, index };
    return index;
  }

  async writeIndex(index: OciIndex): Promise<void> {
    await atomicWrite(this.file, JSON.stringify(index) + '\n', this.tmpDir, 'writing index.json');
    this.cached = undefined;
  }

  /** Read-modify-write of index.json under the index lock. */
  async update<T>(fn: (index: OciIndex) => Promise<T> | T): Promise<T> {
    return withLock(this.lockPath, async () => {
      const index = structuredClone(await this.readIndex());
      const before = JSON.stringify(index.manifests);
      const r = await fn(index);
      if (JSON.stringify(index.manifests) !== before) await this.writeIndex(index);
      return r;
    });
  }

  async set(name: string, descriptor: Descriptor): Promise<void> {
    if (!name || /[\s]/.test(name)) throw new TsbError(E.NO_SUCH_REF, `"${name}" is not a usable image name`, { hint: 'names have no spaces.' });
    await this.update(async (index) => {
      // Checked under the lock: gc sweeps under the same lock, so what we checked stays.
      const c = await imageClosure(this.blobs, descriptor);
      if (c.missing.length) {
        throw new TsbError(E.INCOMPLETE, `cannot tag ${name}: the image is incomplete in the store (missing ${c.missing.slice(0, 3).join(', ')}${c.missing.length > 3 ? ', …' : ''})`, {
          hint: 'put every blob (layers, config, manifest) before tagging, and hold a lease while building so gc keeps them.',
        });
      }
      const entry = this.entryFor(name, descriptor, c);
      const i = index.manifests.findIndex((m) => m.annotations?.[REF_NAME] === name);
      if (i >= 0) index.manifests[i] = entry; else index.manifests.push(entry);
    });
  }

  /**
   * Many names at once, one index.json write (e.g. loading an archive with many tags). Each entry
   * is checked like set(); the first incomplete image fails the whole call and nothing is written.
   */
  async setMany(entries: readonly RefEntry[]): Promise<void> {
    await this.update(async (index) => {
      const closures = new Map<string, Closure>();
      const at = new Map(index.manifests.map((m, i) => [m.annotations?.[REF_NAME], i] as const));
      for (const { name, descriptor } of entries) {
        let c = closures.get(descriptor.digest);
        if (!c) { c = await imageClosure(this.blobs, descriptor); closures.set(descriptor.digest, c); }
        if (c.missing.length) {
          throw new TsbError(E.INCOMPLETE, `cannot tag ${name}: the image is incomplete in the store (missing ${c.missing.slice(0, 3).join(', ')})`, {
            hint: 'put every blob (layers, config, manifest) before tagging.',
          });
        }
        const entry = this.entryFor(name, descriptor, c);
        const i = at.get(name);
        if (i !== undefined) index.manifests[i] = entry; else { at.set(name, index.manifests.length); index.manifests.push(entry); }
      }
    });
  }

  private entryFor(name: string, descriptor: Descriptor, c: Closure): Descriptor {
    const ann: Record<string, string> = { ...(stripInternal(descriptor).annotations ?? {}), [REF_NAME]: name, [A_SIZE]: String(c.summary.size) };
    if (c.summary.config) ann[A_CONFIG] = c.summary.config;
    if (c.summary.created) ann[A_CREATED] = c.summary.created;
    return { ...descriptor, annotations: ann };
  }

  async get(name: string): Promise<Descriptor | undefined> {
    const d = (await this.readIndex()).manifests.find((m) => m.annotations?.[REF_NAME] === name);
    return d && stripInternal(d);
  }

  async delete(name: string): Promise<boolean> {
    return this.update((index) => {
      const n = index.manifests.length;
      index.manifests = index.manifests.filter((m) => m.annotations?.[REF_NAME] !== name);
      return index.manifests.length !== n;
    });
  }

  get listingFile(): string { return join(dirname(this.lockDir), `refs-listing.v${LISTING_VERSION}`); }

  /**
   * What `images` shows, in columns (RefListingTable), from the listing snapshot when it matches index.json
   * (one small read of index.json's tail), else from index.json (and the snapshot is rewritten).
   */
  async listingTable(): Promise<RefListingTable> {
    let fh;
    try { fh = await open(this.file, 'r'); } catch (e) {
      if (errnoCode(e) === 'ENOENT') return { names: [], image: [], digest: [], config: [], created: [], size: [] };
      throw ioError(e, 'reading index.json', this.file);
    }
    let stamp: string;
    let buf: Buffer | undefined;
    try {
      const st = await fh.stat();
      const tail = Buffer.alloc(Math.min(FP, st.size));
      if (tail.length) await fh.read(tail, 0, tail.length, st.size - tail.length);
      stamp = `${st.ino}\t${st.size}\t${st.mtimeMs}\t${tail.toString('hex')}`;
      const snap = await this.readListing(stamp);
      if (snap) return snap;
      // The same open file: the table and the stamp describe one version of index.json.
      buf = await fh.readFile();
    } catch (e) {
      throw ioError(e, 'reading index.json', this.file);
    } finally {
      await fh.close();
    }
    const t = listingTableOf(parseIndex(decodeText(buf)));
    const header = [LISTING_MAGIC, LISTING_VERSION, stamp, t.names.length].join('\t');
    // Best effort: a reader that cannot write (a read-only store) still lists.
    await atomicWrite(this.listingFile, `${header}\n${JSON.stringify(t)}\n`, this.tmpDir, 'writing the image listing', { durable: false }).catch(() => undefined);
    return t;
  }

  private async readListing(stamp: string): Promise<RefListingTable | undefined> {
    let snap: Buffer;
    try { snap = await readFile(this.listingFile); } catch { return undefined; }
    const nl = snap.indexOf(10);
    if (nl < 0 || snap[snap.length - 1] !== 10) return undefined; // torn
    const head = snap.toString('latin1', 0, nl).split('\t');
    if (head[0] !== LISTING_MAGIC || head[1] !== String(LISTING_VERSION) || head.slice(2, 6).join('\t') !== stamp) return undefined;
    let t: RefListingTable;
    try { t = JSON.parse(decodeText(snap, nl + 1)) as RefListingTable; } catch { return undefined; }
    const n = t.names?.length;
    if (!Array.isArray(t.names) || String(n) !== head[6] || !Array.isArray(t.image) || t.image.length !== n) return undefined;
    const k = t.digest?.length;
    if (!Array.isArray(t.digest) || t.config?.length !== k || t.created?.length !== k || t.size?.length !== k) return undefined;
    return t;
  }

  async stamp(): Promise<string> {
    try {
      const st = statSync(this.file, { bigint: true, throwIfNoEntry: false });
      return st ? `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}` : 'none';
    } catch (e) {
      throw ioError(e, 'reading the store index', this.file);
    }
  }

  async list(): Promise<RefEntry[]> {
    const out: RefEntry[] = [];
    for (const m of (await this.readIndex()).manifests) {
      const name = m.annotations?.[REF_NAME];
      if (name === undefined) continue;
      out.push({ name, descriptor: stripInternal(m), summary: summaryOf(m) });
    }
    return out;
  }
}
