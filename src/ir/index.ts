/**
 * src/ir: DockerfileAST → DockerfileIR (see types.ts for the contract), plus the shell-word
 * expansion the build engine uses on IR words (shell.ts) and RUN --mount resolution (mount.ts).
 *
 * What `toIR` checks follows BuildKit's instructions package (parse.go, bflag.go, the RUN flag
 * hooks): which flags each instruction takes and their types, argument counts, stage names,
 * HEALTHCHECK, ONBUILD triggers, SHELL's JSON form, --mount syntax. Deliberate differences:
 * - duplicate stage names are an error (TSB2005); BuildKit only warns, then `--from=name` is ambiguous;
 * - `RUN --device` is rejected (TSB2020): tsbuild's sandbox has no device passthrough;
 * - a flag on an instruction that takes none is an error, as in BuildKit, except on ARG and
 *   STOPSIGNAL, whose flags BuildKit never looks at (accepted with an IgnoredFlag warning).
 * As in BuildKit: an ONBUILD trigger is checked only for its keyword; one that would fail in the
 * child build is kept with an InvalidOnbuildTrigger warning. `RUN` with no command runs `sh -c ""`.
 * Mount, network and --from checks that BuildKit makes when it dispatches a step are made here.
 * Lint warnings (BuildKit rule names) are cheap, syntax-only ones; see `lint()`.
 */
import { TsbError, type Span } from '../errors.js';
import type { ArgNode, DockerfileAST, Heredoc, Instruction, Warning } from '../syntax/ast.js';
import { parseGoDuration } from './duration.js';
import { irError, type IrErrorCode } from './errors.js';
import { lowerMount } from './mount.js';
import { expandShellWord, hasVariable } from './shell.js';
import { didYouMean } from './suggest.js';
import type {
  ArgInstr, Command, CopyInstr, DockerfileIR, FromInstr, HeredocSource, Instr, KeyValue, RunMount, Stage,
  StageInstr, Word,
} from './types.js';

export type * from './types.js';
export { IR_ERRORS, type IrErrorCode } from './errors.js';
export {
  expandShellWord, expandWord, hasVariable, processWord, processWords,
  type EscapeToken, type ExpandResult, type LexOptions, type ShellEnv,
} from './shell.js';
export { resolveMount, type ResolvedMount, type MountType, type CacheSharing } from './mount.js';
export { parseGoDuration } from './duration.js';

const INSTRUCTIONS = [
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER',
  'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
] as const;

/** One-line syntax, for argument-count hints. */
const USAGE: Record<string, string> = {
  ARG: 'ARG NAME[=default] …', ENV: 'ENV KEY=value …', LABEL: 'LABEL key=value …', EXPOSE: 'EXPOSE PORT[/tcp|udp] …',
  VOLUME: 'VOLUME /path … (or VOLUME ["/path"])', USER: 'USER user[:group]', WORKDIR: 'WORKDIR /path',
  STOPSIGNAL: 'STOPSIGNAL SIGTERM', MAINTAINER: 'MAINTAINER name (or better: LABEL org.opencontainers.image.authors=…)',
  SHELL: 'SHELL ["executable", "param"]',
};

/** BuildKit's SecretsUsedInArgOrEnv: a secret-ish word as a whole `_`-separated part of the name. */
const SECRET_DENY = /(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)/i;
const SECRET_ALLOW = /(?:_|^)(?:public|file|version)(?:_|$)/i;

/** Build args every build defines without an ARG line (BuildKit's predefined platform and proxy args). */
export const PREDEFINED_ARGS: readonly string[] = [
  'BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT', 'TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT',
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
];

const VALID_STAGE_NAME = /^[a-z][a-z0-9\-_.]*$/;

type FlagType = 'bool' | 'string' | 'strings';

interface ParsedFlag {
  readonly name: string;
  /** Every value given (strings flags collect; others have one). Bool: 'true' | 'false'. */
  readonly values: string[];
  readonly span: Span;
}

const FLAGS: Record<string, Record<string, FlagType>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'strings', network: 'string', security: 'string', device: 'strings' },
  COPY: { chown: 'string', from: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  ADD: {
    chown: 'string', chmod: 'string', link: 'bool', 'keep-git-dir': 'bool', checksum: 'string',
    unpack: 'bool', exclude: 'strings',
  },
  HEALTHCHECK: {
    interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string',
  },
};

const MIN_HEALTH_INTERVAL_NS = 1e6; // Docker's container.MinimumDuration (1ms)

class Lowerer {
  readonly warnings: Warning[] = [];
  /** The current stage (or the stage it builds on) has a SHELL: shell-form CMD is then intended. */
  shellChanged = false;
  /** The current stage (or the stage it builds on) set an absolute WORKDIR. */
  absWorkdir = false;

