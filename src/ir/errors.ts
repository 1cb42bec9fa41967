/**
 * The TSB2xxx codes src/ir raises (AST → IR lowering and shell-word expansion). A code, once
 * shipped, keeps its meaning: add new ones at the end, never renumber. Golden tests under
 * testdata/ir/ hold one error case per code (test/ir/golden.test.ts checks that they all exist).
 *
 * Messages follow BuildKit's wording where one exists, so users can search for them.
 */
import { TsbError, type Span } from '../errors.js';

export const IR_ERRORS = {
  TSB2001: 'unknown instruction (with a did-you-mean hint)',
  TSB2002: 'an instruction other than ARG before the first FROM',
  TSB2003: 'FROM with the wrong number of arguments (1, or 3 with AS)',
  TSB2004: 'invalid build stage name',
  TSB2005: 'duplicate build stage name',
  TSB2006: 'unknown flag for this instruction',
  TSB2007: 'flag value missing or not of the flag type (e.g. a boolean)',
  TSB2008: 'flag given twice',
  TSB2009: 'wrong number of arguments for the instruction',
  TSB2010: 'ENV/LABEL/ARG key missing or blank',
  TSB2011: 'invalid HEALTHCHECK (type, command, duration, retries)',
  TSB2012: 'forbidden ONBUILD trigger (ONBUILD, FROM, MAINTAINER)',
  TSB2013: 'SHELL not in JSON (exec) form',
  TSB2014: 'invalid RUN --mount specification',
  TSB2015: 'invalid RUN --network or --security value',
  TSB2016: 'variable in COPY --from or --mount from= (not supported; use a named stage)',
  TSB2017: 'heredoc in a place that cannot take one (COPY/ADD destination)',
  TSB2018: 'Dockerfile has no FROM (no stage to build)',
  TSB2019: 'empty VOLUME path',
  TSB2020: 'feature tsbuild does not support (e.g. RUN --device)',
  TSB2021: 'lint warning while the # check=error=true directive is set',
  TSB2030: 'shell-word syntax error (unterminated quote, missing brace, bad substitution)',
  TSB2031: 'unsupported ${VAR<modifier>} substitution',
  TSB2032: 'required variable unset or empty (${VAR?msg}, ${VAR:?msg})',
  TSB2033: 'invalid glob pattern in ${VAR#pat} / ${VAR%pat} / ${VAR/pat/rep}',
} as const;

export type IrErrorCode = keyof typeof IR_ERRORS;

export function irError(code: IrErrorCode, message: string, span: Span | undefined, hint?: string): TsbError {
  return new TsbError(code, message, { span, hint });
}
