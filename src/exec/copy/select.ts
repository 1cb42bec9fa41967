/**
 * COPY/ADD source selection: which source entries a COPY names, and where each lands. Pure
 * bookkeeping over two views — the SOURCE (the build context or another stage's/image's root,
 * through `SourceFS`) and the DESTINATION image root below the new layer (`DestView`) — producing
 * a sorted list of layer entries. Nothing here writes files.
 *
 * Docker/BuildKit rules implemented (Dockerfile reference, COPY):
 * - sources are relative to the source root (a leading `/` is allowed and means the root);
 *   wildcards use Go's filepath.Match per path element (`*` never crosses `/`); a wildcard that
 *   matches nothing is allowed (BuildKit's AllowEmptyWildcard), a literal that is missing is not.
 * - a directory source copies its CONTENTS (not the directory itself) into the destination;
 *   the destination directory takes the source directory's mode (BuildKit copies its file info).
 * - a file source lands AT dest, unless dest ends with `/`, several sources/matches are given,
 *   or dest already is a directory in the image: then at dest/<basename>.
 * - the source path itself is followed when it is a symlink (inside the source root only: a link
 *   out of it is TSB4001); symlinks below a copied directory are copied as links.
 * - missing destination parents are created (0755, owned by the --chown owner, else 0:0).
 * - --parents keeps the source's path below the root (a `/./` in the source is the pivot);
 *   --exclude patterns (patternmatcher semantics) are matched against paths relative to the
 *   source directory; a file source itself is never excluded (as BuildKit).
 */
import { TsbError, type Span } from '../../errors.js';
import { IgnoreMatcher, cleanPath } from '../../plan/dockerignore.js';
import { compileElement, hasMeta, unescapeElement } from './glob.js';

export type NodeType = 'file' | 'dir' | 'symlink' | 'other';

export interface SrcNode {
  /** Root-relative path, no leading slash ('' = root). After resolve(): the real path. */
  readonly path: string;
  readonly type: NodeType;
  /** Permission bits (07777). */
  readonly perm: number;
  readonly size: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  readonly linkTarget?: string;
  /** Identity of the file's data (inode, or a layer's hardlink target): equal ids are hardlinks. */
  readonly linkId?: string;
  /** Owner in the source (images/stages); context files are owned by 0:0 in the result. */
  readonly uid?: number;
  readonly gid?: number;
  /** type 'other': which special file (COPY recreates fifos and devices like `cp -a` as root; sockets are skipped). */
  readonly special?: 'fifo' | 'char' | 'block' | 'socket';
  readonly devmajor?: number;
  readonly devminor?: number;
}

export interface SourceFS {
  lstat(path: string): Promise<SrcNode | undefined>;
  /** Sorted child names of a directory. */
  readdir(path: string): Promise<readonly string[]>;
  /**
   * Optional synchronous forms (a source held in memory, like the build context, offers them):
   * the directory walk then costs no await per entry.
   */
  lstatSync?(path: string): SrcNode | undefined;
  readdirSync?(path: string): readonly string[];
  /** lstat after following symlinks inside the root (TSB4001 when a link leads out). */
  resolve(path: string): Promise<SrcNode | undefined>;
}

/** What the destination image (below the new layer) holds, for "is dest a directory?" and parents. */
export interface DestView {
  /** Type of the entry at an absolute-in-image path after following symlinks in the image, or undefined. */
  typeOf(path: string): Promise<NodeType | undefined>;
}

export interface CopyRequest {
  /** Source words after expansion. */
  readonly sources: readonly string[];
  /** Destination after expansion, absolute (resolved against WORKDIR); keeps a trailing `/`. */
  readonly dest: string;
  readonly parents?: boolean;
  readonly exclude?: readonly string[];
  /** Wildcards that match nothing are allowed (BuildKit's default for COPY/ADD). */
  readonly allowEmptyWildcard?: boolean;
  readonly span?: Span;
  /** Span of each source word (same order as `sources`), for errors about one source. */
  readonly sourceSpans?: readonly (Span | undefined)[];
}

export interface CopyItem {
  /** Layer path of the new entry (no leading slash). */
  readonly dest: string;
  /** The source entry (after following a top-level link). */
  readonly src: SrcNode;
  /** Created as a missing parent of the destination (not copied from a source). */
  readonly implicitDir?: boolean;
  /** The destination directory a directory source's CONTENTS go into (not a copy of the source dir). */
  readonly contentsRoot?: boolean;
  /**
   * Which source match the item came from (0, 1, …). BuildKit copies each match on its own, so
   * hardlinks are kept only between files of the same match (a directory tree): two top-level
   * sources naming one inode (`COPY --from=busybox /bin/ls /bin/cat /t/`) give two files.
   */
  readonly group?: number;
}

