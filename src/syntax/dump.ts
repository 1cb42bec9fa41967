/**
 * Dumps of the AST.
 * - `dumpBuildkit`: BuildKit's `AST.Dump()` byte for byte (FORMAT.md §2): one `(…)` line per
 *   instruction, keyword Go-lowercased and unquoted, flags as Go `%q` of a []string, each argument
 *   as strconv.Quote, ONBUILD's nested instruction in parentheses. No trailing newline (the
 *   `result` files and `fmt.Println` add one).
 * - `dumpJson`: the whole AST as stable, indented JSON (spans included), for tooling and goldens.
 */
import type { DockerfileAST, Instruction } from './ast.js';
import { goQuote, goToLower, goTrimSpace } from './gostrings.js';

export function dumpInstruction(ins: Instruction): string {
  let s = goToLower(ins.keyword);
  if (ins.flags.length > 0) s += ' [' + ins.flags.map((f) => goQuote(f.value)).join(' ') + ']';
  if (ins.sub) s += ' (' + dumpInstruction(ins.sub) + ')';
  for (const a of ins.args) s += ' ' + goQuote(a.value);
  return goTrimSpace(s);
}

export function dumpBuildkit(ast: DockerfileAST): string {
  return goTrimSpace(ast.instructions.map((i) => '(' + dumpInstruction(i) + ')').join('\n'));
}

export function dumpJson(ast: DockerfileAST): string {
  return JSON.stringify(ast, null, 2);
}
