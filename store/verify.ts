/**
 * `store verify [--repair]`: every blob re-hashed; every ref and cache record checked to resolve to
 * complete, uncorrupted content; the layout files parse. Leftovers of dead processes in tmp/ are
 * swept first (they are expected after a crash and are not problems).
 *
 * Problem kinds (VerifyProblem.kind), and what --repair does:
 *   layout-invalid      oci-layout missing/unreadable           → rewritten
 *   index-corrupt       index.json does not parse               → set aside as tsbuild/v1/index.json.corrupt-<time>, empty index written
 *   blob-corrupt        content does not hash to its name       → removed (the refs using it are then reported)
 *   blob-stray          a file in blobs/sha256 that is not <64 hex> → removed
 *   ref-duplicate       two index.json entries with one name     → the last one kept
 *   ref-incomplete      a name whose image lacks (or has a corrupt) manifest/config/layer → name removed
 *   cache-incomplete    a cache record whose layer/config is gone or corrupt → record removed
 *   compressed-dangling a compressed-form record naming a missing blob → entry dropped
 * Ref and cache checks run holding the index and cache locks, so a concurrent gc or rmi cannot make
 * a consistent store look broken.
 */
import { readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite, tempName } from './fsutil.js';
import { withLock } from './lock.js';
import { imageClosure, REF_NAME } from './refs.js';
import type { FsStore } from './store.js';
import type { VerifyProblem } from './types.js';

export async function runVerify(s: FsStore, opts: { repair?: boolean }): Promise<VerifyProblem[]> {
  const repair = opts.repair === true;
  const problems: VerifyProblem[] = [];
  const add = (kind: string, subject: string, message: string, repaired?: boolean) => {
    const p: VerifyProblem = { kind, subject, message };
    if (repaired !== undefined) p.repaired = repaired;
    problems.push(p);
  };
  await s.sweepTmp();

  // Layout.
  const layout = join(s.root, 'oci-layout');
  let ok = false;
  try { ok = (JSON.parse(await readFile(layout, 'utf8')) as { imageLayoutVersion?: string }).imageLayoutVersion === '1.0.0'; } catch { ok = false; }
  if (!ok) {
    if (repair) await atomicWrite(layout, JSON.stringify({ imageLayoutVersion: '1.0.0' }) + '\n', s.tmpDir, 'repairing oci-layout');
    add('layout-invalid', 'oci-layout', 'oci-layout is missing or is not {"imageLayoutVersion":"1.0.0"}', repair || undefined);
  }

  // Blobs: re-hash every one.
  const corrupt = new Set<string>();
  const blobDir = join(s.root, 'blobs', 'sha256');
  let names: string[] = [];
  try { names = await readdir(blobDir); } catch { /* none */ }
  for (const n of names) {
    if (!/^[a-f0-9]{64}$/.test(n)) {
      if (repair) await unlink(join(blobDir, n)).catch(() => undefined);
      add('blob-stray', `blobs/sha256/${n}`, `blobs/sha256/${n} is not named by a sha256 digest`, repair || undefined);
      continue;
    }
    const digest = `sha256:${n}`;
    const actual = await s.blobs.hashFile(digest);
    if (actual === undefined || actual === digest) continue; // gone meanwhile (gc) or fine
    corrupt.add(digest);
    s.blobs.forget(digest);
    if (repair) {
      const trash = tempName(s.tmpDir, 'corrupt');
      await rename(join(blobDir, n), trash).then(() => unlink(trash)).catch(() => undefined);
    }
    add('blob-corrupt', digest, `blob ${digest} is corrupt: its content hashes to ${actual} (${join(blobDir, n)})`, repair || undefined);
  }

  await withLock(s.refs.lockPath, async () => {
    let index;
    try {
      index = await s.refs.readIndex();
    } catch (e) {
      if (repair) {
        await rename(join(s.root, 'index.json'), join(s.metaDir, `index.json.corrupt-${Date.now()}`)).catch(() => undefined);
        await s.refs.writeIndex({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [] });
      }
      add('index-corrupt', 'index.json', e instanceof Error ? e.message : String(e), repair || undefined);
      return;
    }
    const keep = [];
    const seen = new Map<string, number>();
    for (const m of index.manifests) {
      const name = m.annotations?.[REF_NAME];
      if (name === undefined) { keep.push(m); continue; }
      const c = await imageClosure(s.blobs, m);
      const bad = [...c.missing, ...[...c.digests].filter((d) => corrupt.has(d)).map((d) => `corrupt blob ${d}`)];
      if (bad.length) {
        add('ref-incomplete', name, `${name} → ${m.digest}: missing ${bad.join(', ')}`, repair || undefined);
        if (repair) continue;
      }
      if (seen.has(name)) {
        add('ref-duplicate', name, `index.json names ${name} more than once`, repair || undefined);
        if (repair) keep.splice(seen.get(name)!, 1);
      }
      seen.set(name, keep.length);
      keep.push(m);
    }
    if (repair && keep.length !== index.manifests.length) await s.refs.writeIndex({ ...index, manifests: keep });
  });

  await s.cache.holding(async () => {
    const drop: string[] = [];
    for (const r of await s.cache.list()) {
      const needs = [r.layer?.digest, r.config].filter((d): d is string => d !== undefined);
      const bad: string[] = [];
      for (const d of needs) {
        if (corrupt.has(d)) bad.push(`corrupt blob ${d}`);
        else if (!(await s.blobs.has(d))) bad.push(`blob ${d}`);
      }
      if (bad.length) {
        add('cache-incomplete', r.key, `cache record ${r.key} (${r.instruction}) needs ${bad.join(', ')}`, repair || undefined);
        drop.push(r.key);
      }
    }
    if (repair && drop.length) await s.cache.deleteLocked(drop);
  });

  let comp: string[] = [];
  try { comp = await readdir(s.compressedDir); } catch { /* none */ }
  for (const n of comp) {
    const m = /^([a-f0-9]{64})\.json$/.exec(n);
    if (!m) continue;
    const diffId = `sha256:${m[1]}`;
    const forms = await s.compressedForms(diffId);
    const good = [];
    for (const f of forms) {
      if ((await s.blobs.size(f.digest)) === f.size && !corrupt.has(f.digest)) good.push(f);
      else add('compressed-dangling', f.digest, `compressed form ${f.digest} of layer ${diffId} is missing or corrupt`, repair || undefined);
    }
    if (repair && good.length !== forms.length) {
      await atomicWrite(join(s.compressedDir, n), JSON.stringify({ v: 1, diffId, forms: good }) + '\n', s.tmpDir, 'repairing a compressed-form record');
    }
  }
  return problems;
}
