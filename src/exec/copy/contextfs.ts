/**
 * The build context as a COPY source (SourceFS over src/plan/context's BuildContext): entries are
 * the walked, .dockerignore-filtered set; symlinks resolve inside the context only (TSB4001 when
 * one leads out). Files keep their mode and mtime; their owner is 0:0 in the image (BuildKit's
 * context transfer drops host ownership), so `uid`/`gid` are left out here.
 */
import { lstatSync } from 'node:fs';
import type { BuildContext, CtxEntry } from '../../plan/context.js';
import type { SourceFS, SrcNode } from './select.js';

export class ContextFS implements SourceFS {
  /** Nodes already made (a cold COPY asks for each entry three times: two selections and its key). */
  private readonly nodes = new Map<CtxEntry, SrcNode>();

  constructor(readonly ctx: BuildContext) {}

  private node(e: CtxEntry): SrcNode {
    let n = this.nodes.get(e);
    if (n === undefined) {
      const o: { -readonly [K in keyof SrcNode]: SrcNode[K] } = {
        path: e.rel, type: e.type, perm: e.mode & 0o7777, size: e.size,
        mtime: Number(e.mtimeNs / 1_000_000_000n),
      };
      if (e.type === 'file') o.linkId = `ino:${e.ino}`;
      if (e.linkTarget !== undefined) o.linkTarget = e.linkTarget;
      if (e.type === 'other') Object.assign(o, this.special(e));
      n = o;
      this.nodes.set(e, n);
    }
    return n;
  }

  /** Fifo, device (with its numbers, read at copy time: rare) or socket. */
  private special(e: CtxEntry): Pick<SrcNode, 'special' | 'devmajor' | 'devminor'> {
    const fmt = e.mode & 0o170000;
    if (fmt === 0o010000) return { special: 'fifo' };
    if (fmt === 0o020000 || fmt === 0o060000) {
      let rdev = 0;
      try { rdev = lstatSync(this.ctx.abs(e.rel)).rdev; } catch { /* vanished: 0,0 */ }
      // glibc's gnu_dev_major/minor split of a 64-bit dev_t.
      const major = ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
      const minor = (rdev & 0xff) | ((rdev >>> 12) & ~0xff);
      return { special: fmt === 0o020000 ? 'char' : 'block', devmajor: major, devminor: minor };
    }
    return { special: 'socket' };
  }

  async lstat(path: string): Promise<SrcNode | undefined> {
    return this.lstatSync(path);
  }

  lstatSync(path: string): SrcNode | undefined {
    const e = this.ctx.get(path);
    return e ? this.node(e) : undefined;
  }

  async readdir(path: string): Promise<readonly string[]> {
    return this.ctx.children(path);
  }

  readdirSync(path: string): readonly string[] {
    return this.ctx.children(path);
  }

  async resolve(path: string): Promise<SrcNode | undefined> {
    const e = this.ctx.resolve(path, true);
    return e ? this.node(e) : undefined;
  }

  /** Key text of an entry: type, mode, content digest or link target (never mtime). */
  async keyOf(node: SrcNode): Promise<string> {
    const perm = node.perm.toString(8).padStart(4, '0');
    if (node.type === 'file') return `file ${perm} 0:0 ${await this.ctx.digest(node.path)}`;
    if (node.type === 'symlink') return `symlink ${perm} 0:0 ${node.linkTarget}`;
    if (node.special !== undefined) return `${node.special} ${perm} 0:0 ${node.devmajor ?? 0},${node.devminor ?? 0}`;
    return `${node.type} ${perm} 0:0 -`;
  }

  absPath(path: string): string {
    return this.ctx.abs(path);
  }
}