export interface Selection {
  readonly items: CopyItem[];
  /** Source paths read (for the cache key: exactly these files' content and metadata). */
  readonly sourcePaths: string[];
}

/** Join a dest path that may or may not be absolute with WORKDIR (Docker's pathRelativeToWorkingDir). */
export function destAgainstWorkdir(dest: string, workdir: string): string {
  const trailing = dest.endsWith('/') || dest === '.' || dest === '' || dest.endsWith('/.');
  let abs = dest.startsWith('/') ? dest : `${workdir.replace(/\/+$/, '')}/${dest}`;
  abs = cleanPath(abs);
  if (trailing && !abs.endsWith('/')) abs += '/';
  return abs;
}

function notFound(src: string, span?: Span): TsbError {
  return new TsbError('TSB4004', `failed to compute cache key: "/${src}": not found`, {
    span, hint: 'the path does not exist in the build context (or is excluded by .dockerignore).',
  });
}

/** Expand one source (wildcards per element), returning matching root-relative paths, sorted. */
export async function expandSource(fs: SourceFS, src: string, span?: Span): Promise<string[]> {
  const clean = cleanPath('/' + src).slice(1);
  if (clean === '') return [''];
  const parts = clean.split('/');
  if (clean.startsWith('..')) throw notFound(src, span);
  if (!hasMeta(clean)) return [clean];
  let cur: string[] = [''];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const next: string[] = [];
    for (const base of cur) {
      if (!hasMeta(part)) {
        const p = base === '' ? unescapeElement(part) : `${base}/${unescapeElement(part)}`;
        if (i === parts.length - 1) { if (await fs.lstat(p)) next.push(p); }
        else next.push(p);
        continue;
      }
      let re: RegExp;
      try { re = compileElement(part); } catch (e) {
        throw new TsbError('TSB4005', `invalid wildcard in source "${src}"`, { span, cause: e, hint: 'check [ ] brackets and \\ escapes.' });
      }
      const dir = await fs.resolve(base);
      if (!dir || dir.type !== 'dir') continue;
      for (const name of await fs.readdir(dir.path)) {
        if (re.test(name)) next.push(base === '' ? name : `${base}/${name}`);
      }
    }
    cur = next;
  }
  return cur.sort();
}

