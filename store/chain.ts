/**
 * OCI chain IDs of a layer stack (image-spec config.md: ChainID(L0) = DiffID(L0),
 * ChainID(L0|…|Ln) = sha256(ChainID(L0|…|Ln-1) + " " + DiffID(Ln))): the names of layer snapshots.
 * A module of its own so that store/index.ts can export it without loading gc.
 */
import { crypto } from './fsutil.js';

/** Chain ids of every prefix of a diff_id list. */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  let cur: string | undefined;
  for (const d of diffIds) {
    cur = cur === undefined ? d : `sha256:${crypto().createHash('sha256').update(`${cur} ${d}`).digest('hex')}`;
    out.push(cur);
  }
  return out;
}
