@preprocessor typescript
# The instruction grammar of a Dockerfile logical line.
#
# Division of labour (see src/syntax/parser.ts): the line scanner in TypeScript does what BuildKit's
# Parse loop does with physical lines (directives, comments, continuations, heredoc bodies) because
# that part is sequential and stateful (the escape token and heredoc terminators change how later
# lines are read). Each finished logical line is then tokenized here by moo and recognized by
# nearley: keyword, separator, rest. The keyword's token type selects BuildKit's dispatch-table
# entry (parser.go `dispatch`), so the grammar is where "which argument rules apply to which
# instruction" lives; the argument rules themselves (extractBuilderFlags, JSON detection,
# parseWords, ...) are byte-exact ports of behaviour in src/syntax/args.ts.
#
# The input is the logical line already trimmed with Go's strings.TrimSpace, so it never starts or
# ends with whitespace. The separator is BuildKit's `[\t\v\f\r ]+` (ASCII only on purpose: NBSP and
# other Unicode spaces do not separate the keyword from its arguments in BuildKit).

@{%
import moo from 'moo';
import { goToLower } from './gostrings.js';

/** keyword (Go-lowercased) → token type. */
const KEYWORD_TYPES: Record<string, string> = {
  add: 'kw_jsonlist', copy: 'kw_jsonlist', volume: 'kw_jsonlist',
  run: 'kw_maybejson', cmd: 'kw_maybejson', entrypoint: 'kw_maybejson', shell: 'kw_maybejson',
  from: 'kw_words', expose: 'kw_words',
  env: 'kw_env', label: 'kw_label',
  arg: 'kw_nameval',
  healthcheck: 'kw_health',
  maintainer: 'kw_string', user: 'kw_string', workdir: 'kw_string', stopsignal: 'kw_string',
  onbuild: 'kw_onbuild',
};

function keywordType(text: string): string {
  return Object.hasOwn(KEYWORD_TYPES, goToLower(text)) ? KEYWORD_TYPES[goToLower(text)] : 'kw_other';
}

const lexer = moo.states({
  main: {
    keyword: { match: /[^\t\v\f\r ]+/, lineBreaks: true, type: keywordType, next: 'sep' },
  },
  sep: {
    sep: { match: /[\t\v\f\r ]+/, next: 'rest' },
  },
  rest: {
    rest: { match: /[^]+/, lineBreaks: true },
  },
});

type Tok = { value: string; offset: number; type: string };
/** What the grammar hands to src/syntax/parser.ts: the dispatch kind plus the raw tokens. */
const line = (kind: string) => (d: any[]) => ({ kind, keyword: d[0] as Tok, rest: (d[1] as Tok | null) });
%}

@lexer lexer

instruction -> %kw_jsonlist tail   {% line('jsonlist') %}
             | %kw_maybejson tail  {% line('maybejson') %}
             | %kw_words tail      {% line('words') %}
             | %kw_env tail        {% line('env') %}
             | %kw_label tail      {% line('label') %}
             | %kw_nameval tail    {% line('nameval') %}
             | %kw_health tail     {% line('health') %}
             | %kw_string tail     {% line('string') %}
             | %kw_onbuild tail    {% line('onbuild') %}
             | %kw_other tail      {% line('ignore') %}

# Nothing after the keyword, or a separator and the rest of the line (one token: the rest is
# interpreted by the instruction's argument rules, not by the grammar).
tail -> null        {% () => null %}
      | %sep %rest  {% (d) => d[1] %}
