// Builds the fast-load pack of the compiled CLI (see fastload.js for why and how it is used).
//
// Input: the ES modules tsc wrote to dist/, reachable from dist/src/cli/main.js through static
// imports, `export … from` and literal dynamic `import('./x.js')` (and the CommonJS files of the
// packages they import, statically or by a literal dynamic `import('pkg')`). Output: each module
// turned into a plain function body that a vm.Script can compile (with a V8 code cache), same lines
// as the original so stack traces keep their file:line:
//
//   (async function (__$exp, __$req, __$imp) {"use strict"; <export getters> <imports, hoisted>
//   <the module, its import/export statements blanked, `export ` keywords turned to spaces>
//   })
//
// ES module semantics kept: imports are evaluated first, in order, each module once; exports are
// getters (read when the importer binds them, after the exporter ran: no cycles allowed);
// `import()` of our modules evaluates lazily; `import.meta.url` is the real file's URL. Wrappers
// are async functions, so a module may use top-level await (its importers wait for it, as in ESM).
// Refused (the CLI then keeps loading the ES modules directly): import cycles,
// `export let/var` (live rebinding), import attributes, non-literal dynamic imports of relative
// paths, packages that `require` cannot load (ESM-only). Refusal is safe, never wrong.
//
// The scanner is a JS tokenizer just good enough for tsc output: strings, templates (nested
// `${}`), comments, regex literals (by the previous token), brace depth.
import { readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, posix, relative, resolve as resolvePath, sep } from 'node:path';
import { builtinModules, createRequire } from 'node:module';
import vm from 'node:vm';

export const PACK_VERSION = 1;

const KEYWORDS_BEFORE_REGEX = new Set(['return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await', 'extends']);

class Refuse extends Error {}

const isDigit = (k) => k >= 48 && k <= 57;
const idStart = (k) => (k >= 65 && k <= 90) || (k >= 97 && k <= 122) || k === 95 || k === 36 || k >= 0x80;
const idPart = (k) => idStart(k) || isDigit(k);

