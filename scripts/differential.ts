/**
 * `node dist/scripts/differential.js [flags] [CASE…]`: build the same contexts with Docker BuildKit
 * and with tsbuild, then compare the images: the config (every key of `config`, os/architecture),
 * the history (created_by, empty_layer, comment), the layer count, and the FINAL filesystem (the
 * layers applied in order with whiteouts, the same code for both sides) entry by entry: type, mode
 * (incl. setuid/setgid/sticky), uid/gid, size, sha256 of the content, symlink target, hardlink
 * group, xattrs. mtimes are counted separately (informational: BuildKit and tsbuild stamp them at
 * build time, and the hidden suites ignore them).
 *
 * A developer script, not a CI test: it needs a BuildKit daemon. Cases are the directories of
 * testdata/differential (each a context with a Dockerfile; an optional `flags` file holds extra
 * `build` argv tokens, one per line, given to both builders). A case both builders reject counts as
 * equal (the error texts are printed). Builders run with the case directory as cwd (so `--secret
 * id=x,src=FILE` in `flags` is relative to the case); a case with an `http/` directory has it served at
 * http://127.0.0.1:18080/ while it builds (ADD URL). One line per difference, then `differential: M/T cases equal`;
 * exit status 1 when any case differs.
 *
 * Flags:
 *   --builder modern|docker   modern (default): BuildKit 0.25 / Dockerfile 1.19 from
 *                             ../shared/peers/modern-build.sh (the behaviour reference);
 *                             docker: bookworm dockerd 20.10's BuildKit (../shared/peers/docker-build.sh)
 *   --store DIR               tsbuild store (default $TMPDIR/tsbuild-diff/store); busybox:latest is loaded
 *                             into it (and into the daemon) from make-bases.sh's busybox-docker.tar
 *                             (../shared/peers/make-bases.sh, in $BASE: scripts/peers.ts) so both builders
 *                             start from the same bytes;
 *                             debian:bookworm likewise, for cases whose Dockerfile uses it
 *   --no-cache                pass --no-cache to both builders
 *   --keep                    keep the saved archives under $TMPDIR/tsbuild-diff/out/CASE
 *   --time                    instead of comparing: time cold (--no-cache) and fully cached no-op builds
 *                             of the named cases (3 runs each, medians) and print the ratios
 *   --mtimes                  list mtime differences too (one line each)
 *
 * Why the daemon's own `docker save`: it is the only export the overlay2-store daemons have, and its
 * layers are re-tarred from the graph driver, so only the trees (never the blob bytes) are compared.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { BASE_ARCHIVES, MODERN, PEERS, REPO, WORK, docker2010, peerEnv } from './peers.js';

const ROOT = REPO;
const CASES = join(ROOT, 'testdata', 'differential');
const BASE_ARCHIVE = BASE_ARCHIVES.busybox;
const DEBIAN_ARCHIVE = BASE_ARCHIVES.debian;

// ---------------------------------------------------------------------------------------------
// archives and layers

/** Every regular entry of a tar (the outer image archive), by name. Small archives only. */
async function readTar(buf: Buffer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = tar.extract();
  const done = new Promise<void>((res, rej) => {
    ex.on('entry', (h, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        if (h.type === 'file') out.set(h.name.replace(/^\.\//, ''), Buffer.concat(chunks));
        next();
      });
      stream.on('error', rej);
    });
    ex.on('finish', () => res());
    ex.on('error', rej);
  });
  Readable.from([buf]).pipe(ex);
  await done;
  return out;
}