  private checkSecretKey(kw: 'ARG' | 'ENV', key: string, ins: Instruction): void {
    if (SECRET_DENY.test(key) && !SECRET_ALLOW.test(key)) {
      this.warn('SecretsUsedInArgOrEnv', `Do not use ARG or ENV instructions for sensitive data (${kw} ${JSON.stringify(key)})`, ins);
    }
  }

  constructor(readonly ast: DockerfileAST) {}

  private word(node: ArgNode, expand: boolean): Word {
    return { raw: node.value, expand, span: node.span };
  }

  keywordSpan(ins: Instruction): Span {
    return { file: ins.span.file, line: ins.span.line, col: ins.span.col, endCol: ins.span.col + ins.keyword.length };
  }

  private fail(code: IrErrorCode, message: string, span: Span, hint?: string): never {
    throw irError(code, message, span, hint);
  }

  /** BuildKit's BFlags.Parse with the instruction's flag table. */
  private flags(ins: Instruction, kw: string, table: Record<string, FlagType> = FLAGS[kw] ?? {}): Map<string, ParsedFlag> {
    const used = new Map<string, ParsedFlag>();
    for (const f of ins.flags) {
      const text = f.value;
      if (!text.startsWith('--')) this.fail('TSB2006', `Arg should start with -- : ${text}`, f.span, 'flags are written --name=value.');
      if (text === '--') break;
      const body = text.slice(2);
      const eq = body.indexOf('=');
      const name = eq >= 0 ? body.slice(0, eq) : body;
      const value = eq >= 0 ? body.slice(eq + 1) : '';
      const type = Object.hasOwn(table, name) ? table[name] : undefined;
      if (!type) {
        const known = Object.keys(table);
        const guess = didYouMean(name, known);
        const other = kw === 'COPY' && Object.hasOwn(FLAGS.ADD!, name) ? `--${name} is an ADD flag; COPY does not take it.`
          : kw === 'ADD' && Object.hasOwn(FLAGS.COPY!, name) ? `--${name} is a COPY flag; ADD does not take it.`
          : guess ? `did you mean --${guess}?`
          : known.length ? `${kw} takes ${known.map((k) => `--${k}`).join(', ')}.` : `${kw} takes no flags.`;
        this.fail('TSB2006', `Unknown flag: ${name}`, f.span, other);
      }
      const prev = used.get(name);
      if (prev && type !== 'strings') this.fail('TSB2008', `Duplicate flag specified: ${name}`, f.span, `give --${name} once.`);
      let v = value;
      if (type === 'bool') {
        if (eq >= 0 && value === '') this.fail('TSB2007', `Missing a value on flag: ${name}`, f.span, `write --${name} or --${name}=true|false.`);
        const lower = value.toLowerCase();
        if (lower === '') v = 'true';
        else if (lower === 'true' || lower === 'false') v = lower;
        else this.fail('TSB2007', `Expecting boolean value for flag ${name}, not: ${value}`, f.span, `write --${name} or --${name}=true|false.`);
      } else if (eq < 0) {
        this.fail('TSB2007', `Missing a value on flag: ${name}`, f.span, `write --${name}=VALUE.`);
      }
      if (prev) prev.values.push(v);
      else used.set(name, { name, values: [v], span: f.span });
    }
    return used;
  }

  private flagWord(flags: Map<string, ParsedFlag>, name: string, expand: boolean): Word | undefined {
    const f = flags.get(name);
    return f ? { raw: f.values[0]!, expand, span: f.span } : undefined;
  }

  private command(ins: Instruction, args: readonly ArgNode[]): Command {
    if (ins.json) {
      return { form: 'exec', argv: args.map((a) => a.value), span: args.length ? spanOf(args) : ins.span };
    }
    const a = args[0];
    return { form: 'shell', text: a ? a.value : '', span: a ? a.span : ins.span };
  }

  private kvPairs(ins: Instruction, kw: string): KeyValue[] {
    const args = ins.args;
    if (args.length === 0) this.fail('TSB2009', `${kw} requires at least one argument`, this.keywordSpan(ins), `write ${USAGE[kw] ?? `${kw} …`}.`);
    if (args.length % 3 !== 0) this.fail('TSB2009', `Bad input to ${kw}, too many arguments`, ins.span, `write ${kw} key=value ….`);
    const out: KeyValue[] = [];
    for (let i = 0; i < args.length; i += 3) {
      const k = args[i]!;
      const v = args[i + 1]!;
      if (k.value === '') this.fail('TSB2010', `${kw} names can not be blank`, k.span, `write ${kw} key=value.`);
      if (args[i + 2]!.value === '') {
        this.warn('LegacyKeyValueFormat', `"${kw} key=value" should be used instead of legacy "${kw} key value" format`, ins);
      }
      out.push({ key: this.word(k, true), value: this.word(v, true), span: joinSpans(k.span, v.span) });
    }
    return out;
  }

