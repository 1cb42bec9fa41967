/**
 * The IR: a Dockerfile as typed, validated instructions grouped into stages. Produced by
 * src/ir from a DockerfileAST; consumed by src/plan.
 *
 * Contract:
 * - Readonly discriminated unions keyed by `kind` (the upper-case keyword). Every node has a span.
 * - Words are kept UNEXPANDED (`Word.raw`, as written, quotes included) — expansion needs the build
 *   state (ARG/ENV in scope), which only src/plan has. `expand` says whether Docker expands that
 *   word at all (e.g. RUN's command is never expanded by the builder; the shell does it).
 * - Everything syntactically wrong is rejected here with TSB2xxx and a span; what can only be
 *   known with values in hand (a variable expanding to a bad platform) is src/plan's TSB3xxx.
 *   Values without `$` are validated here already where BuildKit validates them after expansion
 *   (RUN --mount options), so typos fail before any build work.
 * - Flag values (`--chown=…`) arrive with quotes and escapes already processed by src/syntax
 *   (BuildKit's extractBuilderFlags); an expanding flag word is expanded once more at build time,
 *   exactly as BuildKit does. A flag word's span is the whole `--name=value`.
 *
 * How src/plan expands a word: `expandWord(word, env, ir.escapeToken)` from src/ir (index.ts
 * re-exports src/ir/shell.ts). `env` is the variables in scope at that instruction: the stage's
 * ENV plus the ARGs declared so far in the stage (with build-arg or default values); FROM lines
 * see only the meta ARGs (`DockerfileIR.metaArgs`). The result's `matched` set is what the step's
 * cache key must include and what counts as "used" for the unused-build-arg warning.
 * A few words are expanded differently, noted where they are declared: EXPOSE ports are split
 * into several (`processWords`), COPY/ADD heredoc bodies use `{ skipProcessQuotes: true }`.
 *
 * ARG scoping (Docker's rules, encoded by position, not by extra fields):
 * - `metaArgs` (ARGs before the first FROM) are in scope for every FROM line (image, --platform).
 * - Inside a stage nothing of the meta ARGs is visible until the stage redeclares it (`ARG NAME`
 *   without a value takes the meta ARG's value, or the --build-arg one).
 * - An `ArgInstr` in `Stage.instructions` comes into scope from that instruction on, to the
 *   end of the stage. A value given with --build-arg overrides its default.
 */
import type { Span } from '../errors.js';
import type { Directive, EscapeToken, Heredoc, Warning } from '../syntax/ast.js';

export interface Word {
  /** Text as written (quotes, escapes and `$VARS` intact). */
  readonly raw: string;
  /** Whether the builder runs shell-word expansion on it (Docker's per-instruction rules). */
  readonly expand: boolean;
  readonly span: Span;
}

/** RUN / CMD / ENTRYPOINT / HEALTHCHECK CMD command: shell form or exec (JSON) form. */
export type Command =
  | { readonly form: 'shell'; readonly text: string; readonly span: Span }
  | { readonly form: 'exec'; readonly argv: readonly string[]; readonly span: Span };

export interface KeyValue {
  readonly key: Word;
  /** For ENV/LABEL always present; for ARG absent when no default was given. */
  readonly value?: Word;
  readonly span: Span;
}

/** A `--name=value` flag as written, parsed into name and (possibly absent) value. */
export interface Flag {
  readonly name: string;
  /** Undefined for a bare boolean flag (`--link`). */
  readonly value?: string;
  readonly span: Span;
}

interface Base {
  readonly span: Span;
  /** The logical line as written (for history `created_by`, progress, and cache-miss explanations). */
  readonly original: string;
}

export interface FromInstr extends Base {
  readonly kind: 'FROM';
  readonly image: Word;
  readonly platform?: Word;
  /** `AS name`, lower-cased as Docker does. */
  readonly stageName?: string;
}

export interface RunMount {
  /**
   * `bind` | `cache` | `tmpfs` | `secret` | `ssh` (lower-cased; `bind` when not given). Checked by
   * src/ir when written literally; if it holds a `$VAR` it is raw here and `resolveMount` decides.
   */
  readonly type: string;
  /**
   * Every key=value of the --mount flag, keys lower-cased, values unexpanded. A bare key
   * (`ro`, `rw`, `readonly`, `readwrite`, `required`) is stored with the value `true`, which is
   * what it means. Later duplicates win, as in BuildKit.
   */
  readonly options: ReadonlyMap<string, string>;
  /** The CSV fields in order, as written (keys lower-cased; `value` absent for a bare key). */
  readonly fields: readonly MountField[];
  readonly span: Span;
}

export interface MountField { readonly key: string; readonly value?: string }

export interface RunInstr extends Base {
  readonly kind: 'RUN';
  readonly command: Command;
  /**
   * Heredocs of the line, in order, bodies final (chomped). For `RUN <<EOF` the command text is
   * `<<EOF…` as written: the engine feeds the bodies to the shell like BuildKit does.
   */
  readonly heredocs: readonly Heredoc[];
  /** In flag order; `resolveMount(m, expand)` from src/ir gives the typed, expanded, checked mount. */
  readonly mounts: readonly RunMount[];
  /** `--network=default|none|host`. Never expanded (BuildKit checks it as written); checked here. */
  readonly network?: Word;
  /** `--security=sandbox|insecure`. Never expanded; checked here. */
  readonly security?: Word;
}

