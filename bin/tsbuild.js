#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (`npm run build`, run by `npm ci` through `prepare`).
//
// Fast load (why): a no-op rebuild is mostly process start-up. Loading the CLI as ~60 ES modules
// costs ~100 ms on a 2-core machine (resolution, package.json lookups, compiling without a code
// cache). So the first run after a build packs the compiled modules into one file
// (dist/.fastload/pack.bin, made by fastload-build.js), and later runs compile each module they
// actually use from it as a vm.Script with a V8 code cache (cache.bin), lazily, keeping each
// module's file name and line numbers for stack traces. The pack is used only while every
// module's size and mtime still match dist/ (a rebuild makes it stale, and it is remade); a module
// graph the packer does not support is loaded as ES modules, as before. TSBUILD_FASTLOAD=0 turns
// it off. Writes are best effort (temp file + rename); a read-only install falls back to
// $XDG_CACHE_HOME/tsbuild (or ~/.cache/tsbuild), else to plain ES module loading.
import { readFileSync, statSync, writeFileSync, renameSync, mkdirSync, unlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';

const binDir = dirname(fileURLToPath(import.meta.url));
const distRoot = join(binDir, '..', 'dist');
const ENTRY = 'src/cli/main.js';

function packDirs() {
  if (process.env.TSBUILD_FASTLOAD_DIR) return [process.env.TSBUILD_FASTLOAD_DIR];
  const dirs = [join(distRoot, '.fastload')];
  const home = process.env.HOME;
  const base = process.env.XDG_CACHE_HOME || (home ? join(home, '.cache') : undefined);
  if (base) dirs.push(join(base, 'tsbuild', 'fastload', encodeURIComponent(distRoot)));
  return dirs;
}

/** Whether every recorded [size, mtimeMs] still matches its file in dist/. */
function fresh(stamps) {
  for (const rel in stamps) {
    const want = stamps[rel];
    let st;
    try { st = statSync(join(distRoot, rel)); } catch { return false; }
    if (st.size !== want[0] || st.mtimeMs !== want[1]) return false;
  }
  return true;
}

/** The pack: {dir, id, modules: {rel: [size, mtimeMs, byteOffset, byteLength]}, buf, codeAt} or a refusal. */
function readPack() {
  for (const dir of packDirs()) {
    let buf;
    try { buf = readFileSync(join(dir, 'pack.bin')); } catch { continue; }
    try {
      const n = buf.readUInt32LE(0);
      const head = JSON.parse(buf.toString('utf8', 4, 4 + n));
      if (head.version !== 1 || head.node !== process.version) continue;
      if (!fresh(head.modules)) continue;
      return { dir, id: head.id, modules: head.modules, refused: head.refused, buf, codeAt: 4 + n };
    } catch { continue; }
  }
  return undefined;
}

/** Code caches by module, and how many runs have refreshed them (see runPacked). */
function readCache(dir, id) {
  let buf;
  try { buf = readFileSync(join(dir, 'cache.bin')); } catch { return { m: new Map(), runs: 0 }; }
  try {
    const n = buf.readUInt32LE(0);
    const head = JSON.parse(buf.toString('utf8', 4, 4 + n));
    if (head.id !== id || head.v8 !== process.versions.v8) return { m: new Map(), runs: 0 };
    const m = new Map();
    for (const rel in head.entries) { const [o, l] = head.entries[rel]; m.set(rel, buf.subarray(4 + n + o, 4 + n + o + l)); }
    return { m, runs: head.runs ?? 0 };
  } catch { return { m: new Map(), runs: 0 }; }
}

// A code cache holds the functions compiled when it was made; V8 compiles the others lazily on
// every run. So the first few packed runs (e.g. a cold build, then a no-op one) re-make the caches
// of every module they used, which then cover both paths; after that only missing ones are made.
const REFRESH_RUNS = 3;

function writeAtomic(dir, name, parts) {
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `${name}.${process.pid}.${Date.now()}.tmp`);
  try {
    writeFileSync(tmp, Buffer.concat(parts));
    renameSync(tmp, join(dir, name));
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* gone */ }
    throw e;
  }
}

function withHeader(head, body = []) {
  const h = Buffer.from(JSON.stringify(head));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(h.length, 0);
  return [len, h, ...body];
}

/** Write to the first pack dir that takes it. */
function writeFirst(name, parts, preferred) {
  const dirs = preferred ? [preferred, ...packDirs().filter((d) => d !== preferred)] : packDirs();
  for (const dir of dirs) {
    try { writeAtomic(dir, name, parts); return dir; } catch { /* next */ }
  }
  return undefined;
}

// The packer's own stamp is part of every pack, so a changed packer remakes it.
const PACKER = '../bin/fastload-build.js';

function stamp(rel) {
  const st = statSync(join(distRoot, rel));
  return [st.size, st.mtimeMs];
}

/**
 * Made after a run that loaded the ES modules: the pack for the next runs (or a refusal record).
 * Several processes started right after a build would all pack at once: the first takes a lock
 * file (O_EXCL; ignored once older than a minute, e.g. left by a killed process) and the others
 * skip packing this time.
 */
async function makePack() {
  const lockDir = packDirs().find((d) => { try { mkdirSync(d, { recursive: true }); return true; } catch { return false; } });
  if (!lockDir) return;
  const lock = join(lockDir, 'pack.lock');
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' });
  } catch {
    try { if (Date.now() - statSync(lock).mtimeMs < 60_000) return; unlinkSync(lock); writeFileSync(lock, String(process.pid), { flag: 'wx' }); } catch { return; }
  }
  try {
    await packNow();
  } finally {
    try { unlinkSync(lock); } catch { /* gone */ }
  }
}

