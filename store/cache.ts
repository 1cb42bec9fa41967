/**
 * The build cache index: one record per step cache key (types.ts CacheRecord), at
 * tsbuild/v1/cache/log.jsonl.
 *
 * Format (version 1): an append-only log, one JSON object per line:
 *   {"v":1,"op":"put","rec":CacheRecord}     insert/replace
 *   {"v":1,"op":"touch","key":K,"at":RFC3339} a hit: lastUsed = at, hits + 1
 *   {"v":1,"op":"del","key":K}               removal (prune)
 * Why a log and not one file per record: `cache ls` over 10,000 records must take < 0.2 s, and
 * opening 10,000 files costs more than that on its own; a log is read with one read, a put or a hit
 * is one small append, and a reader that already loaded the log reads only the bytes appended since
 * (it remembers inode + offset). Appends happen under the `cache` lock; before appending, a writer
 * makes sure the file ends in a newline, so a line torn by a crash (or a full disk) is a lone bad
 * line that readers skip, never glued to the next record. When dead lines outnumber live records
 * the log is compacted (rewritten temp + fsync + rename under the lock); readers notice the new
 * inode and reload.
 *
 * Memory is bounded: the in-memory index holds per key only the record's offset and its hit
 * counters; parsed records sit in an LRU (list() parses on demand and does not keep them).
 */
import { constants as C } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LRUCache } from 'lru-cache';
import { TsbError, errnoCode } from './errors.js';
import { E, atomicWrite, ioError } from './fsutil.js';
import { withLock } from './lock.js';
import type { FsBlobStore } from './blobs.js';
import type { CacheIndex, CacheRecord } from './types.js';

const V = 1;

interface Slot { off: number; len: number; lastUsed: string; hits: number }

type Line =
  | { v: 1; op: 'put'; rec: CacheRecord }
  | { v: 1; op: 'touch'; key: string; at: string }
  | { v: 1; op: 'del'; key: string };

export class FsCacheIndex implements CacheIndex {
  readonly file: string;
  private slots = new Map<string, Slot>();
  private ino = -1;
  private pos = 0;
  private lines = 0;
  private readonly lru = new LRUCache<string, CacheRecord>({ max: 2000 });

  constructor(dir: string, private readonly tmpDir: string, private readonly lockDir: string, private readonly blobs: FsBlobStore) {
    this.file = join(dir, 'log.jsonl');
  }

  get lockPath(): string { return join(this.lockDir, 'cache.lock'); }

  /** Bring the in-memory index up to date with the file (tail read, or full reload after compaction). */
  private async refresh(): Promise<void> {
    let fh;
    try {
      fh = await open(this.file, 'r');
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') { this.reset(-1); return; }
      throw ioError(e, 'reading the cache index', this.file);
    }
    try {
      const st = await fh.stat();
      if (st.ino !== this.ino || st.size < this.pos) this.reset(st.ino);
      if (st.size === this.pos) return;
      const buf = Buffer.allocUnsafe(st.size - this.pos);
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await fh.read(buf, got, buf.length - got, this.pos + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      this.scan(buf.subarray(0, got), this.pos);
    } catch (e) {
      throw ioError(e, 'reading the cache index', this.file);
    } finally {
      await fh.close();
    }
  }

  private reset(ino: number): void {
    this.slots = new Map();
    this.ino = ino;
    this.pos = 0;
    this.lines = 0;
    this.lru.clear();
  }

  /** Apply complete lines of `buf` (which starts at file offset `base`). */
  private scan(buf: Buffer, base: number): void {
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      if (nl > start) this.apply(buf.toString('utf8', start, nl), base + start, nl - start);
      start = nl + 1;
    }
    this.pos = base + start;
  }

  private apply(text: string, off: number, len: number): void {
    let line: Line;
    try { line = JSON.parse(text) as Line; } catch { return; } // torn line: skipped (see header)
    if (!line || line.v !== V) return;
    this.lines++;
    if (line.op === 'put' && line.rec && typeof line.rec.key === 'string') {
      this.slots.set(line.rec.key, { off, len, lastUsed: line.rec.lastUsed, hits: line.rec.hits });
      this.lru.delete(line.rec.key);
    } else if (line.op === 'touch') {
      const s = this.slots.get(line.key);
      if (s) { s.hits++; if (line.at > s.lastUsed) s.lastUsed = line.at; }
    } else if (line.op === 'del') {
      this.slots.delete(line.key);
      this.lru.delete(line.key);
    }
  }