/** Tokens: {t: 'id'|'str'|'tpl'|'num'|'re'|'p', v, s, e} (s/e offsets; tpl = a template chunk). */
export function tokenize(src) {
  const toks = [];
  const stack = []; // '{', '(', '[', '${'
  let i = 0;
  const n = src.length;
  let prev = null; // previous significant token
  const push = (t, v, s, e, depth) => { const tok = { t, v, s, e, depth }; toks.push(tok); prev = tok; };
  const regexAllowed = () => {
    if (!prev) return true;
    if (prev.t === 'num' || prev.t === 'str' || prev.t === 're') return false;
    if (prev.t === 'tpl') return !prev.open; // a template ending is a value
    if (prev.t === 'id') return KEYWORDS_BEFORE_REGEX.has(prev.v);
    if (prev.v === ')' || prev.v === ']' || prev.v === '}') return false;
    return true;
  };
  // Scan a template from i (just after ` or after the } closing ${): returns when it ends or opens ${.
  const scanTemplate = (start) => {
    let j = i;
    for (;;) {
      if (j >= n) throw new Refuse('unterminated template');
      const c = src[j];
      if (c === '\\') { j += 2; continue; }
      if (c === '`') { i = j + 1; push('tpl', src.slice(start, i), start, i, stack.length); prev.open = false; return; }
      if (c === '$' && src[j + 1] === '{') { i = j + 2; push('tpl', src.slice(start, i), start, i, stack.length); prev.open = true; stack.push('${'); return; }
      j++;
    }
  };
  while (i < n) {
    const c = src[i];
    const cc = src.charCodeAt(i);
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || cc === 0xfeff || cc === 0xa0 || cc === 0x2028 || cc === 0x2029) { i++; continue; }
    if (c === '/' && src[i + 1] === '/') { const j = src.indexOf('\n', i); i = j < 0 ? n : j; continue; }
    if (c === '/' && src[i + 1] === '*') { const j = src.indexOf('*/', i + 2); if (j < 0) throw new Refuse('unterminated comment'); i = j + 2; continue; }
    if (c === '#' && src[i + 1] === '!' && i === 0) { const j = src.indexOf('\n'); i = j < 0 ? n : j; continue; }
    const s = i;
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < n && src[j] !== c) { if (src[j] === '\\') j++; else if (src[j] === '\n') throw new Refuse('newline in string'); j++; }
      if (j >= n) throw new Refuse('unterminated string');
      i = j + 1;
      push('str', src.slice(s, i), s, i, stack.length);
      continue;
    }
    if (c === '`') { i++; scanTemplate(s); continue; }
    if (idStart(cc) || c === '\\') {
      let j = i + 1;
      while (j < n && (idPart(src.charCodeAt(j)) || src[j] === '\\')) j++;
      i = j;
      push('id', src.slice(s, i), s, i, stack.length);
      continue;
    }
    if (c === '#') { // private name
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$]/.test(src[j])) j++;
      i = j;
      push('id', src.slice(s, i), s, i, stack.length);
      continue;
    }
    if ((cc >= 48 && cc <= 57) || (c === '.' && isDigit(src.charCodeAt(i + 1)))) {
      let j = i + 1;
      while (j < n && /[0-9A-Za-z_.]/.test(src[j])) {
        if ((src[j] === 'e' || src[j] === 'E') && (src[j + 1] === '+' || src[j + 1] === '-') && !/^0[xX]/.test(src.slice(s, j))) j++;
        j++;
      }
      i = j;
      push('num', src.slice(s, i), s, i, stack.length);
      continue;
    }
    if (c === '/' && regexAllowed()) {
      let j = i + 1;
      let inClass = false;
      for (;;) {
        if (j >= n || src[j] === '\n') throw new Refuse(`unterminated regex at ${s}`);
        const d = src[j];
        if (d === '\\') { j += 2; continue; }
        if (d === '[') inClass = true;
        else if (d === ']') inClass = false;
        else if (d === '/' && !inClass) break;
        j++;
      }
      j++;
      while (j < n && /[a-z]/.test(src[j])) j++;
      i = j;
      push('re', src.slice(s, i), s, i, stack.length);
      continue;
    }
    if (c === '{' || c === '(' || c === '[') { push('p', c, s, s + 1, stack.length); stack.push(c); i++; continue; }
    if (c === '}' || c === ')' || c === ']') {
      const top = stack.pop();
      if (top === undefined) throw new Refuse(`unbalanced ${c} at ${s}`);
      if (c === '}' && top === '${') { i++; scanTemplate(s); continue; }
      const want = c === '}' ? '{' : c === ')' ? '(' : '[';
      if (top !== want) throw new Refuse(`mismatched ${c} at ${s}`);
      i++;
      push('p', c, s, i, stack.length);
      continue;
    }
    // Punctuators: the few multi-char ones that matter (`?.`, `...`, `=>`); others one char at a time.
    if (c === '?' && src[i + 1] === '.' && !/[0-9]/.test(src[i + 2] ?? '')) { i += 2; push('p', '?.', s, i, stack.length); continue; }
    if (c === '.' && src[i + 1] === '.' && src[i + 2] === '.') { i += 3; push('p', '...', s, i, stack.length); continue; }
    if (c === '=' && src[i + 1] === '>') { i += 2; push('p', '=>', s, i, stack.length); continue; }
    // `a++ / b`, `a-- / b`: a postfix operator ends a value.
    if ((c === '+' || c === '-') && src[i + 1] === c && prev && (prev.t === 'id' || prev.v === ')' || prev.v === ']')) {
      i += 2; push('p', c + c, s, i, stack.length); prev.t = 'num'; continue;
    }
    i++;
    push('p', c, s, i, stack.length);
  }
  if (stack.length) throw new Refuse('unbalanced brackets at end of file');
  return toks;
}

function unquote(tok) {
  if (tok?.t !== 'str') throw new Refuse('expected a string');
  return JSON.parse(tok.v[0] === "'" ? '"' + tok.v.slice(1, -1).replace(/\\'/g, "'").replace(/"/g, '\\"') + '"' : tok.v);
}

/**
 * One module: its imports (in order), exports, dynamic import specifiers and the edits that turn
 * it into a function body. Throws Refuse for anything outside the supported subset.
 */
