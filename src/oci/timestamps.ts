/**
 * `rewrite-timestamp=true`: a layer with every entry's mtime clamped to SOURCE_DATE_EPOCH (as
 * BuildKit does), so the same sources give the same layer digests whenever they are built.
 * The tar is re-encoded entry by entry (headers, pax records and contents kept; never extracted to
 * disk). The result is a new uncompressed layer blob in the store.
 * Known gap: pax atime/ctime records are clamped too; GNU sparse entries are not supported by the
 * tar reader and are rejected (TSB6131).
 */
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';
import { TsbError, isTsbError } from '../errors.js';
import type { Digest, Store } from '../../store/types.js';

export async function rewriteLayerTimestamps(store: Store, diffId: Digest, epoch: number, signal?: AbortSignal): Promise<{ digest: Digest; size: number }> {
  const limit = new Date(epoch * 1000);
  const extract = tar.extract();
  const pack = tar.pack();
  const src = store.blobs.open(diffId);
  src.on('error', (e) => extract.destroy(e));
  src.pipe(extract as unknown as NodeJS.WritableStream);
  const work = (async () => {
    for await (const entry of extract) {
      if (signal?.aborted) throw new TsbError('TSB6131', 'interrupted', { cause: signal.reason });
      const h = { ...entry.header };
      if (h.mtime && h.mtime.getTime() > limit.getTime()) h.mtime = limit;
      if (h.pax && typeof h.pax === 'object') {
        const pax = { ...(h.pax as Record<string, string>) };
        for (const k of ['mtime', 'atime', 'ctime']) {
          if (pax[k] !== undefined && Number(pax[k]) > epoch) pax[k] = String(epoch);
        }
        h.pax = pax;
      }
      await new Promise<void>((res, rej) => {
        const w = pack.entry(h, (e) => (e ? rej(e) : res()));
        entry.on('error', (e: Error) => { rej(e); });
        entry.pipe(w);
      });
    }
    pack.finalize();
  })();
  const packNode = Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
  work.catch((e: Error) => packNode.destroy(e));
  try {
    const [r] = await Promise.all([store.blobs.put(packNode), work]);
    return r;
  } catch (e) {
    if (isTsbError(e)) throw e;
    throw new TsbError('TSB6131', `could not rewrite timestamps of layer ${diffId}`, { cause: e });
  }
}
