'use strict';
// The CLI's loader (CommonJS: a CommonJS entry starts ~7 ms sooner than an ES module one, which
// sets up the ES module loader first). Run by bin/tsbuild.js, either as its shell launcher
// (`tsbuild …`: `node -e` requires this file) or from its ES module half (`node bin/tsbuild.js …`).
// The compiled CLI lives in dist/ (`npm run build`, run by `npm ci` through `prepare`).
//
// Fast load (why): a no-op rebuild is mostly process start-up. Loading the CLI as ~60 ES modules
// costs ~100 ms on a 2-core machine (resolution, package.json lookups, compiling without a code
// cache). So the first run after a build packs the compiled modules into one file
// (dist/.fastload/pack.bin, made by fastload-build.js), and later runs compile each module they
// actually use from it as a vm.Script with a V8 code cache (cache.bin), lazily, keeping each
// module's file name and line numbers for stack traces. The pack is used only while every
// module's size and mtime still match dist/ (a rebuild makes it stale, and it is remade); a module
// graph the packer does not support is loaded as ES modules, as before. TSBUILD_FASTLOAD=0 turns
// it off; TSBUILD_FASTLOAD_TRACE=1 prints, at exit, when each module was loaded (and how long each
// require of a builtin or unpacked package took): where a command's start-up goes. Writes are best effort (temp file + rename); a read-only install falls back to
// $XDG_CACHE_HOME/tsbuild (or ~/.cache/tsbuild), else to plain ES module loading.
//
// Reads are positioned (pread) and only of what a run uses: the pack's header, then each module's
// body and code cache when it is first imported. On a machine where touching fresh memory is slow
// (a VM: ~5 ms per MB here), reading the whole 1 MB pack and 0.5 MB cache cost ~8 ms a run.
const { openSync, readSync, closeSync, statSync, writeFileSync, renameSync, mkdirSync, unlinkSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join, posix } = require('node:path');
const { pathToFileURL } = require('node:url');
const vm = require('node:vm');

// The shell launcher (bin/tsbuild.js run as a command) moves NODE_EXTRA_CA_CERTS aside so that
// Node does not parse that bundle at start-up (~40 ms) for commands that never open a TLS
// connection; put it back, so the CLI and its child processes see the user's environment as it
// was. The registry client adds the file to its own CA list (src/oci/http.ts trustedCAs).
if (process.env.TSBUILD_DEFERRED_CA_CERTS !== undefined) {
  process.env.NODE_EXTRA_CA_CERTS = process.env.TSBUILD_DEFERRED_CA_CERTS;
  delete process.env.TSBUILD_DEFERRED_CA_CERTS;
}

const distRoot = join(__dirname, '..', 'dist');
const ENTRY = 'src/cli/main.js';
const PACK_VERSION = 2;

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
    const st = statSync(join(distRoot, rel), { throwIfNoEntry: false });
    if (st === undefined || st.size !== want[0] || st.mtimeMs !== want[1]) return false;
  }
  return true;
}

/** bytes [pos, pos + len) of fd. */
function pread(fd, pos, len) {
  const b = Buffer.allocUnsafe(len);
  let got = 0;
  while (got < len) {
    const n = readSync(fd, b, got, len - got, pos + got);
    if (n === 0) throw new Error('tsbuild fast load: file is shorter than its header says');
    got += n;
  }
  return b;
}

