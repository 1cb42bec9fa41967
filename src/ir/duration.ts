/**
 * Go's time.ParseDuration (what Docker uses for HEALTHCHECK --interval etc.): `300ms`, `1h30m`,
 * `1.5s`, `-2m`, `0`. Returns nanoseconds, or an error message worded like Go's.
 */
const UNITS: Record<string, number> = {
  ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9,
};

export function parseGoDuration(orig: string): number | string {
  let s = orig;
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) { neg = s[0] === '-'; s = s.slice(1); }
  if (s === '0') return 0;
  if (s === '') return `time: invalid duration ${JSON.stringify(orig)}`;
  let total = 0;
  while (s !== '') {
    const m = /^([0-9]*)(?:\.([0-9]*))?/.exec(s)!;
    const intPart = m[1]!;
    const frac = m[2];
    if (intPart === '' && (frac === undefined || frac === '')) return `time: invalid duration ${JSON.stringify(orig)}`;
    s = s.slice(m[0].length);
    const u = /^[^0-9.]*/.exec(s)![0];
    if (u === '') return `time: missing unit in duration ${JSON.stringify(orig)}`;
    const mult = UNITS[u];
    if (mult === undefined) return `time: unknown unit ${JSON.stringify(u)} in duration ${JSON.stringify(orig)}`;
    s = s.slice(u.length);
    total += Number(`${intPart || '0'}.${frac || '0'}`) * mult;
  }
  if (total > 9223372036854775807) return `time: invalid duration ${JSON.stringify(orig)}`;
  return Math.round(neg ? -total : total);
}