  private exactlyOne(ins: Instruction, kw: string): ArgNode {
    if (ins.args.length !== 1) {
      this.fail('TSB2009', `${kw} requires exactly one argument`, ins.args.length ? ins.args[1]?.span ?? ins.span : this.keywordSpan(ins),
        `write ${USAGE[kw] ?? `${kw} …`}.`);
    }
    return ins.args[0]!;
  }

  private atLeastOne(ins: Instruction, kw: string): void {
    if (ins.args.length === 0) this.fail('TSB2009', `${kw} requires at least one argument`, this.keywordSpan(ins), `write ${USAGE[kw] ?? `${kw} …`}.`);
  }

  private noFlags(ins: Instruction, kw: string): void {
    this.flags(ins, kw, {});
  }

  /** ARG and STOPSIGNAL: BuildKit never parses their flags, so any flag is accepted and ignored. */
  private ignoredFlags(ins: Instruction, kw: string): void {
    if (ins.flags.length) {
      this.warn('IgnoredFlag', `${kw} takes no flags; ${ins.flags.map((f) => f.value).join(' ')} ignored`, ins.flags[0]!.span);
    }
  }

  warn(rule: string, message: string, at: Instruction | Span): void {
    if ('keyword' in at) {
      // `# check=skip=Rule` in the comment right above an instruction silences it there (BuildKit).
      for (const c of at.prevComment) {
        const m = /^\s*check\s*=(.*)$/i.exec(c);
        if (m && parseCheck(m[1]!).skip(rule)) return;
      }
    }
    const span = 'keyword' in at ? this.keywordSpan(at) : at;
    this.warnings.push({ rule, message, span });
  }

