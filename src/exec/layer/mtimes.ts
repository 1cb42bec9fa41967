/**
 * Exact (nanosecond) mtimes of the layers this process wrote, for their snapshots.
 *
 * A layer tar holds whole seconds (as BuildKit's), but BuildKit's snapshots keep the nanoseconds
 * of what COPY/ADD copied, and later RUNs compare times (`find -newer`, make). The LayerWriter
 * notes, per written layer, the entries whose exact mtime has a fraction (files read from a path
 * whose own mtime is the entry's, or entries giving `mtimeNs`); ensureLayerSnapshot hands them to
 * the unpacker, which sets them with utimensat.
 *
 * In memory only, on purpose: the layer digest must not depend on them and the store has no place
 * for per-layer side data. Known gap: a snapshot first made by ANOTHER process (a cached COPY
 * layer followed by a RUN in a later build) has whole-second mtimes for that layer. RUN layers do
 * not need this: their upper dir becomes the snapshot (keepUpperAsSnapshot).
 * Bounded: beyond MAX_ENTRIES noted mtimes in total, further layers are not noted.
 */
const MAX_ENTRIES = 2_000_000;
const byDiffId = new Map<string, ReadonlyMap<string, bigint>>();
let total = 0;

/** Notes the exact mtimes (layer path → ns since the epoch) of a layer just written. */
export function noteExactMtimes(diffId: string, m: ReadonlyMap<string, bigint>): void {
  if (m.size === 0 || byDiffId.has(diffId) || total + m.size > MAX_ENTRIES) return;
  byDiffId.set(diffId, m);
  total += m.size;
}

/** The exact mtimes noted for a layer, if this process wrote it. */
export function exactMtimesOf(diffId: string): ReadonlyMap<string, bigint> | undefined {
  return byDiffId.get(diffId);
}

/** Forgets a layer's exact mtimes (its snapshot exists with them, or was made from its upper dir). */
export function forgetExactMtimes(diffId: string): void {
  const m = byDiffId.get(diffId);
  if (!m) return;
  total -= m.size;
  byDiffId.delete(diffId);
}