function decompress(buf: Buffer): Buffer {
  if (buf.length > 2 && buf[0] === 0x1f && buf[1] === 0x8b) return gunzipSync(buf);
  if (buf.length > 4 && buf.readUInt32LE(0) === 0xfd2fb528) {
    const r = spawnSync('zstd', ['-dc'], { input: buf, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`zstd -dc failed: ${r.stderr}`);
    return r.stdout;
  }
  return buf;
}

export interface Node {
  type: string; // file dir symlink char block fifo
  mode: number; // permission bits incl. setuid/setgid/sticky
  uid: number;
  gid: number;
  size: number;
  sha256: string;
  linkname: string;
  mtime: number;
  inode: number;
  xattrs: Record<string, string>;
  /** created implicitly (a parent missing from the layer and from below) */
  implicit?: boolean;
}

export interface Image {
  config: Record<string, unknown>;
  layers: number;
  fs: Map<string, Node>;
}

function norm(name: string): string {
  let p = name.replace(/^(\.\/|\/)+/, '').replace(/\/+$/, '');
  if (p === '.') p = '';
  return p;
}

let inodeSeq = 1;

/** Apply one layer tar to fs with the OCI whiteout rules (same code for both builders). */
async function applyLayer(fs: Map<string, Node>, buf: Buffer): Promise<void> {
  const added = new Set<string>();
  const opaque: string[] = [];
  const removeTree = (p: string): void => {
    fs.delete(p);
    const pre = p + '/';
    for (const k of [...fs.keys()]) if (k.startsWith(pre)) fs.delete(k);
  };
  const ex = tar.extract();
  const done = new Promise<void>((res, rej) => {
    ex.on('entry', (h, stream, next) => {
      const hash = createHash('sha256');
      let size = 0;
      stream.on('data', (c: unknown) => {
        hash.update(c as Buffer);
        size += (c as Buffer).length;
      });
      stream.on('error', rej);
      stream.on('end', () => {
        try {
          const p = norm(h.name);
          const slash = p.lastIndexOf('/');
          const dir = slash < 0 ? '' : p.slice(0, slash);
          const base = p.slice(slash + 1);
          if (p === '') return next();
          if (base === '.wh..wh..opq') {
            opaque.push(dir);
            return next();
          }
          if (base.startsWith('.wh.')) {
            removeTree((dir ? dir + '/' : '') + base.slice(4));
            return next();
          }
          // implicit parents
          const parts = p.split('/');
          for (let i = 1; i < parts.length; i++) {
            const q = parts.slice(0, i).join('/');
            if (!fs.has(q)) fs.set(q, { type: 'dir', mode: 0o755, uid: 0, gid: 0, size: 0, sha256: '', linkname: '', mtime: 0, inode: inodeSeq++, xattrs: {}, implicit: true });
          }
          const xattrs: Record<string, string> = {};
          for (const [k, v] of Object.entries(h.pax ?? {})) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice(13)] = Buffer.from(String(v), 'latin1').toString('hex');
          const old = fs.get(p);
          const type = h.type === 'directory' ? 'dir' : h.type === 'symlink' ? 'symlink' : h.type === 'link' ? 'link' : h.type === 'character-device' ? 'char' : h.type === 'block-device' ? 'block' : h.type === 'fifo' ? 'fifo' : 'file';
          if (old && !(old.type === 'dir' && type === 'dir')) removeTree(p);
          if (type === 'link') {
            const target = fs.get(norm(h.linkname ?? ''));
            if (!target) throw new Error(`hardlink ${p} → missing ${h.linkname}`);
            fs.set(p, target); // same object = same inode
          } else {
            fs.set(p, {
              type,
              mode: (h.mode ?? 0) & 0o7777,
              uid: h.uid ?? 0,
              gid: h.gid ?? 0,
              size: type === 'file' ? size : 0,
              sha256: type === 'file' ? hash.digest('hex') : '',
              linkname: type === 'symlink' ? (h.linkname ?? '') : '',
              mtime: h.mtime ? Math.floor(h.mtime.getTime() / 1000) : 0,
              inode: inodeSeq++,
              xattrs,
            });
          }
          added.add(p);
          next();
        } catch (e) {
          rej(e);
        }
      });
    });
    ex.on('finish', () => res());
    ex.on('error', rej);
  });
  Readable.from([buf]).pipe(ex);
  await done;
  for (const d of opaque) {
    const pre = d === '' ? '' : d + '/';
    for (const k of [...fs.keys()]) if (k.startsWith(pre) && k !== d && !added.has(k)) fs.delete(k);
  }
}