async function packNow() {
  const { buildPack, Refuse } = await import('./fastload-build.js');
  const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  let packed;
  try {
    packed = buildPack(distRoot, ENTRY);
  } catch (e) {
    if (!(e instanceof Refuse)) return;
    // Remember the refusal (until dist or the packer changes) so every run does not try again.
    writeFirst('pack.bin', withHeader({ version: 1, node: process.version, id, refused: e.message, modules: { ...(e.stamps ?? {}), [ENTRY]: stamp(ENTRY), [PACKER]: stamp(PACKER) } }));
    return;
  }
  const modules = { [PACKER]: [...stamp(PACKER), 0, 0] };
  const bodies = [];
  let off = 0;
  for (const [rel, m] of Object.entries(packed.manifest.modules)) {
    const b = Buffer.from(packed.code.slice(m.offset, m.offset + m.length), 'utf8');
    modules[rel] = [m.size, m.mtimeMs, off, b.length];
    bodies.push(b);
    off += b.length;
  }
  writeFirst('pack.bin', withHeader({ version: 1, node: process.version, id, modules }, bodies));
}

function runPacked(pack, loader = false) {
  const { m: cache, runs } = readCache(pack.dir, pack.id);
  const refresh = runs < REFRESH_RUNS;
  const loaded = new Map(); // rel -> Promise<namespace>
  const scripts = new Map(); // rel -> {script, stale}
  let nodeRequire;
  const star = (target, src) => {
    for (const k of Object.keys(src)) {
      if (k !== 'default' && !Object.prototype.hasOwnProperty.call(target, k)) Object.defineProperty(target, k, { enumerable: true, get: () => src[k] });
    }
  };
  const exp = (target, getters) => {
    for (const k in getters) Object.defineProperty(target, k, { enumerable: true, get: getters[k] });
  };
  const load = (rel) => {
    let p = loaded.get(rel);
    if (!p) { p = evaluate(rel); loaded.set(rel, p); }
    return p;
  };
  const evaluate = async (rel) => {
    const m = pack.modules[rel];
    if (!m) throw new Error(`tsbuild fast load: ${rel} is not in the pack`);
    const ns = Object.create(null);
    Object.defineProperty(ns, Symbol.toStringTag, { value: 'Module' });
    const abs = join(distRoot, rel);
    const src = pack.buf.toString('utf8', pack.codeAt + m[2], pack.codeAt + m[2] + m[3]);
    const cd = cache.get(rel);
    const url = pathToFileURL(abs).href;
    // Named by URL, as the ES module loader names them: stack traces read the same.
    const script = new vm.Script(src, { filename: url, lineOffset: -1, ...(cd ? { cachedData: cd } : {}) });
    scripts.set(rel, { script, stale: !cd || script.cachedDataRejected === true });
    const req = (key, kind) => {
      if (kind === 0) return load(key);
      nodeRequire ??= createRequire(join(distRoot, ENTRY));
      return nodeRequire(key);
    };
    req.exp = exp;
    req.star = star;
    const imp = (spec) => {
      if (typeof spec === 'string' && (spec.startsWith('./') || spec.startsWith('../'))) {
        const key = posix.normalize(posix.join(posix.dirname(rel), spec));
        if (pack.modules[key]) return load(key);
        return import(new URL(spec, url).href);
      }
      return import(spec);
    };
    imp.meta = { url, filename: abs, dirname: dirname(abs), resolve: (s) => new URL(s, url).href };
    await script.runInThisContext().call(undefined, ns, req, imp);
    return ns;
  };
  process.once('exit', () => {
    // Code caches for the modules this run compiled without one (or all it used, while refreshing).
    let changed = refresh;
    for (const s of scripts.values()) if (s.stale) { changed = true; break; }
    if (!changed) return;
    try {
      const entries = {};
      const bodies = [];
      let off = 0;
      const add = (rel, data) => { entries[rel] = [off, data.length]; bodies.push(data); off += data.length; };
      for (const [rel, s] of scripts) add(rel, s.stale || refresh ? s.script.createCachedData() : cache.get(rel));
      for (const [rel, data] of cache) if (!scripts.has(rel)) add(rel, data);
      writeFirst('cache.bin', withHeader({ id: pack.id, v8: process.versions.v8, runs: runs + 1, entries }, bodies), pack.dir);
    } catch { /* best effort */ }
  });
  return loader ? load : load(ENTRY);
}

/** Test hook (TSBUILD_FASTLOAD_CHECK=1): load every packed module, print its export names. */
async function checkPack(pack) {
  const out = {};
  const load = runPacked(pack, true);
  for (const rel of Object.keys(pack.modules)) if (!rel.startsWith('../')) out[rel] = Object.keys(await load(rel)).sort();
  process.stdout.write(JSON.stringify(out));
  return { main: async () => 0 };
}

async function start() {
  if (process.env.TSBUILD_FASTLOAD !== '0') {
    let pack;
    try { pack = readPack(); } catch { pack = undefined; }
    if (pack && !pack.refused) {
      if (process.env.TSBUILD_FASTLOAD_CHECK === '1') return checkPack(pack);
      return runPacked(pack);
    }
    if (!pack) {
      let ran = false;
      // After the command (its output is out), pack the modules for the next run.
      process.once('beforeExit', () => {
        if (ran) return;
        ran = true;
        makePack().catch(() => undefined);
      });
    }
  }
  return import('../dist/src/cli/main.js');
}

const { main } = await start();
main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error('tsbuild: internal error:', err); process.exitCode = 70; },
);
