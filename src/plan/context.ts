/**
 * The build context: a directory walked once (lstat only, symlinks never followed), filtered by
 * `.dockerignore`, with content hashes computed on demand and remembered in a stat cache.
 *
 * Stat cache (why): an unchanged context must not be re-read on a rebuild. A file's digest is
 * reused when (inode, size, mtime ns, ctime ns) are all unchanged since it was hashed. Files
 * modified within 100 ms of the hash are not cached (the "racy git" problem: a write in the
 * same timestamp granule would otherwise go unnoticed). On disk:
 *   <store>/tsbuild/statcache/v1/<sha256(context path)>.json
 *   { "version": 1, "root": "/abs/ctx", "files": { "rel/path": [ino, size, mtimeNs, ctimeNs, "sha256:…"] } }
 * written temp + rename (no fsync: a cache); a corrupt or foreign file is ignored (rebuilt).
 *
 * Safety: everything is read relative to the context root; `resolve()` follows symlinks INSIDE the
 * context only and fails with TSB4001 when one leads out — the host is never read through a link.
 */
import { createRequire } from 'node:module';
import { createReadStream, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, writeSync, closeSync, renameSync, readlinkSync, statSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { TsbError } from '../errors.js';
import { IgnoreMatcher, cleanPath } from './dockerignore.js';

let cryptoMod: typeof import('node:crypto') | undefined;
/** node:crypto on first use: a memoized no-op build (exec/memo.ts) walks the context but never hashes. */
const crypto = (): typeof import('node:crypto') => cryptoMod ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto');
const createHash = (alg: string) => crypto().createHash(alg);

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface CtxEntry {
  /** Context-relative, slash-separated, no leading `./` (the root itself is ``). */
  readonly rel: string;
  readonly type: EntryType;
  /** Full st_mode (type bits included). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ctimeNs: bigint;
  readonly ino: bigint;
  readonly linkTarget?: string;
}

interface StatCacheFile { version: 1; root: string; files: Record<string, [string, number, string, string, string]> }

// Kernel file timestamps come from a coarse clock (a jiffy, ≤ 10 ms); 100 ms leaves a wide margin.
const RACY_NS = 100_000_000n;
const SMALL_FILE = 1 << 20;
/**
 * Hashed bytes kept for the layer writer (takeBytes), so a cold COPY reads each small file once:
 * files up to HOLD_FILE, at most HOLD_TOTAL in all (the rest are read again when the layer is
 * written, as before).
 */
const HOLD_FILE = 256 << 10;
const HOLD_TOTAL = 64 << 20;

export interface ContextOptions {
  ignore?: IgnoreMatcher;
  /** Directory for the stat cache (`<store>/tsbuild/statcache/v1`); absent = no persistence. */
  statCacheDir?: string;
}

export class BuildContext {
  readonly root: string;
  readonly ignore: IgnoreMatcher;
  /** Included entries by rel path (the root is ``). */
  readonly entries = new Map<string, CtxEntry>();
  /** Children names (sorted) of each included directory. */
  private readonly kids = new Map<string, string[]>();
  private readonly digests = new Map<string, Promise<string>>();
  private readonly held = new Map<string, Buffer>();
  private heldBytes = 0;
  private statCache: StatCacheFile['files'] = {};
  private statCacheDirty = false;
  private readonly statCacheFile: string | undefined;
  /** Bytes actually read to hash (0 on a fully stat-cached rebuild): for tests and progress. */
  bytesHashed = 0;
  /** Wall clock (ns) when the walk began: signature()'s racy rule. */
  private walkedAtNs = 0n;

  private constructor(root: string, opts: ContextOptions) {
    this.root = root;
    this.ignore = opts.ignore ?? new IgnoreMatcher([]);
    this.statCacheFile = opts.statCacheDir
      ? join(opts.statCacheDir, createHash('sha256').update(root).digest('hex') + '.json') : undefined;
  }

  static open(dir: string, opts: ContextOptions = {}): BuildContext {
    const root = resolvePath(dir);
    const st = contextRoot(root, dir, (p) => lstatSync(p, { bigint: true }));
    const ctx = new BuildContext(root, opts);
    ctx.walkedAtNs = BigInt(Date.now()) * 1_000_000n;
    ctx.loadStatCache();
    ctx.entries.set('', toEntry('', st, undefined));
    walkContext(root, ctx.ignore, (p) => lstatSync(p, { bigint: true }), {
      entry: (rel, est, link) => { ctx.entries.set(rel, toEntry(rel, est, link)); },
      dir: (rel, names) => { ctx.kids.set(rel, names); },
      drop: (rel) => { ctx.entries.delete(rel); ctx.kids.delete(rel); },
    });
    return ctx;
  }

  /**
   * This walk as contextSignature() gives it (the same text for the same stats: the build memo
   * compares a build's walk with a later contextSignature), from the exact stats taken before any
   * content was read; `racy` as there, against the time this walk began.
   */
  signature(): { text: string; racy: boolean } {
    const since = this.walkedAtNs - RACY_NS;
    let racy = false;
    let text = '';
    for (const e of this.entries.values()) {
      if (e.mtimeNs >= since || e.ctimeNs >= since) racy = true;
      text += signatureLine(e.rel, e.type, e.mode, e.uid, e.gid, e.size, Number(e.ino), msOfNs(e.mtimeNs), msOfNs(e.ctimeNs), e.linkTarget);
    }
    return { text, racy };
  }

  /** Sorted child names of an included directory. */
  children(dir: string): readonly string[] {
    return this.kids.get(dir) ?? [];
  }

  get(rel: string): CtxEntry | undefined {
    return this.entries.get(rel);
  }

  abs(rel: string): string {
    return rel === '' ? this.root : this.root.endsWith('/') ? this.root + rel : this.root + '/' + rel;
  }

  /**
   * Resolve a context path, following symlinks (in every element) inside the context only.
   * Returns the entry the path finally names, or undefined if it does not exist (or is ignored).
   * Throws TSB4001 when a link leads outside the context.
   */
  resolve(relPath: string, followLast = true): CtxEntry | undefined {
    // Chroot-style, as BuildKit resolves in the transferred context: an absolute target restarts
    // at the context root and `..` stops there. So nothing ever names a host path; a link whose
    // target lexically leaves the context and is not found inside it is TSB4001.
    let parts = cleanPath('/' + relPath).split('/').filter(Boolean);
    const stack: string[] = [];
    let hops = 0;
    let escaped: { link: string; target: string } | undefined;
    while (parts.length > 0) {
      const name = parts.shift()!;
      if (name === '.') continue;
      if (name === '..') { stack.pop(); continue; }
      const cur = stack.join('/');
      const next = cur === '' ? name : `${cur}/${name}`;
      const e = this.entries.get(next);
      if (!e) {
        if (escaped) {
          throw new TsbError('TSB4001', `symlink ${escaped.link} -> ${escaped.target} leads outside the build context`, {
            hint: 'COPY reads only files inside the context (a link is resolved as if the context were /); copy the target into the context.',
          });
        }
        return undefined;
      }
      if (e.type === 'symlink' && (parts.length > 0 || followLast)) {
        if (++hops > 40) throw new TsbError('TSB4002', `too many levels of symbolic links at ${next}`);
        const target = e.linkTarget!;
        if (target.startsWith('/') || climbsOut(cur === '' ? target : `${cur}/${target}`)) escaped ??= { link: next, target };
        if (target.startsWith('/')) stack.length = 0;
        parts = [...target.split('/').filter((x) => x !== ''), ...parts];
        continue;
      }
      stack.push(name);
    }
    return this.entries.get(stack.join('/'));
  }

  /** sha256 of a regular file's bytes, stat-cached. */
  digest(rel: string): Promise<string> {
    let p = this.digests.get(rel);
    if (!p) {
      // A stat-cache hit (every file of a no-op rebuild) or a small file (most of a cold one) is
      // answered synchronously: no async function frame per file.
      let d: string | undefined;
      try { d = this.statCached(rel) ?? this.smallDigest(rel); } catch (err) { p = Promise.reject(err); }
      p ??= d !== undefined ? Promise.resolve(d) : this.computeDigest(rel);
      this.digests.set(rel, p);
    }
    return p;
  }

  /** The digest the stat cache holds for rel when its stat still matches, else undefined. */
  private statCached(rel: string): string | undefined {
    const c = this.statCache[rel];
    if (c === undefined) return undefined;
    const e = this.entries.get(rel);
    if (e === undefined || e.type !== 'file') return undefined;
    return c[1] === e.size && c[2] === String(e.mtimeNs) && c[3] === String(e.ctimeNs) && c[0] === String(e.ino) ? c[4] : undefined;
  }

  /**
   * The bytes digest(rel) hashed, if it read the file and kept them (small files, bounded total),
   * with the file's ns mtime; handed over once (then forgotten, freeing the memory). Lets the layer
   * writer use exactly the bytes the cache key was computed from, without a second read.
   */
  takeBytes(rel: string): { bytes: Buffer; mtimeNs: bigint } | undefined {
    const b = this.held.get(rel);
    if (b === undefined) return undefined;
    this.held.delete(rel);
    this.heldBytes -= b.length;
    return { bytes: b, mtimeNs: this.entries.get(rel)!.mtimeNs };
  }

  /** Whether digest(rel) would be answered from the stat cache (no read). */
  isStatCached(rel: string): boolean {
    return this.digests.has(rel) || this.statCached(rel) !== undefined;
  }

  /**
   * Hashes a file's bytes read by someone else (the layer writer, in the same pass): registered
   * at once, so digest(rel) waits for it instead of reading the file. end() remembers the digest
   * as if digest() had read the file; fail() makes digest(rel) fail; drop() (the bytes will not
   * come after all) makes digest(rel) read the file itself.
   */
  digestTap(rel: string): { update(b: Uint8Array): void; end(): void; fail(err: unknown): void; drop(): void } {
    const e = this.entries.get(rel)!;
    const h = createHash('sha256');
    let n = 0;
    let settle!: (d: string | Promise<string>) => void; let reject!: (err: unknown) => void;
    const p = new Promise<string>((res, rej) => { settle = res; reject = rej; });
    p.catch(() => undefined);
    this.digests.set(rel, p);
    let done = false;
    return {
      update: (b) => { h.update(b); n += b.length; },
      end: () => {
        if (done) return; done = true;
        this.bytesHashed += n;
        const d = 'sha256:' + h.digest('hex');
        this.remember(rel, e, d);
        settle(d);
      },
      fail: (err) => { if (done) return; done = true; this.digests.delete(rel); reject(err); },
      drop: () => { if (done) return; done = true; this.digests.delete(rel); settle(this.digest(rel)); },
    };
  }

  private remember(rel: string, e: CtxEntry, d: string): void {
    const st = lstatSync(this.abs(rel), { bigint: true });
    const now = BigInt(Date.now()) * 1_000_000n;
    if (st.ino === e.ino && Number(st.size) === e.size && st.mtimeNs === e.mtimeNs && st.ctimeNs === e.ctimeNs
      && now - st.mtimeNs > RACY_NS && now - st.ctimeNs > RACY_NS) {
      this.statCache[rel] = [String(e.ino), e.size, String(e.mtimeNs), String(e.ctimeNs), d];
      this.statCacheDirty = true;
    }
  }

  /** digest of a small file, read and hashed synchronously (undefined for a large one). */
  private smallDigest(rel: string): string | undefined {
    const e = this.entries.get(rel);
    if (!e || e.type !== 'file') throw new Error(`internal: digest of non-file ${rel}`);
    if (e.size > SMALL_FILE) return undefined;
    // One read: a stream would allocate a 1 MiB buffer per file (GC-bound). Through one
    // descriptor, whose fstat after the read is the "unchanged while read" check.
    let buf: Buffer;
    let st: import('node:fs').BigIntStats;
    let fd: number | undefined;
    try {
      fd = openSync(this.abs(rel), 'r');
      buf = readFileSync(fd);
      st = fstatSync(fd, { bigint: true });
    } catch (err) {
      throw new TsbError('TSB4003', `cannot read context file ${rel}`, { cause: err });
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    this.bytesHashed += buf.length;
    const d = 'sha256:' + sha256hex(buf);
    const same = st.ino === e.ino && Number(st.size) === e.size && st.mtimeNs === e.mtimeNs && st.ctimeNs === e.ctimeNs && buf.length === e.size;
    if (same && buf.length <= HOLD_FILE && this.heldBytes + buf.length <= HOLD_TOTAL) {
      this.held.set(rel, buf);
      this.heldBytes += buf.length;
    }
    const now = BigInt(Date.now()) * 1_000_000n;
    if (same && now - st.mtimeNs > RACY_NS && now - st.ctimeNs > RACY_NS) {
      this.statCache[rel] = [String(e.ino), e.size, String(e.mtimeNs), String(e.ctimeNs), d];
      this.statCacheDirty = true;
    }
    return d;
  }

  private async computeDigest(rel: string): Promise<string> {
    const e = this.entries.get(rel);
    if (!e || e.type !== 'file') throw new Error(`internal: digest of non-file ${rel}`);
    const cached = this.statCached(rel) ?? this.smallDigest(rel);
    if (cached !== undefined) return cached;
    // A large file streams in 1 MiB reads.
    const h = createHash('sha256');
    let n = 0;
    await new Promise<void>((res, rej) => {
      const s = createReadStream(this.abs(rel), { highWaterMark: 256 << 10 });
      s.on('data', (b) => { h.update(b as Buffer); n += (b as Buffer).length; });
      s.on('error', (err) => rej(new TsbError('TSB4003', `cannot read context file ${rel}`, { cause: err })));
      s.on('end', () => res());
    });
    this.bytesHashed += n;
    const d = 'sha256:' + h.digest('hex');
    // Re-stat: a file changed while we read it must not be cached under its old stat.
    const st = lstatSync(this.abs(rel), { bigint: true });
    const now = BigInt(Date.now()) * 1_000_000n;
    if (st.ino === e.ino && Number(st.size) === e.size && st.mtimeNs === e.mtimeNs && st.ctimeNs === e.ctimeNs
      && now - st.mtimeNs > RACY_NS && now - st.ctimeNs > RACY_NS) {
      this.statCache[rel] = [String(e.ino), e.size, String(e.mtimeNs), String(e.ctimeNs), d];
      this.statCacheDirty = true;
    }
    return d;
  }

  private loadStatCache(): void {
    if (!this.statCacheFile) return;
    try {
      const j = JSON.parse(readFileSync(this.statCacheFile, 'utf8')) as StatCacheFile;
      if (j.version === 1 && j.root === this.root && j.files && typeof j.files === 'object') this.statCache = j.files;
    } catch { /* absent or unreadable: start empty */ }
  }

  /**
   * Persist the stat cache (only entries still in the context). Best effort: a failure is ignored.
   * Not fsynced (why): it is a cache — after a power cut a missing, empty or torn file fails to
   * parse and the next build simply re-hashes — and an fsync costs a cold build milliseconds.
   */
  saveStatCache(): void {
    if (!this.statCacheFile || !this.statCacheDirty) return;
    const files: StatCacheFile['files'] = {};
    for (const k in this.statCache) if (this.entries.has(k)) files[k] = this.statCache[k]!;
    const body: StatCacheFile = { version: 1, root: this.root, files };
    try {
      const dir = join(this.statCacheFile, '..');
      mkdirSync(dir, { recursive: true });
      const tmp = `${this.statCacheFile}.${process.pid}.${Date.now()}.tmp`;
      const fd = openSync(tmp, 'w', 0o644);
      try { writeSync(fd, JSON.stringify(body)); } finally { closeSync(fd); }
      renameSync(tmp, this.statCacheFile);
      this.statCacheDirty = false;
    } catch { /* the cache is an optimisation */ }
  }
}

/** sha256 hex of a buffer: crypto.hash (one call, no Hash object) where Node has it. */
function sha256hex(b: Buffer): string {
  const oneShotHash = crypto().hash;
  return typeof oneShotHash === 'function' ? oneShotHash('sha256', b, 'hex') : createHash('sha256').update(b).digest('hex');
}

interface WalkStat { isDirectory(): boolean; isSymbolicLink(): boolean }

/** The context root's stat, or the coded error a missing or non-directory context is. */
function contextRoot<S extends WalkStat>(root: string, given: string, lstat: (p: string) => S): S {
  let st: S;
  try { st = lstat(root); } catch (e) {
    throw new TsbError('TSB3020', `unable to prepare context: path "${given}" not found`, { cause: e, hint: 'pass an existing directory as the build context.', exitCode: 1 });
  }
  if (!st.isDirectory()) {
    throw new TsbError('TSB3021', `unable to prepare context: "${given}" is not a directory`, { hint: 'pass a directory, or - to read a tar archive from stdin.' });
  }
  return st;
}

/**
 * The context walk, below `root`: BuildContext's and contextSignature's, so that both see exactly
 * the same entries (why one function). Depth first in sorted name order, lstat only (a link is
 * never followed), `.dockerignore` applied: an ignored directory is entered only when a `!` rule
 * may re-include something below it, and kept only when something below was included. Calls
 * `entry` for each included entry in walk order (a directory before what is below it), `dir` with
 * the sorted included names of each directory walked, and `drop` for an ignored directory entered
 * in vain (after its `entry`: the visitor takes it back). Returns how many entries were included.
 *
 * Runs once per build over every context entry, mostly before V8 has optimised anything: kept lean
 * (string concatenation, not path.join; the default sort, which is the same UTF-16 order as
 * byteCompare without a callback). A sync lstat beats the thread pool here: the inodes are cached
 * and the per-call JS cost dominates.
 */
function walkContext<S extends WalkStat>(root: string, ignoreAll: IgnoreMatcher, lstat: (p: string) => S, visit: {
  entry(rel: string, st: S, link: string | undefined): void; dir(rel: string, names: string[]): void; drop(rel: string): void;
}): number {
  const ignore = ignoreAll.empty ? undefined : ignoreAll;
  const walk = (dir: string, abs: string): number => {
    let names: string[];
    try { names = readdirSync(abs); } catch (e) {
      throw new TsbError('TSB3022', `cannot read context directory ${dir || '.'}`, { cause: e });
    }
    names.sort();
    const included: string[] = [];
    let count = 0;
    const prefix = abs.endsWith('/') ? abs : abs + '/';
    for (const name of names) {
      const rel = dir === '' ? name : dir + '/' + name;
      const path = prefix + name;
      const ignored = ignore !== undefined && ignore.ignores(rel);
      let st: S;
      try { st = lstat(path); } catch (e) {
        // A name that is not UTF-8 comes back from readdir with U+FFFD and cannot be found again.
        if (name.includes('\uFFFD') && ignored) continue;
        throw contextEntryError(rel, e);
      }
      if (st.isDirectory()) {
        if (ignored && !ignore.mayReincludeBelow(rel)) continue;
        visit.entry(rel, st, undefined);
        const below = walk(rel, path);
        if (ignored && below === 0) { visit.drop(rel); continue; }
        included.push(name);
        count += 1 + below;
      } else {
        if (ignored) continue;
        visit.entry(rel, st, st.isSymbolicLink() ? readlinkSync(path) : undefined);
        included.push(name);
        count++;
      }
    }
    visit.dir(dir, included);
    return count;
  };
  return walk('', root);
}

/**
 * The context as the build memo (src/exec/memo.ts) compares it: the walk BuildContext makes (same
 * rules, walkContext), as text, a line per included entry (the root too) with its path, type,
 * mode, owner, size, inode, mtime, ctime (ms, as Node gives them) and link target. Equal texts of
 * two walks mean no entry a build reads was changed, added or removed since the first — provided
 * nothing had changed within RACY_NS before the first walk began (`racy`: then a change in the
 * same timestamp granule could go unseen, and the text must not be trusted later; the stat cache's
 * rule). A later change always shows: its times are at least the walk's start, and every time in
 * a trusted text is RACY_NS older than that.
 * Plain (number) stats (why): a memoized no-op build is this walk and little else, and BigInt
 * stats cost a third more. A build gives the same text from its own exact walk
 * (BuildContext.signature), so it never walks twice.
 */
export function contextSignature(dir: string, ignore: IgnoreMatcher): { text: string; racy: boolean } {
  const root = resolvePath(dir);
  const since = Date.now() - Number(RACY_NS / 1_000_000n);
  let racy = false;
  let text = '';
  const marks = new Map<string, number>();
  const line = (rel: string, st: import('node:fs').Stats, link: string | undefined): void => {
    if (st.mtimeMs >= since || st.ctimeMs >= since) racy = true;
    const type: EntryType = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    text += signatureLine(rel, type, st.mode, st.uid, st.gid, type === 'file' ? st.size : 0, st.ino, st.mtimeMs, st.ctimeMs, link);
  };
  line('', contextRoot(root, dir, (p) => lstatSync(p)), undefined);
  walkContext(root, ignore, (p) => lstatSync(p), {
    entry: (rel, st, link) => { if (st.isDirectory()) marks.set(rel, text.length); line(rel, st, link); },
    dir: () => undefined,
    drop: (rel) => { text = text.slice(0, marks.get(rel)); },
  });
  return { text, racy };
}

/** One entry of a signature. Length-prefixed path and link: no name can make two walks read the same. */
function signatureLine(rel: string, type: EntryType, mode: number, uid: number, gid: number, size: number, ino: number,
  mtimeMs: number, ctimeMs: number, link: string | undefined): string {
  return `${rel.length}:${rel}\t${type}\t${mode}\t${uid}\t${gid}\t${size}\t${ino}\t${mtimeMs}\t${ctimeMs}\t${link === undefined ? '-' : `${link.length}:${link}`}\n`;
}

/**
 * A BigInt stat time (ns) as Node's number stats give it (ms): whole seconds × 1000 plus the
 * nanoseconds / 1e6, in doubles — the formula of Node's own msFromTimeSpec, so the result is the
 * same double (checked on 50,000 files; test/plan/context.test.ts compares both signatures).
 */
function msOfNs(ns: bigint): number {
  let sec = ns / 1_000_000_000n;
  let rem = ns % 1_000_000_000n;
  if (rem < 0n) { sec -= 1n; rem += 1_000_000_000n; }
  return Number(sec) * 1000 + Number(rem) / 1e6;
}

/**
 * A file's stat stamp (`ino:size:mtime:ctime`, ns) for the build memo, and whether it changed
 * within RACY_NS of now (the stat cache's racy rule: such a stamp must not be trusted later).
 */
export function statStamp(path: string): { stamp: string; racy: boolean } | undefined {
  let st;
  try { st = statSync(path, { bigint: true }); } catch { return undefined; } // the file a read reads
  const since = BigInt(Date.now()) * 1_000_000n - RACY_NS;
  return { stamp: `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`, racy: st.mtimeNs >= since || st.ctimeNs >= since };
}

function toEntry(rel: string, st: import('node:fs').BigIntStats, linkTarget: string | undefined): CtxEntry {
  const type: EntryType = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
  return {
    rel, type, mode: Number(st.mode), uid: Number(st.uid), gid: Number(st.gid),
    size: type === 'file' ? Number(st.size) : 0,
    mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, ino: st.ino,
    ...(linkTarget !== undefined ? { linkTarget } : {}),
  };
}

/**
 * Why a walked entry could not be read. A non-UTF-8 name (readdir decodes it lossily, U+FFFD) is
 * refused with a code: BuildKit refuses it too (its context transfer carries names as UTF-8
 * strings: `grpc: string field contains invalid UTF-8`). A file removed mid-walk is a context error.
 */
function contextEntryError(rel: string, cause: unknown): TsbError {
  if (rel.includes('\uFFFD')) {
    return new TsbError('TSB3023', `context file name is not valid UTF-8: ${JSON.stringify(rel)}`, {
      cause, hint: 'rename the file (names are sent as UTF-8, BuildKit refuses it too) or exclude it in .dockerignore.',
    });
  }
  return new TsbError('TSB3022', `cannot read context entry ${rel}`, { cause });
}

/** Whether a relative path climbs above its start (`a/../../b`). */
function climbsOut(p: string): boolean {
  let depth = 0;
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') { if (--depth < 0) return true; } else depth++;
  }
  return false;
}

export function byteCompare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The ignore file for a build: `<Dockerfile>.dockerignore` beside the Dockerfile wins over
 * `<context>/.dockerignore` (BuildKit's rule). Returns the matcher and the file it came from.
 */
export function loadIgnore(contextDir: string, dockerfilePath: string | undefined): { matcher: IgnoreMatcher; file?: string } {
  const candidates: string[] = [];
  if (dockerfilePath) candidates.push(dockerfilePath + '.dockerignore');
  candidates.push(join(contextDir, '.dockerignore'));
  for (const f of candidates) {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch { continue; }
    return { matcher: IgnoreMatcher.fromText(text, f), file: f };
  }
  return { matcher: new IgnoreMatcher([]) };
}