  lower(ins: Instruction): Instr {
    const kw = ins.keyword.toUpperCase();
    const base = { span: ins.span, original: ins.original };
    switch (kw) {
      case 'FROM': {
        const args = ins.args;
        let stageName: string | undefined;
        if (args.length === 3 && args[1]!.value.toLowerCase() === 'as') {
          stageName = args[2]!.value.toLowerCase();
          if (!VALID_STAGE_NAME.test(stageName)) {
            this.fail('TSB2004', `invalid name for build stage: ${JSON.stringify(args[2]!.value)}, name can't start with a number or contain symbols`,
              args[2]!.span, 'stage names start with a letter and use only letters, digits, -, _ and .');
          }
        } else if (args.length !== 1) {
          this.fail('TSB2003', 'FROM requires either one or three arguments', args.length ? ins.span : this.keywordSpan(ins),
            args.length === 2 && args[1]!.value.toLowerCase() === 'as' ? 'name the stage: FROM image AS name.' : 'write FROM image [AS name].');
        }
        const flags = this.flags(ins, kw);
        const from: FromInstr = {
          kind: 'FROM', ...base, image: this.word(args[0]!, true),
          ...(flags.has('platform') ? { platform: this.flagWord(flags, 'platform', true)! } : {}),
          ...(stageName !== undefined ? { stageName } : {}),
        };
        return from;
      }
      case 'RUN': {
        const flags = this.flags(ins, kw);
        if (flags.has('device')) {
          this.fail('TSB2020', 'RUN --device is not supported by tsbuild', flags.get('device')!.span,
            'tsbuild runs steps in a sandbox without device passthrough; drop --device.');
        }
        const network = this.flagWord(flags, 'network', false);
        if (network && !['default', 'none', 'host'].includes(network.raw)) {
          this.fail('TSB2015', `invalid network mode ${JSON.stringify(network.raw)}`, network.span, 'use --network=default, none or host.');
        }
        const security = this.flagWord(flags, 'security', false);
        if (security && !['sandbox', 'insecure'].includes(security.raw)) {
          this.fail('TSB2015', `security ${JSON.stringify(security.raw)} is not valid`, security.span, 'use --security=sandbox or insecure.');
        }
        const mountFlag = flags.get('mount');
        const mounts: RunMount[] = mountFlag ? mountFlag.values.map((v) => lowerMount(v, mountFlag.span)) : [];
        // `RUN` with nothing after it (or only flags) is accepted by BuildKit: it runs `/bin/sh -c ""`.
        return {
          kind: 'RUN', ...base, command: this.command(ins, ins.args), heredocs: ins.heredocs, mounts,
          ...(network ? { network } : {}), ...(security ? { security } : {}),
        };
      }
      case 'CMD':
      case 'ENTRYPOINT': {
        this.noFlags(ins, kw);
        const command = this.command(ins, ins.args);
        if (!ins.json && ins.args.length > 0 && !this.shellChanged) {
          this.warn('JSONArgsRecommended', `JSON arguments recommended for ${kw} to prevent unintended behavior related to OS signals`, ins);
        }
        return kw === 'CMD' ? { kind: 'CMD', ...base, command } : { kind: 'ENTRYPOINT', ...base, command };
      }
      case 'SHELL': {
        this.noFlags(ins, kw);
        if (ins.args.length === 0) this.fail('TSB2009', 'SHELL requires at least one argument', this.keywordSpan(ins), `write ${USAGE.SHELL!}.`);
        if (!ins.json) {
          this.fail('TSB2013', 'SHELL requires the arguments to be in JSON form', spanOf(ins.args), 'write SHELL ["/bin/bash", "-c"].');
        }
        this.shellChanged = true;
        return { kind: 'SHELL', ...base, argv: ins.args.map((a) => a.value) };
      }
      case 'ENV':
      case 'LABEL': {
        this.noFlags(ins, kw);
        const pairs = this.kvPairs(ins, kw);
        if (kw === 'ENV') for (const p of pairs) this.checkSecretKey('ENV', p.key.raw, ins);
        return kw === 'ENV' ? { kind: 'ENV', ...base, pairs } : { kind: 'LABEL', ...base, pairs };
      }
      case 'ARG': {
        this.ignoredFlags(ins, kw);
        this.atLeastOne(ins, kw);
        const args: KeyValue[] = ins.args.map((a) => {
          const eq = a.value.indexOf('=');
          if (eq === 0) this.fail('TSB2010', 'ARG names can not be blank', a.span, 'write ARG NAME or ARG NAME=default.');
          if (eq < 0) return { key: this.word(a, false), span: a.span };
          const [ks, vs] = splitSpan(a, eq);
          return {
            key: { raw: a.value.slice(0, eq), expand: false, span: ks },
            value: { raw: a.value.slice(eq + 1), expand: true, span: vs },
            span: a.span,
          };
        });
        for (const a of args) this.checkSecretKey('ARG', a.key.raw, ins);
        return { kind: 'ARG', ...base, args };
      }
      case 'COPY':
      case 'ADD':
        return this.copy(ins, kw);
      case 'EXPOSE': {
        this.noFlags(ins, kw);
        this.atLeastOne(ins, kw);
        for (const a of ins.args) {
          if (!hasVariable(a.value) && a.value.includes(':')) {
            this.warn('ExposeInvalidFormat', `EXPOSE instruction should not define an IP address or host-port mapping, found '${a.value}'`, ins);
          }
          const m = /\/([a-zA-Z]+)$/.exec(a.value);
          if (m && !hasVariable(a.value) && m[1] !== m[1]!.toLowerCase()) {
            this.warn('ExposeProtoCasing', `Defined protocol '${a.value}' in EXPOSE instruction should be lowercase`, ins);
          }
        }
        return { kind: 'EXPOSE', ...base, ports: ins.args.map((a) => this.word(a, true)) };
      }
      case 'VOLUME': {
        this.noFlags(ins, kw);
        this.atLeastOne(ins, kw);
        for (const a of ins.args) {
          if (a.value.trim() === '') this.fail('TSB2019', 'VOLUME specified can not be an empty string', a.span, 'give a path: VOLUME /data.');
        }
        return { kind: 'VOLUME', ...base, paths: ins.args.map((a) => ({ ...this.word(a, true), raw: a.value.trim() })) };
      }
      case 'USER':
        this.noFlags(ins, kw);
        return { kind: 'USER', ...base, user: this.word(this.exactlyOne(ins, kw), true) };
      case 'WORKDIR': {
        this.noFlags(ins, kw);
        const path = this.word(this.exactlyOne(ins, kw), true);
        if (!hasVariable(path.raw)) {
          if (path.raw.startsWith('/')) this.absWorkdir = true;
          else if (!this.absWorkdir) {
            this.warn('WorkdirRelativePath', `Relative workdir ${JSON.stringify(path.raw)} can have unexpected results if the base image changes`, ins);
          }
        }
        return { kind: 'WORKDIR', ...base, path };
      }
      case 'STOPSIGNAL':
        this.ignoredFlags(ins, kw);
        return { kind: 'STOPSIGNAL', ...base, signal: this.word(this.exactlyOne(ins, kw), true) };
      case 'MAINTAINER': {
        const a = this.exactlyOne(ins, kw);
        this.noFlags(ins, kw);
        this.warn('MaintainerDeprecated', 'Maintainer instruction is deprecated in favor of using label', ins);
        return { kind: 'MAINTAINER', ...base, name: a.value };
      }
      case 'ONBUILD':
        return this.onbuild(ins);
      case 'HEALTHCHECK':
        return this.healthcheck(ins);
      default: {
        const guess = didYouMean(ins.keyword, INSTRUCTIONS);
        return this.fail('TSB2001', `unknown instruction: ${ins.keyword}`, this.keywordSpan(ins),
          guess ? `did you mean ${guess}?` : `Dockerfile instructions: ${INSTRUCTIONS.join(', ')}.`);
      }
    }
  }