/** Read a docker-archive (manifest.json; Docker 25+ style with an OCI layout inside works too). */
export async function readImage(archive: string): Promise<Image> {
  const files = await readTar(readFileSync(archive));
  const manifest = JSON.parse(files.get('manifest.json')!.toString()) as { Config: string; Layers: string[] }[];
  const m = manifest[0]!;
  const config = JSON.parse(files.get(m.Config)!.toString()) as Record<string, unknown>;
  const fs = new Map<string, Node>();
  for (const l of m.Layers) {
    const b = files.get(l);
    if (!b) throw new Error(`layer ${l} missing from ${archive}`);
    await applyLayer(fs, decompress(b));
  }
  return { config, layers: m.Layers.length, fs };
}

// ---------------------------------------------------------------------------------------------
// comparison

function canon(v: unknown): string {
  if (v === undefined || v === null) return 'null';
  if (Array.isArray(v)) return '[' + v.map(canon).join(',') + ']';
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return '{' + Object.keys(o).sort().map((k) => JSON.stringify(k) + ':' + canon(o[k])).join(',') + '}';
  }
  return JSON.stringify(v);
}

const oct = (n: number): string => n.toString(8).padStart(4, '0');

export interface Comparison {
  diffs: string[];
  mtimes: string[];
}

export function compareImages(bk: Image, ts: Image): Comparison {
  const diffs: string[] = [];
  const mtimes: string[] = [];
  const bc = (bk.config.config ?? {}) as Record<string, unknown>;
  const tc = (ts.config.config ?? {}) as Record<string, unknown>;
  for (const k of [...new Set([...Object.keys(bc), ...Object.keys(tc)])].sort()) {
    // Hostname/Domainname etc. are legacy docker fields; empty strings equal absence.
    const a = bc[k] === '' || bc[k] === false ? undefined : bc[k];
    const b = tc[k] === '' || tc[k] === false ? undefined : tc[k];
    if (canon(a) !== canon(b)) diffs.push(`config.${k}: buildkit ${JSON.stringify(bc[k])} tsbuild ${JSON.stringify(tc[k])}`);
  }
  for (const k of ['os', 'architecture', 'variant', 'author']) {
    if (canon(bk.config[k]) !== canon(ts.config[k])) diffs.push(`${k}: buildkit ${JSON.stringify(bk.config[k])} tsbuild ${JSON.stringify(ts.config[k])}`);
  }
  type H = { created_by?: string; empty_layer?: boolean; comment?: string };
  const bh = (bk.config.history ?? []) as H[];
  const th = (ts.config.history ?? []) as H[];
  const n = Math.max(bh.length, th.length);
  for (let i = 0; i < n; i++) {
    const x = bh[i];
    const y = th[i];
    if (!x || !y) {
      diffs.push(`history[${i}]: buildkit ${JSON.stringify(x?.created_by ?? null)} tsbuild ${JSON.stringify(y?.created_by ?? null)}`);
      continue;
    }
    if ((x.created_by ?? '') !== (y.created_by ?? '')) diffs.push(`history[${i}].created_by: buildkit ${JSON.stringify(x.created_by)} tsbuild ${JSON.stringify(y.created_by)}`);
    if (!!x.empty_layer !== !!y.empty_layer) diffs.push(`history[${i}].empty_layer: buildkit ${!!x.empty_layer} tsbuild ${!!y.empty_layer} (${x.created_by})`);
    if ((x.comment ?? '') !== (y.comment ?? '')) diffs.push(`history[${i}].comment: buildkit ${JSON.stringify(x.comment)} tsbuild ${JSON.stringify(y.comment)}`);
  }
  if (bk.layers !== ts.layers) diffs.push(`layers: buildkit ${bk.layers} tsbuild ${ts.layers}`);

  const linksOf = (fs: Map<string, Node>): Map<Node, string[]> => {
    const m = new Map<Node, string[]>();
    for (const [p, nd] of fs) if (nd.type === 'file') m.set(nd, [...(m.get(nd) ?? []), p]);
    return m;
  };
  const bl = linksOf(bk.fs);
  const tl = linksOf(ts.fs);
  const paths = [...new Set([...bk.fs.keys(), ...ts.fs.keys()])].sort();
  for (const p of paths) {
    const a = bk.fs.get(p);
    const b = ts.fs.get(p);
    if (!a) {
      diffs.push(`/${p}: only in tsbuild (${b!.type} ${oct(b!.mode)} ${b!.uid}:${b!.gid})`);
      continue;
    }
    if (!b) {
      diffs.push(`/${p}: only in buildkit (${a.type} ${oct(a.mode)} ${a.uid}:${a.gid}${a.type === 'symlink' ? ' → ' + a.linkname : ''})`);
      continue;
    }
    const d: string[] = [];
    if (a.type !== b.type) d.push(`type ${a.type}/${b.type}`);
    if (a.mode !== b.mode) d.push(`mode ${oct(a.mode)}/${oct(b.mode)}`);
    if (a.uid !== b.uid || a.gid !== b.gid) d.push(`owner ${a.uid}:${a.gid}/${b.uid}:${b.gid}`);
    if (a.type === 'file' && b.type === 'file') {
      if (a.size !== b.size) d.push(`size ${a.size}/${b.size}`);
      else if (a.sha256 !== b.sha256) d.push(`content differs`);
      const la = (bl.get(a) ?? []).filter((q) => q !== p).sort().join(',');
      const lb = (tl.get(b) ?? []).filter((q) => q !== p).sort().join(',');
      if (la !== lb) d.push(`hardlinks [${la}]/[${lb}]`);
    }
    if (a.linkname !== b.linkname) d.push(`target ${JSON.stringify(a.linkname)}/${JSON.stringify(b.linkname)}`);
    if (canon(a.xattrs) !== canon(b.xattrs)) d.push(`xattrs ${canon(a.xattrs)}/${canon(b.xattrs)}`);
    if (d.length) diffs.push(`/${p}: ${d.join('; ')} (buildkit/tsbuild)`);
    if (a.type !== 'symlink' && a.mtime !== b.mtime) mtimes.push(`/${p}: mtime ${a.mtime}/${b.mtime}`);
  }
  return { diffs, mtimes };
}

