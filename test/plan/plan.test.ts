import { describe, expect, it } from 'vitest';
import { parse } from '../../src/syntax/index.js';
import { toIR } from '../../src/ir/index.js';
import { makePlan, parseBuildArgs, parsePlatformFlag } from '../../src/plan/plan.js';
import { TsbError } from '../../src/errors.js';
import { cli, tmp, writeTree } from '../build/helpers.js';

const plan = (text: string, opts: Parameters<typeof makePlan>[1] = {}) => makePlan(toIR(parse(text, 'Dockerfile')), opts);

describe('stage graph', () => {
  const df = [
    'ARG BASE=one', 'FROM scratch AS one', 'FROM scratch AS two', 'COPY --from=one /a /a',
    'FROM ${BASE} AS three', 'FROM scratch AS unrelated', 'FROM three', 'COPY --from=two /x /x',
  ].join('\n') + '\n';
  it('keeps only the stages the target needs, deps first', () => {
    const p = plan(df);
    expect(p.stages.map((s) => s.index)).toEqual([0, 2, 1, 4]);
    expect(p.all.get(2)!.base).toEqual({ kind: 'stage', index: 0 });
    expect(p.all.get(4)!.deps.sort()).toEqual([1, 2]);
  });
  it('--target picks a stage by name (case-insensitive); unknown is a usage error', () => {
    expect(plan(df, { target: 'TWO' }).stages.map((s) => s.index)).toEqual([0, 1]);
    try { plan(df, { target: 'nope' }); expect.unreachable(); } catch (e) {
      expect((e as TsbError).code).toBe('TSB3043');
      expect((e as TsbError).exitCode).toBe(2);
    }
  });
  it('meta ARGs expand in FROM; a build arg overrides them', () => {
    expect(plan(df, { buildArgs: new Map([['BASE', 'two']]) }).all.get(2)!.base).toEqual({ kind: 'stage', index: 1 });
    const img = plan('ARG V=3.19\nFROM alpine:${V}\n');
    expect(img.all.get(0)!.base).toMatchObject({ kind: 'image', ref: 'alpine:3.19' });
  });
  it('warns about build args nothing consumes (not predefined or proxy ones)', () => {
    const p = plan('FROM scratch\nARG USED\n', { buildArgs: new Map([['USED', '1'], ['UNUSED', '2'], ['HTTP_PROXY', 'x'], ['TARGETARCH', 'amd64']]) });
    expect(p.warnings).toContain('One or more build-args [UNUSED] were not consumed');
  });
  it('predefined platform args', () => {
    const p = plan('FROM scratch\n');
    expect(p.predefined.get('TARGETPLATFORM')).toBe('linux/amd64');
    expect(p.predefined.get('BUILDARCH')).toBe('amd64');
  });
  it('platforms other than linux/amd64 are a clear error', () => {
    expect(parsePlatformFlag('linux/amd64')).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(() => parsePlatformFlag('linux/arm64')).toThrow(/not supported/);
    try { plan('FROM --platform=linux/arm64 scratch\n'); expect.unreachable(); } catch (e) {
      expect((e as TsbError).code).toBe('TSB3044');
      expect((e as TsbError).span?.line).toBe(1);
    }
  });
  it('COPY --from a later stage is refused', () => {
    expect(() => plan('FROM scratch\nCOPY --from=1 /a /a\nFROM scratch\n')).toThrow(TsbError);
  });
  it('--build-arg K takes the value from the environment', () => {
    expect(parseBuildArgs(['A=1', 'B', 'C'], { B: 'env' })).toEqual(new Map([['A', '1'], ['B', 'env']]));
  });
});

describe('tsbuild debug plan', () => {
  it('prints stages and keyed steps as JSON, without building', async () => {
    const dir = tmp();
    writeTree(dir, { Dockerfile: 'FROM scratch AS a\nCOPY f /f\nFROM scratch\nARG V=1\nCOPY --from=a /f /g\nENV X=$V\n', f: 'f' });
    const store = tmp('tsb-store-');
    const r = await cli(['debug', 'plan', `${dir}/Dockerfile`, '--store', store, '--build-arg', 'V=2']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.stages.map((s: any) => s.index)).toEqual([0, 1]);
    const copy = j.steps.find((s: any) => s.kind === 'COPY' && s.stage === 0);
    expect(copy.status).toBe('would-build');
    expect(copy.inputs['file:f']).toMatch(/^file 0644 0:0 sha256:/);
    expect(copy.key).toMatch(/^v2:sha256:/);
    expect(j.config.config.Env).toContain('X=2');
    // Nothing was built: the store has no images.
    const again = await cli(['debug', 'plan', `${dir}/Dockerfile`, '--store', store, '--build-arg', 'V=2']);
    expect(JSON.parse(again.stdout).steps.map((s: any) => s.key)).toEqual(j.steps.map((s: any) => s.key));
  });
});
