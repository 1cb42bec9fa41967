/**
 * `tsbuild cache ls|du|prune|why`: the build cache index (store/cache.ts).
 *   ls     one row per record: key, size, created, last used, hits, instruction, source line
 *   du     records, layers, size; how much is shared with tagged images and how much is reclaimable
 *   prune  remove records (LRU first), then gc. Without --all, records whose layer is part of a
 *          tagged image are kept: removing them frees nothing and slows the next rebuild of that image.
 *          --filter until=DURATION: only records not used for that long. --keep-storage SIZE: stop
 *          once the cache-only layers fit in SIZE.
 *   why    explain a cache miss: src/cli/commands/cache-why.ts (the build engine's), dispatched here.
 * main dispatches like `debug`: `pick(SUB)` returns the subcommand's own Command, whose flags alone
 * are parsed. `why` is loaded only when asked for (it pulls in the build engine), so `cache ls`
 * loads the store and this file, nothing else.
 */
import { usageError } from '../args.js';
import type { FlagSpec } from '../args.js';
import { print, type Command } from '../command.js';
import type { CacheRecord, FsStore } from '../../../store/index.js';
import { RUNCACHE_UNUSED_MS } from '../../../store/derived.js';
import { FORMAT_FLAG, ago, humanDuration, humanSize, jsonLines, memo, openStoreFor, outputFormat, parseDuration, parseSize, table, tableRows } from './images.js';

const OWN: readonly FlagSpec[] = [
  FORMAT_FLAG,
  { name: 'no-trunc', type: 'bool', help: 'ls: do not truncate keys and instructions' },
  { name: 'all', short: 'a', type: 'bool', help: 'prune: also records whose layer is in a tagged image' },
  { name: 'keep-storage', type: 'string', value: 'SIZE', help: 'prune: keep this much cache-only layer storage (e.g. 10GB)' },
  { name: 'filter', type: 'list', value: 'until=DURATION', help: 'prune: only records unused for DURATION (e.g. until=24h)' },
  { name: 'force', short: 'f', type: 'bool', help: 'prune: do not ask (tsbuild never asks; accepted for docker compatibility)' },
];

function shortKey(key: string, noTrunc: boolean): string {
  if (noTrunc) return key;
  // The usual form, without a regex match per row: v1:sha256:<hex> → v1:<12 hex>.
  if (key.length >= 22 && key.startsWith('v1:sha256:')) return 'v1:' + key.substring(10, 22);
  const m = /^(v\d+):(?:sha256:)?([a-f0-9]{12})/.exec(key);
  return m ? `${m[1]}:${m[2]}` : key.slice(0, 20);
}

function source(r: CacheRecord): string {
  return r.source ? `${r.source.file}:${r.source.line}` : '';
}

/** Layer digests of every tagged image. */
async function imageLayers(store: FsStore): Promise<Set<string>> {
  const out = new Set<string>();
  for (const r of await store.refs.list()) {
    try {
      const doc = await store.blobs.readJSON<{ layers?: { digest: string }[]; manifests?: { digest: string }[] }>(r.descriptor.digest);
      const manifests = doc.manifests ? doc.manifests.map((m) => m.digest) : [r.descriptor.digest];
      for (const md of manifests) {
        if (!(await store.blobs.has(md))) continue;
        const m = await store.blobs.readJSON<{ layers?: { digest: string }[] }>(md);
        for (const l of m.layers ?? []) out.add(l.digest);
      }
    } catch { /* verify reports broken images */ }
  }
  return out;
}

