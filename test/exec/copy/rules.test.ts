import { describe, expect, it } from 'vitest';
import { matchElement, hasMeta } from '../../../src/exec/copy/glob.js';
import { parseChmod } from '../../../src/exec/copy/chmod.js';
import { parseChown, resolveOwner } from '../../../src/exec/copy/chown.js';
import { TsbError } from '../../../src/errors.js';

describe('filepath.Match element globs', () => {
  it('matches like Go', () => {
    expect(matchElement('*.txt', 'a.txt')).toBe(true);
    expect(matchElement('*.txt', '.txt')).toBe(true);
    expect(matchElement('a?c', 'abc')).toBe(true);
    expect(matchElement('[a-c]x', 'bx')).toBe(true);
    expect(matchElement('[^a-c]x', 'bx')).toBe(false);
    expect(matchElement('\\*', '*')).toBe(true);
    expect(matchElement('\\*', 'a')).toBe(false);
    expect(hasMeta('a/b')).toBe(false);
    expect(hasMeta('a/*')).toBe(true);
    expect(() => matchElement('[a', 'a')).toThrow();
  });
  it('punctuation is literal (u-flag RegExps reject needless escapes: `package-*.json` once threw)', () => {
    expect(matchElement('package-*.json', 'package-lock.json')).toBe(true);
    expect(matchElement('package-*.json', 'package.json')).toBe(false);
    expect(matchElement('a+*.txt', 'a+b.txt')).toBe(true);
    expect(matchElement('x{*}.txt', 'x{1}.txt')).toBe(true);
    expect(matchElement('dollar?.txt', 'dollar$.txt')).toBe(true);
    expect(matchElement('\\#*', '#hash')).toBe(true);
    expect(matchElement('a\\-*', 'a-b')).toBe(true);
    expect(matchElement('[a\\-c]x', '-x')).toBe(true);
    expect(matchElement('[a\\-c]x', 'bx')).toBe(false);
    expect(matchElement('paren(*).txt', 'paren(1).txt')).toBe(true);
    expect(matchElement('pipe|*', 'pipe|.txt')).toBe(true);
    expect(matchElement('caret^*', 'caret^.txt')).toBe(true);
  });
});

describe('--chmod', () => {
  it('octal ignores the source mode', () => {
    expect(parseChmod('755').apply(0o600, false)).toBe(0o755);
    expect(parseChmod('4755').apply(0o600, false)).toBe(0o4755);
  });
  it('symbolic edits the source mode', () => {
    expect(parseChmod('u+x').apply(0o644, false)).toBe(0o744);
    expect(parseChmod('go-r').apply(0o644, false)).toBe(0o600);
    expect(parseChmod('a=rX').apply(0o644, false)).toBe(0o444);
    expect(parseChmod('a=rX').apply(0o755, true)).toBe(0o555);
    expect(parseChmod('u=rwx,g=rx,o=').apply(0o000, false)).toBe(0o750);
    expect(parseChmod('+x').apply(0o600, false)).toBe(0o711);
  });
  it('rejects junk with TSB3010', () => {
    for (const bad of ['999', 'z+x', 'u+q', '']) {
      expect(() => parseChmod(bad)).toThrow(TsbError);
    }
  });
});

describe('--chown', () => {
  const etc = async (p: string) => (p === '/etc/passwd'
    ? 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n'
    : 'root:x:0:\nstaff:x:50:\napp:x:1001:\n');
  it('numbers need no lookup; a numeric uid alone means gid = uid', async () => {
    expect(await resolveOwner(parseChown('1000'), async () => undefined)).toEqual({ uid: 1000, gid: 1000 });
    expect(await resolveOwner(parseChown('10:20'), async () => undefined)).toEqual({ uid: 10, gid: 20 });
  });
  it('a name brings its primary group; group names resolve in /etc/group', async () => {
    expect(await resolveOwner(parseChown('app'), etc)).toEqual({ uid: 1000, gid: 1001 });
    expect(await resolveOwner(parseChown('app:staff'), etc)).toEqual({ uid: 1000, gid: 50 });
    expect(await resolveOwner(parseChown('0:staff'), etc)).toEqual({ uid: 0, gid: 50 });
  });
  it('unknown names fall back like BuildKit 0.25 when the files exist; without them they are errors', async () => {
    expect(await resolveOwner(parseChown('nosuch:nosuch'), etc)).toEqual({ uid: 0, gid: 0 });
    expect(await resolveOwner(parseChown('1000:nosuch'), etc)).toEqual({ uid: 1000, gid: 1000 });
    expect(await resolveOwner(parseChown('app:nosuch'), etc)).toEqual({ uid: 1000, gid: 1001 });
    expect(await resolveOwner(parseChown('nosuch:0'), etc)).toEqual({ uid: 0, gid: 0 });
    await expect(resolveOwner(parseChown('nobody'), async () => undefined)).rejects.toMatchObject({ code: 'TSB4010' });
    await expect(resolveOwner(parseChown('0:staff'), async () => undefined)).rejects.toMatchObject({ code: 'TSB4011' });
  });
});

describe('LayerFS views', () => {
  it('extending an extended view keeps the layers already applied', async () => {
    const { LayerWriter } = await import('../../../src/exec/layer/writer.js');
    const { LayerFS } = await import('../../../src/exec/copy/layerfs.js');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'tsb-lfs-'));
    const blobs: string[] = [];
    const layer = async (entries: any[]) => {
      const w = new LayerWriter();
      for (const e of entries) w.add(e);
      const chunks: Buffer[] = [];
      for await (const c of w.stream()) chunks.push(c as Buffer);
      const p = join(dir, `l${blobs.length}.tar`);
      writeFileSync(p, Buffer.concat(chunks));
      blobs.push(p);
      return p;
    };
    const a = await layer([{ path: 'tmp', type: 'dir', mode: 0o1777 }, { path: 'tmp/x', type: 'file', source: { buffer: Buffer.from('x') }, size: 1 }]);
    const b = await layer([{ path: 'b', type: 'dir' }]);
    const c = await layer([{ path: 'tmp/x', type: 'whiteout' }]);
    const v0 = new LayerFS([a]);
    expect(await v0.typeOf('/tmp')).toBe('dir'); // applied
    const v2 = v0.extend(b).extend(c); // extend of an extend, before any query
    expect(await v2.typeOf('/tmp')).toBe('dir');
    expect(await v2.typeOf('/b')).toBe('dir');
    expect(await v2.typeOf('/tmp/x')).toBeUndefined(); // whited out
    expect(await v0.typeOf('/tmp/x')).toBe('file'); // the base view is unchanged
    expect(v2.raw('tmp')!.mode).toBe(0o1777);
  });
});