export function analyze(src) {
  const toks = tokenize(src);
  const edits = []; // {s, e, text}
  const imports = []; // {spec, kind: 'named'|'ns'|'default'|'side'|'star', names: [[imported, local]], local}
  const exports = []; // [exported, local]
  const dynamic = [];
  const letVars = new Set();
  const blank = (s, e) => edits.push({ s, e, text: src.slice(s, e).replace(/[^\n]/g, ' ') });
  let k = 0;
  const at = (j) => toks[j];
  const expectStrAfterFrom = (j) => {
    if (at(j)?.v !== 'from') throw new Refuse('expected from');
    const spec = unquote(at(j + 1));
    return { spec, next: j + 2 };
  };
  const endStatement = (j) => {
    // Import attributes (`with {…}`) are not supported.
    if (at(j)?.t === 'id' && (at(j).v === 'with' || at(j).v === 'assert') && at(j + 1)?.v === '{') throw new Refuse('import attributes');
    if (at(j)?.v === ';') return j + 1;
    return j; // ASI
  };
  for (k = 0; k < toks.length; k++) {
    const tok = toks[k];
    if (tok.t !== 'id') continue;
    const before = toks[k - 1];
    const afterDot = before && (before.v === '.' || before.v === '?.');
    if ((tok.v === 'let' || tok.v === 'var') && tok.depth === 0 && at(k + 1)?.t === 'id') letVars.add(at(k + 1).v);
    if (tok.v === 'import' && !afterDot) {
      const nx = at(k + 1);
      if (nx?.v === '(') {
        // A class/object method named import: `import(…) {`.
        let d = 0; let j = k + 1;
        for (; j < toks.length; j++) { if (toks[j].v === '(') d++; else if (toks[j].v === ')' && --d === 0) break; }
        if (at(j + 1)?.v === '{') continue;
        const arg = at(k + 2);
        if (arg?.t === 'str' && (at(k + 3)?.v === ')' || at(k + 3)?.v === ',')) dynamic.push(unquote(arg));
        else if (!(arg?.t === 'tpl' && !arg.open && !arg.v.includes('${'))) dynamic.push(null); // computed: checked by the caller
        edits.push({ s: tok.s, e: tok.e, text: '__$imp' });
        continue;
      }
      if (nx?.v === '.') {
        if (at(k + 2)?.v !== 'meta') throw new Refuse('import.' + at(k + 2)?.v);
        edits.push({ s: tok.s, e: tok.e, text: '__$imp' });
        continue;
      }
      if (tok.depth !== 0) continue; // `import` as a property name or in an object literal
      // Static import declaration.
      let j = k + 1;
      const s = tok.s;
      const imp = { spec: '', names: [], ns: undefined, def: undefined };
      if (at(j)?.t === 'str') {
        imp.spec = unquote(at(j)); j++;
      } else {
        if (at(j)?.t === 'id') {
          imp.def = at(j).v; j++;
          if (at(j)?.v === ',') j++;
        }
        if (at(j)?.v === '*') {
          if (at(j + 1)?.v !== 'as' || at(j + 2)?.t !== 'id') throw new Refuse('bad namespace import');
          imp.ns = at(j + 2).v; j += 3;
        } else if (at(j)?.v === '{') {
          j++;
          while (at(j)?.v !== '}') {
            let imported = at(j);
            if (imported?.t !== 'id' && imported?.t !== 'str') throw new Refuse('bad import specifier');
            let name = imported.t === 'str' ? unquote(imported) : imported.v;
            if (name === 'type' && at(j + 1)?.t === 'id' && at(j + 1).v !== 'as') { j++; continue; } // `type X` (tsc drops these)
            let local = name;
            j++;
            if (at(j)?.v === 'as') { local = at(j + 1).v; j += 2; }
            imp.names.push([name, local]);
            if (at(j)?.v === ',') j++;
          }
          j++;
        }
        const f = expectStrAfterFrom(j);
        imp.spec = f.spec; j = f.next;
      }
      j = endStatement(j);
      const e = j > k + 1 ? toks[j - 1].e : tok.e;
      blank(s, e);
      imports.push(imp);
      k = j - 1;
      continue;
    }
    if (tok.v === 'export' && tok.depth === 0 && !afterDot) {
      const nx = at(k + 1);
      if (nx?.v === '{' || nx?.v === '*') {
        let j = k + 1;
        const reexport = { spec: undefined, names: [], star: false, starAs: undefined };
        if (nx.v === '*') {
          j++;
          if (at(j)?.v === 'as') { reexport.starAs = at(j + 1).v; j += 2; } else reexport.star = true;
        } else {
          j++;
          while (at(j)?.v !== '}') {
            const a = at(j);
            if (a?.t !== 'id' && a?.t !== 'str') throw new Refuse('bad export specifier');
            const local = a.t === 'str' ? unquote(a) : a.v;
            if (local === 'type' && at(j + 1)?.t === 'id' && at(j + 1).v !== 'as') { j++; continue; }
            let exported = local;
            j++;
            if (at(j)?.v === 'as') { const b = at(j + 1); exported = b.t === 'str' ? unquote(b) : b.v; j += 2; }
            reexport.names.push([exported, local]);
            if (at(j)?.v === ',') j++;
          }
          j++;
        }
        if (at(j)?.v === 'from') {
          const f = expectStrAfterFrom(j);
          reexport.spec = f.spec; j = f.next;
        }
        j = endStatement(j);
        blank(tok.s, toks[j - 1].e);
        if (reexport.spec !== undefined) imports.push({ spec: reexport.spec, reexport });
        else {
          if (reexport.star || reexport.starAs) throw new Refuse('export * without from');
          for (const [ex, local] of reexport.names) exports.push([ex, local]);
        }
        k = j - 1;
        continue;
      }
      if (nx?.v === 'default') {
        const a = at(k + 2);
        const isFn = a?.v === 'function' || (a?.v === 'async' && at(k + 3)?.v === 'function');
        if (isFn || a?.v === 'class') {
          let j = k + 2 + (a.v === 'async' ? 2 : 1);
          if (at(j)?.v === '*') j++;
          if (at(j)?.t !== 'id') throw new Refuse('anonymous default export');
          blank(tok.s, nx.e);
          exports.push(['default', at(j).v]);
        } else {
          edits.push({ s: tok.s, e: nx.e, text: 'const __$dft =' });
          exports.push(['default', '__$dft']);
        }
        continue;
      }
      // export function|async function|function*|class|const|let|var NAME
      let j = k + 1;
      const kw = at(j)?.v;
      if (kw === 'let' || kw === 'var') throw new Refuse(`export ${kw}`);
      if (kw === 'async') j++;
      if (at(j)?.v === 'function' || at(j)?.v === 'class') {
        j++;
        if (at(j)?.v === '*') j++;
        if (at(j)?.t !== 'id') throw new Refuse('bad export declaration');
        exports.push([at(j).v, at(j).v]);
      } else if (kw === 'const') {
        j++;
        if (at(j)?.t !== 'id') throw new Refuse('destructuring export');
        exports.push([at(j).v, at(j).v]);
        // More declarators: a comma at statement level before the `;`.
        for (let m = j + 1; m < toks.length; m++) {
          const t = toks[m];
          if (t.depth !== 0) continue;
          if (t.v === ';') break;
          if (t.v === ',') {
            if (at(m + 1)?.t !== 'id' || at(m + 2)?.v !== '=') throw new Refuse('complex export const');
            exports.push([at(m + 1).v, at(m + 1).v]);
          }
        }
      } else throw new Refuse(`export ${kw}`);
      blank(tok.s, tok.e);
      continue;
    }
  }
  for (const [, local] of exports) if (letVars.has(local)) throw new Refuse(`export of let/var ${local}`);
  return { imports, exports, dynamic, edits };
}

