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
  // ONBUILD chains are walked with a loop (they can be as deep as a 64 KiB line allows).
  const chain: Instruction[] = [];
  for (let n: Instruction | undefined = ins; n; n = n.sub) chain.push(n);
  let inner = '';
  for (let k = chain.length - 1; k >= 0; k--) {
    const n = chain[k]!;
    let s = goToLower(n.keyword);
    if (n.flags.length > 0) s += ' [' + n.flags.map((f) => goQuote(f.value)).join(' ') + ']';
    if (n.sub) s += ' (' + inner + ')';
    for (const a of n.args) s += ' ' + goQuote(a.value);
    inner = goTrimSpace(s);
  }
  return inner;
}

export function dumpBuildkit(ast: DockerfileAST): string {
  return goTrimSpace(ast.instructions.map((i) => '(' + dumpInstruction(i) + ')').join('\n'));
}

export function dumpJson(ast: DockerfileAST): string {
  try {
    return JSON.stringify(ast, null, 2);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    // JSON.stringify recurses; an absurdly deep ONBUILD chain overflows it. Fall back to compact
    // JSON assembled with a loop (same content, `sub` moved to the end of each object).
    const one = (ins: Instruction): string => {
      const chain: Instruction[] = [];
      for (let n: Instruction | undefined = ins; n; n = n.sub) chain.push(n);
      let inner = '';
      for (let k = chain.length - 1; k >= 0; k--) {
        const { sub, ...rest } = chain[k]!;
        const flat = JSON.stringify(rest);
        inner = sub ? flat.slice(0, -1) + ',"sub":' + inner + '}' : flat;
      }
      return inner;
    };
    const { instructions, ...rest } = ast;
    const head = JSON.stringify(rest);
    return head.slice(0, -1) + ',"instructions":[' + instructions.map(one).join(',') + ']}';
  }
}