  private withCounters(rec: CacheRecord, s: Slot): CacheRecord {
    return { ...rec, lastUsed: s.lastUsed, hits: s.hits };
  }

  async get(key: string): Promise<CacheRecord | undefined> {
    await this.refresh();
    const s = this.slots.get(key);
    if (!s) return undefined;
    let rec = this.lru.get(key);
    if (!rec) {
      const fh = await open(this.file, 'r');
      try {
        const buf = Buffer.alloc(s.len);
        await fh.read(buf, 0, s.len, s.off);
        rec = (JSON.parse(buf.toString('utf8')) as { rec: CacheRecord }).rec;
      } catch (e) {
        throw new TsbError(E.CORRUPT_INDEX, `cache record ${key} could not be read`, { cause: e, hint: 'run "tsbuild store verify --repair".' });
      } finally {
        await fh.close();
      }
      this.lru.set(key, rec);
    }
    return this.withCounters(rec, s);
  }

  /** Append lines under the cache lock (the caller holds it). */
  private async append(lines: Line[], sync: boolean): Promise<void> {
    let fh;
    try {
      fh = await open(this.file, C.O_WRONLY | C.O_APPEND | C.O_CREAT, 0o644);
      const st = await fh.stat();
      let prefix = '';
      if (st.size > 0) {
        const last = Buffer.alloc(1);
        const rd = await open(this.file, 'r');
        try { await rd.read(last, 0, 1, st.size - 1); } finally { await rd.close(); }
        if (last[0] !== 10) prefix = '\n'; // a torn line from a crash: keep it separate
      }
      await fh.write(prefix + lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
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
    const text = recs.map((rec) => JSON.stringify({ v: V, op: 'put', rec } satisfies Line)).join('\n');
    await atomicWrite(this.file, text ? text + '\n' : '', this.tmpDir, 'compacting the cache index');
    await this.refresh();
  }

  async put(record: Omit<CacheRecord, 'created' | 'lastUsed' | 'hits'> & Partial<Pick<CacheRecord, 'created'>>): Promise<CacheRecord> {
    if (!record.key) throw new TsbError(E.CORRUPT_INDEX, 'a cache record needs a key', { hint: 'this is a bug in the caller.' });
    return this.locked(async () => {
      // Checked under the lock: gc sweeps while holding it, so the blobs stay.
      for (const d of [record.layer?.digest, record.config]) {
        if (d !== undefined && !(await this.blobs.has(d))) {
          throw new TsbError(E.INCOMPLETE, `cannot record cache key ${record.key}: blob ${d} is not in the store`, {
            hint: 'put the layer and config before recording them, and hold a lease while building so gc keeps them.',
          });
        }
      }
      const prev = this.slots.get(record.key);
      const now = new Date().toISOString();
      const old = prev ? await this.get(record.key) : undefined;
      const rec: CacheRecord = {
        ...record,
        created: record.created ?? old?.created ?? now,
        lastUsed: now,
        hits: old?.hits ?? 0,
      };
      await this.append([{ v: V, op: 'put', rec }], true);
      return rec;
    });
  }

  /** Many records in one locked append (imports, benchmarks). Same checks as put(). */
  async putMany(records: readonly (Omit<CacheRecord, 'created' | 'lastUsed' | 'hits'> & Partial<Pick<CacheRecord, 'created'>>)[]): Promise<number> {
    return this.locked(async () => {
      const now = new Date().toISOString();
      const checked = new Set<string>();
      const lines: Line[] = [];
      for (const record of records) {
        for (const d of [record.layer?.digest, record.config]) {
          if (d === undefined || checked.has(d)) continue;
          if (!(await this.blobs.has(d))) {
            throw new TsbError(E.INCOMPLETE, `cannot record cache key ${record.key}: blob ${d} is not in the store`, { hint: 'put the layer and config first.' });
          }
          checked.add(d);
        }
        const old = this.slots.get(record.key);
        lines.push({ v: V, op: 'put', rec: { ...record, created: record.created ?? now, lastUsed: now, hits: old?.hits ?? 0 } });
      }
      if (lines.length) await this.append(lines, true);
      return lines.length;
    });
  }

  async touch(key: string): Promise<void> {
    await this.locked(async () => {
      if (!this.slots.has(key)) return;
      // A hit is not worth an fsync: losing one to a crash only skews "last used" by one build.
      await this.append([{ v: V, op: 'touch', key, at: new Date().toISOString() }], false);
    });
  }

  async delete(keys: readonly string[]): Promise<number> {
    if (keys.length === 0) return 0;
    return this.locked(async () => {
      const present = [...new Set(keys)].filter((k) => this.slots.has(k));
      if (present.length) await this.append(present.map((key) => ({ v: V, op: 'del', key }) as Line), true);
      return present.length;
    });
  }

  /** delete() for a caller that already holds the cache lock (verify --repair). */
  async deleteLocked(keys: readonly string[]): Promise<number> {
    await this.refresh();
    const present = [...new Set(keys)].filter((k) => this.slots.has(k));
    if (present.length) await this.append(present.map((key) => ({ v: V, op: 'del', key }) as Line), true);
    await this.refresh();
    return present.length;
  }

  /**
   * Every live record, from one read and one parse per line of the whole log (this also rebuilds
   * the in-memory index, so a following get() costs nothing extra).
   */
  private async listUnlocked(): Promise<CacheRecord[]> {
    const m = await this.scanAll((r) => r);
    const out: CacheRecord[] = [];
    for (const [key, rec] of m) out.push(this.withCounters(rec, this.slots.get(key)!));
    return out;
  }

  /**
   * Like list(), but keeps only `project(record)` of each record while reading (a listing of
   * 10,000 records then retains a few strings per record instead of whole object trees: less
   * garbage-collector work). lastUsed and hits include every hit.
   */
  async listProjected<T>(project: (r: CacheRecord) => T): Promise<{ key: string; value: T; lastUsed: string; hits: number }[]> {
    const m = await this.scanAll(project);
    const out: { key: string; value: T; lastUsed: string; hits: number }[] = [];
    for (const [key, value] of m) { const sl = this.slots.get(key)!; out.push({ key, value, lastUsed: sl.lastUsed, hits: sl.hits }); }
    return out;
  }

  private async scanAll<T>(project: (r: CacheRecord) => T): Promise<Map<string, T>> {
    let fh;
    let buf: Buffer;
    let ino: number;
    try {
      fh = await open(this.file, 'r');
      const st = await fh.stat();
      ino = st.ino;
      buf = Buffer.allocUnsafe(st.size);
      let got = 0;
      while (got < st.size) {
        const { bytesRead } = await fh.read(buf, got, st.size - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      buf = buf.subarray(0, got);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') { this.reset(-1); return new Map(); }
      throw ioError(e, 'reading the cache index', this.file);
    } finally {
      await fh?.close();
    }
    this.reset(ino);
    const recs = new Map<string, T>();
    let start = 0;
    for (;;) {
      const nl = buf.indexOf(10, start);
      if (nl < 0) break;
      if (nl > start) {
        let line: Line | undefined;
        try { line = JSON.parse(buf.toString('utf8', start, nl)) as Line; } catch { line = undefined; }
        if (line && line.v === V) {
          this.lines++;
          if (line.op === 'put' && line.rec && typeof line.rec.key === 'string') {
            this.slots.set(line.rec.key, { off: start, len: nl - start, lastUsed: line.rec.lastUsed, hits: line.rec.hits });
            recs.set(line.rec.key, project(line.rec));
          } else if (line.op === 'touch') {
            const sl = this.slots.get(line.key);
            if (sl) { sl.hits++; if (line.at > sl.lastUsed) sl.lastUsed = line.at; }
          } else if (line.op === 'del') {
            this.slots.delete(line.key);
            recs.delete(line.key);
          }
        }
      }
      start = nl + 1;
    }
    this.pos = start;
    return recs;
  }

  async list(): Promise<CacheRecord[]> {
    return this.listUnlocked();
  }

  async findBySource(file: string, line: number, scope?: string): Promise<CacheRecord[]> {
    const all = await this.list();
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
