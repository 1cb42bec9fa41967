/**
 * Step cache keys. A key is `v2:sha256:<hex>` over a versioned recipe (v2: destination symlinks
 * followed, hardlinks kept, RUN bind-mount contents keyed; v1 records simply miss):
 *
 *   sha256( recipeHeader(op) + canonical JSON of { parent, inputs } )
 *   recipeHeader: "tsbuild-cachekey-v2" + "-<kind version>" for kinds in STEP_RECIPES + "\n"
 *
 * `inputs` is a flat, READABLE map (it is stored in the CacheRecord and diffed to explain a miss):
 *   op            the step kind (`FROM`, `RUN`, `COPY`, `WORKDIR`, …)
 *   instruction   the instruction after normalization: keyword, flags sorted, words single-spaced,
 *                 variables NOT expanded (so the text a person wrote; comments and line breaks
 *                 never reach it)
 *   arg:NAME      value of a build ARG the step used (expansion) or, for RUN, every ARG in scope
 *   env           digest of the environment a RUN sees
 *   base          base image manifest digest (FROM), `scratch`, or a stage's final key
 *   platform      target platform
 *   file:PATH     for COPY/ADD: `<type> <mode> <uid>:<gid> <sha256|link target>` of every selected
 *                 source entry (mtime deliberately excluded: touching a file is not a change)
 *   from          COPY --from source: the stage's key or image digest
 *   (others)      chown/chmod/user/workdir/shell/network/secret ids … whatever changes the result
 *
 * Invariances (tested): a comment or whitespace edit leaves every key alone; an ARG the step does
 * not use does not change it; a mode change of a copied file does.
 * Bump RECIPE_VERSION whenever the meaning of an input changes: old records then simply miss.
 */
import { createHash } from 'node:crypto';

export const RECIPE_VERSION = 'v2';

/**
 * Per step kind recipe versions, on top of RECIPE_VERSION: bump ONE line here whenever what that
 * kind of step produces changes (layer content or config), so records written by older code miss
 * instead of handing back the old (wrong) result. History:
 *   RUN  run2   hardlinks to lower files kept, non-UTF-8 names (05a0869)
 *        run3   bind mounts from a stage sub-path follow the stage's symlinks, not the host's
 *        run4   sandbox as BuildKit's: no /etc/hostname, /proc/interrupts readable, stdin a pipe
 *        run5   /sys/fs/cgroup mounted read-only in RUN, /etc/resolv.conf keeps the host's mtime
 *   COPY copy3  context links chroot-style, several files onto a non-dir path, dir onto file is
 *               TSB4012 (7387112); --link keeps existing parents (34d128c); fifos/devices copied
 *        copy4  hardlinks kept per source match only, block devices copied as char devices,
 *               dirs made with an octal --chmod get it & 0755, heredoc onto a dir lands inside
 *   ADD  add3   as COPY, plus archive hardlinks/fifos (7387112) and symlinks followed inside the
 *               destination (b32cd69)
 *        add4   as copy4, plus archive devices kept and URLs onto an existing dir land inside
 *        add5   directories an archive implies (no header) get the epoch, not the unpack time
 * Kinds not listed use the bare RECIPE_VERSION.
 */
export const STEP_RECIPES: Readonly<Record<string, string>> = { RUN: 'run5', COPY: 'copy4', ADD: 'add5' };

export type KeyInputs = Record<string, string>;

/** The first line hashed into a key: the recipe version and the step kind's own version. */
export function recipeHeader(op: string | undefined, recipes: Readonly<Record<string, string>> = STEP_RECIPES): string {
  const kind = op !== undefined ? recipes[op] : undefined;
  return `tsbuild-cachekey-${RECIPE_VERSION}${kind !== undefined ? `-${kind}` : ''}\n`;
}

export function computeKey(parent: string | undefined, inputs: KeyInputs, recipes: Readonly<Record<string, string>> = STEP_RECIPES): string {
  const sorted: KeyInputs = {};
  for (const k of Object.keys(inputs).sort()) sorted[k] = inputs[k]!;
  const h = createHash('sha256');
  h.update(recipeHeader(inputs.op, recipes));
  h.update(JSON.stringify({ parent: parent ?? null, inputs: sorted }));
  return `${RECIPE_VERSION}:sha256:${h.digest('hex')}`;
}

export function sha256Hex(s: string | Buffer): string {
  return createHash('sha256').update(s).digest('hex');
}

