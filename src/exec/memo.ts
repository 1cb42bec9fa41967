/**
 * The build memo: a rebuild with nothing changed, answered without planning it again.
 *
 * Why: a build whose request (Dockerfile, flags, store), Dockerfile, context and store state are
 * exactly those of an earlier successful build gives that build's image — every step would be a
 * cache hit under the same key, so the same layers and config. Docker answers such a rebuild in
 * ~0.2 s from a daemon that is already running; a fresh tsbuild process spent most of its no-op
 * loading the parser, planner and executor and computing every key again. So each successful build
 * writes a memo of its request and of what it read, and the next build of the same request checks
 * it first: when nothing it names changed, the build prints the steps as CACHED (what a full no-op
 * prints), records the cache hits, puts its tags back if they moved, and gives the image.
 *
 * File: <store>/tsbuild/memo/v1/<256-bit hash of the request>.json (memoPath), a derived area
 * (store/derived.ts: gc keeps it bounded); written temp + rename, not fsynced: a lost or torn memo
 * only means one full build. Contents (MEMO_VERSION 2): see the Memo interface.
 *
 * The request (memoRequest): the code's identity (package version, and this module file's size and
 * mtime: a rebuilt or upgraded tsbuild never trusts an older one's memo), the store, the context
 * directory, the Dockerfile path, and every build flag except the output-only ones (--progress,
 * --quiet, --iidfile, --explain), with environment-derived values resolved (--build-arg NAME taken
 * from the environment, SOURCE_DATE_EPOCH).
 *
 * A memo is valid only when all of these hold (checkMemo, cheapest first):
 * - the Dockerfile's stat (inode, size, mtime, ctime) is the one taken before the build read it;
 * - if the build read its context: a new walk (same .dockerignore rules) gives the same signature
 *   (plan/context.ts contextSignature: every included entry's path, type, mode, owner, size, inode,
 *   times) as the build's own walk, whose stats were taken before any content was read;
 * - if the build resolved images (FROM, COPY --from, RUN --mount from=): index.json is the same file,
 *   or each name it resolved still names the same image (other builds tag other names meanwhile);
 * - none of the steps' cache records was put again or removed since (CacheIndex.changedSince), so
 *   a `cache prune` makes the next build run its steps again, as in Docker;
 * - the image's manifest, config and layer blobs are all in the store.
 * It is not written when the build used --no-cache, --no-cache-filter, --pull=always, --output or
 * --push; when a step read a remote source (ADD URL: its content can change with nothing local
 * changing); when the context or Dockerfile came from stdin; or when the Dockerfile or a context
 * entry changed less than 100 ms before it was read (a change in the same timestamp granule could
 * go unseen: the stat cache's racy rule).
 *
 * Known gaps: RUN secrets and cache-mount contents are not looked at: neither keys a step (as in
 * BuildKit), so a full no-op would not look at them either. A `cache prune` that runs while a build
 * runs (between its lookups and its memo) can go unseen by that memo. Hits recorded by a memo
 * answer are lock-free appends (CacheIndex.touchMany): one racing a compaction is lost.
 * TSBUILD_MEMO=0 turns the memo off; TSBUILD_MEMO_TRACE=1 prints to stderr why a memo was or was
 * not used.
 */
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Descriptor, Store } from '../../store/types.js';
import { statStamp } from '../plan/context.js';
import type { ProgressSink, StepReport } from './build.js';

export const MEMO_VERSION = 2;
/** Where memos live under the store (store/derived.ts DERIVED_AREAS.memo). */
export const MEMO_AREA = 'tsbuild/memo/v1';

export interface MemoStep {
  readonly id: number;
  readonly stage: number;
  readonly name: string;
  readonly kind: string;
  readonly line: number;
  /** 'cached' for keyed steps (a hit, or built by the memo's build), 'config' for the others. */
  readonly status: 'cached' | 'config';
  /** The cache key of a 'cached' step (its hit is recorded on a memo answer). */
  readonly key?: string;
}

export interface Memo {
  readonly v: typeof MEMO_VERSION;
  /** memoRequest()'s text (the file name is its digest: compared in full, no collision trusted). */
  readonly request: string;
  /** statStamp() of the Dockerfile, taken before it was read. */
  readonly dockerfile: string;
  /** The signature text of the build's context walk; null when no step read the context. */
  readonly context: string | null;
  /** refs.stamp() after the build tagged. */
  readonly index: string;
  /**
   * The image names the build resolved by name (normalized), with the descriptor digest each named
   * after the build: when index.json changed since, each must still name the same (references by
   * digest never move and are not listed; a build with none needs no look at the names).
   */
  readonly bases: readonly (readonly [string, string])[];
  /** cache.position() after the build's records and hits were written. */
  readonly cache: string;
  readonly image: { readonly manifest: Descriptor; readonly config: string; readonly layers: readonly string[] };
  readonly tags: readonly string[];
  readonly warnings: readonly string[];
  readonly steps: readonly MemoStep[];
}

