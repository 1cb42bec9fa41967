/** Helpers for build tests: run the CLI in-process, list an image's filesystem from the store. */
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runMain, type CliResult } from '../helpers/cli.js';
import { LayerFS } from '../../src/exec/copy/layerfs.js';

export type RunResult = CliResult;

export async function cli(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: Buffer | string } = {}): Promise<RunResult> {
  return runMain(argv, { ...opts, env: { ...process.env, SOURCE_DATE_EPOCH: undefined, ...(opts.env ?? {}) } });
}

export function tmp(prefix = 'tsb-build-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Write files: { 'a/b.txt': 'content', 'dir/': null (empty dir) }. */
export function writeTree(root: string, files: Record<string, string | null>): void {
  for (const [p, c] of Object.entries(files)) {
    const abs = join(root, p);
    if (c === null) { mkdirSync(abs, { recursive: true }); continue; }
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, c);
  }
}

export interface ImageInfo { manifestDigest: string; config: any; layers: string[]; fs: LayerFS; store: string }

export function readImageFromStore(store: string, name: string): ImageInfo {
  const index = JSON.parse(readFileSync(join(store, 'index.json'), 'utf8'));
  const full = name.includes('/') ? name : `docker.io/library/${name.includes(':') ? name : name + ':latest'}`;
  const m = index.manifests.find((d: any) => d.annotations?.['org.opencontainers.image.ref.name'] === full);
  if (!m) throw new Error(`no ${full} in ${store}: ${JSON.stringify(index.manifests.map((d: any) => d.annotations))}`);
  const blob = (d: string) => join(store, 'blobs', 'sha256', d.slice(7));
  const manifest = JSON.parse(readFileSync(blob(m.digest), 'utf8'));
  const config = JSON.parse(readFileSync(blob(manifest.config.digest), 'utf8'));
  const layers = manifest.layers.map((l: any) => l.digest);
  return { manifestDigest: m.digest, config, layers, fs: new LayerFS(layers.map(blob)), store };
}

/** `path type mode uid:gid content` lines of the merged filesystem, sorted. */
export async function listing(fs: LayerFS): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const name of await fs.readdir(dir)) {
      const p = dir === '' ? name : `${dir}/${name}`;
      const raw = fs.raw(p)!;
      const n = (await fs.lstat(p))!;
      let content = '';
      if (n.type === 'file') content = 'sha256:' + createHash('sha256').update(fs.readFileSync(p) ?? Buffer.alloc(0)).digest('hex').slice(0, 16);
      if (n.type === 'symlink') content = `-> ${n.linkTarget}`;
      out.push(`/${p} ${n.type} ${raw.mode.toString(8).padStart(4, '0')} ${raw.uid}:${raw.gid} ${content}`.trimEnd());
      if (n.type === 'dir') await walk(p);
    }
  };
  await walk('');
  return out;
}
