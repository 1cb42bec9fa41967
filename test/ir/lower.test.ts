// Lowering rules on hand-built ASTs (independent of src/syntax): flags, argument counts, stages.
import { describe, expect, it } from 'vitest';
import { TsbError } from '../../src/errors.js';
import { resolveMount, toIR } from '../../src/ir/index.js';
import type { CopyInstr, HealthcheckInstr, RunInstr } from '../../src/ir/types.js';
import type { DockerfileAST, Heredoc, Instruction } from '../../src/syntax/ast.js';

const F = 'Dockerfile';
let line = 0;
function ins(keyword: string, args: string[], o: { flags?: string[]; json?: boolean; sub?: Instruction; heredocs?: Heredoc[] } = {}): Instruction {
  line++;
  let col = keyword.length + 2;
  const node = (value: string) => {
    const span = { file: F, line, col, endCol: col + value.length };
    col += value.length + 1;
    return { value, span };
  };
  const flags = (o.flags ?? []).map(node);
  const argNodes = args.map(node);
  const original = [keyword, ...(o.flags ?? []), ...args].join(' ');
  return {
    keyword, flags, args: argNodes, json: !!o.json, ...(o.sub ? { sub: o.sub } : {}), heredocs: o.heredocs ?? [],
    original, prevComment: [], span: { file: F, line, col: 1, endCol: original.length + 1 },
  };
}
function ast(...instructions: Instruction[]): DockerfileAST {
  const a: DockerfileAST = { file: F, directives: [], escapeToken: '\\', instructions, warnings: [], span: { file: F, line: 1, col: 1 } };
  line = 0;
  return a;
}
function err(a: () => DockerfileAST): TsbError {
  try { toIR(a()); } catch (e) { if (e instanceof TsbError) return e; throw e; }
  throw new Error('expected an error');
}
const from = () => ins('FROM', ['alpine']);

describe('stages', () => {
  it('groups meta ARGs, stages, lower-cases names', () => {
    const ir = toIR(ast(ins('ARG', ['V=1']), ins('FROM', ['alpine:$V', 'AS', 'Build']), ins('RUN', ['make']), ins('FROM', ['scratch']),
      ins('COPY', ['/out', '/'], { flags: ['--from=build'] })));
    expect(ir.metaArgs).toHaveLength(1);
    expect(ir.metaArgs[0]!.args[0]!.key.raw).toBe('V');
    expect(ir.metaArgs[0]!.args[0]!.value!.raw).toBe('1');
    expect(ir.metaArgs[0]!.args[0]!.value!.span.col).toBe(7);
    expect(ir.stages.map((s) => [s.index, s.name, s.instructions.length])).toEqual([[0, 'build', 1], [1, undefined, 1]]);
    expect(ir.stages[0]!.from.image).toMatchObject({ raw: 'alpine:$V', expand: true });
    expect(ir.warnings.map((w) => w.rule)).toEqual(['StageNameCasing']);
  });
  it.each([
    ['TSB2002', () => ast(ins('RUN', ['x']), from())],
    ['TSB2003', () => ast(ins('FROM', ['a', 'b']))],
    ['TSB2003', () => ast(ins('FROM', ['a', 'AS']))],
    ['TSB2004', () => ast(ins('FROM', ['a', 'AS', '1x']))],
    ['TSB2004', () => ast(ins('FROM', ['a', 'as', 'a$b']))],
    ['TSB2005', () => ast(ins('FROM', ['a', 'AS', 'x']), ins('FROM', ['b', 'AS', 'X']))],
    ['TSB2018', () => ast(ins('ARG', ['A']))],
    ['TSB2001', () => ast(from(), ins('RUNN', ['x']))],
  ])('%s', (code, a) => { expect(err(a).code).toBe(code); });
  it('unknown instruction suggests and spans the keyword', () => {
    const e = err(() => ast(from(), ins('COPPY', ['a', 'b'])));
    expect(e.message).toBe('unknown instruction: COPPY');
    expect(e.hint).toBe('did you mean COPY?');
    expect(e.span).toEqual({ file: F, line: 2, col: 1, endCol: 6 });
  });
});

