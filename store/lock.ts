/**
 * Cross-process locks without flock (Node has none).
 *
 * A lock is a symlink `locks/NAME.lock` whose target is `pid:start:token`. symlink(2) creates it
 * atomically with its content (no window where the file exists but names no owner, unlike
 * O_EXCL + write), and readlink(2) reads the owner atomically.
 *
 * A waiter that finds the owner dead (SIGKILL; see owner.ts) steals the lock, but only while holding
 * the short `NAME.lock.steal` lock, and only after re-reading that the lock still names the same dead
 * owner. Removal of a lock file therefore happens only (a) by its live owner, or (b) by the one
 * stealer, which saw a dead owner, and a dead owner stays dead, so no live holder's lock is ever
 * removed. A steal lock left by a stealer killed inside its microsecond-long critical section is
 * removed when its owner is dead. Known gap: two waiters that both find such a doubly-dead steal
 * lock at the same instant can both enter the steal section; harmless unless the main lock also
 * changes hands in that instant.
 *
 * Within one process, callers for the same lock queue on a promise chain first, so the file lock is
 * taken once per holder. Waiters poll with jittered backoff (1–25 ms): fair enough for 8 processes,
 * and a lock is only ever held for one small read-modify-write.
 */
import { readlink, symlink, unlink } from './afs.js';
import { TsbError, errnoCode } from './errors.js';
import { E, ioError, sleep, uniqueHex } from './fsutil.js';
import { ownerAlive, selfOwner, type Owner } from './owner.js';

function parseTarget(t: string): (Owner & { token: string }) | undefined {
  const m = /^(\d+):(\d+):([0-9a-f]+)$/.exec(t);
  return m ? { pid: Number(m[1]), start: m[2]!, token: m[3]! } : undefined;
}

async function tryCreate(path: string, target: string): Promise<boolean> {
  try {
    await symlink(target, path);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'EEXIST') return false;
    throw ioError(e, 'taking a lock', path);
  }
}

async function readOwner(path: string): Promise<string | undefined> {
  try { return await readlink(path); } catch (e) {
    const c = errnoCode(e);
    if (c === 'ENOENT') return undefined;
    if (c === 'EINVAL') return ''; // not a symlink: garbage, treat as ownerless
    throw ioError(e, 'reading a lock', path);
  }
}

/** Remove `path` if it still names `target` and that owner is dead. Returns true if removed. */
async function stealIfDead(path: string, target: string): Promise<boolean> {
  const steal = `${path}.steal`;
  const me = `${selfOwner().pid}:${selfOwner().start}:${uniqueHex(8)}`;
  if (!(await tryCreate(steal, me))) {
    const s = await readOwner(steal);
    if (s !== undefined) {
      const o = parseTarget(s);
      if (!o || !ownerAlive(o)) await unlink(steal).catch(() => undefined);
    }
    return false;
  }
  try {
    const now = await readOwner(path);
    if (now !== target) return false; // changed hands meanwhile: re-evaluate from the top
    const o = parseTarget(target);
    if (o && ownerAlive(o)) return false;
    await unlink(path).catch((e: unknown) => { if (errnoCode(e) !== 'ENOENT') throw e; });
    return true;
  } finally {
    await unlink(steal).catch(() => undefined);
  }
}

const inProcess = new Map<string, Promise<void>>();

export interface LockOptions { timeoutMs?: number; signal?: AbortSignal }

/** Run `fn` holding the cross-process lock at `path` (a symlink). */
export async function withLock<T>(path: string, fn: () => Promise<T>, opts: LockOptions = {}): Promise<T> {
  // In-process queue first.
  const prev = inProcess.get(path) ?? Promise.resolve();
  let done!: () => void;
  const mine = new Promise<void>((r) => { done = r; });
  const tail = prev.then(() => mine);
  inProcess.set(path, tail);
  await prev;
  try {
    const release = await acquire(path, opts);
    try {
      return await fn();
    } finally {
      await release();
    }
  } finally {
    done();
    if (inProcess.get(path) === tail) inProcess.delete(path);
  }
}

async function acquire(path: string, opts: LockOptions): Promise<() => Promise<void>> {
  const o = selfOwner();
  const target = `${o.pid}:${o.start}:${uniqueHex(8)}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let delay = 1;
  let lastOwner = '';
  for (;;) {
    if (await tryCreate(path, target)) {
      return async () => {
        // Only remove it if it is still ours (it always should be: nobody steals from the living).
        if ((await readOwner(path)) === target) await unlink(path).catch(() => undefined);
      };
    }
    const cur = await readOwner(path);
    if (cur !== undefined) {
      lastOwner = cur;
      const owner = parseTarget(cur);
      if (!owner || !ownerAlive(owner)) {
        if (await stealIfDead(path, cur)) { delay = 1; continue; }
      }
    } else continue; // released between our create and readlink: retry at once
    if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted');
    if (Date.now() > deadline) {
      const owner = parseTarget(lastOwner);
      throw new TsbError(E.LOCK_TIMEOUT, `timed out waiting for the store lock ${path}`, {
        hint: owner ? `process ${owner.pid} holds it; wait for it to finish, or stop it if it is stuck.` : 'another tsbuild process holds it.',
      });
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 25);
  }
}

/**
 * Take the lock at `path` only if it is free now (or its owner is dead): a release function, or
 * undefined when a live process holds it. For sweepers that skip what is in use instead of waiting.
 */
export async function tryLock(path: string): Promise<(() => Promise<void>) | undefined> {
  const o = selfOwner();
  const target = `${o.pid}:${o.start}:${uniqueHex(8)}`;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await tryCreate(path, target)) {
      return async () => { if ((await readOwner(path)) === target) await unlink(path).catch(() => undefined); };
    }
    const cur = await readOwner(path);
    if (cur === undefined) continue;
    const owner = parseTarget(cur);
    if (owner && ownerAlive(owner)) return undefined;
    if (!(await stealIfDead(path, cur))) return undefined;
  }
  return undefined;
}