export interface CmdInstr extends Base { readonly kind: 'CMD'; readonly command: Command }
export interface EntrypointInstr extends Base { readonly kind: 'ENTRYPOINT'; readonly command: Command }
export interface ShellInstr extends Base { readonly kind: 'SHELL'; readonly argv: readonly string[] }

export interface EnvInstr extends Base { readonly kind: 'ENV'; readonly pairs: readonly KeyValue[] }
export interface LabelInstr extends Base { readonly kind: 'LABEL'; readonly pairs: readonly KeyValue[] }
export interface ArgInstr extends Base { readonly kind: 'ARG'; readonly args: readonly KeyValue[] }

export interface CopyInstr extends Base {
  /** COPY and ADD share one shape; ADD-only flags are rejected on COPY by src/ir. */
  readonly kind: 'COPY' | 'ADD';
  readonly sources: readonly Word[];
  readonly dest: Word;
  /**
   * Heredoc sources (`COPY <<EOF /x`): their words (`<<EOF`) appear in `sources` too, as written;
   * `sourceIndex` says which one. Bodies are final (chomped); when `expand` is true the engine
   * expands the body with `processWord(body, env, '\\', { skipProcessQuotes: true })` as BuildKit.
   */
  readonly heredocs: readonly HeredocSource[];
  readonly from?: Word;
  readonly chown?: Word;
  readonly chmod?: Word;
  readonly link: boolean;
  readonly parents: boolean;
  readonly exclude: readonly Word[];
  /** ADD only (absent on COPY). `unpack` is undefined when not written (ADD decides by source). */
  readonly checksum?: Word;
  readonly keepGitDir?: boolean;
  readonly unpack?: boolean;
}

/** Ports expand with `processWords` (one word may give several ports), as BuildKit does. */
export interface ExposeInstr extends Base { readonly kind: 'EXPOSE'; readonly ports: readonly Word[] }
export interface VolumeInstr extends Base { readonly kind: 'VOLUME'; readonly paths: readonly Word[] }
export interface UserInstr extends Base { readonly kind: 'USER'; readonly user: Word }
export interface WorkdirInstr extends Base { readonly kind: 'WORKDIR'; readonly path: Word }
export interface StopSignalInstr extends Base { readonly kind: 'STOPSIGNAL'; readonly signal: Word }
export interface MaintainerInstr extends Base { readonly kind: 'MAINTAINER'; readonly name: string }

export interface OnbuildInstr extends Base {
  readonly kind: 'ONBUILD';
  /** The trigger as Docker stores it in the image config (`ONBUILD` removed, keyword upper-cased). */
  readonly expression: string;
  /**
   * The trigger lowered like any instruction, run when a child image builds. Absent when it does
   * not lower (unknown flag, missing argument, …): BuildKit accepts such an ONBUILD and fails only
   * in the child build, so toIR warns (InvalidOnbuildTrigger) instead of failing.
   */
  readonly trigger?: StageInstr;
}

export type HealthcheckInstr = Base & {
  readonly kind: 'HEALTHCHECK';
} & (
  | { readonly test: 'NONE' }
  | {
      readonly test: 'CMD';
      readonly command: Command;
      /** Flags as written (`30s`). Docker never expands them, so they are validated here… */
      readonly interval?: Word;
      readonly timeout?: Word;
      readonly startPeriod?: Word;
      readonly startInterval?: Word;
      readonly retries?: Word;
      /** …and parsed: nanoseconds / count, 0 when not given (the image config's "inherit"). */
      readonly intervalNs: number;
      readonly timeoutNs: number;
      readonly startPeriodNs: number;
      readonly startIntervalNs: number;
      readonly retriesCount: number;
    }
);

/** Everything that can appear inside a stage (after its FROM). */
export type StageInstr =
  | RunInstr | CmdInstr | EntrypointInstr | ShellInstr | EnvInstr | LabelInstr | ArgInstr
  | CopyInstr | ExposeInstr | VolumeInstr | UserInstr | WorkdirInstr | StopSignalInstr
  | MaintainerInstr | OnbuildInstr | HealthcheckInstr;

export type Instr = FromInstr | StageInstr;

export interface HeredocSource extends Heredoc {
  /** Index into `CopyInstr.sources` of the `<<NAME` word this body belongs to. */
  readonly sourceIndex: number;
}

export interface Stage {
  /** 0-based position; `COPY --from=0` refers to it. */
  readonly index: number;
  /** Lower-cased `AS` name, if any. */
  readonly name?: string;
  readonly from: FromInstr;
  readonly instructions: readonly StageInstr[];
  readonly span: Span;
}

export interface DockerfileIR {
  readonly file: string;
  readonly directives: readonly Directive[];
  readonly escapeToken: EscapeToken;
  /** ARGs before the first FROM: usable in FROM lines, and in stages that redeclare them. */
  readonly metaArgs: readonly ArgInstr[];
  readonly stages: readonly Stage[];
  readonly warnings: readonly Warning[];
}
