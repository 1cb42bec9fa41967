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
  /** `bind` | `cache` | `tmpfs` | `secret` | `ssh`; validated by src/ir. */
  readonly type: string;
  /** Every key=value of the --mount flag, keys lower-cased, values unexpanded. */
  readonly options: ReadonlyMap<string, string>;
  readonly span: Span;
}

export interface RunInstr extends Base {
  readonly kind: 'RUN';
  readonly command: Command;
  readonly heredocs: readonly Heredoc[];
  readonly mounts: readonly RunMount[];
  /** `--network=default|none|host`, unexpanded. */
  readonly network?: Word;
  /** `--security=sandbox|insecure`. */
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
  /** Heredoc sources (`COPY <<EOF /x`): their names appear in `sources` too, as Docker does. */
  readonly heredocs: readonly Heredoc[];
  readonly from?: Word;
  readonly chown?: Word;
  readonly chmod?: Word;
  readonly link: boolean;
  readonly parents: boolean;
  readonly exclude: readonly Word[];
  /** ADD only. */
  readonly checksum?: Word;
  readonly keepGitDir?: boolean;
  readonly unpack?: boolean;
}

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
  /** The trigger lowered like any instruction (validated now, run when a child image builds). */
  readonly trigger: StageInstr;
}

export type HealthcheckInstr = Base & {
  readonly kind: 'HEALTHCHECK';
} & (
  | { readonly test: 'NONE' }
  | {
      readonly test: 'CMD';
      readonly command: Command;
      /** Durations as written (`30s`); parsed to nanoseconds by src/plan. */
      readonly interval?: Word;
      readonly timeout?: Word;
      readonly startPeriod?: Word;
      readonly startInterval?: Word;
      readonly retries?: Word;
    }
);

/** Everything that can appear inside a stage (after its FROM). */
export type StageInstr =
  | RunInstr | CmdInstr | EntrypointInstr | ShellInstr | EnvInstr | LabelInstr | ArgInstr
  | CopyInstr | ExposeInstr | VolumeInstr | UserInstr | WorkdirInstr | StopSignalInstr
  | MaintainerInstr | OnbuildInstr | HealthcheckInstr;

export type Instr = FromInstr | StageInstr;

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