  private copy(ins: Instruction, kw: 'COPY' | 'ADD'): CopyInstr {
    const base = { span: ins.span, original: ins.original };
    if (ins.args.length < 2) {
      this.fail('TSB2009', `${kw} requires at least two arguments, but only one was provided. Destination could not be determined`,
        ins.args.length ? ins.args[0]!.span : this.keywordSpan(ins), `write ${kw} SOURCE... DEST.`);
    }
    const flags = this.flags(ins, kw);
    const srcs = ins.args.slice(0, -1);
    const dest = ins.args[ins.args.length - 1]!;
    if (!ins.json && heredocWord(dest.value)) {
      this.fail('TSB2017', `${kw} cannot accept a heredoc as a destination`, dest.span, `write ${kw} <<EOF /path/to/file.`);
    }
    const heredocs: HeredocSource[] = [];
    if (!ins.json) {
      const byName = new Map<string, Heredoc>();
      for (const h of ins.heredocs) byName.set(h.name, h);
      srcs.forEach((s, i) => {
        const name = heredocWord(s.value);
        const h = name !== undefined ? byName.get(name) : undefined;
        if (h) heredocs.push({ ...h, sourceIndex: i });
      });
    }
    const from = flags.get('from');
    if (from && hasVariable(from.values[0]!)) {
      this.fail('TSB2016', 'variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
        from.span, `add a stage \`FROM ${from.values[0]!} AS <name>\` (a FROM line may use ARGs declared before the first FROM) and write --from=<name>.`);
    }
    const bool = (n: string) => flags.get(n)?.values[0] === 'true';
    const out: CopyInstr = {
      kind: kw, ...base,
      sources: srcs.map((s) => this.word(s, true)),
      dest: this.word(dest, true),
      heredocs,
      ...(from ? { from: this.flagWord(flags, 'from', false)! } : {}),
      ...(flags.has('chown') ? { chown: this.flagWord(flags, 'chown', true)! } : {}),
      ...(flags.has('chmod') ? { chmod: this.flagWord(flags, 'chmod', true)! } : {}),
      link: bool('link'),
      parents: bool('parents'),
      exclude: (flags.get('exclude')?.values ?? []).map((v) => ({ raw: v, expand: true, span: flags.get('exclude')!.span })),
      ...(flags.has('checksum') ? { checksum: this.flagWord(flags, 'checksum', true)! } : {}),
      ...(kw === 'ADD' ? { keepGitDir: bool('keep-git-dir') } : {}),
      ...(flags.has('unpack') ? { unpack: bool('unpack') } : {}),
    };
    return out;
  }

  private onbuild(ins: Instruction): StageInstr {
    const sub = ins.sub;
    if (!sub) this.fail('TSB2009', 'ONBUILD requires at least one argument', this.keywordSpan(ins), 'write ONBUILD INSTRUCTION args.');
    this.noFlags(ins, 'ONBUILD');
    const trig = sub.keyword.toUpperCase();
    if (trig === 'ONBUILD') {
      this.fail('TSB2012', 'Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', this.keywordSpan(sub), 'write the trigger once.');
    }
    if (trig === 'FROM' || trig === 'MAINTAINER') {
      this.fail('TSB2012', `${trig} isn't allowed as an ONBUILD trigger`, this.keywordSpan(sub),
        trig === 'FROM' ? 'a child image starts from this image; it cannot change its base.' : 'use LABEL instead of MAINTAINER.');
    }
    let expression = ins.original.replace(/^\s*ONBUILD\s*/i, '');
    // As BuildKit stores it in the image config: the line, then each body as written and its delimiter.
    const hs = sub.heredocs.length ? sub.heredocs : ins.heredocs;
    for (const h of hs) expression += '\n' + (h.rawContent ?? h.content) + h.name;
    // BuildKit checks only the trigger's keyword now; the trigger itself is parsed when a child
    // image builds FROM this one, and fails there. So a trigger that does not lower is a warning
    // here (the expression is still stored), not an error.
    let trigger: StageInstr | undefined;
    const saved = { shellChanged: this.shellChanged, absWorkdir: this.absWorkdir, warnings: this.warnings.length };
    try {
      trigger = this.lower({ ...sub, heredocs: sub.heredocs.length ? sub.heredocs : ins.heredocs }) as StageInstr;
    } catch (e) {
      if (!(e instanceof TsbError)) throw e;
      this.warnings.length = saved.warnings;
      this.warn('InvalidOnbuildTrigger', `ONBUILD trigger will fail in images built FROM this one: ${e.code} ${e.message}`, ins);
    }
    // Lowering the trigger must not change the state of this stage (it runs in a child's).
    this.shellChanged = saved.shellChanged;
    this.absWorkdir = saved.absWorkdir;
    return { kind: 'ONBUILD', span: ins.span, original: ins.original, expression, ...(trigger ? { trigger } : {}) };
  }

