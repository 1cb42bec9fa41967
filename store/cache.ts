/**
 * The build cache index: one record per step cache key (types.ts CacheRecord), at
 * tsbuild/v1/cache/records.log.
 *
 * Format (version 1; the folder carries the version): an append-only log, one line per change,
 * fields separated by TAB (keys may not contain TAB or newline; free text is JSON-encoded, and
 * JSON.stringify escapes TABs and newlines, so a line never contains a raw one):
 *   P <key> <lastUsed> <hits> <created> <layer size> <source JSON> <instruction JSON> <record JSON>
 *                                                     insert/replace (the record JSON is the truth;
 *                                                     the fields before it are what a listing shows)
 *   T <key> <at>                                      a hit: lastUsed = at, hits + 1
 *   D <key>                                           removal (prune)
 * Why a log and not one file per record: `cache ls` over 10,000 records must take < 0.2 s, and
 * opening 10,000 files costs more than that on its own; a log is read with one read, a put or a hit
 * is one small append, and a reader that already loaded the log reads only the bytes appended since
 * (it remembers inode + offset). The listing fields in front of the record JSON let `cache ls` and
 * the in-memory index skip JSON.parse of whole records (the dominant cost at 10,000 records).
 * Appends happen under the `cache` lock (except touchMany's hit lines: see there); before
 * appending, a writer makes sure the file ends in a newline, so a line torn by a crash (or a full
 * disk) is a lone bad line that readers skip, never glued to the next record. When dead lines outnumber live records the log is compacted (rewritten
 * temp + fsync + rename under the lock); readers notice the new inode and reload.
 *
 * Memory is bounded: the in-memory index holds per key only the record's offset and its hit
 * counters; parsed records sit in an LRU (list() parses on demand and does not keep them).
 *
 * Listing snapshot (`listing.v2` beside the log; what `cache ls` reads): the listing fields of
 * every live record as of log offset O, newest use first, so `cache ls` reads ~150 bytes a record
 * instead of the whole log (whose lines carry the full record JSON, and dead lines until
 * compaction), then applies only the log's lines after O. Format, version 2:
 *   tsbuild-cache-listing\t2\t<log inode>\t<O>\t<hex of log bytes [0,64)>\t<hex of [O-64,O)>\t<count>\n
 *   then one line of JSON, in columns (CacheColumns): {"key":[…],"lastUsed":[…],"hits":[…],
 *   "created":[…],"size":[…],"source":[…],"instruction":[…]}, dates as milliseconds since the epoch
 *   when the record's text is what Date#toISOString gives for them (always, for records tsbuild
 *   writes), else as that text. One native JSON.parse and no object per record: in a cold
 *   process, allocating (and then collecting) 20,000 small arrays and objects cost more than the
 *   parse. (Version 1, one array per record, is no longer read; a leftover listing.v1 is ignored.)
 * It is a cache, never the truth: it is used only while the log is the same file (inode, and the
 * fingerprint bytes, since a compaction can reuse a freed inode) and at least O long; anything
 * else (missing, torn, foreign, stale) falls back to the full log scan, which then rewrites it.
 * Written by readers (no lock: any snapshot is valid for the log state it names), temp + rename,
 * not fsynced (after a power cut it is stale or unreadable, and so ignored), when the log has at
 * least LISTING_MIN records and the snapshot is missing or more than LISTING_STALE lines behind.
 */
