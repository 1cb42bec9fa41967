/**
 * Where the peer builders of ../shared/peers (Docker BuildKit 0.25 "modern", docker 20.10) keep
 * their state, for the differential harness and the benches. Nothing machine-specific is written
 * here: the modern daemon's run directory and the base-image directory are the MODERN_RUN and BASE
 * variables the peers' scripts honour — taken from the environment, else placed in the system temp
 * directory, and always passed to those scripts (peerEnv) so both sides agree; the docker 20.10
 * daemon's DOCKER_HOST is what ../shared/peers/env.sh exports (its location is the script's choice).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repo root (this file runs from dist/scripts/). */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const PEERS = resolve(REPO, '..', 'shared', 'peers');
/** Scratch space of the differential harness (its default tsbuild store is WORK/store). */
export const WORK = join(tmpdir(), 'tsbuild-diff');

const MODERN_RUN = process.env.MODERN_RUN || join(tmpdir(), 'modern');
const BASE = process.env.BASE || join(tmpdir(), 'peers', 'base');

/** The environment for any ../shared/peers script: MODERN_RUN and BASE fixed as above, plus `extra`. */
export function peerEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, MODERN_RUN, BASE, ...extra };
}

/** make-bases.sh's docker archives (busybox:latest, debian:bookworm). */
export const BASE_ARCHIVES = { busybox: join(BASE, 'busybox-docker.tar'), debian: join(BASE, 'debian-docker.tar') } as const;

/** The modern (BuildKit 0.25) daemon: its docker CLI and the environment that reaches it. */
export const MODERN = {
  docker: join(MODERN_RUN, 'bin', 'docker'),
  socket: join(MODERN_RUN, 'docker.sock'),
  env: (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => peerEnv({ DOCKER_HOST: `unix://${join(MODERN_RUN, 'docker.sock')}`, DOCKER_CONFIG: join(MODERN_RUN, 'cli'), ...extra }),
};

/** The docker 20.10 peer's DOCKER_HOST and CLI, as ../shared/peers/env.sh exports them (undefined without it). */
export function docker2010(): { host: string; cli: string } | undefined {
  const envSh = join(PEERS, 'env.sh');
  if (!existsSync(envSh)) return undefined;
  const r = spawnSync('bash', ['-c', 'source "$0" >/dev/null && printf "%s\\n%s" "$DOCKER_HOST" "$PEERS_DOCKER"', envSh], { encoding: 'utf8' });
  const [host, cli] = r.status === 0 ? r.stdout.split('\n') : [];
  return host && cli ? { host, cli } : undefined;
}