  private healthcheck(ins: Instruction): StageInstr {
    const base = { span: ins.span, original: ins.original };
    if (ins.args.length === 0) {
      this.fail('TSB2009', 'HEALTHCHECK requires at least one argument', this.keywordSpan(ins), 'write HEALTHCHECK CMD command or HEALTHCHECK NONE.');
    }
    const typ = ins.args[0]!.value.toUpperCase();
    const rest = ins.args.slice(1);
    if (typ === 'NONE') {
      if (rest.length) this.fail('TSB2011', 'HEALTHCHECK NONE takes no arguments', rest[0]!.span, 'write HEALTHCHECK NONE alone.');
      if (ins.flags.length) this.warn('HealthcheckNoneFlags', 'flags of HEALTHCHECK NONE are ignored', ins.flags[0]!.span);
      return { kind: 'HEALTHCHECK', ...base, test: 'NONE' };
    }
    const flags = this.flags(ins, 'HEALTHCHECK');
    if (typ !== 'CMD') {
      this.fail('TSB2011', `Unknown type ${JSON.stringify(typ)} in HEALTHCHECK (try CMD)`, ins.args[0]!.span, 'write HEALTHCHECK [flags] CMD command.');
    }
    if (rest.length === 0) this.fail('TSB2011', 'Missing command after HEALTHCHECK CMD', ins.args[0]!.span, 'write HEALTHCHECK CMD command.');
    const dur = (name: string): number => {
      const f = flags.get(name);
      if (!f || f.values[0] === '') return 0;
      const d = parseGoDuration(f.values[0]!);
      if (typeof d === 'string') this.fail('TSB2011', d, f.span, 'write a duration such as 30s, 1m30s or 500ms.');
      if (d === 0) return 0;
      if (d < MIN_HEALTH_INTERVAL_NS) this.fail('TSB2011', `Interval ${JSON.stringify(name)} cannot be less than 1ms`, f.span, 'use 0 for the default, or a duration of at least 1ms.');
      return d;
    };
    const intervalNs = dur('interval');
    const timeoutNs = dur('timeout');
    const startPeriodNs = dur('start-period');
    const startIntervalNs = dur('start-interval');
    let retriesCount = 0;
    const r = flags.get('retries');
    if (r && r.values[0] !== '') {
      const v = r.values[0]!;
      if (!/^[+-]?[0-9]+$/.test(v) || Math.abs(Number(v)) > 2 ** 31 - (v.startsWith('-') ? 0 : 1)) {
        this.fail('TSB2011', `strconv.ParseInt: parsing ${JSON.stringify(v)}: ${/^[+-]?[0-9]+$/.test(v) ? 'value out of range' : 'invalid syntax'}`,
          r.span, 'write --retries=N with a whole number.');
      }
      retriesCount = Number(v);
      if (retriesCount < 0) this.fail('TSB2011', `--retries cannot be negative (${retriesCount})`, r.span, 'use 0 for the default, or a positive count.');
    }
    const w = (n: string) => this.flagWord(flags, n, false);
    return {
      kind: 'HEALTHCHECK', ...base, test: 'CMD', command: this.command(ins, rest),
      ...optional('interval', w('interval')), ...optional('timeout', w('timeout')),
      ...optional('startPeriod', w('start-period')), ...optional('startInterval', w('start-interval')),
      ...optional('retries', w('retries')),
      intervalNs, timeoutNs, startPeriodNs, startIntervalNs, retriesCount,
    };
  }
}

function optional<K extends string>(k: K, w: Word | undefined): { [P in K]?: Word } {
  return (w ? { [k]: w } : {}) as { [P in K]?: Word };
}

/** BuildKit's heredoc word test (`<<EOF`, `<<-"EOF"`, `3<<EOF`) → the delimiter name, unquoted. */
function heredocWord(word: string): string | undefined {
  const m = /^(\d*)<<(-?)\s*([^<]*)$/.exec(word);
  if (!m) return undefined;
  let name = m[3]!;
  if (name === '') return undefined;
  if ((name.startsWith('"') && name.endsWith('"')) || (name.startsWith("'") && name.endsWith("'"))) {
    name = name.length >= 2 ? name.slice(1, -1) : name;
  }
  return name;
}

function spanOf(nodes: readonly ArgNode[]): Span {
  return joinSpans(nodes[0]!.span, nodes[nodes.length - 1]!.span);
}

function joinSpans(a: Span, b: Span): Span {
  const endLine = b.endLine ?? b.line;
  const endCol = b.endCol ?? b.col + 1;
  return { file: a.file, line: a.line, col: a.col, ...(endLine !== a.line ? { endLine } : {}), endCol };
}