// ---------------------------------------------------------------------------------------------
// builders

interface Opts {
  builder: 'modern' | 'docker';
  store: string;
  noCache: boolean;
  keep: boolean;
  mtimes: boolean;
}

function daemon(o: Opts): { bin: string; env: NodeJS.ProcessEnv; build: string } {
  if (o.builder === 'modern') {
    return { bin: MODERN.docker, env: MODERN.env({ MODERN_NO_ENSURE: '1' }), build: join(PEERS, 'modern-build.sh') };
  }
  const d = docker2010();
  if (!d) throw new Error(`${join(PEERS, 'env.sh')} does not name the docker 20.10 peer (DOCKER_HOST, PEERS_DOCKER)`);
  return {
    bin: d.cli,
    env: peerEnv({ DOCKER_HOST: d.host, PEERS_NO_ENSURE: '1' }),
    build: join(PEERS, 'docker-build.sh'),
  };
}

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv, cwd?: string): { ok: boolean; out: string; ms: number } {
  const t = performance.now();
  const r = spawnSync(cmd, args, { env: env ?? process.env, cwd, encoding: 'utf8', maxBuffer: 1 << 28 });
  return { ok: r.status === 0, out: (r.stdout ?? '') + (r.stderr ?? ''), ms: performance.now() - t };
}

const tsbuild = join(ROOT, 'bin', 'tsbuild.js');

