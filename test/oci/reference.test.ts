import { describe, expect, it } from 'vitest';
import { familiarString, isDigest, normalizeReference, parseReference, tryParseReference, withDigest, withTag } from '../../src/oci/reference.js';
import { TsbError } from '../../src/errors.js';

const D = 'sha256:' + 'ab'.repeat(32);

describe('parseReference', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest'],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1', 'busybox:1'],
    ['me/app', 'docker.io/me/app:latest', 'me/app:latest'],
    ['me/team/app:v2', 'docker.io/me/team/app:v2', 'me/team/app:v2'],
    ['localhost/app', 'localhost/app:latest', 'localhost/app:latest'],
    ['localhost:5000/x', 'localhost:5000/x:latest', 'localhost:5000/x:latest'],
    ['localhost:5000/x:y', 'localhost:5000/x:y', 'localhost:5000/x:y'],
    ['registry.example.com/a/b/c:1.2-rc_3', 'registry.example.com/a/b/c:1.2-rc_3', 'registry.example.com/a/b/c:1.2-rc_3'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest', '127.0.0.1:5000/app:latest'],
    ['[::1]:5000/app', '[::1]:5000/app:latest', '[::1]:5000/app:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`],
    [`busybox:1@${D}`, `docker.io/library/busybox:1@${D}`, `busybox:1@${D}`],
    [`localhost:5000/x@${D}`, `localhost:5000/x@${D}`, `localhost:5000/x@${D}`],
    ['a__b/c--d.e_f', 'docker.io/a__b/c--d.e_f:latest', 'a__b/c--d.e_f:latest'],
    ['Foo/bar', 'Foo/bar:latest', 'Foo/bar:latest'],
  ])('%s', (input, full, familiar) => {
    const r = parseReference(input);
    expect(r.full).toBe(full);
    expect(r.familiar).toBe(familiar);
    expect(normalizeReference(input)).toBe(full);
    // Idempotent: the normalized and the familiar forms parse back to the same reference.
    expect(parseReference(full).full).toBe(full);
    expect(parseReference(familiar).full).toBe(full);
  });

  it('splits the parts', () => {
    const r = parseReference(`localhost:5000/team/app:1.2@${D}`);
    expect(r).toMatchObject({ domain: 'localhost:5000', path: 'team/app', tag: '1.2', digest: D, repository: 'localhost:5000/team/app', familiarName: 'localhost:5000/team/app' });
    expect(parseReference('busybox').familiarName).toBe('busybox');
    expect(parseReference('me/app').familiarName).toBe('me/app');
  });

  it('defaultTag: false keeps a bare name untagged', () => {
    expect(parseReference('busybox', { defaultTag: false }).full).toBe('docker.io/library/busybox');
    expect(parseReference('busybox', { defaultTag: false }).tag).toBeUndefined();
  });

  it.each([
    ['', /empty/],
    ['Busybox', /lowercase/],
    ['me/App:1', /lowercase/],
    ['busybox:', /tag/],
    ['busybox:-x', /tag/],
    ['busybox:' + 'a'.repeat(129), /tag/],
    ['busybox@sha256:abc', /digest/],
    ['busybox@' + D.toUpperCase(), /digest/],
    ['a//b', /empty path/],
    ['a/b/', /empty path/],
    ['-a', /path component/],
    ['a..b', /path component/],
    ['host:port/x', /registry host/],
    ['ab'.repeat(32), /image ID/],
    ['example.com/' + 'a'.repeat(260), /longer than 255/],
  ])('rejects %j', (input, msg) => {
    let err: unknown;
    try { parseReference(input); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(TsbError);
    expect((err as TsbError).code).toBe('TSB6001');
    expect((err as TsbError).message).toMatch(msg);
    expect((err as TsbError).hint).toBeTruthy();
    expect(tryParseReference(input)).toBeUndefined();
  });

  it('familiarString, withTag, withDigest, isDigest', () => {
    expect(familiarString('docker.io/library/busybox:latest')).toBe('busybox:latest');
    expect(familiarString('docker.io/library/busybox')).toBe('busybox');
    expect(familiarString('docker.io/library/a/b:1')).toBe('library/a/b:1');
    const r = parseReference('busybox:1');
    expect(withTag(r, '2').full).toBe('docker.io/library/busybox:2');
    expect(withDigest(r, D).full).toBe(`docker.io/library/busybox@${D}`);
    expect(isDigest(D)).toBe(true);
    expect(isDigest('sha256:abc')).toBe(false);
    expect(isDigest('sha512:' + 'a'.repeat(128))).toBe(true);
  });
});
