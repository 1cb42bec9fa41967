/**
 * USER resolution against an image's /etc/passwd and /etc/group, read through a MergedView (so
 * symlinked /etc files resolve inside the image). Semantics follow runc's GetExecUser, which
 * Docker and BuildKit use:
 * - spec is `user[:group]`; an empty user means uid 0 (looked up like `0`).
 * - user: the first passwd entry whose name equals it, or whose uid equals it when numeric. A
 *   match gives uid, primary gid and home. No match: a number is used as the uid with gid 0;
 *   a name is an error (TSB4410), also when /etc/passwd is missing.
 * - group given: the first group whose name equals it (or gid, when numeric) sets the gid; no
 *   match: a number is used, a name is an error (TSB4411). Supplementary groups are then empty.
 * - group not given and the user matched by passwd: supplementary gids = every group listing the
 *   user's name as a member (file order, duplicates of the primary gid kept as runc does).
 * - ids must be 0..2^31-1.
 */
import { LayerCodes, layerError } from './errors.js';
import type { MergedView } from './view.js';

export interface ExecUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  /** passwd name when the user matched an entry. */
  name?: string;
  /** passwd home directory ('/' when unknown, as Docker sets HOME). */
  home: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

function readLines(view: MergedView, path: string): string[] | undefined {
  const e = view.entry(path, { follow: true });
  if (!e || !e.stat.isFile()) return undefined;
  return view.readFile(path).toString('utf8').split('\n');
}

function parseId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 0x7fffffff ? n : -1;
}

function parsePasswd(lines: string[]): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const l of lines) {
    const line = l.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    const uid = parseId(f[2] ?? ''), gid = parseId(f[3] ?? '');
    if (f[0] === undefined || uid === undefined || uid < 0 || gid === undefined || gid < 0) continue;
    out.push({ name: f[0], uid, gid, home: f[5] || '/' });
  }
  return out;
}

function parseGroup(lines: string[]): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const l of lines) {
    const line = l.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    const gid = parseId(f[2] ?? '');
    if (f[0] === undefined || gid === undefined || gid < 0) continue;
    out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean) });
  }
  return out;
}

function rangeError(what: string, spec: string): never {
  throw layerError(what === 'user' ? LayerCodes.UNKNOWN_USER : LayerCodes.UNKNOWN_GROUP,
    `${what} id ${JSON.stringify(spec)} is out of range (0..2147483647)`, `Use a ${what} id between 0 and 2147483647.`);
}

export function lookupUser(view: MergedView, userSpec: string): ExecUser {
  const i = userSpec.indexOf(':');
  const userArg = i < 0 ? userSpec : userSpec.slice(0, i);
  const groupArg = i < 0 ? '' : userSpec.slice(i + 1);
  const res: ExecUser = { uid: 0, gid: 0, additionalGids: [], home: '/' };
  let matched: PasswdEntry | undefined;
  // runc: an empty user means the default uid (0), looked up like any number.
  const user = userArg === '' ? '0' : userArg;
  const uidNum = parseId(user);
  if (uidNum === -1) rangeError('user', user);
  const passwd = readLines(view, '/etc/passwd');
  matched = passwd && parsePasswd(passwd).find((u) => u.name === user || (uidNum !== undefined && u.uid === uidNum));
  if (matched) {
    res.uid = matched.uid; res.gid = matched.gid; res.home = matched.home; res.name = matched.name;
  } else if (uidNum !== undefined) {
    res.uid = uidNum;
  } else {
    throw layerError(LayerCodes.UNKNOWN_USER,
      `unable to find user ${user}: ${passwd ? 'no matching entries in passwd file' : '/etc/passwd does not exist in the image'}`,
      'Create the user in an earlier RUN (e.g. adduser), or use a numeric uid.');
  }
  if (groupArg !== '' || matched) {
    const lines = readLines(view, '/etc/group');
    const groups = lines ? parseGroup(lines) : [];
    if (groupArg !== '') {
      const gidNum = parseId(groupArg);
      if (gidNum === -1) rangeError('group', groupArg);
      const g = groups.find((x) => x.name === groupArg || (gidNum !== undefined && x.gid === gidNum));
      if (g) res.gid = g.gid;
      else if (gidNum !== undefined) res.gid = gidNum;
      else {
        throw layerError(LayerCodes.UNKNOWN_GROUP,
          `unable to find group ${groupArg}: ${lines ? 'no matching entries in group file' : '/etc/group does not exist in the image'}`,
          'Create the group in an earlier RUN (e.g. addgroup), or use a numeric gid.');
      }
    } else if (matched) {
      res.additionalGids = groups.filter((g) => g.members.includes(matched!.name)).map((g) => g.gid);
    }
  }
  return res;
}