export async function selectCopy(fs: SourceFS, dest: DestView, req: CopyRequest): Promise<Selection> {
  const items: CopyItem[] = [];
  const sourcePaths: string[] = [];
  const exclude = req.exclude && req.exclude.length > 0
    ? IgnoreMatcher.fromText(req.exclude.join('\n'), '--exclude') : undefined;

  // Expand everything first: the number of matches decides whether dest is a directory.
  const matches: { match: string; pivot: string | undefined; wildcard: boolean; span: Span | undefined }[] = [];
  for (const [si, s] of req.sources.entries()) {
    const span = req.sourceSpans?.[si] ?? req.span;
    const pivotAt = req.parents ? s.indexOf('/./') : -1;
    const pivot = pivotAt >= 0 ? cleanPath('/' + s.slice(0, pivotAt)).slice(1) : undefined;
    const wildcard = hasMeta(s);
    const ms = await expandSource(fs, s, span);
    if (ms.length === 0 && !(wildcard && req.allowEmptyWildcard !== false)) throw notFound(cleanPath('/' + s).slice(1), span);
    for (const m of ms) matches.push({ match: m, pivot, wildcard, span });
  }
  const destPath = cleanPath(req.dest.startsWith('/') ? req.dest : '/' + req.dest);
  const destRel = destPath.slice(1);
  // Only a trailing slash or an existing directory makes the destination a directory: several
  // file sources onto `/notadir` each land AT it, the last one winning (BuildKit 0.25).
  const destType = await dest.typeOf(destPath);
  const destIsDir = req.dest.endsWith('/') || destType === 'dir';

  const seen = new Map<string, number>();
  let group = 0;
  const push = (it: CopyItem) => {
    const item: CopyItem = it.contentsRoot ? { dest: it.dest, src: it.src, contentsRoot: true, group } : { dest: it.dest, src: it.src, group };
    const at = seen.get(item.dest);
    if (at !== undefined) items[at] = item; // a later source wins, as with sequential copies
    else { seen.set(item.dest, items.length); items.push(item); }
  };

  for (const [mi, { match, pivot, span }] of matches.entries()) {
    group = mi;
    let node: SrcNode | undefined;
    try { node = await fs.resolve(match); } catch (e) { throw e instanceof TsbError ? e.withSpan(span) : e; }
    if (!node) throw notFound(match, span);
    let target: string;
    if (req.parents) {
      const keep = pivot !== undefined && (match === pivot || match.startsWith(pivot + '/'))
        ? match.slice(pivot.length).replace(/^\//, '') : match;
      target = joinRel(destRel, keep);
    } else if (node.type === 'dir') target = destRel;
    else target = destIsDir ? joinRel(destRel, baseName(match)) : destRel;

    if (node.type === 'dir') {
      const existing = req.parents ? undefined : await dest.typeOf('/' + target);
      if (existing !== undefined && existing !== 'dir') {
        throw new TsbError('TSB4012', `cannot copy to non-directory: /${target}`, {
          span, hint: 'the destination exists in the image as a file; pick another path or end it with / to copy into a directory.',
        });
      }
      sourcePaths.push(node.path);
      push({ dest: target, src: node, contentsRoot: true });
      await walkDir(fs, node.path, target, '', exclude, push, sourcePaths);
    } else {
      // --exclude applies below a directory source only: a file named (or matched by a wildcard)
      // is copied whatever the patterns say (BuildKit 0.25: `--exclude=*.txt src/a/*` keeps
      // src/a/keep.txt).
      sourcePaths.push(node.path);
      push({ dest: target, src: node });
    }
  }
  return { items, sourcePaths };
}

async function walkDir(
  fs: SourceFS, srcDir: string, destDir: string, relBase: string, exclude: IgnoreMatcher | undefined,
  push: (i: CopyItem) => void, sourcePaths: string[],
): Promise<void> {
  const names = fs.readdirSync ? fs.readdirSync(srcDir) : await fs.readdir(srcDir);
  for (const name of names) {
    const sp = srcDir === '' ? name : `${srcDir}/${name}`;
    const rel = relBase === '' ? name : `${relBase}/${name}`;
    const node = fs.lstatSync ? fs.lstatSync(sp) : await fs.lstat(sp);
    if (!node) continue;
    const ignored = exclude?.ignores(rel) ?? false;
    if (node.type === 'dir') {
      if (ignored && !exclude!.mayReincludeBelow(rel)) continue;
      const before = sourcePaths.length;
      const dirItem = { dest: joinRel(destDir, name), src: node };
      const children: CopyItem[] = [];
      await walkDir(fs, sp, dirItem.dest, rel, exclude, (i) => children.push(i), sourcePaths);
      if (ignored && sourcePaths.length === before) continue;
      sourcePaths.splice(before, 0, sp);
      push(dirItem);
      for (const c of children) push(c);
    } else {
      if (ignored) continue;
      sourcePaths.push(sp);
      push({ dest: joinRel(destDir, name), src: node });
    }
  }
}

export function joinRel(a: string, b: string): string {
  if (a === '') return b;
  if (b === '') return a;
  return `${a}/${b}`;
}

export function baseName(p: string): string {
  const i = p.lastIndexOf('/');
  return i < 0 ? p : p.slice(i + 1);
}

/**
 * The parent directories (layer paths) an item list needs that the destination image lacks,
 * shallowest first. They are created 0755 with the copy's owner. A parent that exists as a
 * non-directory is TSB4013.
 */
export async function missingParents(dest: DestView, items: readonly CopyItem[], span?: Span): Promise<string[]> {
  const present = new Set<string>(items.filter((i) => i.src.type === 'dir').map((i) => i.dest));
  const checked = new Map<string, boolean>();
  const out: string[] = [];
  for (const it of items) {
    const parts = it.dest.split('/');
    let p = '';
    for (let k = 0; k < parts.length - 1; k++) {
      p = p === '' ? parts[k]! : `${p}/${parts[k]}`;
      if (present.has(p)) continue;
      let exists = checked.get(p);
      if (exists === undefined) {
        const t = await dest.typeOf('/' + p);
        // A parent that exists as a file cannot hold the copy (BuildKit: `mkdir /etc/passwd: not a directory`).
        if (t !== undefined && t !== 'dir') {
          throw new TsbError('TSB4013', `mkdir /${p}: not a directory`, {
            span, hint: `/${p} is a ${t === 'other' ? 'special file' : t} in the image; the destination must lie under directories.`,
          });
        }
        exists = t !== undefined;
        checked.set(p, exists);
        if (!exists) out.push(p);
      }
    }
  }
  return out;
}