function applyEdits(src, edits) {
  edits.sort((a, b) => a.s - b.s);
  let out = '';
  let at = 0;
  for (const e of edits) { out += src.slice(at, e.s) + e.text; at = e.e; }
  return out + src.slice(at);
}

const isRelative = (s) => s.startsWith('./') || s.startsWith('../');
const builtins = new Set(builtinModules);
const isBuiltin = (s) => s.startsWith('node:') || builtins.has(s);

/** Whether `require(spec)` from `fromFile` loads a CommonJS file (so default/named imports match). */
function requireable(spec, fromFile) {
  let file;
  try { file = createRequire(fromFile).resolve(spec); } catch { return false; }
  if (file.endsWith('.mjs')) return false;
  if (file.endsWith('.cjs')) return true;
  for (let d = dirname(file); ; d = dirname(d)) {
    const pj = join(d, 'package.json');
    if (existsSync(pj)) {
      try { return JSON.parse(readFileSync(pj, 'utf8')).type !== 'module'; } catch { return false; }
    }
    if (dirname(d) === d) return true;
  }
}

/**
 * Build the pack from dist/ (distRoot) starting at `entry` (posix path relative to distRoot).
 * Returns { manifest, code } or throws (Refuse or I/O) — callers treat any throw as "no pack".
 */
