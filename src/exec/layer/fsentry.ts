/** Host file → LayerEntry (shared by the differ and the flattener). */
import { readlinkSync, type Stats } from 'node:fs';
import { type LayerEntry, keepXattr } from './entry.js';
import { fsError } from './errors.js';
import { decodeName, fsPath } from './names.js';
import { devMajor, devMinor, lgetxattr, llistxattr } from './native.js';

/** readlink(2) of a host path, the target decoded byte-exactly (see names.ts). */
export function readLinkName(host: string): string {
  return decodeName(readlinkSync(fsPath(host), { encoding: 'buffer' }));
}

export function statType(st: Stats): LayerEntry['type'] | 'socket' | undefined {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  return undefined;
}

/** All xattr names plus the values keepXattr() admits. */
export function readXattrs(host: string): { kept: Record<string, Buffer>; names: string[] } {
  let names: string[];
  try { names = llistxattr(host); } catch (e) { throw fsError('listxattr', host, e); }
  const kept: Record<string, Buffer> = {};
  for (const n of names.sort()) {
    if (!keepXattr(n)) continue;
    const v = lgetxattr(host, n);
    if (v !== undefined) kept[n] = v;
  }
  return { kept, names };
}

/** The entry for a host file (not a whiteout, not a socket); content streamed from `host` later. */
export function entryFromStat(path: string, host: string, st: Stats, xattrs: Record<string, Buffer>): LayerEntry {
  const type = statType(st);
  if (type === undefined || type === 'socket') throw new Error(`entryFromStat: unsupported file type at ${host}`);
  const e: LayerEntry = {
    path, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: Math.floor(st.mtimeMs / 1000), xattrs,
  };
  if (type === 'file') { e.source = { path: host }; e.size = st.size; }
  else if (type === 'symlink') { try { e.linkname = readLinkName(host); } catch (err) { throw fsError('readlink', host, err); } }
  else if (type === 'char' || type === 'block') { e.devmajor = devMajor(st.rdev); e.devminor = devMinor(st.rdev); }
  return e;
}