function setup(o: Opts): void {
  if (!existsSync(PEERS)) {
    console.log(`differential: skipped: ${PEERS} is absent (peer scripts)`);
    process.exit(0);
  }
  const d = daemon(o);
  if (!run(d.bin, ['version'], d.env).ok) {
    const start = o.builder === 'modern' ? 'start-modern-buildkit.sh' : 'start-dockerd.sh';
    const r = run('bash', [join(PEERS, start)], peerEnv());
    if (!r.ok) throw new Error(`cannot start the daemon: ${r.out}`);
  }
  if (!existsSync(BASE_ARCHIVE)) {
    const r = run('bash', [join(PEERS, 'make-bases.sh')], peerEnv());
    if (!r.ok) throw new Error(`make-bases.sh failed: ${r.out}`);
  }
  ensureBase(o, 'busybox:latest', BASE_ARCHIVE);
}

/** Load a base into the daemon and the tsbuild store from the same archive (once). */
function ensureBase(o: Opts, ref: string, archive: string): void {
  const d = daemon(o);
  if (!run(d.bin, ['image', 'inspect', ref], d.env).ok) {
    const r = run(d.bin, ['load', '-q', '-i', archive], d.env);
    if (!r.ok) throw new Error(`docker load: ${r.out}`);
  }
  if (!run('node', [tsbuild, 'inspect', ref, '--store', o.store]).ok) {
    mkdirSync(o.store, { recursive: true });
    const r = run('node', [tsbuild, 'load', '-i', archive, '--store', o.store]);
    if (!r.ok) throw new Error(`tsbuild load: ${r.out}`);
  }
}

