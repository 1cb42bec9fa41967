/** The store's CLI commands, run through main() against a temp store holding images made here. */
import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runMain } from '../helpers/cli.js';
import { openStore, type FsStore } from '../../store/index.js';
import { makeImage, tempStoreDir, type TestImage } from './image.js';
import { humanDuration, humanSize, parseDuration, parseSize, table } from '../../src/cli/commands/images.js';

let dir: string;
let cleanup: () => Promise<void>;
let store: FsStore;
let app: TestImage;

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await runMain(argv, { env: { TSBUILD_STORE: dir, HOME: dir }, cwd: dir });
  return { code: r.code, out: r.stdout, err: r.stderr };
}

beforeEach(async () => {
  ({ dir, cleanup } = await tempStoreDir());
  store = await openStore(dir);
  app = await makeImage(store, 'docker.io/library/app:1.2', [{ 'etc/a': 'x'.repeat(2000) }, { 'usr/b': 'y' }], { created: '2020-01-01T00:00:00Z' });
  await makeImage(store, 'localhost:5000/team/svc:latest', [{ c: 'z' }], { created: new Date(Date.now() - 3 * 3600_000).toISOString() });
});
afterEach(async () => { await cleanup(); });

describe('formats', () => {
  it('sizes and durations like docker', () => {
    expect(humanSize(0)).toBe('0B');
    expect(humanSize(999)).toBe('999B');
    expect(humanSize(4_264_000)).toBe('4.26MB');
    expect(humanSize(77_800_000)).toBe('77.8MB');
    expect(humanSize(1_230_000_000)).toBe('1.23GB');
    expect(humanDuration(500)).toBe('Less than a second');
    expect(humanDuration(90_000)).toBe('About a minute');
    expect(humanDuration(3 * 3600_000)).toBe('3 hours');
    expect(humanDuration(3 * 86_400_000)).toBe('3 days');
    expect(humanDuration(20 * 86_400_000)).toBe('2 weeks');
    expect(parseSize('10GB')).toBe(10e9);
    expect(parseSize('1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(parseSize('512')).toBe(512);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
  });
});

describe('table', () => {
  it('pads like padEnd + join + trimEnd, whatever the cells (empty, leading/trailing blanks, non-ASCII)', () => {
    const naive = (h: string[], rows: string[][]) => {
      const w = h.map((x, i) => Math.max(x.length, ...rows.map((r) => r[i]!.length)));
      return [h, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]!))).join('   ').trimEnd()).join('\n') + '\n';
    };
    const h = ['A', 'BB', 'C', 'D'];
    const rows = [['x', '', 'zz', ''], ['', 'ünïcödé', '', 'tail  '], ['  lead', 'b', 'c ', ''], ['a', 'b', 'ç\u00a0', ''], ['', '', '', '']];
    expect(table(h, rows)).toBe(naive(h, rows));
    expect(table(['ONLY'], [])).toBe('ONLY\n');
  });
});

describe('images', () => {
  it('lists in the familiar form, newest first, IMAGE ID = config digest', async () => {
    const r = await run('images');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
    expect(lines[1]).toMatch(/^localhost:5000\/team\/svc\s+latest\s+[0-9a-f]{12}\s+3 hours ago\s+\d+(\.\d+)?kB$/);
    expect(lines[2]).toMatch(new RegExp(`^app\\s+1\\.2\\s+${app.config.slice(7, 19)}\\s+\\d+ years ago\\s+`));
    const j = (await run('images', '--format', 'json')).out.trim().split('\n').map((l) => JSON.parse(l));
    expect(j[1]).toMatchObject({ Repository: 'app', Tag: '1.2', ID: app.config, Digest: app.manifest.digest, CreatedAt: '2020-01-01T00:00:00Z' });
    expect((await run('images', 'app')).out.trim().split('\n').length).toBe(2);
    expect((await run('images', '-q')).out.trim().split('\n').length).toBe(2);
    expect((await run('images', '--format', 'xml')).code).toBe(2);
  });
});

