/**
 * Per-stage build state: an image config being edited instruction by instruction, plus what the
 * Dockerfile tracks beside it (ARGs in scope, whether CMD was set in this stage). Config-only
 * instructions are applied here, pure and deterministic, exactly as BuildKit's dockerfile2llb
 * dispatcher edits its image config — including the history `created_by` text it writes
 * (`ENV A=b`, `CMD ["a" "b"]`, `EXPOSE map[80/tcp:{}]`, `RUN |1 V=2 /bin/sh -c … # buildkit`).
 *
 * Time: history `created` and the config `created` come from SOURCE_DATE_EPOCH when given, else
 * the Unix epoch. WHY the epoch rather than "now": two builds of the same inputs must produce the
 * same image digest (issue 4, reproducibility), in any store.
 */
import { TsbError, type Span } from '../errors.js';
import type { ImageConfig, ContainerConfig, HistoryEntry, HealthConfig } from '../oci/image.js';
import { expandShellWord, type EscapeToken } from '../ir/shell.js';
import type { Command, Word, StageInstr, KeyValue } from '../ir/types.js';
import { cleanPath } from './dockerignore.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** ARGs BuildKit defines without a declaration's value being persisted or keyed (proxy settings). */
export const PROXY_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy',
  'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

export interface ArgValue { readonly name: string; readonly value: string | undefined }

export class StageState {
  config: ImageConfig;
  /** ARGs declared in this stage, in declaration order, with their effective values. */
  args: ArgValue[] = [];
  /** CMD set by this stage (so a later ENTRYPOINT keeps it). */
  cmdSet = false;
  readonly created: string;

  constructor(base: ImageConfig, created: string) {
    this.config = structuredClone(base);
    this.config.config ??= {};
    this.config.history ??= [];
    this.created = created;
  }