export function buildPack(distRoot, entry = 'src/cli/main.js') {
  const modules = {};
  const parts = [];
  let offset = 0;
  const queue = [entry];
  const seen = new Set(queue);
  const graph = new Map();
  // Stamps of every file read so far: a refusal is remembered only until one of them changes (a
  // file caught half-written by a concurrent tsc is refused once, then packed when it is whole).
  const stamps = {};
  const refuse = (msg) => Object.assign(new Refuse(msg), { stamps });
  // Packages imported by the modules: spec -> pack key of its CommonJS entry file (null: loaded by
  // require at run time, as before).
  const packages = {};
  // A package our modules import (statically, or by a literal dynamic import): its CommonJS files
  // go into the pack too when they can (see packCjs); one that resolves differently from two of
  // our modules is left to require.
  const pkgFrom = {};
  const addPackage = (spec, abs) => {
    let file;
    try { file = createRequire(abs).resolve(spec); } catch { file = undefined; }
    if (!(spec in packages)) {
      packages[spec] = file === undefined ? null : packCjs(file) ?? null;
      pkgFrom[spec] = file;
    } else if (file !== pkgFrom[spec]) packages[spec] = null;
  };
  const keyOf = (file) => relative(distRoot, file).split(sep).join('/');
  /**
   * A package's CommonJS file (and, recursively, the files it requires by literal name) into the
   * pack, compiled with the CommonJS wrapper like Node's own, so require() of it at run time skips
   * package resolution and compiles with a code cache. Returns its key, or undefined when the file
   * is left to Node's require: native addons, computed require() calls (a scan for `require(` not
   * followed by a string literal: text in comments or strings only makes it more cautious), JSON.
   * A literal require that the pack cannot satisfy falls back to Node's require from that file.
   */
  const cjsSeen = new Map();
  const packCjs = (file) => {
    if (!/\.c?js$/.test(file)) return undefined;
    const key = keyOf(file);
    if (cjsSeen.has(key)) return cjsSeen.get(key) ?? undefined;
    cjsSeen.set(key, key); // before the recursion: require cycles are fine in CommonJS
    const st = statSync(file);
    stamps[key] = [st.size, st.mtimeMs];
    let src = readFileSync(file, 'utf8');
    if (/\brequire\s*\(\s*[^'"\s)]/.test(src) || /process\.dlopen|\.node['"]/.test(src)) { cjsSeen.set(key, null); return undefined; }
    const map = {};
    for (const m of src.matchAll(/\brequire\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g)) {
      const spec = m[2];
      if (isBuiltin(spec) || spec in map) continue;
      let dep;
      try { dep = createRequire(file).resolve(spec); } catch { continue; }
      const k = packCjs(dep);
      if (k) map[spec] = k;
    }
    if (src.startsWith('#!')) src = '//' + src.slice(2);
    const code = `(function (exports, require, module, __filename, __dirname) {${src}\n})`;
    try { new vm.Script(code, { filename: file }); } catch { cjsSeen.set(key, null); delete stamps[key]; return undefined; }
    modules[key] = { size: st.size, mtimeMs: st.mtimeMs, offset, length: code.length, cjs: map };
    parts.push(code);
    offset += code.length;
    return key;
  };
  while (queue.length) {
    const rel = queue.shift();
    const abs = join(distRoot, ...rel.split('/'));
    const st = statSync(abs);
    stamps[rel] = [st.size, st.mtimeMs];
    const src = readFileSync(abs, 'utf8');
    let a;
    try { a = analyze(src); } catch (e) { if (e instanceof Refuse) throw refuse(`${rel}: ${e.message}`); throw e; }
    const resolveRel = (spec) => posix.normalize(posix.join(posix.dirname(rel), spec));
    const deps = [];
    const header = [];
    const getters = a.exports.map(([ex, local]) => `${JSON.stringify(ex)}:()=>${local}`);
    let v = 0;
    for (const imp of a.imports) {
      const spec = imp.spec;
      let key;
      if (isRelative(spec)) {
        key = resolveRel(spec);
        deps.push(key);
        if (!seen.has(key)) { seen.add(key); queue.push(key); }
      } else if (isBuiltin(spec)) key = spec;
      else {
        if (!requireable(spec, abs)) throw refuse(`${rel}: package ${spec} cannot be required`);
        key = spec;
        addPackage(spec, abs);
      }
      const kind = isRelative(spec) ? 0 : 1;
      const m = `__$m${v++}`;
      header.push(`const ${m}=await __$req(${JSON.stringify(key)},${kind});`);
      if (imp.reexport) {
        const r = imp.reexport;
        if (r.star) header.push(`__$req.star(__$exp,${m});`);
        else if (r.starAs) getters.push(`${JSON.stringify(r.starAs)}:()=>${m}`);
        else for (const [ex, local] of r.names) getters.push(`${JSON.stringify(ex)}:()=>${m}[${JSON.stringify(local)}]`);
        continue;
      }
      const binds = [];
      // A CommonJS package's default import is module.exports itself.
      if (imp.def !== undefined) header.push(`const ${imp.def}=${kind === 1 ? m : `${m}.default`};`);
      if (imp.ns !== undefined) header.push(`const ${imp.ns}=${m};`);
      for (const [name, local] of imp.names) {
        if (name === 'default') binds.push(`default:${local}`);
        else binds.push(name === local ? local : `${JSON.stringify(name)}:${local}`);
      }
      if (binds.length) header.push(`const {${binds.join(',')}}=${m};`);
    }
    for (const d of a.dynamic) {
      if (d === null) throw refuse(`${rel}: computed dynamic import`);
      if (isRelative(d)) {
        const key = resolveRel(d);
        if (!seen.has(key)) { seen.add(key); queue.push(key); }
      } else if (!isBuiltin(d) && requireable(d, abs)) addPackage(d, abs); // else left to import()
    }
    graph.set(rel, deps);
    const body = applyEdits(src, a.edits);
    const code = `(async function (__$exp, __$req, __$imp) {"use strict";__$req.exp(__$exp,{${getters.join(',')}});${header.join('')}\n${body}\n})`;
    // Syntax check now: a pack that does not compile is refused here, not at a user's run.
    new vm.Script(code, { filename: abs });
    modules[rel] = { size: st.size, mtimeMs: st.mtimeMs, offset, length: code.length };
    parts.push(code);
    offset += code.length;
  }
  // No cycles: exports are read once, when the importer binds them (see the top comment).
  const state = new Map();
  const visit = (n, path) => {
    state.set(n, 1);
    for (const d of graph.get(n) ?? []) {
      if (state.get(d) === 1) throw refuse(`import cycle ${[...path, n, d].join(' -> ')}`);
      if (!state.get(d)) visit(d, [...path, n]);
    }
    state.set(n, 2);
  };
  for (const n of graph.keys()) if (!state.get(n)) visit(n, []);
  for (const spec in packages) if (packages[spec] === null) delete packages[spec];
  const manifest = { version: PACK_VERSION, entry, node: process.version, modules, packages };
  return { manifest, code: parts.join('') };
}

export { Refuse };
export const distRootOf = (binDir) => resolvePath(binDir, '..', 'dist');
export const pathSep = sep;
