/**
 * `RUN --mount=…` parsing and checking, with BuildKit's rules (its instructions/commands_runmount.go):
 * the flag value is one CSV record of `key=value` fields; keys are case-insensitive; `type`
 * defaults to `bind`; `ro`/`rw`/`required` may be bare; `from=` may not hold a variable.
 *
 * Two passes, as in BuildKit: src/ir checks what it can without variable values (`lowerMount`,
 * values holding `$` are left for later), src/plan calls `resolveMount` with an expander and
 * gets the final typed mount or a TsbError (TSB2014/TSB2016) spanned at the flag.
 */
import type { Span } from '../errors.js';
import { irError } from './errors.js';
import { didYouMean } from './suggest.js';
import { hasVariable } from './shell.js';
import type { MountField, RunMount } from './types.js';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type CacheSharing = 'shared' | 'private' | 'locked';

/** A mount with every value expanded and checked; defaults filled in as BuildKit does. */
export interface ResolvedMount {
  readonly type: MountType;
  /** Stage name/index or image (bind, cache). */
  readonly from?: string;
  readonly source?: string;
  readonly target?: string;
  /** Default: true for bind/secret/ssh, false for cache/tmpfs. */
  readonly readOnly: boolean;
  /** secret/ssh: fail when the secret/agent is not provided. */
  readonly required: boolean;
  /** Cache id, or secret/ssh id. */
  readonly id?: string;
  readonly sharing?: CacheSharing;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** tmpfs size in bytes. */
  readonly sizeLimit?: number;
  /** secret: also expose it as this environment variable. */
  readonly env?: string;
}

const TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const SHARING: readonly CacheSharing[] = ['shared', 'private', 'locked'];
const ALL_KEYS = ['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'size', 'mode',
  'uid', 'gid', 'src', 'dst', 'destination', 'ro', 'rw', 'readwrite', 'env'];

/** Go's encoding/csv for one record (no lazy quotes, no space trimming). */
export function parseCsvRecord(text: string): string[] | string {
  if (text === '') return 'EOF';
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (text[i] === '"') {
      let f = '';
      i++;
      for (;;) {
        if (i >= text.length) return 'extraneous or missing " in quoted-field';
        const c = text[i]!;
        if (c === '"') {
          if (text[i + 1] === '"') { f += '"'; i += 2; continue; }
          i++;
          if (i >= text.length || text[i] === ',') break;
          return 'extraneous or missing " in quoted-field';
        }
        f += c;
        i++;
      }
      out.push(f);
    } else {
      let j = text.indexOf(',', i);
      if (j < 0) j = text.length;
      const f = text.slice(i, j);
      if (f.includes('"')) return 'bare " in non-quoted-field';
      out.push(f);
      i = j;
    }
    if (i >= text.length) return out;
    i++; // the comma
    if (i >= text.length) { out.push(''); return out; }
  }
}

function parseBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return undefined;
}

function parseUint(v: string, base: 8 | 10): number | undefined {
  const re = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!re.test(v)) return undefined;
  const n = parseInt(v, base);
  return n <= 0xffffffff ? n : undefined;
}

/** docker/go-units RAMInBytes: `64m`, `1.5g`, `100kb`, `512MiB` (binary multipliers). */
export function ramInBytes(v: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(v);
  if (!m) return undefined;
  const n = parseFloat(m[1]!);
  if (!Number.isFinite(n)) return undefined;
  const mult: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
  return Math.floor(n * (m[2] ? mult[m[2].toLowerCase()]! : 1));
}

interface Draft {
  type: string;
  from?: string; source?: string; target?: string; id?: string; sharing?: CacheSharing; env?: string;
  readOnly: boolean; roAuto: boolean; required: boolean;
  mode?: number; uid?: number; gid?: number; sizeLimit?: number;
  /** Some value could not be known (a variable without an expander): skip whole-mount checks. */
  partial: boolean;
  /** A value (other than type) holds a variable and was left for the build's pass. */
  deferred?: boolean;
}

