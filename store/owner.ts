/**
 * Process identity for locks, leases and temp files: PID plus the process start time from
 * /proc/PID/stat (field 22), so a recycled PID is not mistaken for the original owner. A zombie
 * (killed, not yet reaped) counts as dead: it will never release anything.
 * Known gap: owners are per host; a store shared over NFS between hosts is not supported.
 */
import { readFileSync } from 'node:fs';

export interface Owner { pid: number; start: string }

function startOf(pid: number): { start: string; zombie: boolean } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state); field 22 (starttime) is rest[19].
    return { start: rest[19] ?? '0', zombie: rest[0] === 'Z' || rest[0] === 'X' };
  } catch {
    return undefined;
  }
}

let self: Owner | undefined;
export function selfOwner(): Owner {
  if (!self || self.pid !== process.pid) self = { pid: process.pid, start: startOf(process.pid)?.start ?? '0' };
  return self;
}

/** Is the process that wrote `owner` still running? */
export function ownerAlive(owner: Owner): boolean {
  if (owner.pid === process.pid) return owner.start === selfOwner().start;
  const st = startOf(owner.pid);
  if (st) return !st.zombie && (owner.start === '0' || st.start === owner.start);
  // No /proc entry: fall back to signal 0 (EPERM means it exists but is not ours).
  try { process.kill(owner.pid, 0); return true; } catch (e) { return (e as { code?: string }).code === 'EPERM'; }
}