/** Spans of `key` and `value` in a `key=value` word, exact when the word sits on one line as written. */
function splitSpan(a: ArgNode, eq: number): [Span, Span] {
  const s = a.span;
  const oneLine = (s.endLine ?? s.line) === s.line && s.endCol !== undefined && s.endCol - s.col === a.value.length;
  if (!oneLine) return [s, s];
  return [
    { file: s.file, line: s.line, col: s.col, endCol: s.col + eq },
    { file: s.file, line: s.line, col: s.col + eq + 1, endCol: s.endCol! },
  ];
}

/** Rule names of BuildKit's linter that src/syntax and src/ir emit (what `# check=error=true` fails on). */
const BUILDKIT_RULES = new Set([
  'NoEmptyContinuation', 'StageNameCasing', 'FromAsCasing', 'ConsistentInstructionCasing', 'JSONArgsRecommended',
  'MaintainerDeprecated', 'LegacyKeyValueFormat', 'ReservedStageName', 'ExposeProtoCasing', 'SecretsUsedInArgOrEnv',
  'WorkdirRelativePath', 'ExposeInvalidFormat', 'UndefinedArgInFrom', 'RedundantTargetPlatform', 'FromPlatformFlagConstDisallowed',
]);

/**
 * The `# check=skip=Rule1,Rule2;error=true` directive (BuildKit's linter options). `skip=all`
 * silences every rule; unknown options are ignored, as BuildKit does.
 */
function checkDirective(ast: DockerfileAST): { skip: (rule: string) => boolean; error: boolean } {
  return parseCheck(ast.directives.find((x) => x.name === 'check')?.value ?? '');
}

function parseCheck(text: string): { skip: (rule: string) => boolean; error: boolean } {
  const skipped = new Set<string>();
  let all = false;
  let error = false;
  for (const part of text.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    // A trailing `// why` comment is allowed after the value (`# check=skip=Rule // reason`).
    const value = part.slice(eq + 1).trim().split(/\s+/)[0] ?? '';
    if (key === 'skip') {
      for (const r of value.split(',')) {
        const t = r.trim();
        if (t.toLowerCase() === 'all') all = true;
        else if (t) skipped.add(t);
      }
    } else if (key === 'error') {
      error = ['1', 't', 'true'].includes(value.toLowerCase());
    }
  }
  return { skip: (rule) => (all && BUILDKIT_RULES.has(rule)) || skipped.has(rule), error };
}