describe('flags', () => {
  it.each([
    ['TSB2006', ins('COPY', ['a', 'b'], { flags: ['--checksum=sha256:x'] }), /ADD flag/],
    ['TSB2006', ins('ADD', ['a', 'b'], { flags: ['--from=x'] }), /COPY flag/],
    ['TSB2006', ins('RUN', ['x'], { flags: ['--mout=type=cache,target=/x'] }), /did you mean --mount/],
    ['TSB2006', ins('ENV', ['a', '1', '='], { flags: ['--x=1'] }), /takes no flags/],
    ['TSB2007', ins('COPY', ['a', 'b'], { flags: ['--link=yes'] }), /Expecting boolean/],
    ['TSB2007', ins('COPY', ['a', 'b'], { flags: ['--link='] }), /Missing a value/],
    ['TSB2007', ins('COPY', ['a', 'b'], { flags: ['--chown'] }), /Missing a value/],
    ['TSB2008', ins('COPY', ['a', 'b'], { flags: ['--chown=1', '--chown=2'] }), /Duplicate/],
    ['TSB2016', ins('COPY', ['a', 'b'], { flags: ['--from=$STAGE'] }), /variable/],
    ['TSB2015', ins('RUN', ['x'], { flags: ['--network=bridge'] }), /network/],
    ['TSB2015', ins('RUN', ['x'], { flags: ['--security=unconfined'] }), /security/],
    ['TSB2020', ins('RUN', ['x'], { flags: ['--device=/dev/fuse'] }), /device/],
  ])('%s %#', (code, i, msg) => {
    const e = err(() => ast(from(), i));
    expect(e.code).toBe(code);
    expect(`${e.message} ${e.hint ?? ''}`).toMatch(msg);
    expect(e.span!.col).toBeGreaterThan(1); // at the flag, not the keyword
  });
  it('parses COPY/ADD flags', () => {
    const ir = toIR(ast(from(), ins('COPY', ['a', 'b', '/d/'], { flags: ['--link', '--parents=TRUE', '--exclude=*.md', '--exclude=x', '--chown=$U:$G', '--from=0'] }),
      ins('ADD', ['http://x/y', '/y'], { flags: ['--checksum=sha256:ab', '--unpack=false', '--keep-git-dir'] })));
    const [c, a] = ir.stages[0]!.instructions as [CopyInstr, CopyInstr];
    expect(c).toMatchObject({ kind: 'COPY', link: true, parents: true, from: { raw: '0', expand: false }, chown: { raw: '$U:$G', expand: true } });
    expect(c.exclude.map((w) => w.raw)).toEqual(['*.md', 'x']);
    expect(c.sources.map((w) => w.raw)).toEqual(['a', 'b']);
    expect(c.dest.raw).toBe('/d/');
    expect(c.unpack).toBeUndefined();
    expect(a).toMatchObject({ kind: 'ADD', link: false, keepGitDir: true, unpack: false, checksum: { raw: 'sha256:ab' } });
  });
});