/**
 * Interpret the fields. `expand` undefined = src/ir's static pass: values with variables are
 * skipped (except `from=`, which may never hold one).
 */
function interpret(fields: readonly MountField[], span: Span, expand: ((v: string) => string) | undefined): Draft {
  const bad = (msg: string, hint?: string) => irError('TSB2014', msg, span, hint);
  const m: Draft = { type: 'bind', readOnly: false, roAuto: true, required: false, partial: false };
  for (const f of fields) {
    const key = f.key;
    if (f.value === undefined) {
      switch (key) {
        case 'readonly': case 'ro': m.readOnly = true; m.roAuto = false; continue;
        case 'readwrite': case 'rw': m.readOnly = false; m.roAuto = false; continue;
        case 'required':
          if (m.partial || m.type === 'secret' || m.type === 'ssh') { m.required = true; continue; }
          throw bad(`unexpected key '${key}' for mount type '${m.type}'`, 'required applies to type=secret and type=ssh (write type= first).');
        default:
          throw bad(`invalid field '${key}' must be a key=value pair`, 'only ro, rw, readonly, readwrite and required may be written without =value.');
      }
    }
    let value = f.value;
    if (key === 'from' && hasVariable(value)) {
      throw irError('TSB2016', `'${key}' doesn't support variable expansion, define alias stage instead`, span,
        'add a stage `FROM <image> AS <name>` and use from=<name>.');
    }
    if (hasVariable(value)) {
      if (!expand) {
        if (key === 'type') m.partial = true;
        else m.deferred = true;
        if (!ALL_KEYS.includes(key)) throw unknownKey(key, f, span);
        continue;
      }
      value = expand(value);
    }
    const boolOf = (v: string) => {
      const b = parseBool(v);
      if (b === undefined) throw bad(`invalid value for ${key}: ${v}`, 'use true or false.');
      return b;
    };
    switch (key) {
      case 'type': {
        const t = value.toLowerCase();
        if (!(TYPES as readonly string[]).includes(t)) {
          const g = didYouMean(value, TYPES);
          throw bad(`unsupported mount type "${value}"`, g ? `did you mean ${g}?` : `use one of ${TYPES.join(', ')}.`);
        }
        m.type = t;
        break;
      }
      case 'from': m.from = value; break;
      case 'source': case 'src': m.source = value; break;
      case 'target': case 'dst': case 'destination': m.target = value; break;
      case 'readonly': case 'ro': m.readOnly = boolOf(value); m.roAuto = false; break;
      case 'readwrite': case 'rw': m.readOnly = !boolOf(value); m.roAuto = false; break;
      case 'required':
        if (!m.partial && m.type !== 'secret' && m.type !== 'ssh') {
          throw bad(`unexpected key '${key}' for mount type '${m.type}'`, 'required applies to type=secret and type=ssh (write type= first).');
        }
        m.required = boolOf(value);
        break;
      case 'size': {
        if (!m.partial && m.type !== 'tmpfs') {
          throw bad(`unexpected key '${key}' for mount type '${m.type}'`, 'size applies to type=tmpfs (write type= first).');
        }
        const n = ramInBytes(value);
        if (n === undefined) throw bad(`invalid value for ${key}: ${value}`, 'write a size such as 64m or 1g.');
        m.sizeLimit = n;
        break;
      }
      case 'id': m.id = value; break;
      case 'sharing': {
        const s = value.toLowerCase();
        if (!(SHARING as readonly string[]).includes(s)) {
          const g = didYouMean(value, SHARING);
          throw bad(`unsupported sharing value "${value}"`, g ? `did you mean ${g}?` : `use one of ${SHARING.join(', ')}.`);
        }
        m.sharing = s as CacheSharing;
        break;
      }
      case 'mode': {
        const n = parseUint(value, 8);
        if (n === undefined) throw bad(`invalid value ${value} for mode`, 'write an octal mode such as 0755.');
        m.mode = n;
        break;
      }
      case 'uid': case 'gid': {
        const n = parseUint(value, 10);
        if (n === undefined) throw bad(`invalid value ${value} for ${key}`, `write a numeric ${key}.`);
        if (key === 'uid') m.uid = n; else m.gid = n;
        break;
      }
      case 'env': m.env = value; break;
      default:
        throw unknownKey(key, f, span);
    }
  }
  return m;
}

