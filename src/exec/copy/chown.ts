/**
 * `COPY --chown=user[:group]` (and USER for WORKDIR ownership): parse, then resolve names against
 * the DESTINATION image's /etc/passwd and /etc/group (read through `readEtc`, which must read inside
 * the image root, never the host). Numbers are used as they are; a user given alone brings its
 * primary group from /etc/passwd (a numeric uid alone means gid = uid), as BuildKit does.
 */
import { TsbError, type Span } from '../../errors.js';

export interface ChownSpec { readonly user: string; readonly group?: string }
export interface Owner { readonly uid: number; readonly gid: number }

export function parseChown(text: string, span?: Span): ChownSpec {
  const i = text.indexOf(':');
  const user = i < 0 ? text : text.slice(0, i);
  const group = i < 0 ? undefined : text.slice(i + 1);
  if (user === '' && (group === undefined || group === '')) {
    throw new TsbError('TSB3011', `invalid --chown value "${text}"`, { span, hint: 'write --chown=USER[:GROUP] (names or numbers).' });
  }
  return group === undefined ? { user } : { user, group };
}

const isNum = (s: string) => /^[0-9]+$/.test(s);

export function parsePasswd(text: string): { name: string; uid: number; gid: number; home: string }[] {
  const out: { name: string; uid: number; gid: number; home: string }[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !isNum(f[2]!) || !isNum(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' });
  }
  return out;
}

export function parseGroup(text: string): { name: string; gid: number }[] {
  const out: { name: string; gid: number }[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !isNum(f[2]!)) continue;
    out.push({ name: f[0]!, gid: Number(f[2]) });
  }
  return out;
}

/** True when resolving needs /etc/passwd or /etc/group (a name was used). */
export function needsLookup(spec: ChownSpec): boolean {
  return !isNum(spec.user) && spec.user !== '' || (spec.group !== undefined && spec.group !== '' && !isNum(spec.group));
}

export async function resolveOwner(
  spec: ChownSpec,
  readEtc: (path: '/etc/passwd' | '/etc/group') => Promise<string | undefined>,
  span?: Span,
): Promise<Owner> {
  let uid: number;
  let gid: number | undefined;
  if (spec.user === '') uid = 0;
  else if (isNum(spec.user)) uid = Number(spec.user);
  else {
    const pw = parsePasswd((await readEtc('/etc/passwd')) ?? '');
    const hit = pw.find((e) => e.name === spec.user);
    if (!hit) {
      throw new TsbError('TSB4010', `unable to find user ${spec.user}: no matching entries in passwd file`, {
        span, hint: 'create the user in an earlier step (RUN useradd …) or use a numeric uid.',
      });
    }
    uid = hit.uid;
    gid = hit.gid;
  }
  if (spec.group !== undefined && spec.group !== '') {
    if (isNum(spec.group)) gid = Number(spec.group);
    else {
      const gr = parseGroup((await readEtc('/etc/group')) ?? '');
      const hit = gr.find((e) => e.name === spec.group);
      if (!hit) {
        throw new TsbError('TSB4011', `unable to find group ${spec.group}: no matching entries in group file`, {
          span, hint: 'create the group in an earlier step or use a numeric gid.',
        });
      }
      gid = hit.gid;
    }
  }
  // A numeric uid alone means gid = uid (BuildKit's ByID), without reading /etc/passwd.
  if (gid === undefined) gid = uid;
  return { uid, gid };
}
