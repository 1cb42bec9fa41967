/**
 * Flattening a MergedView: into a single filesystem tar (`--output type=tar`) or a directory
 * (`--output type=local`).
 *
 * Both walk the view in walk order, never follow symlinks, keep modes (incl. setuid), owners,
 * mtimes (to the nanosecond in a directory; whole seconds in a tar), symlink targets,
 * devices/fifos and keepXattr() xattrs; files sharing a host inode (hard
 * links inside one layer) stay hardlinked. The view root itself is not emitted.
 */
import { createReadStream, lstatSync, readFileSync } from 'node:fs';
import { readXattrs, entryFromStat } from './fsentry.js';
import { fsPath } from './names.js';
import { TreeWriter, type TreeWriterOptions } from './tree.js';
import type { MergedView } from './view.js';
import type { LayerWriter } from './writer.js';

/** Adds every entry of the view (below `/`) to `writer`; returns the number added. Then call writer.stream()/commit(). */
export function exportRootfs(view: MergedView, writer: LayerWriter): number {
  const inodes = new Map<string, string>();
  let n = 0;
  for (const v of view.walk('/')) {
    if (v.path === '/') continue;
    const rel = v.path.slice(1);
    const e = entryFromStat(rel, v.hostPath, v.stat, readXattrs(v.hostPath).kept);
    if (e.type === 'file' && v.stat.nlink > 1) {
      const key = `${v.stat.dev}:${v.stat.ino}`;
      const first = inodes.get(key);
      if (first !== undefined) { writer.add({ ...e, type: 'hardlink', linkname: first, source: undefined, size: undefined }); n++; continue; }
      inodes.set(key, rel);
    }
    writer.add(e);
    n++;
  }
  return n;
}

/**
 * Copies the view into `dir` (created entries replace existing ones of another type; existing
 * directories are merged). Uses TreeWriter, so nothing is written outside `dir` even when `dir`
 * already holds symlinks. Devices follow `opts.allowDevices` (default true).
 */
export async function copyViewToDir(view: MergedView, dir: string, opts: TreeWriterOptions = {}): Promise<{ entries: number; bytes: number }> {
  const tree = new TreeWriter(dir, opts);
  const inodes = new Map<string, string>();
  let entries = 0, bytes = 0;
  for (const v of view.walk('/')) {
    if (v.path === '/') continue;
    const rel = v.path.slice(1);
    const e = entryFromStat(rel, v.hostPath, v.stat, readXattrs(v.hostPath).kept);
    // Exact mtimes, as BuildKit's local exporter copies them from its snapshots (only tars round).
    const mtimeNs = lstatSync(fsPath(v.hostPath), { bigint: true }).mtimeNs;
    const meta = { mode: e.mode ?? 0o644, uid: e.uid ?? 0, gid: e.gid ?? 0, mtime: e.mtime ?? 0, mtimeNs, xattrs: e.xattrs };
    entries++;
    switch (e.type) {
      case 'file': {
        if (v.stat.nlink > 1) {
          const key = `${v.stat.dev}:${v.stat.ino}`;
          const first = inodes.get(key);
          if (first !== undefined) { tree.hardlink(rel, first); break; }
          inodes.set(key, rel);
        }
        const body = v.stat.size <= 256 << 10 ? [readFileSync(fsPath(v.hostPath))] : createReadStream(fsPath(v.hostPath));
        await tree.file(rel, meta, body, rel, v.stat.size);
        bytes += v.stat.size;
        break;
      }
      case 'dir': tree.dir(rel, meta); break;
      case 'symlink': tree.symlinkUnchecked(rel, e.linkname!, meta); break;
      case 'char': case 'block': case 'fifo': tree.device(rel, e.type, e.devmajor ?? 0, e.devminor ?? 0, meta); break;
      default: break;
    }
  }
  tree.finish();
  return { entries, bytes };
}
