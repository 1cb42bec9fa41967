/**
 * Two pure helpers the sandbox init runs INSIDE the new namespaces. They are shipped to the init
 * as source text (Function.prototype.toString), so each must be self-contained: no imports, no
 * references to anything outside its own body (types are fine: they are erased).
 */
import type * as NodeFs from 'node:fs';

export interface JoinedPath {
  /** Path relative to the root, resolved (no symlinks, no `..`), '' for the root itself. */
  rel: string;
  /** Index (in rel's components) of the first component that does not exist; -1 when it all exists. */
  missingFrom: number;
}

/**
 * Resolve `unsafe` inside `root` the way the kernel would after a chroot: `..` stops at the root
 * and absolute symlinks restart at the root, so an image's symlinks can never lead a mount outside
 * its root filesystem (what runc's securejoin does). Components that do not exist are kept as
 * written (the caller creates them). Nothing can change the tree concurrently: no process runs
 * in the root yet.
 */
export function secureJoin(fs: typeof NodeFs, root: string, unsafe: string): JoinedPath {
  let todo = unsafe.split('/').filter((p) => p !== '' && p !== '.');
  const cur: string[] = [];
  let missingFrom = -1;
  let links = 0;
  while (todo.length > 0) {
    const p = todo.shift()!;
    if (p === '..') {
      cur.pop();
      if (missingFrom >= cur.length) missingFrom = -1;
      continue;
    }
    if (missingFrom >= 0) { cur.push(p); continue; }
    const full = root + '/' + [...cur, p].join('/');
    let st: NodeFs.Stats | undefined;
    try { st = fs.lstatSync(full); } catch { st = undefined; }
    if (st === undefined) {
      missingFrom = cur.length;
      cur.push(p);
      continue;
    }
    if (st.isSymbolicLink()) {
      if (++links > 40) throw new Error(`too many levels of symbolic links resolving ${unsafe}`);
      const target = fs.readlinkSync(full);
      if (target.startsWith('/')) cur.length = 0;
      todo = target.split('/').filter((q) => q !== '' && q !== '.').concat(todo);
      continue;
    }
    cur.push(p);
  }
  return { rel: cur.join('/'), missingFrom };
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups for setgroups(2). */
  sgids: number[];
  home: string;
}

/**
 * Docker's USER resolution (libcontainer's GetExecUser): `""` = root; `name|uid[:group|gid]`.
 * A numeric uid missing from /etc/passwd is used as is (gid 0, home /); a missing name is an
 * error. With no group given, the supplementary groups are every group listing the user's name;
 * with a group given, it is the primary group and there are no supplementary ones.
 * Throws Error with Docker's wording ("unable to find user app: no matching entries in passwd file").
 */
export function resolveUser(spec: string, passwd: string | undefined, group: string | undefined): ResolvedUser {
  const colon = spec.indexOf(':');
  const userArg = colon < 0 ? spec : spec.slice(0, colon);
  const groupArg = colon < 0 ? '' : spec.slice(colon + 1);
  const numeric = (s: string): number | undefined => {
    if (!/^[0-9]+$/.test(s)) return undefined;
    const n = Number(s);
    return n <= 0x7fffffff ? n : undefined;
  };
  if (userArg !== '' && numeric(userArg) === undefined && /^[0-9]+$/.test(userArg)) {
    throw new Error(`uids and gids must be in range 0-2147483647`);
  }
  const pw = (passwd ?? '').split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(':'))
    .filter((f) => f.length >= 4 && numeric(f[2]!) !== undefined && numeric(f[3]!) !== undefined)
    .map((f) => ({ name: f[0]!, uid: numeric(f[2]!)!, gid: numeric(f[3]!)!, home: f[5] || '/' }));
  const gr = (group ?? '').split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(':'))
    .filter((f) => f.length >= 3 && numeric(f[2]!) !== undefined)
    .map((f) => ({ name: f[0]!, gid: numeric(f[2]!)!, members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) }));

  const user = { name: '', uid: 0, gid: 0, home: '/' };
  const uidArg = numeric(userArg);
  const match = pw.find((u) => (userArg === '' ? u.uid === 0 : uidArg !== undefined ? u.uid === uidArg : u.name === userArg));
  if (match) Object.assign(user, match);
  else if (userArg !== '') {
    if (uidArg === undefined) throw new Error(`unable to find user ${userArg}: no matching entries in passwd file`);
    user.uid = uidArg;
  }
  let sgids: number[] = [];
  if (groupArg !== '' || user.name !== '') {
    const gidArg = numeric(groupArg);
    const groups = gr.filter((g) => (groupArg === '' ? g.members.includes(user.name) : gidArg !== undefined ? g.gid === gidArg : g.name === groupArg));
    if (groupArg !== '') {
      if (groups.length > 0) user.gid = groups[0]!.gid;
      else if (gidArg !== undefined) user.gid = gidArg;
      else throw new Error(`unable to find group ${groupArg}: no matching entries in group file`);
    } else {
      sgids = [...new Set(groups.map((g) => g.gid))];
    }
  }
  return { uid: user.uid, gid: user.gid, sgids, home: user.home };
}