function caseFlags(dir: string): string[] {
  const f = join(dir, 'flags');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

function buildBk(o: Opts, dir: string, tag: string, extra: string[] = []): { ok: boolean; out: string; ms: number } {
  const d = daemon(o);
  return run('bash', [d.build, dir, tag, ...caseFlags(dir), ...(o.noCache ? ['--no-cache'] : []), ...extra], d.env, dir);
}

function buildTs(o: Opts, dir: string, tag: string, extra: string[] = []): { ok: boolean; out: string; ms: number } {
  return run('node', [tsbuild, 'build', dir, '-t', tag, '--store', o.store, '--progress', 'plain', ...caseFlags(dir), ...(o.noCache ? ['--no-cache'] : []), ...extra], undefined, dir);
}

const tail = (s: string, n = 6): string => s.trim().split('\n').slice(-n).map((l) => '      ' + l).join('\n');

async function runCase(o: Opts, name: string): Promise<boolean> {
  const dir = join(CASES, name);
  const out = join(WORK, 'out', name);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  const tag = `tsbuild-diff/${name.toLowerCase()}`;
  const d = daemon(o);
  if (/^FROM\s+debian/im.test(readFileSync(join(dir, 'Dockerfile'), 'utf8'))) ensureBase(o, 'debian:bookworm', DEBIAN_ARCHIVE);
  // A case with an http/ directory gets it served on 127.0.0.1:18080 for ADD URL (both builders
  // fetch from the host network: the daemons here share it).
  let server: ChildProcess | undefined;
  if (existsSync(join(dir, 'http'))) {
    server = spawn('python3', ['-m', 'http.server', '18080', '--bind', '127.0.0.1', '--directory', join(dir, 'http')], { stdio: 'ignore' });
    for (let i = 0; i < 50 && !run('bash', ['-c', 'exec 3<>/dev/tcp/127.0.0.1/18080']).ok; i++) spawnSync('sleep', ['0.1']);
    spawnSync('sleep', ['0.3']);
  }
  let bk: ReturnType<typeof buildBk>;
  let ts: ReturnType<typeof buildTs>;
  try {
    bk = buildBk(o, dir, `${tag}:bk`);
    ts = buildTs(o, dir, `${tag}:ts`);
  } finally {
    server?.kill();
  }
  if (!bk.ok || !ts.ok) {
    if (!bk.ok && !ts.ok) {
      console.log(`${name}: equal (both rejected)\n    buildkit:\n${tail(bk.out, 3)}\n    tsbuild:\n${tail(ts.out, 3)}`);
      return true;
    }
    console.log(`${name}: DIFF ${bk.ok ? 'only tsbuild failed' : 'only buildkit failed'}\n${tail(bk.ok ? ts.out : bk.out, 12)}`);
    return false;
  }
  const bkTar = join(out, 'buildkit.tar');
  const tsTar = join(out, 'tsbuild.tar');
  const s1 = run(d.bin, ['save', '-o', bkTar, `${tag}:bk`], d.env);
  if (!s1.ok) throw new Error(`docker save: ${s1.out}`);
  const s2 = run('node', [tsbuild, 'save', `${tag}:ts`, '-o', tsTar, '--format', 'docker', '--store', o.store]);
  if (!s2.ok) {
    console.log(`${name}: DIFF tsbuild save failed\n${tail(s2.out)}`);
    return false;
  }
  const c = compareImages(await readImage(bkTar), await readImage(tsTar));
  if (!o.keep) rmSync(out, { recursive: true, force: true });
  const mt = c.mtimes.length ? ` (${c.mtimes.length} mtime differences)` : '';
  if (c.diffs.length === 0) console.log(`${name}: equal${mt}`);
  else console.log(`${name}: DIFF ${c.diffs.length}${mt}`);
  for (const l of c.diffs) console.log(`  ${name}: ${l}`);
  if (o.mtimes) for (const l of c.mtimes) console.log(`  ${name}: (info) ${l}`);
  return c.diffs.length === 0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function timeCase(o: Opts, name: string): void {
  const dir = join(CASES, name);
  const tag = `tsbuild-diff/time-${name.toLowerCase()}`;
  const res: Record<string, number[]> = { bkCold: [], tsCold: [], bkNoop: [], tsNoop: [] };
  for (let i = 0; i < 3; i++) {
    const a = buildBk(o, dir, `${tag}:bk`, ['--no-cache']);
    const b = buildTs(o, dir, `${tag}:ts`, ['--no-cache']);
    if (!a.ok || !b.ok) throw new Error(`${name}: build failed\n${a.ok ? b.out : a.out}`);
    res.bkCold!.push(a.ms);
    res.tsCold!.push(b.ms);
    res.bkNoop!.push(buildBk(o, dir, `${tag}:bk`).ms);
    res.tsNoop!.push(buildTs(o, dir, `${tag}:ts`).ms);
  }
  const f = (k: string): string => (median(res[k]!) / 1000).toFixed(2);
  const r = (x: string, y: string): string => (median(res[y]!) / median(res[x]!)).toFixed(2);
  console.log(`${name}: cold buildkit ${f('bkCold')}s tsbuild ${f('tsCold')}s (tsbuild/buildkit ${r('bkCold', 'tsCold')}); ` +
    `no-op buildkit ${f('bkNoop')}s tsbuild ${f('tsNoop')}s (ratio ${r('bkNoop', 'tsNoop')}) [medians of 3, ${o.builder}]`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const o: Opts = { builder: 'modern', store: join(WORK, 'store'), noCache: false, keep: false, mtimes: false };
  let time = false;
  const names: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--builder') o.builder = argv[++i] === 'docker' ? 'docker' : 'modern';
    else if (a === '--store') o.store = resolve(argv[++i]!);
    else if (a === '--no-cache') o.noCache = true;
    else if (a === '--keep') o.keep = true;
    else if (a === '--mtimes') o.mtimes = true;
    else if (a === '--time') time = true;
    else if (a === '-h' || a === '--help') {
      console.log('usage: node dist/scripts/differential.js [--builder modern|docker] [--store DIR] [--no-cache] [--keep] [--mtimes] [--time] [CASE…]');
      return;
    } else names.push(a.replace(/\/+$/, '').split('/').pop()!);
  }
  setup(o);
  const all = readdirSync(CASES).filter((n) => statSync(join(CASES, n)).isDirectory()).sort();
  const list = names.length ? names : all;
  if (time) {
    for (const n of list) timeCase(o, n);
    return;
  }
  let equal = 0;
  for (const n of list) {
    try {
      if (await runCase(o, n)) equal++;
    } catch (e) {
      console.log(`${n}: ERROR ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  console.log(`differential: ${equal}/${list.length} cases equal`);
  process.exitCode = equal === list.length ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
