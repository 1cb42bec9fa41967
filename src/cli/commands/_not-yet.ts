/** Scaffolding for commands whose issue has not landed: a clear coded error, never a silent no-op. */
import { TsbError } from '../../errors.js';
import type { Command } from '../command.js';

export function notYet(name: string, summary: string, issue: number): Command {
  return {
    name, summary, usage: `tsbuild ${name} …`, flags: [],
    run: async () => {
      throw new TsbError('TSB0002', `"tsbuild ${name}" is not implemented yet`, {
        hint: `it is tracked as issue ${issue}; see the README for what works today.`, exitCode: 2,
      });
    },
  };
}
