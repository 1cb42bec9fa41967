/**
 * `COPY --chmod=` values: octal (`755`, `0644`, `4755`) and symbolic (`u+x,go-w`, `a=rX`), as
 * BuildKit accepts them. The result is a function from a source entry's mode (and whether it is a
 * directory) to the mode to write — octal ignores the source mode; symbolic edits it.
 * Only permission bits (07777) are touched; the file type stays.
 */
import { TsbError, type Span } from '../../errors.js';

export type ChmodFn = (mode: number, isDir: boolean) => number;

export interface ParsedChmod {
  readonly text: string;
  readonly apply: ChmodFn;
  /** Octal value when the spec was octal (for the cache key / history). */
  readonly octal?: number;
}

export function parseChmod(text: string, span?: Span): ParsedChmod {
  const bad = (why: string) => new TsbError('TSB3010', `invalid --chmod value "${text}": ${why}`, {
    span, hint: 'use octal (--chmod=755) or symbolic (--chmod=u+rwx,go+rx) modes.',
  });
  if (/^[0-7]{1,4}$/.test(text)) {
    const v = parseInt(text, 8);
    return { text, octal: v, apply: () => v };
  }
  if (/^[0-9]+$/.test(text)) throw bad('not an octal number');
  const clauses = text.split(',');
  const ops: { who: number; op: string; perm: string }[][] = [];
  for (const c of clauses) {
    const m = /^([ugoa]*)((?:[-+=](?:[rwxXst]*|[ugo]))+)$/.exec(c);
    if (!m) throw bad(`clause "${c}" is not [ugoa][+-=][rwxXst]`);
    let who = 0;
    for (const w of m[1]!) {
      if (w === 'u') who |= 0o4700;
      else if (w === 'g') who |= 0o2070;
      else if (w === 'o') who |= 0o1007;
      else who |= 0o7777;
    }
    if (who === 0) who = 0o7777;
    const list: { who: number; op: string; perm: string }[] = [];
    const re = /([-+=])([rwxXst]*|[ugo])/g;
    let mm: RegExpExecArray | null;
    while ((mm = re.exec(m[2]!)) !== null) list.push({ who, op: mm[1]!, perm: mm[2]! });
    ops.push(list);
  }
  const apply: ChmodFn = (mode, isDir) => {
    let cur = mode & 0o7777;
    for (const list of ops) {
      for (const { who, op, perm } of list) {
        let bits = 0;
        if (perm === 'u') { const u = (cur >> 6) & 7; bits = u | (u << 3) | (u << 6); }
        else if (perm === 'g') { const g = (cur >> 3) & 7; bits = g | (g << 3) | (g << 6); }
        else if (perm === 'o') { const o = cur & 7; bits = o | (o << 3) | (o << 6); }
        else {
          for (const p of perm) {
            if (p === 'r') bits |= 0o444;
            else if (p === 'w') bits |= 0o222;
            else if (p === 'x') bits |= 0o111;
            else if (p === 'X') { if (isDir || (cur & 0o111) !== 0) bits |= 0o111; }
            else if (p === 's') bits |= 0o6000;
            else if (p === 't') bits |= 0o1000;
          }
        }
        bits &= who;
        if (op === '+') cur |= bits;
        else if (op === '-') cur &= ~bits;
        else cur = (cur & ~clearMask(who)) | bits;
      }
    }
    return cur & 0o7777;
  };
  return { text, apply };
}

/** The bits `=` clears for a who-set: rwx of each class named (and its special bit). */
function clearMask(who: number): number {
  return who & 0o7777;
}
