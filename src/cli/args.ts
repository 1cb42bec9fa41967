/**
 * One flag parser for every command, so all of them accept the same shapes:
 * `--name=value`, `--name value`, `-n value`, `-nvalue`, bare booleans, repeatable lists, and `--`
 * to end flags. Global flags (`--store`, `--debug`, `-h/--help`) are accepted by every command.
 * Unknown flags are usage errors (TSB0001, exit 2) with a did-you-mean hint.
 */
import { TsbError } from '../errors.js';

export type FlagType = 'bool' | 'string' | 'list';

export interface FlagSpec {
  readonly name: string;
  readonly short?: string;
  readonly type: FlagType;
  /** Shown by --help: `--name VALUE  help`. */
  readonly help?: string;
  readonly value?: string;
  /** A string flag that may stand alone (`--pull` = `--pull=always`): the value it then takes. */
  readonly bareValue?: string;
}

export interface ParsedArgs {
  readonly flags: ReadonlyMap<string, string | boolean | string[]>;
  readonly positional: readonly string[];
  str(name: string): string | undefined;
  bool(name: string): boolean;
  list(name: string): string[];
}

export const GLOBAL_FLAGS: readonly FlagSpec[] = [
  { name: 'store', type: 'string', value: 'DIR', help: 'layer store directory (default $TSBUILD_STORE, $XDG_DATA_HOME/tsbuild, ~/.local/share/tsbuild)' },
  { name: 'debug', type: 'bool', help: 'show error causes and stack traces' },
  { name: 'help', short: 'h', type: 'bool', help: 'show help' },
];

export function usageError(message: string, hint?: string): TsbError {
  return new TsbError('TSB0001', message, { hint, exitCode: 2 });
}

/** `512m`, `2g`, `1048576` → bytes (Docker's units: b, k, m, g, t; binary). */
export function parseBytes(s: string, flag = 'memory'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$/i.exec(s.trim());
  if (!m) throw usageError(`invalid --${flag} "${s}"`, 'write a number with an optional unit: 512m, 2g.');
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()]!;
  return Math.floor(Number(m[1]) * mult);
}

/** Levenshtein distance, for did-you-mean hints (also used for unknown instructions). */
export function editDistance(a: string, b: string): number {
  const d: number[] = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length]!;
}

export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const dist = editDistance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestD) { bestD = dist; best = c; }
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** `stopAtPositional`: the first positional argument ends the flags (the rest are positional; a `--` right after it is dropped). */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], command: string, opts: { stopAtPositional?: boolean } = {}): ParsedArgs {
  const all = [...specs, ...GLOBAL_FLAGS];
  const byName = new Map(all.map((s) => [s.name, s]));
  const byShort = new Map(all.filter((s) => s.short).map((s) => [s.short!, s]));
  const flags = new Map<string, string | boolean | string[]>();
  const positional: string[] = [];

  const set = (spec: FlagSpec, value: string | boolean) => {
    if (spec.type === 'list') {
      const cur = (flags.get(spec.name) as string[] | undefined) ?? [];
      cur.push(String(value));
      flags.set(spec.name, cur);
    } else flags.set(spec.name, value);
  };
  const unknown = (flag: string): never => {
    const guess = didYouMean(flag.replace(/^-+/, ''), all.map((s) => s.name));
    throw usageError(`unknown flag ${flag} for "tsbuild ${command}"`,
      guess ? `did you mean --${guess}? See "tsbuild ${command} --help".` : `see "tsbuild ${command} --help".`);
  };

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { positional.push(...argv.slice(i + 1)); break; }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const spec = byName.get(name);
      if (!spec) unknown(a);
      if (spec!.type === 'bool') {
        if (eq < 0) set(spec!, true);
        else {
          const v = a.slice(eq + 1).toLowerCase();
          if (v !== 'true' && v !== 'false') throw usageError(`flag --${name} takes true or false, not "${a.slice(eq + 1)}"`);
          set(spec!, v === 'true');
        }
      } else if (eq >= 0) set(spec!, a.slice(eq + 1));
      else if (spec!.bareValue !== undefined) set(spec!, spec!.bareValue);
      else {
        if (i + 1 >= argv.length) throw usageError(`flag --${name} needs a value`, `write --${name}=${spec!.value ?? 'VALUE'}.`);
        set(spec!, argv[++i]!);
      }
    } else if (a.startsWith('-') && a.length > 1) {
      const spec = byShort.get(a[1]!);
      if (!spec) unknown(a);
      if (spec!.type === 'bool') {
        if (a.length > 2) {
          // bundled booleans: -it
          for (const ch of a.slice(1)) {
            const s = byShort.get(ch);
            if (!s || s.type !== 'bool') unknown(`-${ch}`);
            set(s!, true);
          }
        } else set(spec!, true);
      } else if (a.length > 2) set(spec!, a.slice(2));
      else {
        if (i + 1 >= argv.length) throw usageError(`flag -${spec!.short} needs a value`);
        set(spec!, argv[++i]!);
      }
    } else {
      positional.push(a);
      if (opts.stopAtPositional) {
        // `run IMG -- cmd`: a `--` right after the first positional only separates (no command is named `--`).
        const rest = argv.slice(i + 1);
        positional.push(...(rest[0] === '--' ? rest.slice(1) : rest));
        break;
      }
    }
  }

  return {
    flags,
    positional,
    str: (n) => { const v = flags.get(n); return typeof v === 'string' ? v : undefined; },
    bool: (n) => flags.get(n) === true,
    list: (n) => { const v = flags.get(n); return Array.isArray(v) ? v : []; },
  };
}

export function formatFlags(specs: readonly FlagSpec[]): string {
  const rows = [...specs, ...GLOBAL_FLAGS].map((s) => {
    const left = `${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.type === 'bool' ? '' : ` ${s.value ?? 'VALUE'}`}`;
    return [left, (s.help ?? '') + (s.type === 'list' ? ' (repeatable)' : '')] as const;
  });
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([l, r]) => `  ${l.padEnd(w)}  ${r}`).join('\n');
}