  static scratch(platform: { os: string; architecture: string; variant?: string }, created: string): StageState {
    const cfg: ImageConfig = {
      architecture: platform.architecture, os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Env: [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [],
    };
    return new StageState(cfg, created);
  }

  get cc(): ContainerConfig { return this.config.config!; }

  /** Environment from the config, as a map (later duplicates win, like Docker). */
  envMap(): Map<string, string> {
    const m = new Map<string, string>();
    for (const kv of this.cc.Env ?? []) {
      const i = kv.indexOf('=');
      if (i < 0) m.set(kv, ''); else m.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return m;
  }

  /**
   * Variables for expanding words: ARGs in scope (with a value) overlaid by ENV (ENV wins over
   * ARG of the same name, as in BuildKit).
   */
  expansionEnv(): Map<string, string> {
    const m = new Map<string, string>();
    for (const a of this.args) if (a.value !== undefined) m.set(a.name, a.value);
    for (const [k, v] of this.envMap()) m.set(k, v);
    return m;
  }

  shell(): string[] {
    return this.cc.Shell && this.cc.Shell.length > 0 ? [...this.cc.Shell] : [...DEFAULT_SHELL];
  }

  workdir(): string {
    return this.cc.WorkingDir || '/';
  }

  history(createdBy: string, emptyLayer: boolean): void {
    const h: HistoryEntry = { created: this.created, created_by: createdBy, comment: 'buildkit.dockerfile.v0' };
    if (emptyLayer) h.empty_layer = true;
    this.config.history!.push(h);
  }

  setEnv(key: string, value: string): void {
    const env = this.cc.Env ?? [];
    const i = env.findIndex((kv) => kv === key || kv.startsWith(key + '='));
    if (i >= 0) env[i] = `${key}=${value}`; else env.push(`${key}=${value}`);
    this.cc.Env = env;
  }
}

/** Expansion helper bound to a state; records which variables were used (for cache keys). */
export class Expander {
  readonly used = new Set<string>();
  constructor(private readonly env: Map<string, string>, private readonly escape: EscapeToken) {}
  word(w: Word): string {
    if (!w.expand) return w.raw;
    try {
      const r = expandShellWord(w.raw, this.env, this.escape);
      for (const n of r.matched) this.used.add(n);
      for (const n of r.unmatched) this.used.add(n);
      return r.value;
    } catch (e) {
      throw e instanceof TsbError ? e.withSpan(w.span) : e;
    }
  }
  words(w: Word): string[] {
    if (!w.expand) return [w.raw];
    try {
      const r = expandShellWord(w.raw, this.env, this.escape);
      for (const n of r.matched) this.used.add(n);
      for (const n of r.unmatched) this.used.add(n);
      return [...r.words];
    } catch (e) {
      throw e instanceof TsbError ? e.withSpan(w.span) : e;
    }
  }
  text(raw: string, span: Span): string {
    return this.word({ raw, expand: true, span });
  }
}

/** Go's %q of a []string: `["a" "b"]`. */
export function goQuoteList(xs: readonly string[]): string {
  return `[${xs.map(goQuote).join(' ')}]`;
}

/** Go's strconv.Quote (ASCII-printable kept, others escaped as Go does for non-printables). */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (c === 7) out += '\\a';
    else if (c === 8) out += '\\b';
    else if (c === 12) out += '\\f';
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else if (c === 9) out += '\\t';
    else if (c === 11) out += '\\v';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

/** Go's %q of an int (a rune literal). */
function goQuoteRune(n: number): string {
  const special: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r', 39: "\\'", 92: '\\\\' };
  if (special[n]) return `'${special[n]}'`;
  if (n < 0x20 || n === 0x7f) return `'\\x${n.toString(16).padStart(2, '0')}'`;
  if (n < 0x10000 && n >= 0x20) return `'${String.fromCodePoint(n)}'`;
  return `'\\U${n.toString(16).padStart(8, '0')}'`;
}

/** Go's time.Duration.String() for nanoseconds. */
export function goDuration(ns: number): string {
  if (ns === 0) return '0s';
  const neg = ns < 0;
  let u = Math.abs(ns);
  if (u < 1e9) {
    let unit: string; let div: number;
    if (u < 1e3) { return `${neg ? '-' : ''}${u}ns`; }
    else if (u < 1e6) { unit = 'µs'; div = 1e3; } else { unit = 'ms'; div = 1e6; }
    return `${neg ? '-' : ''}${trimFrac(u / div)}${unit}`;
  }
  const h = Math.floor(u / 3.6e12); u -= h * 3.6e12;
  const m = Math.floor(u / 6e10); u -= m * 6e10;
  const s = trimFrac(u / 1e9);
  let out = '';
  if (h > 0) out += `${h}h`;
  if (h > 0 || m > 0) out += `${m}m`;
  out += `${s}s`;
  return (neg ? '-' : '') + out;
}

function trimFrac(x: number): string {
  return String(Number(x.toFixed(9)));
}

/** Parse a Go duration (`30s`, `1m30s`, `500ms`) to nanoseconds. */
export function parseGoDuration(text: string, span?: Span): number {
  const bad = () => new TsbError('TSB3030', `invalid duration "${text}"`, { span, hint: 'write a duration like 30s, 1m30s or 500ms.' });
  if (text === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0; let m: RegExpExecArray | null; let pos = 0;
  const unit: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 6e10, h: 3.6e12 };
  if (text === '') throw bad();
  while ((m = re.exec(text)) !== null) { total += parseFloat(m[1]!) * unit[m[2]!]!; pos = re.lastIndex; }
  if (pos !== text.length) throw bad();
  return Math.round(total);
}

/** A command's argv as the config stores it: exec form as is, shell form prefixed by the shell. */
export function commandArgv(cmd: Command, shell: readonly string[]): string[] {
  return cmd.form === 'exec' ? [...cmd.argv] : [...shell, cmd.text];
}

/** Docker's port spec parsing for EXPOSE: `80`, `80/udp`, `8000-8002/tcp` → `N/proto` keys. */
export function parsePorts(spec: string, span?: Span): string[] {
  const m = /^(?:(?:[0-9.]+|\[[0-9a-fA-F:]+\]):)?(\d+)(?:-(\d+))?(?:\/([a-zA-Z]+))?$/.exec(spec);
  if (!m) throw new TsbError('TSB3031', `invalid port "${spec}"`, { span, hint: 'write PORT[/tcp|udp|sctp] or a range START-END.' });
  const proto = (m[3] ?? 'tcp').toLowerCase();
  const a = Number(m[1]); const b = m[2] ? Number(m[2]) : a;
  if (a > 65535 || b > 65535 || b < a) throw new TsbError('TSB3031', `invalid port range "${spec}"`, { span });
  const out: string[] = [];
  for (let p = a; p <= b; p++) out.push(`${p}/${proto}`);
  return out;
}

function kvPairs(ex: Expander, pairs: readonly KeyValue[]): [string, string][] {
  return pairs.map((p) => [ex.word(p.key), p.value ? ex.word(p.value) : '']);
}

/**
 * Apply a config-only instruction (everything but RUN, COPY, ADD, WORKDIR's directory and ARG's
 * scoping, which the caller handles). Returns the normalized, expanded text that enters the cache
 * key. Throws TSB3xxx with the instruction's span on bad values.
 */
export function applyConfigInstr(st: StageState, instr: StageInstr, ex: Expander): string {
  const cc = st.cc;
  switch (instr.kind) {
    case 'ENV': {
      const pairs = kvPairs(ex, instr.pairs);
      for (const [k, v] of pairs) st.setEnv(k, v);
      const text = 'ENV ' + pairs.map(([k, v]) => `${k}=${v}`).join(' ');
      st.history(text, true);
      return text;
    }
    case 'LABEL': {
      const pairs = kvPairs(ex, instr.pairs);
      cc.Labels ??= {};
      for (const [k, v] of pairs) cc.Labels[k] = v;
      const text = 'LABEL ' + pairs.map(([k, v]) => `${k}=${v}`).join(' ');
      st.history(text, true);
      return text;
    }
    case 'CMD': {
      const argv = commandArgv(instr.command, st.shell());
      cc.Cmd = argv;
      cc.ArgsEscaped = true;
      st.cmdSet = true;
      const text = `CMD ${goQuoteList(argv)}`;
      st.history(text, true);
      return text;
    }
    case 'ENTRYPOINT': {
      const argv = commandArgv(instr.command, st.shell());
      cc.Entrypoint = argv;
      if (!st.cmdSet) cc.Cmd = null;
      const text = `ENTRYPOINT ${goQuoteList(argv)}`;
      st.history(text, true);
      return text;
    }
    case 'SHELL': {
      cc.Shell = [...instr.argv];
      const text = `SHELL [${instr.argv.join(' ')}]`;
      st.history(text, true);
      return text;
    }
    case 'EXPOSE': {
      const ports: string[] = [];
      for (const w of instr.ports) for (const p of ex.words(w)) ports.push(...parsePorts(p, w.span));
      cc.ExposedPorts ??= {};
      for (const p of ports) cc.ExposedPorts[p] = {};
      // BuildKit 0.25 writes the sorted port list (`EXPOSE [443/tcp 80/udp]`), checked against it.
      const text = `EXPOSE [${[...ports].sort().join(' ')}]`; // duplicates kept, as BuildKit writes them
      st.history(text, true);
      return text;
    }
    case 'VOLUME': {
      const vols: string[] = [];
      for (const w of instr.paths) {
        const v = ex.word(w);
        if (v.trim() === '') throw new TsbError('TSB3032', 'VOLUME specified can not be an empty string', { span: w.span });
        vols.push(v);
      }
      cc.Volumes ??= {};
      for (const v of vols) cc.Volumes[v] = {};
      const text = `VOLUME [${vols.join(' ')}]`;
      st.history(text, true);
      return text;
    }
    case 'USER': {
      const u = ex.word(instr.user);
      cc.User = u;
      const text = `USER ${u}`;
      st.history(text, true);
      return text;
    }
    case 'STOPSIGNAL': {
      const s = ex.word(instr.signal);
      if (!/^(SIG[A-Z0-9+-]+|[A-Z0-9+-]+|\d+)$/i.test(s)) {
        throw new TsbError('TSB3033', `invalid STOPSIGNAL "${s}"`, { span: instr.signal.span, hint: 'write a signal name (SIGTERM) or number.' });
      }
      cc.StopSignal = s;
      const text = `STOPSIGNAL ${s}`;
      st.history(text, true);
      return text;
    }
    case 'MAINTAINER': {
      st.config.author = instr.name;
      const text = `MAINTAINER ${instr.name}`;
      st.history(text, true);
      return text;
    }
    case 'ONBUILD': {
      cc.OnBuild = [...(cc.OnBuild ?? []), instr.expression];
      // No history entry: BuildKit records ONBUILD in the config only (checked against 0.25).
      return `ONBUILD ${instr.expression}`;
    }
    case 'HEALTHCHECK': {
      let h: HealthConfig;
      if (instr.test === 'NONE') h = { Test: ['NONE'] };
      else {
        const test = instr.command.form === 'exec' ? ['CMD', ...instr.command.argv] : ['CMD-SHELL', instr.command.text];
        const dur = (w: Word | undefined) => (w ? parseGoDuration(ex.word(w), w.span) : 0);
        h = { Test: test, Interval: dur(instr.interval), Timeout: dur(instr.timeout), StartPeriod: dur(instr.startPeriod),
          StartInterval: dur(instr.startInterval) };
        if (instr.retries) {
          const r = ex.word(instr.retries);
          if (!/^\d+$/.test(r)) throw new TsbError('TSB3034', `invalid HEALTHCHECK --retries "${r}"`, { span: instr.retries.span });
          h.Retries = Number(r);
        }
      }
      cc.Healthcheck = h;
      const text = `HEALTHCHECK &{${goQuoteList(h.Test ?? [])} ${goQuote(goDuration(h.Interval ?? 0))} ${goQuote(goDuration(h.Timeout ?? 0))} ${goQuote(goDuration(h.StartPeriod ?? 0))} ${goQuote(goDuration(h.StartInterval ?? 0))} ${goQuoteRune(h.Retries ?? 0)}}`;
      st.history(text, true);
      return text;
    }
    default:
      throw new Error(`internal: ${instr.kind} is not a config-only instruction`);
  }
}

/** WORKDIR's new directory: relative paths join the current one (BuildKit's NormalizeWorkdir). */
export function resolveWorkdir(current: string, wd: string, span?: Span): string {
  if (wd === '') throw new TsbError('TSB3035', 'WORKDIR needs a path', { span });
  return cleanPath(wd.startsWith('/') ? wd : `${current || '/'}/${wd}`);
}

/** BuildKit's runCommandString: `|N K=V … argv…` (build args in scope, ENV values winning). */
export function runCreatedBy(argv: readonly string[], args: readonly ArgValue[], env: Map<string, string>): string {
  const pairs: string[] = [];
  const idx = new Map<string, number>();
  for (const a of args) {
    const v = env.has(a.name) ? env.get(a.name)! : (a.value ?? '');
    const at = idx.get(a.name);
    if (at !== undefined) pairs[at] = `${a.name}=${v}`;
    else { idx.set(a.name, pairs.length); pairs.push(`${a.name}=${v}`); }
  }
  const pre = pairs.length > 0 ? [`|${pairs.length}`, ...pairs] : [];
  return [...pre, ...argv].join(' ');
}