import { closeSync, constants as C, fstatSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { open, readFile, stat } from './afs.js';
import { dirname, join } from 'node:path';
import type { LRUCache } from 'lru-cache';
import { TsbError, errnoCode } from './errors.js';
import { E, atomicWrite, decodeText, ioError, lruCache } from './fsutil.js';
import { withLock } from './lock.js';
import type { FsBlobStore } from './blobs.js';
import type { CacheIndex, CacheRecord } from './types.js';

interface Slot { off: number; len: number; lastUsed: string; hits: number }

/** What `cache ls` shows, read from a put line without parsing the record JSON. */
export interface CacheSummary { key: string; created: string; lastUsed: string; hits: number; size: number; source: string; instruction: string }

/**
 * A complete line of a known kind at buf[start, end): its fields before the record JSON, and where
 * that JSON starts (put lines). Only the short prefix becomes a JS string: listing 10,000 records
 * never materializes their JSON. Undefined for a torn or foreign line.
 */
function lineFields(buf: Buffer, start: number, end: number): { f: string[]; json: number } | undefined {
  const kind = buf[start];
  if (kind === 0x50 /* P */) {
    let t = start;
    for (let i = 0; i < 8; i++) {
      t = buf.indexOf(9, t + 1);
      if (t < 0 || t >= end) return undefined;
    }
    if (buf[end - 1] !== 0x7d /* } */) return undefined;
    return { f: buf.toString('utf8', start, t).split('\t'), json: t + 1 };
  }
  if (kind !== 0x54 /* T */ && kind !== 0x44 /* D */) return undefined;
  const f = buf.toString('utf8', start, end).split('\t');
  if (kind === 0x54 ? f.length === 3 && f[2]!.length >= 20 : f.length === 2 && f[1]!.length > 0) return { f, json: end };
  return undefined;
}

/** A JSON string literal's value, without JSON.parse when it has no escapes. */
function jsonString(lit: string): string {
  if (lit.indexOf('\\') < 0) return lit.slice(1, -1);
  try { return String(JSON.parse(lit)); } catch { return ''; }
}

function putLine(rec: CacheRecord): string {
  const src = rec.source ? `${rec.source.file}:${rec.source.line}` : '';
  return ['P', rec.key, rec.lastUsed, String(rec.hits), rec.created, String(rec.layer?.size ?? 0),
    JSON.stringify(src), JSON.stringify(rec.instruction), JSON.stringify(rec)].join('\t');
}

function checkKey(key: string): void {
  if (!key || /[\t\n\r]/.test(key)) {
    throw new TsbError(E.CORRUPT_INDEX, `cache key ${JSON.stringify(key)} is empty or contains a tab or newline`, { hint: 'this is a bug in the caller.' });
  }
}

const LISTING_VERSION = 2;
const LISTING_MAGIC = 'tsbuild-cache-listing';
const LISTING_MIN = 200;
const LISTING_STALE = 500;
const FP = 64;

/**
 * summaries() in columns: row i is key[i], lastUsed[i], … in the same order (most recently used
 * first, then by key). created/lastUsed are milliseconds since the epoch when the record's text is
 * exactly what Date#toISOString gives for them (records tsbuild writes), else that text.
 */
export interface CacheColumns {
  key: string[];
  lastUsed: (number | string)[];
  hits: number[];
  created: (number | string)[];
  size: number[];
  source: string[];
  instruction: string[];
}

function dateIn(s: string): number | string {
  const ms = Date.parse(s);
  return Number.isFinite(ms) && new Date(ms).toISOString() === s ? ms : s;
}

function dateOut(v: number | string): string {
  return typeof v === 'number' ? new Date(v).toISOString() : v;
}

function toColumns(rows: readonly CacheSummary[]): CacheColumns {
  const c: CacheColumns = { key: [], lastUsed: [], hits: [], created: [], size: [], source: [], instruction: [] };
  for (const r of rows) {
    c.key.push(r.key); c.lastUsed.push(dateIn(r.lastUsed)); c.hits.push(r.hits); c.created.push(dateIn(r.created));
    c.size.push(r.size); c.source.push(r.source); c.instruction.push(r.instruction);
  }
  return c;
}

function fromColumns(c: CacheColumns): CacheSummary[] {
  const out: CacheSummary[] = new Array(c.key.length);
  for (let i = 0; i < out.length; i++) {
    out[i] = { key: c.key[i]!, lastUsed: dateOut(c.lastUsed[i]!), hits: c.hits[i]!, created: dateOut(c.created[i]!), size: c.size[i]!, source: c.source[i]!, instruction: c.instruction[i]! };
  }
  return out;
}

/** Compare for listings: most recently used first, then by key. */
function byUse(a: CacheSummary, b: CacheSummary): number {
  return a.lastUsed < b.lastUsed ? 1 : a.lastUsed > b.lastUsed ? -1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** A put line's listing fields (f from lineFields) as a summary. */
function summaryOf(key: string, f: string[]): CacheSummary {
  return { key, lastUsed: f[2]!, hits: Number(f[3]) || 0, created: f[4]!, size: Number(f[5]) || 0, source: jsonString(f[6]!), instruction: jsonString(f[7]!) };
}

type NewRecord = Omit<CacheRecord, 'created' | 'lastUsed' | 'hits'> & Partial<Pick<CacheRecord, 'created'>>;

export class FsCacheIndex implements CacheIndex {
  readonly file: string;
  private slots = new Map<string, Slot>();
  private ino = -1;
  private pos = 0;
  private lines = 0;
  /** Parsed records by key; made on first use (fsutil lruCache). */
  private lru: LRUCache<string, CacheRecord> | undefined;

  constructor(dir: string, private readonly tmpDir: string, private readonly lockDir: string, private readonly blobs: FsBlobStore) {
    this.file = join(dir, 'records.log');
  }

  get lockPath(): string { return join(this.lockDir, 'cache.lock'); }

  /** The whole file, or the part from `from` (with its inode); undefined when there is none. */
  private async readFrom(from: number | undefined): Promise<{ buf: Buffer; ino: number; base: number } | undefined> {
    let fh;
    try {
      fh = await open(this.file, 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
      throw ioError(e, 'reading the cache index', this.file);
    }
    try {
      const st = await fh.stat();
      const base = from !== undefined && st.ino === this.ino && st.size >= from ? from : 0;
      const buf = Buffer.allocUnsafe(st.size - base);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, base + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return { buf: buf.subarray(0, got), ino: st.ino, base };
    } catch (e) {
      throw ioError(e, 'reading the cache index', this.file);
    } finally {
      await fh.close();
    }
  }

  /** Bring the in-memory index up to date (tail read, or full reload after compaction). */
  private async refresh(): Promise<void> {
    const r = await this.readFrom(this.pos);
    if (!r) { this.reset(-1); return; }
    if (r.base === 0 && (r.ino !== this.ino || this.pos !== 0)) this.reset(r.ino);
    this.ino = r.ino;
    this.scan(r.buf, r.base, undefined);
  }

  private reset(ino: number): void {
    this.slots = new Map();
    this.ino = ino;
    this.pos = 0;
    this.lines = 0;
    this.lru?.clear();
  }

  /**
   * Apply the complete lines of `buf` (which starts at file offset `base`) to the index; when
   * `onPut` is given, also hand it every put line's fields (last one per key wins: the caller
   * keeps a map) and tell it about deletions with a null.
   */
  private scan(buf: Buffer, base: number, onPut: ((key: string, f: string[] | null, buf: Buffer, json: number, end: number) => void) | undefined): void {
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      if (nl > start) {
        const lf = lineFields(buf, start, nl);
        if (lf) {
          const f = lf.f;
          this.lines++;
          const key = f[1]!;
          if (f[0] === 'P') {
            this.slots.set(key, { off: base + start, len: nl - start, lastUsed: f[2]!, hits: Number(f[3]) || 0 });
            this.lru?.delete(key);
            onPut?.(key, f, buf, lf.json, nl);
          } else if (f[0] === 'T') {
            const sl = this.slots.get(key);
            if (sl) { sl.hits++; if (f[2]! > sl.lastUsed) sl.lastUsed = f[2]!; }
          } else {
            this.slots.delete(key);
            this.lru?.delete(key);
            onPut?.(key, null, buf, 0, 0);
          }
        }
      }
      start = nl + 1;
    }
    this.pos = base + start;
  }

  private withCounters(rec: CacheRecord, s: Slot): CacheRecord {
    return { ...rec, lastUsed: s.lastUsed, hits: s.hits };
  }

  private parseRecord(key: string, buf: Buffer, json: number, end: number): CacheRecord | undefined {
    try {
      const rec = JSON.parse(buf.toString('utf8', json, end)) as CacheRecord;
      return rec && rec.key === key ? rec : undefined;
    } catch {
      return undefined; // torn inside the record JSON: skipped like any torn line
    }
  }

  async get(key: string): Promise<CacheRecord | undefined> {
    await this.refresh();
    const s = this.slots.get(key);
    if (!s) return undefined;
    this.lru ??= new (await lruCache())<string, CacheRecord>({ max: 2000 });
    let rec = this.lru.get(key);
    if (!rec) {
      const fh = await open(this.file, 'r');
      const buf = Buffer.alloc(s.len);
      try {
        await fh.read(buf, 0, s.len, s.off);
      } catch (e) {
        throw ioError(e, 'reading the cache index', this.file);
      } finally {
        await fh.close();
      }
      const lf = lineFields(buf, 0, buf.length);
      rec = lf && lf.f[0] === 'P' ? this.parseRecord(key, buf, lf.json, buf.length) : undefined;
      if (!rec) return undefined;
      this.lru.set(key, rec);
    }
    return this.withCounters(rec, s);
  }

  /** Append lines under the cache lock (the caller holds it). */
  private async append(lines: string[], sync: boolean): Promise<void> {
    let fh;
    try {
      fh = await open(this.file, C.O_WRONLY | C.O_APPEND | C.O_CREAT, 0o644);
      const st = await fh.stat();
      let prefix = '';
      if (st.size > 0) {
        const last = Buffer.alloc(1);
        await fh.read(last, 0, 1, st.size - 1).catch(async () => {
          const rd = await open(this.file, 'r');
          try { await rd.read(last, 0, 1, st.size - 1); } finally { await rd.close(); }
        });
        if (last[0] !== 10) prefix = '\n'; // a torn line from a crash: keep it separate
      }
      await fh.write(prefix + lines.join('\n') + '\n');
      if (sync) await fh.sync();
    } catch (e) {
      throw ioError(e, 'writing the cache index', this.file);
    } finally {
      await fh?.close();
    }
  }

  private async locked<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.lockPath, async () => {
      await this.refresh();
      const r = await fn();
      await this.refresh();
      if (this.lines > 2 * this.slots.size + 1000) await this.compact();
      return r;
    });
  }

  /** Rewrite the log with live records only (caller holds the lock). */
  private async compact(): Promise<void> {
    const recs = await this.listUnlocked();
    const text = recs.map(putLine).join('\n');
    await atomicWrite(this.file, text ? text + '\n' : '', this.tmpDir, 'compacting the cache index');
    await this.refresh();
  }

  private async checkBlobs(record: NewRecord, checked?: Set<string>): Promise<void> {
    // Checked under the lock: gc sweeps while holding it, so the blobs stay.
    for (const d of [record.layer?.digest, record.config]) {
      if (d === undefined || checked?.has(d)) continue;
      if (!(await this.blobs.has(d))) {
        throw new TsbError(E.INCOMPLETE, `cannot record cache key ${record.key}: blob ${d} is not in the store`, {
          hint: 'put the layer and config before recording them, and hold a lease while building so gc keeps them.',
        });
      }
      checked?.add(d);
    }
  }

  async put(record: NewRecord): Promise<CacheRecord> {
    checkKey(record.key);
    return this.locked(async () => {
      await this.checkBlobs(record);
      const old = this.slots.has(record.key) ? await this.get(record.key) : undefined;
      const now = new Date().toISOString();
      const rec: CacheRecord = { ...record, created: record.created ?? old?.created ?? now, lastUsed: now, hits: old?.hits ?? 0 };
      await this.append([putLine(rec)], true);
      return rec;
    });
  }

  /** Many records in one locked append (imports, benchmarks). Same checks as put(). */
  async putMany(records: readonly NewRecord[]): Promise<number> {
    for (const r of records) checkKey(r.key);
    return this.locked(async () => {
      const now = new Date().toISOString();
      const checked = new Set<string>();
      const lines: string[] = [];
      for (const record of records) {
        await this.checkBlobs(record, checked);
        const old = this.slots.get(record.key);
        lines.push(putLine({ ...record, created: record.created ?? now, lastUsed: now, hits: old?.hits ?? 0 }));
      }
      if (lines.length) await this.append(lines, true);
      return lines.length;
    });
  }

  async touch(key: string): Promise<void> {
    await this.locked(async () => {
      if (!this.slots.has(key)) return;
      // A hit is not worth an fsync: losing one to a crash only skews "last used" by one build.
      await this.append([`T\t${key}\t${new Date().toISOString()}`], false);
    });
  }

  /**
   * Hits of many keys in one append, without the lock and without reading the log (a memoized
   * no-op build: store/types.ts CacheIndex). Why that is safe: one write() of a few lines with
   * O_APPEND lands whole at the end, never inside another writer's line; it starts with a newline,
   * so even after a torn line from a crash it forms lines of its own (an empty line is skipped by
   * every reader); a hit of a key that has no record is ignored by every reader. What it gives up:
   * hits appended to a log that a concurrent compaction is replacing are lost (a hit is best
   * effort anyway: see touch), and it does not trigger compaction (the next locked write does).
   */
  async touchMany(keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    const at = new Date().toISOString();
    const text = '\n' + [...new Set(keys)].map((k) => { checkKey(k); return `T\t${k}\t${at}`; }).join('\n') + '\n';
    // Synchronous calls here and in position/changedSince (why): a memoized no-op build makes only
    // these few tiny calls, and each thread-pool round trip cost more than the call itself.
    let fd: number | undefined;
    try {
      fd = openSync(this.file, C.O_WRONLY | C.O_APPEND | C.O_CREAT, 0o644);
      writeSync(fd, text);
    } catch (e) {
      throw ioError(e, 'writing the cache index', this.file);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  /** `<inode>:<size>` of the log now (CacheIndex.position). */
  async position(): Promise<string> {
    try {
      const st = statSync(this.file, { throwIfNoEntry: false });
      return st ? `${st.ino}:${st.size}` : 'none';
    } catch (e) {
      throw ioError(e, 'reading the cache index', this.file);
    }
  }

  /**
   * Whether any of `keys` was put again or removed since `pos` (CacheIndex.changedSince): the
   * log's lines after pos are read (at most maxTail bytes) and put/delete lines of those keys
   * looked for; hits (T lines) do not count. A compacted (new inode), shortened or unreadable log,
   * or a longer tail, counts as changed: the caller then does the full work.
   */
  async changedSince(pos: string, keys: ReadonlySet<string>, maxTail = 1 << 20): Promise<boolean> {
    const m = /^(\d+):(\d+)$/.exec(pos);
    if (!m) return true;
    let fd: number;
    try { fd = openSync(this.file, 'r'); } catch { return true; }
    try {
      const st = fstatSync(fd);
      const from = Number(m[2]);
      if (String(st.ino) !== m[1] || st.size < from || st.size - from > maxTail) return true;
      if (st.size === from) return false;
      const buf = Buffer.allocUnsafe(st.size - from);
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, from + got);
        if (n === 0) break;
        got += n;
      }
      const tail = buf.subarray(0, got);
      let start = 0;
      for (;;) {
        const nl = tail.indexOf(10, start);
        if (nl < 0) break;
        if (nl > start) {
          // Read as scan() reads lines; one it cannot read (torn, foreign) counts as a change.
          const lf = lineFields(tail, start, nl);
          if (!lf) return true;
          if (lf.f[0] !== 'T' && keys.has(lf.f[1]!)) return true;
        }
        start = nl + 1;
      }
      return false;
    } catch {
      return true;
    } finally {
      closeSync(fd);
    }
  }

  async delete(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.locked(() => this.deleteLocked(keys));
  }

  /** delete() for a caller that already holds the cache lock (verify --repair). */
  async deleteLocked(keys: readonly string[]): Promise<number> {
    await this.refresh();
    const present = [...new Set(keys)].filter((k) => this.slots.has(k));
    if (present.length) await this.append(present.map((key) => `D\t${key}`), true);
    await this.refresh();
    return present.length;
  }

  /** Re-read the whole log (rebuilding the index) and collect what `pick` makes of each live put line. */
  private async scanAll<T>(pick: (key: string, f: string[], buf: Buffer, json: number, end: number) => T | undefined): Promise<Map<string, T>> {
    const r = await this.readFrom(undefined);
    this.reset(r ? r.ino : -1);
    const out = new Map<string, T>();
    if (!r) return out;
    this.scan(r.buf, 0, (key, f, buf, json, end) => {
      const v = f ? pick(key, f, buf, json, end) : undefined;
      if (v === undefined) out.delete(key); else out.set(key, v);
    });
    return out;
  }

  private async listUnlocked(): Promise<CacheRecord[]> {
    const m = await this.scanAll((key, _f, buf, json, end) => this.parseRecord(key, buf, json, end));
    const out: CacheRecord[] = [];
    for (const [key, rec] of m) out.push(this.withCounters(rec, this.slots.get(key)!));
    return out;
  }

  get listingFile(): string { return join(dirname(this.file), `listing.v${LISTING_VERSION}`); }

  /**
   * What `cache ls` shows, for every live record, most recently used first (then by key), without
   * parsing the records' JSON: from the listing snapshot plus the log lines after it (see above),
   * else from the whole log (and the snapshot is rewritten).
   */
  async summaries(): Promise<CacheSummary[]> {
    const fast = await this.fromListing().catch(() => undefined);
    if (fast) return fromColumns(fast);
    return this.summariesFromLog();
  }

  /** summaries() in columns (CacheColumns): what `cache ls` reads, straight from the snapshot when the log has nothing after it. */
  async summaryColumns(): Promise<CacheColumns> {
    const fast = await this.fromListing().catch(() => undefined);
    if (fast) return fast;
    return toColumns(await this.summariesFromLog());
  }

  private async summariesFromLog(): Promise<CacheSummary[]> {
    const r = await this.readFrom(undefined);
    if (!r) return [];
    const m = new Map<string, CacheSummary>();
    this.applyListingLines(r.buf, m);
    const out = [...m.values()].sort(byUse);
    if (out.length >= LISTING_MIN) await this.writeListing(out, r.ino, r.buf, r.buf.length).catch(() => undefined);
    return out;
  }

  /** Apply the complete log lines in buf to a key → summary map; returns how many applied. */
  private applyListingLines(buf: Buffer, m: Map<string, CacheSummary>): number {
    let start = 0;
    let n = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      const lf = nl > start ? lineFields(buf, start, nl) : undefined;
      start = nl + 1;
      if (!lf) continue;
      const f = lf.f;
      const key = f[1]!;
      n++;
      if (f[0] === 'P') {
        const old = m.get(key);
        if (old) m.delete(key); // re-insert: Map order stays log order
        m.set(key, summaryOf(key, f));
      } else if (f[0] === 'T') {
        const sl = m.get(key);
        if (sl) { sl.hits++; if (f[2]! > sl.lastUsed) sl.lastUsed = f[2]!; }
      } else m.delete(key);
    }
    return n;
  }

  /** Summaries from the listing snapshot and the log's tail; undefined when the snapshot does not fit the log. */
  private async fromListing(): Promise<CacheColumns | undefined> {
    let snap: Buffer;
    try { snap = await readFile(this.listingFile); } catch { return undefined; }
    const hl = snap.indexOf(10);
    if (hl < 0) return undefined;
    const h = snap.toString('latin1', 0, hl).split('\t');
    if (h.length !== 7 || h[0] !== LISTING_MAGIC || h[1] !== String(LISTING_VERSION)) return undefined;
    const ino = Number(h[2]); const off = Number(h[3]); const count = Number(h[6]);
    if (!(off > 0) || !Number.isSafeInteger(off) || !Number.isSafeInteger(count)) return undefined;
    let fh;
    try { fh = await open(this.file, 'r'); } catch { return undefined; }
    let tail: Buffer;
    try {
      const st = await fh.stat();
      if (st.ino !== ino || st.size < off) return undefined;
      const head = Buffer.alloc(Math.min(FP, off));
      const mid = Buffer.alloc(Math.min(FP, off));
      tail = Buffer.allocUnsafe(st.size - off);
      await fh.read(head, 0, head.length, 0);
      await fh.read(mid, 0, mid.length, off - mid.length);
      if (head.toString('hex') !== h[4] || mid.toString('hex') !== h[5]) return undefined;
      let got = 0;
      while (got < tail.length) {
        const { bytesRead } = await fh.read(tail, got, tail.length - got, off + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      tail = tail.subarray(0, got);
    } finally {
      await fh.close();
    }
    let cols: CacheColumns;
    try { cols = JSON.parse(decodeText(snap, hl + 1)) as CacheColumns; } catch { return undefined; } // torn or foreign
    if (typeof cols !== 'object' || cols === null) return undefined;
    for (const k of ['key', 'lastUsed', 'hits', 'created', 'size', 'source', 'instruction'] as const) {
      if (!Array.isArray(cols[k]) || cols[k].length !== count) return undefined;
    }
    if (!tail.length) return cols;
    // Lines after the snapshot: applied to records (the common case after a build: a few hits).
    const out = fromColumns(cols);
    const m = new Map<string, CacheSummary>();
    for (const r of out) m.set(r.key, r);
    const applied = this.applyListingLines(tail, m);
    const rows = [...m.values()].sort(byUse);
    if (applied > LISTING_STALE) {
      const full = await this.readFrom(undefined).catch(() => undefined);
      // Rewritten from the whole log (the tail alone does not give the fingerprint of a new offset).
      if (full && full.ino === ino) {
        const mm = new Map<string, CacheSummary>();
        this.applyListingLines(full.buf, mm);
        await this.writeListing([...mm.values()].sort(byUse), full.ino, full.buf, full.buf.length).catch(() => undefined);
      }
    }
    return toColumns(rows);
  }

  /** Write the listing snapshot for the log state buf[0, end) of inode `ino` (end: after the last complete line). */
  private async writeListing(rows: readonly CacheSummary[], ino: number, buf: Buffer, end: number): Promise<void> {
    const last = buf.lastIndexOf(10, end - 1);
    if (last < 0) return;
    const off = last + 1;
    const head = buf.subarray(0, Math.min(FP, off)).toString('hex');
    const mid = buf.subarray(off - Math.min(FP, off), off).toString('hex');
    const header = [LISTING_MAGIC, LISTING_VERSION, ino, off, head, mid, rows.length].join('\t');
    const body = JSON.stringify(toColumns(rows));
    await atomicWrite(this.listingFile, `${header}\n${body}\n`, this.tmpDir, 'writing the cache listing', { durable: false });
  }

  async list(): Promise<CacheRecord[]> {
    return this.listUnlocked();
  }

  async findBySource(file: string, line: number, scope?: string): Promise<CacheRecord[]> {
    // Only the lines whose source column names this file:line are JSON-parsed (parsing every
    // record cost ~80 ms per missed step on a store with a few thousand records).
    const want = `${file}:${line}`;
    const m = await this.scanAll((key, f, buf, json, end) => (jsonString(f[6] ?? '""') === want ? this.parseRecord(key, buf, json, end) : undefined));
    const all: CacheRecord[] = [];
    for (const [key, rec] of m) all.push(this.withCounters(rec, this.slots.get(key)!));
    return all
      .filter((r) => r.source?.file === file && r.source.line === line && (scope === undefined || r.meta?.scope === scope))
      .sort((a, b) => (a.created < b.created ? 1 : a.created > b.created ? -1 : 0));
  }

  /** For gc and verify: run `fn` holding the cache lock. */
  async holding<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.lockPath, fn);
  }

  /** Count of records (for du/ls without parsing). */
  async count(): Promise<number> {
    await this.refresh();
    return this.slots.size;
  }

  /** Raw file size (for `cache du`). */
  async fileSize(): Promise<number> {
    try { return (await stat(this.file)).size; } catch { return 0; }
  }
}