/** Whitespace-normalize an instruction text outside quotes (collapses runs of blanks to one space). */
export function normalizeText(s: string): string {
  let out = '';
  let q: string | undefined;
  let space = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      out += c;
      if (c === '\\' && q === '"' && i + 1 < s.length) { out += s[++i]!; continue; }
      if (c === q) q = undefined;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') { space = true; continue; }
    if (space && out !== '') out += ' ';
    space = false;
    if (c === '"' || c === "'") q = c;
    out += c;
  }
  return out;
}

export interface Explanation {
  /** One line per changed input, e.g. `file src/app.ts changed`, `ARG VERSION 1.2 → 1.3`. */
  readonly reasons: string[];
}

/**
 * Why a step missed: compare its inputs with those of the last record for the same Dockerfile line
 * (and tag). Inputs are named in the words a user thinks in.
 */
export function explainMiss(now: KeyInputs, parentNow: string | undefined, prev: { inputs: KeyInputs; parent?: string } | undefined): string[] {
  if (!prev) return ['no earlier build of this step (first build of this line)'];
  const out: string[] = [];
  const keys = new Set([...Object.keys(now), ...Object.keys(prev.inputs)]);
  const files: { added: string[]; removed: string[]; changed: string[] } = { added: [], removed: [], changed: [] };
  const detail = new Map<string, string>();
  for (const k of [...keys].sort()) {
    const a = prev.inputs[k];
    const b = now[k];
    if (a === b) continue;
    if (k.startsWith('file:')) {
      const p = k.slice(5);
      if (a === undefined) files.added.push(p);
      else if (b === undefined) files.removed.push(p);
      else { files.changed.push(p); detail.set(p, describeFileChange(a, b)); }
    } else if (k.startsWith('arg:')) {
      out.push(`ARG ${k.slice(4)} ${a ?? '(unset)'} → ${b ?? '(unset)'}`);
    } else if (k === 'base') {
      const st = /^stage (\d+):/.exec(b ?? '');
      if (st && (a ?? '').startsWith(`stage ${st[1]}:`)) out.push(`base stage ${st[1]} changed`);
      else out.push(`base image digest changed (${short(a)} → ${short(b)})`);
    } else if (k === 'instruction') {
      out.push('instruction text changed');
    } else if (k === 'from') {
      out.push(`--from source changed (${short(a)} → ${short(b)})`);
    } else if (k === 'platform') {
      out.push(`platform ${a ?? '(none)'} → ${b ?? '(none)'}`);
    } else if (k === 'above') {
      const pa = (a ?? '').split('\n').filter(Boolean); const pb = (b ?? '').split('\n').filter(Boolean);
      const gone = pa.filter((x) => !pb.includes(x)); const added = pb.filter((x) => !pa.includes(x));
      if (gone.length === 1 && added.length === 1) out.push(`instruction above changed: ${gone[0]} → ${added[0]}`);
      else out.push(`instructions above changed${added.length ? `: ${added.join('; ')}` : ''}`);
    } else if (k === 'files') {
      out.push('files changed (the earlier file list was pruned)');
    } else if (k === 'env') {
      out.push('environment changed');
    } else if (k === 'op') {
      out.push('instruction changed');
    } else {
      out.push(`${k} ${a ?? '(unset)'} → ${b ?? '(unset)'}`);
    }
  }
  const list = (xs: string[], verb: string) => {
    const shown = xs.slice(0, 5).map((p) => `file ${p} ${verb}${detail.get(p) ?? ''}`);
    if (xs.length > 5) shown.push(`… and ${xs.length - 5} more files ${verb}`);
    return shown;
  };
  out.unshift(...list(files.changed, 'changed'), ...list(files.added, 'added'), ...list(files.removed, 'removed'));
  if (out.length === 0 && parentNow !== prev.parent) out.push('an earlier step changed');
  if (out.length === 0) out.push('cache record was removed (pruned) or never written');
  return out;
}

function describeFileChange(a: string, b: string): string {
  const [ta, ma, oa, ca] = a.split(' ');
  const [tb, mb, ob, cb] = b.split(' ');
  const bits: string[] = [];
  if (ta !== tb) bits.push(`type ${ta} → ${tb}`);
  if (ma !== mb) bits.push(`mode ${ma} → ${mb}`);
  if (oa !== ob) bits.push(`owner ${oa} → ${ob}`);
  if (bits.length === 0 || ca !== cb) return bits.length ? ` (${bits.join(', ')}, content)` : '';
  return ` (${bits.join(', ')})`;
}

function short(d: string | undefined): string {
  if (!d) return '(none)';
  const m = /sha256:([0-9a-f]{12})/.exec(d);
  return m ? `sha256:${m[1]}` : d;
}