let codeId: string | undefined;
/**
 * Which tsbuild this is: the package version (npm installs set every file's mtime to one fixed
 * date, so a new release is told by its version) and this module file's size and mtime (every
 * `npm run build` rewrites it: a rebuilt checkout never trusts an older build's memo).
 */
function code(): string {
  if (codeId === undefined) {
    try {
      const self = fileURLToPath(import.meta.url);
      const st = statSync(self);
      let version = 'unknown';
      // dist/src/exec/memo.js or src/exec/memo.ts: the package root is two or three levels up.
      for (const up of [join(self, '..', '..', '..', 'package.json'), join(self, '..', '..', '..', '..', 'package.json')]) {
        try {
          const pkg = JSON.parse(readFileSync(up, 'utf8')) as { name?: string; version?: string };
          if (pkg.name === 'tsbuild' && typeof pkg.version === 'string') { version = pkg.version; break; }
        } catch { /* next */ }
      }
      codeId = `${version}:${st.size}:${st.mtimeMs}`;
    } catch {
      codeId = `unknown:${Math.random()}`; // no file to vouch for the code: never match
    }
  }
  return codeId;
}

/** The request text: `fields` with sorted keys, the code identity and the memo version. */
export function memoRequest(fields: Readonly<Record<string, unknown>>): string {
  const sorted: Record<string, unknown> = { memo: MEMO_VERSION, code: code() };
  for (const k of Object.keys(fields).sort()) sorted[k] = fields[k];
  return JSON.stringify(sorted);
}

/**
 * The memo's file: named by a 256-bit non-cryptographic hash of the request (eight 32-bit FNV-1a
 * lanes). A collision costs nothing but a miss: the file holds the whole request, compared in
 * full. (No node:crypto: loading it costs ~5 ms of the no-op this module exists to make fast.)
 */
export function memoPath(storeRoot: string, request: string): string {
  let hex = '';
  for (let lane = 0; lane < 8; lane++) {
    let h = (0x811c9dc5 ^ Math.imul(lane + 1, 0x9e3779b1)) >>> 0;
    for (let i = 0; i < request.length; i++) h = Math.imul(h ^ request.charCodeAt(i), 0x01000193) >>> 0;
    hex += h.toString(16).padStart(8, '0');
  }
  return join(storeRoot, MEMO_AREA, `${hex}.json`);
}

/** Best effort (a memo is a cache): temp file beside it, then rename. */
export function writeMemo(path: string, memo: Memo): boolean {
  const tmp = `${path}.${process.pid}.${Date.now().toString(36)}.tmp`;
  try {
    mkdirSync(join(path, '..'), { recursive: true });
    const fd = openSync(tmp, 'w', 0o644);
    try { writeSync(fd, JSON.stringify(memo)); } finally { closeSync(fd); }
    renameSync(tmp, path);
    return true;
  } catch {
    try { unlinkSync(tmp); } catch { /* never made */ }
    return false;
  }
}

/** The memo a finished build leaves (see the header for when it may not be written). */
export async function memoOfBuild(o: {
  request: string; dockerfile: { stamp: string; racy: boolean } | undefined;
  /** Whether a step read the context, and the signature of the walk it read it by (BuildContext.signature). */
  usedContext: boolean; context: { text: string; racy: boolean } | undefined;
  store: Store; manifest: Descriptor; configDigest: string; tags: readonly string[]; warnings: readonly string[];
  steps: readonly StepReport[]; bases: readonly (readonly [string, string])[];
}): Promise<Memo | { refused: string }> {
  if (!o.dockerfile) return { refused: 'the Dockerfile has no stat' };
  if (o.dockerfile.racy) return { refused: 'the Dockerfile changed less than 100 ms before it was read' };
  let context: string | null = null;
  if (o.usedContext && !o.context) return { refused: 'the context was read without a signature' };
  if (o.usedContext && o.context) {
    const sig = o.context;
    if (sig.racy) return { refused: 'a context file changed less than 100 ms before the build read it' };
    context = sig.text;
  }
  const m = await o.store.blobs.readJSON<{ layers?: { digest: string }[] }>(o.manifest.digest);
  const steps: MemoStep[] = [];
  for (const s of o.steps) {
    const keyed = s.status === 'cached' || s.status === 'built';
    if (!keyed && s.status !== 'config') return { refused: `step ${s.id} is ${s.status}` };
    const base = { id: s.id, stage: s.stage, name: s.name, kind: s.kind, line: s.line };
    steps.push(keyed ? { ...base, status: 'cached', key: s.key } : { ...base, status: 'config' });
  }
  return {
    v: MEMO_VERSION, request: o.request, dockerfile: o.dockerfile.stamp, context, bases: o.bases,
    index: await o.store.refs.stamp(), cache: await o.store.cache.position(),
    image: { manifest: o.manifest, config: o.configDigest, layers: (m.layers ?? []).map((l) => l.digest) },
    tags: o.tags, warnings: o.warnings, steps,
  };
}

