import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { lookupUser } from '../../../src/exec/layer/user.js';
import { MergedView } from '../../../src/exec/layer/view.js';
import { cleanup, tmp } from './helpers.js';

afterAll(cleanup);

function image(files: Record<string, string>, links: Record<string, string> = {}): MergedView {
  const d = tmp('user');
  for (const [p, s] of Object.entries(files)) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    writeFileSync(join(d, p), s);
  }
  for (const [p, t] of Object.entries(links)) {
    mkdirSync(join(d, p, '..'), { recursive: true });
    symlinkSync(t, join(d, p));
  }
  return new MergedView([d]);
}

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\n# comment\napp:x:1000:1000::/home/app:/bin/sh\nbroken line\nnobody:x:65534:65534::/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nstaff:x:50:app,other\napp:x:1000:\nwheel:x:10:app\nnogroup:x:65534:\n';

describe('lookupUser (runc/Docker semantics)', () => {
  const v = image({ 'etc/passwd': PASSWD, 'etc/group': GROUP });
  test('names and numbers', () => {
    expect(lookupUser(v, 'app')).toEqual({ uid: 1000, gid: 1000, additionalGids: [50, 10], name: 'app', home: '/home/app' });
    expect(lookupUser(v, '1000')).toMatchObject({ uid: 1000, gid: 1000, name: 'app' });
    expect(lookupUser(v, '')).toMatchObject({ uid: 0, gid: 0, additionalGids: [], home: '/root' });
    expect(lookupUser(v, '4242')).toEqual({ uid: 4242, gid: 0, additionalGids: [], home: '/' });
  });
  test('user:group', () => {
    expect(lookupUser(v, 'app:staff')).toMatchObject({ uid: 1000, gid: 50, additionalGids: [] });
    expect(lookupUser(v, 'app:4000')).toMatchObject({ uid: 1000, gid: 4000 });
    expect(lookupUser(v, '5:65534')).toMatchObject({ uid: 5, gid: 65534 });
    expect(() => lookupUser(v, 'app:nogrp')).toThrow(expect.objectContaining({ code: 'TSB4411' }));
  });
  test('unknown names are errors; out-of-range ids too', () => {
    expect(() => lookupUser(v, 'ghost')).toThrow(expect.objectContaining({ code: 'TSB4410', message: expect.stringContaining('ghost') }));
    expect(() => lookupUser(v, '99999999999')).toThrow(expect.objectContaining({ code: 'TSB4410' }));
  });
  test('missing passwd/group: numbers only', () => {
    const empty = image({ 'bin/x': '' });
    expect(lookupUser(empty, '1000:1000')).toEqual({ uid: 1000, gid: 1000, additionalGids: [], home: '/' });
    expect(() => lookupUser(empty, 'app')).toThrow(expect.objectContaining({ code: 'TSB4410', message: expect.stringContaining('/etc/passwd does not exist') }));
    expect(() => lookupUser(empty, '0:staff')).toThrow(expect.objectContaining({ code: 'TSB4411' }));
  });
  test('/etc/passwd reached through a symlink inside the image, never the host', () => {
    const l = image({ 'data/passwd': 'svc:x:123:456::/srv:/bin/sh\n' }, { 'etc/passwd': '../data/passwd' });
    expect(lookupUser(l, 'svc')).toMatchObject({ uid: 123, gid: 456, home: '/srv' });
    const hostile = image({}, { 'etc/passwd': '/../../../../etc/shadow' });
    // resolves to the image's own (missing) /etc/shadow, never the host's
    expect(() => lookupUser(hostile, 'root')).toThrow(expect.objectContaining({ code: 'TSB4410', message: expect.stringContaining('does not exist') }));
    const loop = image({}, { 'etc/passwd': '/../etc/passwd' });
    expect(() => lookupUser(loop, 'root')).toThrow(expect.objectContaining({ code: 'TSB4413' }));
  });
});
