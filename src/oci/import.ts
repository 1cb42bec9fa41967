/**
 * `tsbuild import ROOTFS.tar NAME:TAG [--change 'CMD …']` — like `docker import`: the tarball
 * (plain, gzip, bzip2, xz or zstd) becomes the single layer of a new image; `--change` lines are
 * Dockerfile instructions applied to the config (CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD USER VOLUME
 * WORKDIR STOPSIGNAL HEALTHCHECK — docker's list), parsed by the real Dockerfile parser and IR
 * (src/syntax, src/ir) and expanded with the image's environment like docker does.
 *
 * The layer's contents are not inspected here (docker does not either); unpacking it later goes
 * through the hostile-archive-safe unpacker. Codes: TSB6124 (instruction not allowed in --change).
 */
import { Readable } from 'node:stream';
import { TsbError } from '../errors.js';
import type { Descriptor, Platform, Store } from '../../store/types.js';
import { parse } from '../syntax/index.js';
import { expandWord, parseGoDuration, processWords, toIR, type Command, type StageInstr } from '../ir/index.js';
import { decompressStream } from '../exec/layer/unpack.js';
import { DEFAULT_PLATFORM, epochToRFC3339, layerDescriptor, withLease, writeImage, type ContainerConfig, type ImageConfig } from './image.js';
import { registerSource } from '../cli/render.js';

const ALLOWED = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL', 'HEALTHCHECK']);

export interface ImportOptions {
  changes?: string[];
  /** Commit message (history comment). */
  message?: string;
  platform?: Platform;
  /** Seconds; default now. */
  created?: number;
  /** What the history says it was imported from (docker: the file name or "-"). */
  sourceName?: string;
}

function envMap(env: string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of env ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) m.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return m;
}

function argv(c: Command): string[] {
  return c.form === 'exec' ? [...c.argv] : ['/bin/sh', '-c', c.text];
}

function nanos(w: { raw: string } | undefined): number | undefined {
  if (!w) return undefined;
  const v = parseGoDuration(w.raw);
  // A string is the parser's error message (the IR already validated the flag, so rare).
  if (typeof v === 'string') throw new TsbError('TSB6124', `bad duration "${w.raw}" in --change: ${v}`, { exitCode: 2 });
  return v;
}

/** Apply `--change` lines to a container config (returns a new one). TSB1xxx/2xxx from the parser; TSB6124. */
export function applyChanges(cfg: ContainerConfig, changes: readonly string[]): ContainerConfig {
  if (changes.length === 0) return cfg;
  const out: ContainerConfig = structuredClone(cfg);
  const file = '--change';
  const text = `FROM scratch\n${changes.map((c) => c.replace(/\r?\n/g, ' ')).join('\n')}\n`;
  registerSource(file, text);
  const ir = toIR(parse(text, file));
  const instrs: readonly StageInstr[] = ir.stages[0]?.instructions ?? [];
  for (const ins of instrs) {
    if (!ALLOWED.has(ins.kind)) {
      throw new TsbError('TSB6124', `${ins.kind} cannot be used with --change`, {
        span: ins.span, hint: 'allowed: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL, HEALTHCHECK.', exitCode: 2,
      });
    }
    const env = envMap(out.Env);
    const x = (w: { raw: string; expand: boolean; span: import('../errors.js').Span }) => expandWord(w, env, ir.escapeToken).value;
    switch (ins.kind) {
      case 'CMD': out.Cmd = argv(ins.command); break;
      case 'ENTRYPOINT': out.Entrypoint = argv(ins.command); break;
      case 'ENV': {
        for (const p of ins.pairs) {
          const k = x(p.key);
          // Docker expands every pair with the environment from BEFORE the instruction
          // (`ENV a=1 b=$a` gives b the old a), so `env` is not updated inside the loop.
          const v = p.value ? x(p.value) : '';
          const list = (out.Env ?? []).filter((e) => !e.startsWith(`${k}=`));
          const at = (out.Env ?? []).findIndex((e) => e.startsWith(`${k}=`));
          if (at >= 0) { list.splice(at, 0, `${k}=${v}`); out.Env = list; } else out.Env = [...list, `${k}=${v}`];
        }
        break;
      }
      case 'LABEL':
        for (const p of ins.pairs) out.Labels = { ...(out.Labels ?? {}), [x(p.key)]: p.value ? x(p.value) : '' };
        break;
      case 'EXPOSE':
        for (const w of ins.ports) {
          for (const port of processWords(w.raw, env, ir.escapeToken)) {
            const k = port.includes('/') ? port.toLowerCase() : `${port}/tcp`;
            out.ExposedPorts = { ...(out.ExposedPorts ?? {}), [k]: {} };
          }
        }
        break;
      case 'VOLUME':
        for (const w of ins.paths) out.Volumes = { ...(out.Volumes ?? {}), [x(w)]: {} };
        break;
      case 'USER': out.User = x(ins.user); break;
      case 'WORKDIR': {
        const p = x(ins.path);
        const base = out.WorkingDir || '/';
        out.WorkingDir = p.startsWith('/') ? p : `${base.replace(/\/$/, '')}/${p}`;
        break;
      }
      case 'STOPSIGNAL': out.StopSignal = x(ins.signal); break;
      case 'ONBUILD': out.OnBuild = [...(out.OnBuild ?? []), ins.expression]; break;
      case 'HEALTHCHECK': {
        if (ins.test === 'NONE') { out.Healthcheck = { Test: ['NONE'] }; break; }
        const c = ins.command;
        const h: NonNullable<ContainerConfig['Healthcheck']> = { Test: c.form === 'exec' ? ['CMD', ...c.argv] : ['CMD-SHELL', c.text] };
        const iv = nanos(ins.interval); if (iv) h.Interval = iv;
        const to = nanos(ins.timeout); if (to) h.Timeout = to;
        const sp = nanos(ins.startPeriod); if (sp) h.StartPeriod = sp;
        const si = nanos(ins.startInterval); if (si) h.StartInterval = si;
        if (ins.retries) h.Retries = Number(ins.retries.raw);
        out.Healthcheck = h;
        break;
      }
      default: break;
    }
  }
  return out;
}

/** Import a root filesystem tarball as a one-layer image; returns the manifest descriptor (ref set when `name`). */
export async function importRootfs(store: Store, source: Readable, name: string | undefined, opts: ImportOptions = {}): Promise<Descriptor> {
  const container = applyChanges({}, opts.changes ?? []);
  return withLease(store, 'import', () => importUnderLease(store, source, name, container, opts));
}

async function importUnderLease(store: Store, source: Readable, name: string | undefined, container: ContainerConfig, opts: ImportOptions): Promise<Descriptor> {
  const plain = await decompressStream(source);
  const layer = await store.blobs.put(plain);
  const platform = opts.platform ?? DEFAULT_PLATFORM;
  const created = epochToRFC3339(opts.created ?? Math.floor(Date.now() / 1000));
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    created,
    config: container,
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
    history: [{ created, created_by: `Imported from ${opts.sourceName ?? '-'}`, ...(opts.message ? { comment: opts.message } : {}) }],
  };
  const d = await writeImage(store, { config, layers: [layerDescriptor(layer.digest, layer.size)] });
  if (name) await store.refs.set(name, d);
  return d;
}