describe('instructions', () => {
  it.each([
    ['TSB2009', ins('COPY', ['onlyone'])],
    ['TSB2009', ins('USER', [])],
    ['TSB2009', ins('WORKDIR', [])],
    ['TSB2009', ins('EXPOSE', [])],
    ['TSB2009', ins('ARG', [])],
    ['TSB2010', ins('ARG', ['=x'])],
    ['TSB2010', ins('ENV', ['', 'x', '='])],
    ['TSB2011', ins('HEALTHCHECK', ['NONE', 'x'])],
    ['TSB2011', ins('HEALTHCHECK', ['CMD'])],
    ['TSB2011', ins('HEALTHCHECK', ['PING', 'x'])],
    ['TSB2011', ins('HEALTHCHECK', ['CMD', 'x'], { flags: ['--interval=5'] })],
    ['TSB2011', ins('HEALTHCHECK', ['CMD', 'x'], { flags: ['--timeout=10us'] })],
    ['TSB2011', ins('HEALTHCHECK', ['CMD', 'x'], { flags: ['--retries=-1'] })],
    ['TSB2011', ins('HEALTHCHECK', ['CMD', 'x'], { flags: ['--retries=three'] })],
    ['TSB2012', ins('ONBUILD', [], { sub: ins('ONBUILD', ['RUN', 'x']) })],
    ['TSB2012', ins('ONBUILD', [], { sub: ins('FROM', ['x']) })],
    ['TSB2012', ins('ONBUILD', [], { sub: ins('maintainer', ['me']) })],
    ['TSB2013', ins('SHELL', ['/bin/bash -c'])],
    ['TSB2017', ins('COPY', ['a', '<<EOF'])],
    ['TSB2019', ins('VOLUME', ['  '], { json: true })],
  ])('%s %#', (code, i) => { expect(err(() => ast(from(), i)).code).toBe(code); });

  it('HEALTHCHECK parses durations and retries', () => {
    const ir = toIR(ast(from(), ins('HEALTHCHECK', ['CMD', 'curl -f http://localhost/'], { flags: ['--interval=1m30s', '--timeout=500ms', '--retries=3', '--start-interval=0'] })));
    const h = ir.stages[0]!.instructions[0] as HealthcheckInstr & { test: 'CMD' };
    expect(h).toMatchObject({ test: 'CMD', intervalNs: 90e9, timeoutNs: 5e8, retriesCount: 3, startPeriodNs: 0, startIntervalNs: 0, command: { form: 'shell', text: 'curl -f http://localhost/' } });
  });
  it('RUN with no command lowers to an empty shell command (BuildKit runs /bin/sh -c "")', () => {
    const ir = toIR(ast(from(), ins('RUN', [], { flags: ['--network=none'] })));
    expect(ir.stages[0]!.instructions[0]).toMatchObject({ kind: 'RUN', command: { form: 'shell', text: '' } });
  });
  it('an ONBUILD trigger that does not lower is a warning (BuildKit fails only in the child build)', () => {
    const ir = toIR(ast(from(), ins('ONBUILD', [], { sub: ins('COPY', ['onlyone']) })));
    const o = ir.stages[0]!.instructions[0]!;
    expect(o).toMatchObject({ kind: 'ONBUILD' });
    expect('trigger' in o).toBe(false);
    expect(ir.warnings.map((w) => w.rule)).toContain('InvalidOnbuildTrigger');
  });
  it('ONBUILD keeps the expression and lowers the trigger', () => {
    const ir = toIR(ast(from(), ins('ONBUILD', [], { sub: ins('RUN', ['echo hi']) })));
    const o = ir.stages[0]!.instructions[0]!;
    expect(o).toMatchObject({ kind: 'ONBUILD', trigger: { kind: 'RUN', command: { form: 'shell', text: 'echo hi' } } });
  });
  it('RUN --mount is parsed and checked', () => {
    const ir = toIR(ast(from(), ins('RUN', ['make'], { flags: ['--mount=type=cache,target=/root/.cache,sharing=locked', '--mount=type=secret,id=tok,required', '--mount=type=$T,target=/x'] })));
    const r = ir.stages[0]!.instructions[0] as RunInstr;
    expect(r.mounts.map((m) => m.type)).toEqual(['cache', 'secret', '$T']);
    expect(Object.fromEntries(r.mounts[1]!.options)).toEqual({ type: 'secret', id: 'tok', required: 'true' });
    expect(resolveMount(r.mounts[0]!, (v) => v)).toEqual({ type: 'cache', target: '/root/.cache', sharing: 'locked', readOnly: false, required: false });
    expect(resolveMount(r.mounts[2]!, (v) => v.replace('$T', 'tmpfs'))).toEqual({ type: 'tmpfs', target: '/x', readOnly: false, required: false });
    expect(() => resolveMount(r.mounts[2]!, (v) => v.replace('$T', 'nfs'))).toThrow(/unsupported mount type "nfs"/);
  });
  it.each([
    ['type=nfs,target=/x', 'TSB2014', /unsupported mount type/],
    ['type=cache,target=/x,sharing=lockd', 'TSB2014', /did you mean locked/],
    ['type=bind,target=/x,required', 'TSB2014', /unexpected key 'required'/],
    ['type=bind,traget=/x', 'TSB2014', /did you mean target/],
    ['type=bind,target=/x,mode=0755', 'TSB2014', /mode not allowed/],
    ['type=cache,target=/x,uid=abc', 'TSB2014', /invalid value abc for uid/],
    ['type=tmpfs,target=/x,size=lots', 'TSB2014', /invalid value for size/],
    ['type=secret,id=a,sharing=shared', 'TSB2014', /sharing/],
    ['type=bind,"target=/x', 'TSB2014', /csv/],
    ['type=bind,target', 'TSB2014', /key=value/],
    ['type=bind,from=$STAGE,target=/x', 'TSB2016', /variable expansion/],
  ])('--mount=%s → %s', (m, code, msg) => {
    const e = err(() => ast(from(), ins('RUN', ['x'], { flags: [`--mount=${m}`] })));
    expect(e.code).toBe(code);
    expect(`${e.message} ${e.hint ?? ''}`).toMatch(msg);
  });
  it('COPY heredoc sources are matched by name', () => {
    const h: Heredoc = { name: 'EOF', fileDescriptor: 0, expand: true, chomp: false, content: 'hi\n', span: { file: F, line: 3, col: 1 } };
    const ir = toIR(ast(from(), ins('COPY', ['a', '<<EOF', '/dst'], { heredocs: [h] })));
    const c = ir.stages[0]!.instructions[0] as CopyInstr;
    expect(c.heredocs).toEqual([{ ...h, sourceIndex: 1 }]);
  });
  it('warnings: JSONArgsRecommended, MaintainerDeprecated, LegacyKeyValueFormat, ExposeProtoCasing, FromAsCasing, casing majority', () => {
    const ir = toIR(ast(ins('FROM', ['a', 'as', 'b']), ins('CMD', ['run it']), ins('MAINTAINER', ['me']), ins('ENV', ['A', 'b c', '']),
      ins('EXPOSE', ['80/TCP']), ins('copy', ['a', 'b'])));
    expect(ir.warnings.map((w) => w.rule).sort()).toEqual(['ConsistentInstructionCasing', 'ExposeProtoCasing', 'FromAsCasing', 'JSONArgsRecommended',
      'LegacyKeyValueFormat', 'MaintainerDeprecated']);
  });
});