/** A file written by withHeader(): {fd, head, bodyAt}, reading only the header. */
function openHeaded(file) {
  const fd = openSync(file, 'r');
  try {
    const first = Buffer.allocUnsafe(16384);
    const got = readSync(fd, first, 0, first.length, 0);
    if (got < 4) throw new Error('short');
    const n = first.readUInt32LE(0);
    const raw = 4 + n <= got ? first.subarray(4, 4 + n) : pread(fd, 4, n);
    return { fd, head: JSON.parse(raw.toString('utf8')), bodyAt: 4 + n };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * The pack: {dir, id, modules, packages, fd, codeAt} or a refusal. modules: {rel: [size, mtimeMs,
 * byteOffset, byteLength, ascii, cjs]} where cjs is 0 for our ES modules and, for a package's
 * CommonJS file, {spec: rel} of the files it requires that are packed too; packages: {spec: rel}
 * of the packages our modules import.
 */
function readPack() {
  for (const dir of packDirs()) {
    let f;
    try { f = openHeaded(join(dir, 'pack.bin')); } catch { continue; }
    const head = f.head;
    if (head.version !== PACK_VERSION || head.node !== process.version || !fresh(head.modules)) { closeSync(f.fd); continue; }
    return { dir, id: head.id, modules: head.modules, packages: head.packages ?? {}, refused: head.refused, fd: f.fd, codeAt: f.bodyAt };
  }
  return undefined;
}

/** Code caches by module (read on demand), and how many runs have refreshed them (see runPacked). */
function readCache(dir, id) {
  const none = { get: () => undefined, keys: () => [], runs: 0 };
  let f;
  try { f = openHeaded(join(dir, 'cache.bin')); } catch { return none; }
  const { head, fd, bodyAt } = f;
  if (head.id !== id || head.v8 !== process.versions.v8 || typeof head.entries !== 'object') { closeSync(fd); return none; }
  return {
    get(rel) {
      const e = head.entries[rel];
      if (!e) return undefined;
      try { return pread(fd, bodyAt + e[0], e[1]); } catch { return undefined; }
    },
    keys: () => Object.keys(head.entries),
    runs: head.runs ?? 0,
  };
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

// The packer's and this loader's own stamps are part of every pack, so a changed one remakes it.
const PACKER = '../bin/fastload-build.js';
const LOADER = '../bin/tsbuild.cjs';

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
  const { buildPack, Refuse } = await import(pathToFileURL(join(__dirname, 'fastload-build.js')).href);
  const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  let packed;
  try {
    packed = buildPack(distRoot, ENTRY);
  } catch (e) {
    if (!(e instanceof Refuse)) return;
    // Remember the refusal (until dist or the packer changes) so every run does not try again.
    writeFirst('pack.bin', withHeader({ version: PACK_VERSION, node: process.version, id, refused: e.message, modules: { ...(e.stamps ?? {}), [ENTRY]: stamp(ENTRY), [PACKER]: stamp(PACKER), [LOADER]: stamp(LOADER) } }));
    return;
  }
  const modules = { [PACKER]: [...stamp(PACKER), 0, 0, 1], [LOADER]: [...stamp(LOADER), 0, 0, 1] };
  const bodies = [];
  let off = 0;
  for (const [rel, m] of Object.entries(packed.manifest.modules)) {
    const text = packed.code.slice(m.offset, m.offset + m.length);
    const b = Buffer.from(text, 'utf8');
    // ASCII bodies (most: tsc keeps non-ASCII only in a few strings) decode as latin1, a plain copy.
    modules[rel] = [m.size, m.mtimeMs, off, b.length, b.length === text.length ? 1 : 0, m.cjs ?? 0];
    bodies.push(b);
    off += b.length;
  }
  writeFirst('pack.bin', withHeader({ version: PACK_VERSION, node: process.version, id, modules, packages: packed.manifest.packages ?? {} }, bodies));
}

const trace = process.env.TSBUILD_FASTLOAD_TRACE === '1' ? [['(loader start)', performance.now()]] : undefined;

function runPacked(pack, loader = false) {
  const cache = readCache(pack.dir, pack.id);
  const refresh = cache.runs < REFRESH_RUNS;
  const loaded = new Map(); // rel -> Promise<namespace>
  const scripts = new Map(); // rel -> {script, stale, cd}
  let nodeRequire;
  const star = (target, src) => {
    for (const k of Object.keys(src)) {
      if (k !== 'default' && !Object.prototype.hasOwnProperty.call(target, k)) Object.defineProperty(target, k, { enumerable: true, get: () => src[k] });
    }
  };
  const exp = (target, getters) => {
    for (const k in getters) Object.defineProperty(target, k, { enumerable: true, get: getters[k] });
  };
  // A package's CommonJS file from the pack: Node's CommonJS semantics (module cached before it
  // runs, so require cycles see partial exports; `this` is module.exports), named by its path.
  const cjsModules = new Map(); // rel -> module
  const requireCjs = (rel) => {
    const had = cjsModules.get(rel);
    if (had) return had.exports;
    if (trace) trace.push([rel, performance.now()]);
    const m = pack.modules[rel];
    const abs = join(distRoot, rel);
    let real;
    const realRequire = () => (real ??= createRequire(abs));
    const map = m[5] || {};
    const require = (spec) => (map[spec] !== undefined && pack.modules[map[spec]] ? requireCjs(map[spec]) : realRequire()(spec));
    require.resolve = (spec, o) => realRequire().resolve(spec, o);
    Object.defineProperty(require, 'cache', { get: () => realRequire().cache });
    const module = { id: abs, filename: abs, path: dirname(abs), exports: {}, loaded: false, children: [], paths: [], require };
    cjsModules.set(rel, module);
    const fn = compile(rel, m, abs).runInThisContext();
    fn.call(module.exports, module.exports, require, module, abs, dirname(abs));
    module.loaded = true;
    return module.exports;
  };
  const compile = (rel, m, filename) => {
    const body = pread(pack.fd, pack.codeAt + m[2], m[3]);
    const src = m[4] === 1 ? body.toString('latin1') : body.toString('utf8');
    const cd = cache.get(rel);
    const script = new vm.Script(src, { filename, ...(m[5] ? {} : { lineOffset: -1 }), ...(cd ? { cachedData: cd } : {}) });
    scripts.set(rel, { script, stale: !cd || script.cachedDataRejected === true, cd });
    if (trace) trace.push([`  compiled ${src.length} chars, cache ${cd ? (script.cachedDataRejected ? 'rejected' : 'used') : 'none'}`, performance.now()]);
    return script;
  };
  const load = (rel) => {
    let p = loaded.get(rel);
    if (!p) { p = evaluate(rel); loaded.set(rel, p); }
    return p;
  };
  const evaluate = async (rel) => {
    if (trace) trace.push([rel, performance.now()]);
    const m = pack.modules[rel];
    if (!m) throw new Error(`tsbuild fast load: ${rel} is not in the pack`);
    const ns = Object.create(null);
    Object.defineProperty(ns, Symbol.toStringTag, { value: 'Module' });
    const abs = join(distRoot, rel);
    const url = pathToFileURL(abs).href;
    // Named by URL, as the ES module loader names them: stack traces read the same.
    const script = compile(rel, m, url);
    const req = (key, kind) => {
      if (kind === 0) return load(key);
      const cjs = pack.packages[key];
      if (cjs !== undefined && pack.modules[cjs]) return requireCjs(cjs);
      nodeRequire ??= createRequire(join(distRoot, ENTRY));
      if (trace) { const t = performance.now(); const r = nodeRequire(key); trace.push([`  require ${key} ${(performance.now() - t).toFixed(2)} ms`, t]); return r; }
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
      // A packed package's CommonJS entry, as import() of it gives it: its exports as names, and
      // the whole exports object as default (not Node's ES module loader: ~5 ms to start).
      const cjs = typeof spec === 'string' ? pack.packages[spec] : undefined;
      if (cjs !== undefined && pack.modules[cjs]) {
        return Promise.resolve().then(() => {
          const ex = requireCjs(cjs);
          const ns = Object.create(null);
          if (ex !== null && (typeof ex === 'object' || typeof ex === 'function')) for (const k of Object.keys(ex)) ns[k] = ex[k];
          ns.default = ex;
          return ns;
        });
      }
      return import(spec);
    };
    imp.meta = { url, filename: abs, dirname: dirname(abs), resolve: (s) => new URL(s, url).href };
    await script.runInThisContext().call(undefined, ns, req, imp);
    return ns;
  };
  process.once('exit', () => {
    if (trace) process.stderr.write(trace.map(([r, t]) => `${t.toFixed(1)} ${r}\n`).join('') + `${performance.now().toFixed(1)} exit\n`);
    // Code caches for the modules this run compiled without one (or all it used, while refreshing).
    let changed = refresh;
    for (const s of scripts.values()) if (s.stale) { changed = true; break; }
    if (!changed) return;
    try {
      const entries = {};
      const bodies = [];
      let off = 0;
      const add = (rel, data) => { entries[rel] = [off, data.length]; bodies.push(data); off += data.length; };
      for (const [rel, s] of scripts) add(rel, s.stale || refresh ? s.script.createCachedData() : s.cd);
      for (const rel of cache.keys()) {
        if (scripts.has(rel)) continue;
        const data = cache.get(rel);
        if (data) add(rel, data);
      }
      writeFirst('cache.bin', withHeader({ id: pack.id, v8: process.versions.v8, runs: cache.runs + 1, entries }, bodies), pack.dir);
    } catch { /* best effort */ }
  });
  return loader ? { load, requireCjs } : load(ENTRY);
}

/** Test hook (TSBUILD_FASTLOAD_CHECK=1): load every packed module and package, print its export names. */
async function checkPack(pack) {
  const out = {};
  const { load, requireCjs } = runPacked(pack, true);
  for (const rel of Object.keys(pack.modules)) if (!rel.startsWith('../')) out[rel] = Object.keys(await load(rel)).sort();
  for (const spec of Object.keys(pack.packages)) out[`package:${spec}`] = Object.keys(requireCjs(pack.packages[spec])).sort();
  process.stdout.write(JSON.stringify(out));
  return { main: async () => 0 };
}

async function start() {
  if (process.env.TSBUILD_FASTLOAD !== '0') {
    let pack;
    try { pack = readPack(); } catch { pack = undefined; }
    if (trace) trace.push(['(pack read)', performance.now()]);
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
  return import(pathToFileURL(join(distRoot, ENTRY)).href);
}

start().then(({ main }) => main(process.argv.slice(2))).then(
  (code) => { if (trace) trace.push(['(main returned)', performance.now()]); process.exitCode = code; },
  (err) => { console.error('tsbuild: internal error:', err); process.exitCode = 70; },
);