describe('tag, inspect, history, rmi', () => {
  it('tag SRC DST normalizes the target; inspect shows docker fields', async () => {
    expect((await run('tag', 'app:1.2', 'registry.example.com/x/app:2')).code).toBe(0);
    expect(await store.refs.get('registry.example.com/x/app:2')).toEqual(app.manifest);
    expect((await run('tag', app.config.slice(7, 19), 'byid')).code).toBe(0);
    expect(await store.refs.get('docker.io/library/byid:latest')).toEqual(app.manifest);
    const bad = await run('tag', 'app:1.2', 'Bad:Name');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('TSB6001');
    const r = await run('inspect', 'app:1.2');
    expect(r.code).toBe(0);
    const [i] = JSON.parse(r.out);
    expect(i.Id).toBe(app.config);
    expect(i.RepoTags.sort()).toEqual(['app:1.2', 'byid:latest', 'registry.example.com/x/app:2']);
    expect(i.RepoDigests).toContain(`app@${app.manifest.digest}`);
    expect(i).toMatchObject({ Architecture: 'amd64', Os: 'linux', Created: '2020-01-01T00:00:00Z', RootFS: { Type: 'layers', Layers: app.layers.map((l) => l.digest) } });
    expect(i.Size).toBe(app.layers[0]!.size + app.layers[1]!.size);
    expect(i.History.length).toBe(2);
    expect(i.Config.Cmd).toEqual(['/bin/sh']);
    expect(JSON.parse((await run('inspect', app.manifest.digest)).out)[0].Id).toBe(app.config);
    const miss = await run('inspect', 'app:1.2', 'nope');
    expect(miss.code).toBe(1);
    expect(JSON.parse(miss.out).length).toBe(1);
    expect(miss.err).toContain('TSB5011');
    expect(miss.err).toContain('nope');
  });
  it('history is newest first with layer sizes', async () => {
    const r = await run('history', 'app:1.2');
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
    expect(lines[1]).toMatch(new RegExp(`^${app.config.slice(7, 19)}\\s+\\d+ years ago\\s+/bin/sh -c echo layer 1\\s+\\d`));
    expect(lines[2]).toMatch(/^<missing>\s+.*echo layer 0\s+\S+\s+base$/);
    const j = (await run('history', '--format', 'json', 'app:1.2')).out.trim().split('\n').map((l) => JSON.parse(l));
    expect(j.map((x) => x.Size)).toEqual([app.layers[1]!.size, app.layers[0]!.size]);
  });
  it('rmi removes names; an ID with several names needs --force; gc then frees the blobs', async () => {
    await run('tag', 'app:1.2', 'other:1');
    const id = app.config.slice(7, 19);
    const r = await run('rmi', id);
    expect(r.code).toBe(1);
    expect(r.err).toContain('--force');
    expect((await run('rmi', 'other:1')).out).toBe('Untagged: other:1\n');
    expect((await run('rmi', '-f', id)).out).toBe('Untagged: app:1.2\n');
    expect((await run('rmi', 'app:1.2')).code).toBe(1);
    const { utimes } = await import('node:fs/promises');
    for (const d of [app.config, app.manifest.digest, ...app.layers.map((l) => l.digest)]) await utimes(store.blobs.path(d), new Date(0), new Date(0));
    const gc = await run('store', 'gc');
    expect(gc.out).toMatch(/^removed 4 blobs and 0 snapshots, /);
    expect(await store.blobs.has(app.config)).toBe(false);
  });
});

