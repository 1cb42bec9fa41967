/**
 * The syntax tree: what src/syntax produces from Dockerfile text. It mirrors BuildKit's parser
 * `Node` closely, because `tsbuild debug parse --format buildkit` must reproduce BuildKit's
 * `AST.Dump()` byte for byte (../shared/corpus/buildkit-parser/FORMAT.md) — so no value here is
 * unquoted or expanded; that is src/ir's and src/plan's job.
 *
 * Contract: every node carries a span. Spans are 1-based physical lines/columns of the original
 * file (after BOM removal; CRLF counted as one line end).
 */
import type { Span } from '../errors.js';

export type EscapeToken = '\\' | '`';

export interface Directive {
  /** Lower-cased: `syntax`, `escape` or `check`. */
  readonly name: string;
  readonly value: string;
  readonly span: Span;
}

export interface Heredoc {
  /** The delimiter word with quotes removed (`EOF`). */
  readonly name: string;
  /** `3<<EOF` → 3; 0 when no fd prefix was written (BuildKit's default). */
  readonly fileDescriptor: number;
  /** False when the delimiter was quoted (`<<'EOF'`, `<<"EOF"`): no expansion in the body. */
  readonly expand: boolean;
  /** True for `<<-EOF`: leading tabs are stripped from body lines. */
  readonly chomp: boolean;
  /** The body, with a trailing newline per line, as BuildKit stores it (tabs stripped if chomp). */
  readonly content: string;
  /**
   * The body exactly as BuildKit's parser stores it in Node.Heredocs (never chomped, original line
   * endings kept). Optional so hand-built ASTs need not set it; the parser always does.
   */
  readonly rawContent?: string;
  /** Lines of the body, not including the `<<EOF` line nor the terminator. */
  readonly span: Span;
}

/** One element of BuildKit's `Next` chain. */
export interface ArgNode {
  readonly value: string;
  /** Span of this word when it is known exactly (it sits on one physical line), else the instruction's. */
  readonly span: Span;
}

export interface Instruction {
  /** The keyword as written (`From`); compare with `keyword.toLowerCase()`. */
  readonly keyword: string;
  /** Leading `--flag` words, quotes and escapes processed as BuildKit's extractBuilderFlags does. */
  readonly flags: readonly ArgNode[];
  /** BuildKit's Next chain (for ONBUILD: empty; see `sub`). */
  readonly args: readonly ArgNode[];
  /** JSON (exec) form was used. */
  readonly json: boolean;
  /** ONBUILD's nested instruction. */
  readonly sub?: Instruction;
  readonly heredocs: readonly Heredoc[];
  /** The logical line (continuations joined), as BuildKit's `Original`. */
  readonly original: string;
  /** Comment lines directly above the instruction, without the `#`. */
  readonly prevComment: readonly string[];
  /** From the keyword's first character to the end of the last line (heredoc bodies included). */
  readonly span: Span;
}

export interface Warning {
  /** Stable short id (e.g. `EmptyContinuation`); BuildKit lint rule names where one exists. */
  readonly rule: string;
  readonly message: string;
  readonly span: Span;
}

export interface DockerfileAST {
  readonly file: string;
  readonly directives: readonly Directive[];
  readonly escapeToken: EscapeToken;
  readonly instructions: readonly Instruction[];
  readonly warnings: readonly Warning[];
  /** Lines of the first to the last instruction. */
  readonly span: Span;
}
