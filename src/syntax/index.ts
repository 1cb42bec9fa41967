/**
 * src/syntax: Dockerfile text → AST (the only place that imports moo/nearley).
 *
 *   parse(text, file)        → DockerfileAST, or throws TsbError TSB1xxx with a span and a hint
 *   decodeDockerfile(bytes)  → text for parse(): UTF-8, invalid bytes kept (dump shows \xNN)
 *   dumpBuildkit(ast)        → BuildKit's AST.Dump(), byte for byte
 *   dumpJson(ast)            → the AST as JSON
 *
 * Error codes (a code keeps its meaning once shipped):
 *   TSB1001 file with no instructions          TSB1006 JSON array with a non-string element
 *   TSB1002 line longer than 65535 bytes       TSB1007 ENV/LABEL must have two arguments
 *   TSB1003 invalid escape directive value     TSB1008 ENV/LABEL word without `=`
 *   TSB1004 repeated parser directive          TSB1009 heredoc delimiter could not be lexed
 *   TSB1005 unterminated heredoc
 */
import type { DockerfileAST } from './ast.js';
import { parseDockerfile } from './parser.js';

export type * from './ast.js';
export { dumpBuildkit, dumpInstruction, dumpJson } from './dump.js';
export { decodeDockerfile, goQuote } from './gostrings.js';
export { MAX_LINE_BYTES } from './parser.js';

/** Parse Dockerfile text (BOM allowed) named `file` (used in spans). */
export function parse(text: string, file: string): DockerfileAST {
  return parseDockerfile(text, file);
}