describe('cache', () => {
  beforeEach(async () => {
    await store.cache.put({ key: 'v1:sha256:' + 'a'.repeat(64), instruction: 'RUN apt-get update', source: { file: 'Dockerfile', line: 3 }, inputs: { cmd: 'apt-get update' }, layer: app.layers[0], config: app.config });
    const only = await makeImage(store, undefined, [{ cacheonly: 'q'.repeat(5000) }]);
    await store.cache.put({ key: 'v1:sha256:' + 'b'.repeat(64), instruction: 'COPY . /src', source: { file: 'Dockerfile', line: 5 }, inputs: {}, layer: only.layers[0], config: only.config });
    await store.cache.touch('v1:sha256:' + 'b'.repeat(64));
  });
  it('ls shows key, size, created, last used, hits, instruction and source', async () => {
    const r = await run('cache', 'ls');
    expect(r.code).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^KEY\s+SIZE\s+CREATED\s+LAST USED\s+HITS\s+INSTRUCTION\s+SOURCE$/);
    expect(lines[1]).toMatch(/^v1:bbbbbbbbbbbb\s+\S+\s+Less than a second ago\s+Less than a second ago\s+1\s+COPY \. \/src\s+Dockerfile:5$/);
    expect(lines[2]).toMatch(/^v1:aaaaaaaaaaaa\s+.*\s+0\s+RUN apt-get update\s+Dockerfile:3$/);
    const j = (await run('cache', 'ls', '--format', 'json')).out.trim().split('\n').map((l) => JSON.parse(l));
    expect(j[0]).toMatchObject({ Hits: 1, Instruction: 'COPY . /src', Source: 'Dockerfile:5' });
  });
  it('du separates layers shared with images from reclaimable ones', async () => {
    const j = JSON.parse((await run('cache', 'du', '--format', 'json')).out);
    expect(j).toMatchObject({ Records: 2, Layers: 2, Shared: app.layers[0]!.size });
    expect(j.Reclaimable).toBeGreaterThan(5000);
  });
  it('prune keeps records of tagged images unless --all; filters by age', async () => {
    const none = JSON.parse((await run('cache', 'prune', '--filter', 'until=1h', '--format', 'json')).out);
    expect(none.DeletedRecords).toBe(0);
    const r = JSON.parse((await run('cache', 'prune', '--format', 'json')).out);
    expect(r.Keys).toEqual(['v1:sha256:' + 'b'.repeat(64)]);
    expect((await store.cache.list()).length).toBe(1);
    const all = await run('cache', 'prune', '--all');
    expect(all.out).toMatch(/^Deleted 1 cache record\nTotal reclaimed space: /);
    expect(await store.cache.list()).toEqual([]);
    expect((await run('cache', 'prune', '--filter', 'bogus=1')).code).toBe(2);
    expect((await run('cache', 'nope')).code).toBe(2);
  });
  it('why is dispatched to the build engine\'s command', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(`${dir}/ctx`);
    await writeFile(`${dir}/ctx/Dockerfile`, 'FROM scratch\nCOPY a /a\n');
    await writeFile(`${dir}/ctx/a`, 'a');
    const r = await run('cache', 'why', `${dir}/ctx`);
    expect(r.err).not.toContain('TSB0001');
    expect(r.out).toContain('COPY a /a');
  });
});

describe('store verify', () => {
  it('reports a corrupt blob by name, exits 1, and --repair fixes it', async () => {
    expect((await run('store', 'verify')).out).toMatch(/: OK\n$/);
    const p = store.blobs.path(app.layers[1]!.digest);
    const b = await readFile(p); b[10] = b[10]! ^ 0xff; await writeFile(p, b);
    const r = await run('store', 'verify');
    expect(r.code).toBe(1);
    expect(r.out).toContain(app.layers[1]!.digest);
    expect(r.out).toMatch(/blob-corrupt/);
    expect(r.out).toMatch(/ref-incomplete\s+docker.io\/library\/app:1.2/);
    expect((await run('store', 'verify', '--repair')).code).toBe(0);
    expect((await run('store', 'verify')).code).toBe(0);
    const img = await run('inspect', 'app:1.2');
    expect(img.code).toBe(1);
  });
});