const ls: Command = {
  name: 'cache ls', summary: 'list build cache records', usage: 'tsbuild cache ls [--format table|json] [--no-trunc]', flags: OWN,
  async run(args, ctx) {
    const format = outputFormat(args);
    const store = await openStoreFor(args, ctx);
    if (format === 'json') {
      const recs = (await store.cache.list()).sort((a, b) => (a.lastUsed < b.lastUsed ? 1 : a.lastUsed > b.lastUsed ? -1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      print(ctx, jsonLines(recs.map((r) => ({
        Key: r.key, Parent: r.parent ?? '', Layer: r.layer?.digest ?? '', Size: r.layer?.size ?? 0, Config: r.config ?? '',
        CreatedAt: r.created, LastUsedAt: r.lastUsed, Hits: r.hits, Instruction: r.instruction, Source: source(r), Inputs: r.inputs,
      }))));
      return 0;
    }
    const noTrunc = args.bool('no-trunc');
    const now = Date.now();
    // summaryColumns(): the listing fields only, in columns, already most recently used first
    // (then by key), without parsing each record's JSON or making an object per record (store/cache.ts).
    const c = await store.cache.summaryColumns();
    const rows = c.key.length;
    const agoOf = memo((d: number | string) => (typeof d === 'number' ? `${humanDuration(Math.max(0, now - d))} ago` : ago(d, now)));
    const sizeOf = memo((n: number) => humanSize(n));
    const hitsOf = memo((n: number) => String(n));
    const instr = (s: string): string => {
      if (/\s\s|[^\S ]/.test(s)) s = s.replace(/\s+/g, ' ');
      return !noTrunc && s.length > 50 ? s.slice(0, 49) + '…' : s;
    };
    // instr(s).length without making the string (the table's width pass).
    const instrLen = (s: string): number => {
      const l = /\s\s|[^\S ]/.test(s) ? s.replace(/\s+/g, ' ').length : s.length;
      return !noTrunc && l > 50 ? 50 : l;
    };
    const keyLen = (key: string): number => (!noTrunc && key.length >= 22 && key.startsWith('v1:sha256:') ? 15 : shortKey(key, noTrunc).length);
    // Cells are made on demand (twice: widths, then text) and not kept: see tableRows.
    const cell = (row: number, col: number): string => {
      switch (col) {
        case 0: return shortKey(c.key[row]!, noTrunc);
        case 1: return sizeOf(c.size[row]!);
        case 2: return agoOf(c.created[row]!);
        case 3: return agoOf(c.lastUsed[row]!);
        case 4: return hitsOf(c.hits[row]!);
        case 5: return instr(c.instruction[row]!);
        default: return c.source[row]!;
      }
    };
    const width = (row: number, col: number): number => (col === 0 ? keyLen(c.key[row]!) : col === 5 ? instrLen(c.instruction[row]!) : cell(row, col).length);
    print(ctx, tableRows(['KEY', 'SIZE', 'CREATED', 'LAST USED', 'HITS', 'INSTRUCTION', 'SOURCE'], rows, cell, width));
    return 0;
  },
};

const du: Command = {
  name: 'cache du', summary: 'show build cache disk usage', usage: 'tsbuild cache du [--format table|json]', flags: OWN,
  async run(args, ctx) {
    const format = outputFormat(args);
    const store = await openStoreFor(args, ctx);
    const recs = await store.cache.list();
    const inImages = await imageLayers(store);
    const layers = new Map<string, number>();
    for (const r of recs) if (r.layer) layers.set(r.layer.digest, r.layer.size);
    let size = 0; let shared = 0;
    for (const [d, n] of layers) { size += n; if (inImages.has(d)) shared += n; }
    const row = { Records: recs.length, Layers: layers.size, Size: size, Shared: shared, Reclaimable: size - shared, IndexBytes: await store.cache.fileSize() };
    if (format === 'json') { ctx.stdout.write(JSON.stringify(row) + '\n'); return 0; }
    ctx.stdout.write(table(['RECORDS', 'LAYERS', 'SIZE', 'SHARED WITH IMAGES', 'RECLAIMABLE', 'INDEX'], [[
      String(row.Records), String(row.Layers), humanSize(size), humanSize(shared), humanSize(size - shared), humanSize(row.IndexBytes),
    ]]));
    return 0;
  },
};

const prune: Command = {
  name: 'cache prune', summary: 'remove build cache records and free their layers',
  usage: 'tsbuild cache prune [--all] [--keep-storage SIZE] [--filter until=DURATION]', flags: OWN,
  async run(args, ctx) {
    const format = outputFormat(args);
    let until: number | undefined;
    for (const f of args.list('filter')) {
      const m = /^(until|unused-for)=(.+)$/.exec(f);
      if (!m) throw usageError(`unknown filter "${f}"`, 'the filter is until=DURATION, e.g. --filter until=24h.');
      until = parseDuration(m[2]!);
    }
    const keep = args.str('keep-storage') !== undefined ? parseSize(args.str('keep-storage')!) : undefined;
    const store = await openStoreFor(args, ctx);
    const now = Date.now();
    const recs = await store.cache.list();
    const inImages = args.bool('all') ? new Set<string>() : await imageLayers(store);
    // References per cache-only layer: a layer frees space only when its last record goes.
    const refsTo = new Map<string, number>();
    for (const r of recs) if (r.layer && !inImages.has(r.layer.digest)) refsTo.set(r.layer.digest, (refsTo.get(r.layer.digest) ?? 0) + 1);
    const sizes = new Map(recs.filter((r) => r.layer).map((r) => [r.layer!.digest, r.layer!.size] as const));
    let storage = [...refsTo.keys()].reduce((a, d) => a + (sizes.get(d) ?? 0), 0);
    const candidates = recs
      .filter((r) => args.bool('all') || !r.layer || !inImages.has(r.layer.digest))
      .filter((r) => until === undefined || now - Date.parse(r.lastUsed) >= until)
      .sort((a, b) => a.lastUsed.localeCompare(b.lastUsed));
    const drop: string[] = [];
    for (const r of candidates) {
      if (keep !== undefined && storage <= keep) break;
      drop.push(r.key);
      if (r.layer && refsTo.has(r.layer.digest)) {
        const n = refsTo.get(r.layer.digest)! - 1;
        refsTo.set(r.layer.digest, n);
        if (n === 0) storage -= sizes.get(r.layer.digest) ?? 0;
      }
    }
    const removed = await store.cache.delete(drop);
    // Run caches (RUN --mount=type=cache): like docker builder prune's cache mounts: --all takes
    // every one, otherwise those unused for 48 h (BuildKit's default policy); --filter until=D
    // narrows both to those unused for D. Never one a running build may hold (store/derived.ts).
    const gc = await store.gc({ runCaches: { unusedForMs: until ?? (args.bool('all') ? 0 : RUNCACHE_UNUSED_MS) } });
    const runs = gc.areas?.runcache.removed ?? 0;
    if (format === 'json') {
      ctx.stdout.write(JSON.stringify({
        DeletedRecords: removed, Keys: drop, ReclaimedBytes: gc.freedBytes, RemovedBlobs: gc.removedBlobs,
        RemovedSnapshots: gc.removedSnapshots, RemovedRunCaches: runs, RunCachesInUse: gc.runCachesBusy === true,
      }) + '\n');
      return 0;
    }
    ctx.stdout.write(`Deleted ${removed} cache record${removed === 1 ? '' : 's'}${runs ? ` and ${runs} RUN cache mount${runs === 1 ? '' : 's'}` : ''}\nTotal reclaimed space: ${humanSize(gc.freedBytes)}\n`);
    if (gc.runCachesBusy) ctx.stderr.write('some RUN cache mounts were kept: a build is running (run "tsbuild cache prune" again when it is done).\n');
    return 0;
  },
};

const why = (): Promise<Command> => import('./cache-why.js').then((m) => m.command);
const SUBS: Record<string, () => Promise<Command>> = { ls: async () => ls, du: async () => du, prune: async () => prune, why };

/** For main: the subcommand's own Command (so its flags alone are parsed); `why` is loaded on demand. */
export async function pick(sub: string | undefined): Promise<Command> {
  const c = sub !== undefined && Object.hasOwn(SUBS, sub) ? SUBS[sub] : undefined;
  if (!c) throw usageError(sub ? `unknown cache subcommand "${sub}"` : 'cache needs a subcommand', 'write tsbuild cache ls|du|prune|why.');
  return c();
}

export const command: Command = {
  name: 'cache',
  summary: 'list, size, prune and explain the build cache (ls, du, prune, why)',
  usage: 'tsbuild cache ls|du|prune|why [flags]   (tsbuild cache SUB --help for its flags)',
  flags: OWN,
  details: 'Subcommands: ls (list records), du (disk usage), prune (remove records, then gc), why (explain a cache miss).',
  // main dispatches through pick(); this only runs when called directly with the subcommand as
  // the first positional argument and flags already parsed (with OWN: why's flags are its own).
  async run(args, ctx) {
    const [sub, ...rest] = args.positional;
    const c = await pick(sub);
    return c.run({ ...args, positional: rest, str: args.str, bool: args.bool, list: args.list }, ctx);
  },
};
