/**
 * `tsbuild debug parse|ir|plan FILE …`: one dump command per intermediate form (habit 7).
 * Each form lives in its own module (debug-parse.ts, debug-ir.ts, debug-plan.ts) so the stage's
 * owner changes only that file.
 */
import { usageError } from '../args.js';
import type { Command } from '../command.js';

const FORMS: Record<string, () => Promise<{ command: Command }>> = {
  parse: () => import('./debug-parse.js'),
  ir: () => import('./debug-ir.js'),
  plan: () => import('./debug-plan.js'),
};

export const command: Command = {
  name: 'debug',
  summary: 'dump an intermediate form: parse (AST), ir, plan',
  usage: 'tsbuild debug parse|ir|plan FILE [flags]   (tsbuild debug FORM --help for its flags)',
  // Flags belong to the form; main parsed none, so the raw words arrive as positional args.
  flags: [],
  async run() { throw new Error('unreachable: debug dispatches through runDebug'); },
};

/** Called by main for `debug`: picks the form, then parses the rest with that form's flags. */
export async function pick(form: string | undefined): Promise<Command> {
  if (!form || !Object.hasOwn(FORMS, form)) {
    throw usageError(form ? `unknown debug form "${form}"` : 'debug needs a form', 'write tsbuild debug parse|ir|plan FILE.');
  }
  return (await FORMS[form]!()).command;
}