describe('resolveMount defaults (BuildKit validateMount)', () => {
  const mount = (spec: string) => {
    const ir = toIR(ast(from(), ins('RUN', ['x'], { flags: [`--mount=${spec}`] })));
    return resolveMount((ir.stages[0]!.instructions[0] as RunInstr).mounts[0]!, (v) => v.replace('$UID', '1000'));
  };
  it.each([
    ['target=/src', { type: 'bind', target: '/src', readOnly: true, required: false }],
    ['type=bind,target=/src,rw', { type: 'bind', target: '/src', readOnly: false, required: false }],
    ['type=bind,target=/src,readonly=false', { type: 'bind', target: '/src', readOnly: false, required: false }],
    ['type=cache,target=/c,id=go,mode=0700,uid=$UID,gid=0', { type: 'cache', target: '/c', id: 'go', mode: 0o700, uid: 1000, gid: 0, readOnly: false, required: false }],
    ['type=cache,target=/c,ro', { type: 'cache', target: '/c', readOnly: true, required: false }],
    ['type=tmpfs,target=/t,size=64m', { type: 'tmpfs', target: '/t', sizeLimit: 64 * 2 ** 20, readOnly: false, required: false }],
    ['type=secret,id=npmrc,target=/root/.npmrc,required=true', { type: 'secret', id: 'npmrc', target: '/root/.npmrc', readOnly: true, required: true }],
    ['type=secret,id=tok,env=TOKEN', { type: 'secret', id: 'tok', env: 'TOKEN', readOnly: true, required: false }],
    ['type=ssh,required', { type: 'ssh', readOnly: true, required: true }],
    ['"type=bind,target=/a,b",src=x', null],
  ])('%s', (spec, want) => {
    if (want === null) {
      // A CSV-quoted field keeps its comma: here `type` is `bind,target=/a,b`, which is no type.
      expect(() => mount(spec)).toThrow(/unsupported mount type/);
      return;
    }
    expect(mount(spec)).toEqual(want);
  });
});