/** FROM-line rules: undeclared ARGs, --platform=$TARGETPLATFORM, constant --platform. */
function fromLint(node: FromInstr, ins: Instruction, metaArgs: readonly ArgInstr[], lw: Lowerer): void {
  const declared = new Map<string, string>();
  for (const a of metaArgs) for (const kv of a.args) declared.set(kv.key.raw, 'x');
  for (const p of PREDEFINED_ARGS) declared.set(p, 'x');
  const undeclared = new Set<string>();
  for (const w of [node.platform, node.image]) {
    if (!w || !hasVariable(w.raw)) continue;
    try {
      for (const n of expandShellWord(w.raw, declared).unmatched) undeclared.add(n);
    } catch { /* a syntax error is reported when the build expands the word */ }
  }
  for (const n of undeclared) {
    if (/^[0-9@*#?$!-]/.test(n)) continue; // positional and special parameters
    const guess = didYouMean(n, [...declared.keys()]);
    lw.warn('UndefinedArgInFrom', `FROM argument '${n}' is not declared${guess ? ` (did you mean ${guess}?)` : ''}`, ins);
  }
  const p = node.platform?.raw;
  if (p === '$TARGETPLATFORM' || p === '${TARGETPLATFORM}') {
    lw.warn('RedundantTargetPlatform', `Setting platform to predefined ${p} in FROM is redundant as this is the default behavior`, ins);
  } else if (p !== undefined && !hasVariable(p)
    // A stage named after its platform (`AS build-amd64`, `AS linux`) pins it on purpose.
    && !p.toLowerCase().split('/').slice(0, 2).some((part) => part && node.stageName?.includes(part))) {
    lw.warn('FromPlatformFlagConstDisallowed', `FROM --platform flag should not use constant value ${JSON.stringify(p)}`, ins);
  }
}

/** Cheap syntax-only BuildKit lint rules over the whole file. */
function lint(ast: DockerfileAST, lw: Lowerer): void {
  let lower = 0;
  let upper = 0;
  for (const i of ast.instructions) {
    if (i.keyword === i.keyword.toLowerCase()) lower++;
    else if (i.keyword === i.keyword.toUpperCase()) upper++;
  }
  const majorityLower = lower > upper;
  for (const i of ast.instructions) {
    const ok = majorityLower ? i.keyword === i.keyword.toLowerCase() : i.keyword === i.keyword.toUpperCase();
    if (!ok) {
      lw.warn('ConsistentInstructionCasing', `Command '${i.keyword}' should match the case of the command majority (${majorityLower ? 'lowercase' : 'uppercase'})`, i);
    }
  }
}

/**
 * Lower a parsed Dockerfile. Throws TsbError TSB2xxx (spanned at the offending word) on the first
 * error; warnings (BuildKit lint rule names) are returned in `ir.warnings` after the AST's own.
 */
export function toIR(ast: DockerfileAST): DockerfileIR {
  const lw = new Lowerer(ast);
  const metaArgs: ArgInstr[] = [];
  const stages: { index: number; name?: string; from: FromInstr; instructions: StageInstr[] }[] = [];
  const names = new Map<string, FromInstr>();
  const shellByStage = new Map<string, boolean>();
  const workdirByStage = new Map<string, boolean>();
  const endStage = () => {
    const cur = stages[stages.length - 1];
    if (cur?.name !== undefined) {
      shellByStage.set(cur.name, lw.shellChanged);
      workdirByStage.set(cur.name, lw.absWorkdir);
    }
  };
  for (const ins of ast.instructions) {
    // FROM resets the stage state before it is lowered (a stage built on a stage inherits its SHELL).
    if (ins.keyword.toUpperCase() === 'FROM') {
      endStage();
      const baseName = ins.args[0]?.value.toLowerCase() ?? '';
      lw.shellChanged = shellByStage.get(baseName) ?? false;
      lw.absWorkdir = workdirByStage.get(baseName) ?? false;
    }
    const node = lw.lower(ins);
    if (node.kind === 'FROM') {
      fromLint(node, ins, metaArgs, lw);
      if (node.stageName !== undefined) {
        const written = ins.args[2]!.value;
        if (written !== node.stageName) lw.warn('StageNameCasing', `Stage name '${written}' should be lowercase`, ins);
        const fromKw = ins.keyword;
        const asKw = ins.args[1]!.value;
        const fromLower = fromKw === fromKw.toLowerCase();
        const fromUpper = fromKw === fromKw.toUpperCase();
        if ((fromLower && asKw !== asKw.toLowerCase()) || (!fromLower && fromUpper && asKw !== asKw.toUpperCase())) {
          lw.warn('FromAsCasing', `'${asKw}' and '${fromKw}' keywords' casing do not match`, ins);
        }
        if (node.stageName === 'context' || node.stageName === 'scratch') {
          lw.warn('ReservedStageName', `Stage name should not use the same name as reserved stage "${node.stageName}"`, ins);
        }
        const prev = names.get(node.stageName);
        if (prev) {
          throw irError('TSB2005', `duplicate stage name ${JSON.stringify(node.stageName)}`, ins.args[2]!.span,
            `stage names must be unique; "${node.stageName}" is first defined at line ${prev.span.line}.`);
        }
        names.set(node.stageName, node);
      }
      stages.push({ index: stages.length, ...(node.stageName !== undefined ? { name: node.stageName } : {}), from: node, instructions: [] });
      continue;
    }
    if (stages.length === 0) {
      if (node.kind === 'ARG') { metaArgs.push(node); continue; }
      throw irError('TSB2002', 'no build stage in current context', lw.keywordSpan(ins),
        `only ARG may come before the first FROM; ${ins.keyword.toUpperCase()} needs a stage (FROM image).`);
    }
    stages[stages.length - 1]!.instructions.push(node);
  }
  if (stages.length === 0) {
    throw irError('TSB2018', 'dockerfile contains no stages to build', ast.span, 'add FROM image (or FROM scratch).');
  }
  lint(ast, lw);
  const check = checkDirective(ast);
  const warnings = [...ast.warnings, ...lw.warnings].filter((w) => !check.skip(w.rule));
  if (check.error) {
    const violations = warnings.filter((w) => BUILDKIT_RULES.has(w.rule));
    if (violations.length) {
      const rules = [...new Set(violations.map((w) => w.rule))];
      throw irError('TSB2021', `lint violation found for rules: ${rules.join(', ')}`, violations[0]!.span,
        `${violations[0]!.message}; fix it, or drop error=true from the # check= directive.`);
    }
  }
  const outStages: Stage[] = stages.map((s) => {
    const last = s.instructions.length ? s.instructions[s.instructions.length - 1]!.span : s.from.span;
    return { ...s, span: joinSpans(s.from.span, last) };
  });
  return {
    file: ast.file,
    directives: ast.directives,
    escapeToken: ast.escapeToken,
    metaArgs,
    stages: outStages,
    warnings,
  };
}

/** JSON for `tsbuild debug ir` and golden files: Maps become objects, key order kept. */
export function irToJSON(ir: DockerfileIR): string {
  return JSON.stringify(ir, (_k, v: unknown) => (v instanceof Map ? Object.fromEntries(v) : v), 2);
}