/**
 * The memo of `request` if every check in the header holds, else why not. `signContext` gives the
 * context's contextSignature with the build's ignore rules (called only when the memo's build read
 * it); `store` opens the store (called only once the local checks passed).
 */
export async function checkMemo(path: string, request: string, dockerfilePath: string,
  signContext: () => Promise<{ text: string }>, store: () => Promise<Store>): Promise<{ memo: Memo } | { miss: string }> {
  let memo: Memo;
  try { memo = JSON.parse(readFileSync(path, 'utf8')) as Memo; } catch { return { miss: 'no memo of this request' }; }
  if (memo?.v !== MEMO_VERSION || memo.request !== request) return { miss: 'the memo is of another request or version' };
  if (!wellFormed(memo)) return { miss: 'the memo is damaged' };
  const df = statStamp(dockerfilePath);
  if (!df || df.stamp !== memo.dockerfile) return { miss: 'the Dockerfile changed' };
  if (memo.context !== null) {
    let sig;
    try { sig = await signContext(); } catch { return { miss: 'the context cannot be walked' }; }
    if (sig.text !== memo.context) return { miss: 'a context file changed (or was added or removed)' };
  }
  const s = await store();
  // Other builds tag images in a shared store all the time: only the names this build resolved count.
  if (memo.bases.length > 0 && (await s.refs.stamp()) !== memo.index) {
    for (const [name, digest] of memo.bases) {
      if ((await s.refs.get(name))?.digest !== digest) return { miss: `base image ${name} moved` };
    }
  }
  if (await s.cache.changedSince(memo.cache, new Set(memoKeys(memo)))) return { miss: 'a cache record of a step was replaced or removed' };
  for (const d of [memo.image.manifest.digest, memo.image.config, ...memo.image.layers]) {
    if (!(await s.blobs.has(d))) return { miss: `blob ${d} is no longer in the store` };
  }
  return { memo };
}

/** The fields checkMemo and its callers read, of the types they expect (a damaged file is a miss). */
function wellFormed(m: Memo): boolean {
  const str = (x: unknown) => typeof x === 'string';
  const strs = (x: unknown) => Array.isArray(x) && x.every(str);
  return str(m.dockerfile) && (m.context === null || str(m.context)) && str(m.index)
    && Array.isArray(m.bases) && m.bases.every((b) => Array.isArray(b) && b.length === 2 && str(b[0]) && str(b[1]))
    && str(m.cache) && strs(m.tags) && strs(m.warnings) && typeof m.image === 'object' && m.image !== null
    && typeof m.image.manifest === 'object' && m.image.manifest !== null && str(m.image.manifest.digest) && str(m.image.config) && strs(m.image.layers)
    && Array.isArray(m.steps) && m.steps.every((x) => typeof x === 'object' && x !== null && typeof x.id === 'number' && str(x.name) && (x.status === 'cached' ? str(x.key) : x.status === 'config'));
}

/** What a full build with every step cached reports to `progress`, in step order. */
export function replayMemo(memo: Memo, progress: ProgressSink): void {
  for (const w of memo.warnings) progress.warn(w);
  for (const s of memo.steps) {
    const ev = { id: s.id, stage: s.stage, name: s.name, kind: s.kind, line: s.line };
    progress.start(ev);
    if (s.status === 'cached') progress.cached(ev);
    else progress.done(ev, 0);
  }
}

/** The cache keys of the memo's keyed steps. */
export function memoKeys(memo: Memo): string[] {
  return memo.steps.flatMap((s) => (s.key !== undefined ? [s.key] : []));
}

/** The steps as StepReports (for --explain), every keyed one a hit. */
export function memoReports(memo: Memo): StepReport[] {
  return memo.steps.map((s) => ({ id: s.id, stage: s.stage, name: s.name, kind: s.kind, line: s.line, inputs: {}, key: s.key ?? '', status: s.status }));
}
