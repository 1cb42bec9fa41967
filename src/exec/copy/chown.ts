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

/**
 * BuildKit's rules (checked against 0.25): numbers are used as they are; a name found in the
 * image's /etc/passwd brings its uid and primary gid. A name NOT found while /etc/passwd exists
 * resolves to uid 0 (BuildKit does not fail COPY --chown or WORKDIR then); without an
 * /etc/passwd at all a name is an error. An unknown group name falls back like an absent group:
 * the user's primary gid, else gid = uid.
 */
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
    const text = await readEtc('/etc/passwd');
    if (text === undefined) {
      throw new TsbError('TSB4010', `unable to find user ${spec.user}: the image has no /etc/passwd`, {
        span, hint: 'create the user in an earlier step (RUN useradd …) or use a numeric uid.',
      });
    }
    const hit = parsePasswd(text).find((e) => e.name === spec.user);
    uid = hit?.uid ?? 0;
    gid = hit?.gid;
  }
  if (spec.group !== undefined && spec.group !== '') {
    if (isNum(spec.group)) gid = Number(spec.group);
    else {
      const text = await readEtc('/etc/group');
      if (text === undefined) {
        throw new TsbError('TSB4011', `unable to find group ${spec.group}: the image has no /etc/group`, {
          span, hint: 'create the group in an earlier step or use a numeric gid.',
        });
      }
      const hit = parseGroup(text).find((e) => e.name === spec.group);
      if (hit) gid = hit.gid;
    }
  }
  // A numeric uid alone means gid = uid (BuildKit's ByID), without reading /etc/passwd.
  if (gid === undefined) gid = uid;
  return { uid, gid };
}
