/**
 * Taking the sandbox's own mount points back out of the writable layer.
 *
 * To mount /proc, /dev, /sys, /etc/hosts, secrets, caches… the target must exist in the root.
 * When the image lacks it, the init creates it through the overlay, so it lands in the step's
 * upper dir (and overlayfs may copy up its parent dirs). The init reports every such entry with
 * its stat taken after setup (CreatedEntry). After the run we remove each one the command left
 * exactly as it was (same inode, mode, owner, size, mtime and ctime) and, for a directory, only
 * when everything left in it is also being removed. So `RUN touch /etc/hosts.d` on an image
 * without /etc keeps /etc, and an image without /proc yields a diff without /proc.
 */
import { lstatSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import type { CreatedEntry } from './init.js';

/** Returns the relative paths removed, deepest first. */
export function removeCreatedMountpoints(writable: string, entries: readonly CreatedEntry[]): string[] {
  const sorted = [...entries].sort((a, b) => b.rel.split('/').length - a.rel.split('/').length || (a.rel < b.rel ? 1 : -1));
  const untouched = new Set<string>();
  const kind = new Map<string, 'dir' | 'other'>();
  // Decide on the state the command left, before removing anything (removals change parents' mtime).
  for (const e of sorted) {
    let st;
    try { st = lstatSync(`${writable}/${e.rel}`, { bigint: true }); } catch { continue; }
    if (String(st.ino) !== e.ino || Number(st.mode) !== e.mode || Number(st.uid) !== e.uid || Number(st.gid) !== e.gid
      || String(st.size) !== e.size || String(st.mtimeNs) !== e.mtimeNs || String(st.ctimeNs) !== e.ctimeNs) continue;
    if (st.isDirectory()) {
      const children = readdirSync(`${writable}/${e.rel}`);
      if (!children.every((c) => untouched.has(`${e.rel}/${c}`))) continue;
      kind.set(e.rel, 'dir');
    } else {
      if (!st.isFile() || st.size !== 0n) continue;
      kind.set(e.rel, 'other');
    }
    untouched.add(e.rel);
  }
  const removed: string[] = [];
  for (const e of sorted) {
    const k = kind.get(e.rel);
    if (!k) continue;
    try {
      if (k === 'dir') rmdirSync(`${writable}/${e.rel}`); else unlinkSync(`${writable}/${e.rel}`);
      removed.push(e.rel);
    } catch { /* left in place: the diff shows it, which is safe */ }
  }
  return removed;
}