function unknownKey(key: string, f: MountField, span: Span) {
  const g = didYouMean(key, ALL_KEYS);
  return irError('TSB2014', `unexpected key '${key}' in '${f.key}=${f.value ?? ''}'`, span,
    g ? `did you mean ${g}?` : `mount keys: ${ALL_KEYS.join(', ')}.`);
}

function validate(m: Draft, span: Span): void {
  if (m.partial) return;
  const bad = (msg: string, hint?: string) => irError('TSB2014', msg, span, hint);
  const fileInfo = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfo) {
    const h = 'mode, uid and gid apply to cache, secret and ssh mounts.';
    if (m.mode !== undefined) throw bad(`mode not allowed for "${m.type}" type mounts`, h);
    if (m.uid !== undefined) throw bad(`uid not allowed for "${m.type}" type mounts`, h);
    if (m.gid !== undefined) throw bad(`gid not allowed for "${m.type}" type mounts`, h);
  }
  if (m.type === 'secret') {
    if (m.from !== undefined && m.from !== '') throw bad('secret mount should not have a from', 'secrets come from --secret on the command line, not from a stage.');
    if (m.sharing) throw bad('secret mount should not define sharing', 'sharing applies to type=cache only.');
    // BuildKit's parseMount: an empty value counts as not given.
    if (!m.deferred && !m.source && !m.target && !m.id) {
      throw bad('invalid secret mount. one of source, target required', 'name the secret: --mount=type=secret,id=NAME (or target=/run/secrets/NAME).');
    }
    if (m.source && m.id) throw bad("both source and id can't be set", 'a secret mount takes id= (or its alias source=), not both.');
  }
  if (m.sharing && m.type !== 'cache') throw bad(`invalid cache sharing set for ${m.type} mount`, 'sharing applies to type=cache only.');
}

/** Split a --mount flag value into fields (src/ir's pass). Throws TSB2014 on bad CSV or keys. */
export function lowerMount(value: string, span: Span): RunMount {
  const rec = parseCsvRecord(value);
  if (typeof rec === 'string') {
    throw irError('TSB2014', `failed to parse csv mounts: ${rec}`, span, 'write --mount=type=TYPE,key=value,… (quote a value holding a comma with "…").');
  }
  const fields: MountField[] = rec.map((field) => {
    const eq = field.indexOf('=');
    return eq < 0 ? { key: field.toLowerCase() } : { key: field.slice(0, eq).toLowerCase(), value: field.slice(eq + 1) };
  });
  const draft = interpret(fields, span, undefined);
  validate(draft, span);
  const options = new Map<string, string>();
  for (const f of fields) options.set(f.key, f.value ?? 'true');
  const typeField = [...fields].reverse().find((f) => f.key === 'type' && f.value !== undefined);
  const type = typeField ? (hasVariable(typeField.value!) ? typeField.value! : typeField.value!.toLowerCase()) : 'bind';
  return { type, options, fields, span };
}

/**
 * The engine's pass: expand every value with `expand` (usually `v => expandWord({raw: v, expand:
 * true, span}, env).value`, collecting `matched` for the cache key) and check the whole mount.
 */
export function resolveMount(mount: RunMount, expand: (value: string) => string): ResolvedMount {
  const d = interpret(mount.fields, mount.span, expand);
  validate(d, mount.span);
  if (d.roAuto) d.readOnly = !(d.type === 'cache' || d.type === 'tmpfs');
  const out: { -readonly [K in keyof ResolvedMount]: ResolvedMount[K] } = {
    type: d.type as MountType, readOnly: d.readOnly, required: d.required,
  };
  for (const k of ['from', 'source', 'target', 'id', 'sharing', 'mode', 'uid', 'gid', 'sizeLimit', 'env'] as const) {
    if (d[k] !== undefined) (out as Record<string, unknown>)[k] = d[k];
  }
  return out;
}
