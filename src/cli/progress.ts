/**
 * Build progress renderers (`--progress auto|tty|plain|json|quiet`), all implementing the
 * executor's ProgressSink:
 * - plain: BuildKit-style numbered lines (`#5 [2/4] COPY src /app`, `#5 CACHED`, `#5 DONE 0.3s`,
 *   `#6 0.412 output line`), plus `#5 cache miss: file src/app.ts changed` (tsbuild's addition).
 * - tty: a live frame redrawn in place: one line per step with its state and time, and the last
 *   lines of output of running steps; the final frame stays on screen.
 * - json: one JSON object per line ({"time","type","id","name",…}).
 * - quiet: nothing (the CLI prints the image id at the end).
 * `auto` = tty when stderr is a terminal, else plain (BuildKit's rule).
 */
import type { ProgressSink, StepEvent } from '../exec/build.js';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'quiet';

export function progressMode(flag: string | undefined, isTTY: boolean | undefined): Exclude<ProgressMode, 'auto'> {
  const m = (flag ?? 'auto').toLowerCase();
  if (m === 'auto') return isTTY ? 'tty' : 'plain';
  if (m === 'tty' || m === 'plain' || m === 'json' || m === 'quiet') return m;
  if (m === 'rawjson') return 'json';
  throw Object.assign(new Error(`invalid --progress "${flag}"`), { progressFlag: true });
}

/** Where a renderer writes: a stream, or anything with write() (the CLI's direct fd writer). */
export type Out = { write(s: string): unknown };

const secs = (ms: number) => (ms / 1000).toFixed(1) + 's';

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class PlainProgress implements ProgressSink {
  private readonly started = new Map<number, number>();
  constructor(private readonly out: Out) {}
  start(s: StepEvent): void { this.started.set(s.id, Date.now()); this.out.write(`#${s.id} ${s.name}\n`); }
  cached(s: StepEvent): void { this.out.write(`#${s.id} CACHED\n`); }
  miss(s: StepEvent, reasons: readonly string[]): void {
    for (const r of reasons) this.out.write(`#${s.id} cache miss: ${r}\n`);
  }
  output(s: StepEvent, chunk: string): void {
    const t = ((Date.now() - (this.started.get(s.id) ?? Date.now())) / 1000).toFixed(3);
    for (const line of chunk.split('\n')) if (line !== '') this.out.write(`#${s.id} ${t} ${line}\n`);
  }
  done(s: StepEvent, ms: number): void { this.out.write(`#${s.id} DONE ${secs(ms)}\n`); }
  error(s: StepEvent, err: unknown, ms: number): void { this.out.write(`#${s.id} ERROR: ${errText(err)} (${secs(ms)})\n`); }
  warn(m: string): void { this.out.write(`[Warning] ${m}\n`); }
  info(m: string): void { this.out.write(`${m}\n`); }
  finish(): void {}
}

export class JsonProgress implements ProgressSink {
  constructor(private readonly out: Out) {}
  private emit(o: Record<string, unknown>): void { this.out.write(JSON.stringify({ time: new Date().toISOString(), ...o }) + '\n'); }
  start(s: StepEvent): void { this.emit({ type: 'start', id: s.id, name: s.name, stage: s.stage, line: s.line }); }
  cached(s: StepEvent): void { this.emit({ type: 'cached', id: s.id }); }
  miss(s: StepEvent, reasons: readonly string[]): void { this.emit({ type: 'miss', id: s.id, reasons }); }
  output(s: StepEvent, chunk: string): void { this.emit({ type: 'output', id: s.id, data: chunk }); }
  done(s: StepEvent, ms: number): void { this.emit({ type: 'done', id: s.id, ms }); }
  error(s: StepEvent, err: unknown, ms: number): void { this.emit({ type: 'error', id: s.id, message: errText(err), ms }); }
  warn(m: string): void { this.emit({ type: 'warning', message: m }); }
  info(m: string): void { this.emit({ type: 'info', message: m }); }
  finish(): void {}
}

export class QuietProgress implements ProgressSink {
  start(): void {} cached(): void {} miss(): void {} output(): void {} done(): void {} error(): void {}
  warn(): void {} info(): void {} finish(): void {}
}

interface TtyStep { ev: StepEvent; t0: number; state: 'run' | 'cached' | 'done' | 'error'; ms?: number; tail: string[]; why?: string }

export class TtyProgress implements ProgressSink {
  private readonly steps: TtyStep[] = [];
  private readonly byId = new Map<number, TtyStep>();
  private readonly notes: string[] = [];
  private lines = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly t0 = Date.now();
  constructor(private readonly out: Out) {}

  private schedule(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => { this.timer = undefined; this.draw(); }, 80);
    this.timer.unref?.();
  }

  private frame(): string[] {
    const width = (this.out as { columns?: number }).columns ?? 100;
    const fit = (s: string) => (s.length > width - 1 ? s.slice(0, width - 2) + '…' : s);
    const doneN = this.steps.filter((s) => s.state !== 'run').length;
    const rows = [`[+] Building ${secs(Date.now() - this.t0)} (${doneN}/${this.steps.length})`];
    for (const n of this.notes) rows.push(fit(` ! ${n}`));
    for (const s of this.steps) {
      const t = s.state === 'cached' ? 'CACHED' : secs(s.ms ?? Date.now() - s.t0);
      const mark = s.state === 'run' ? '=>' : s.state === 'error' ? '=> ERROR' : '=>';
      rows.push(fit(` ${mark} ${s.ev.name}`.padEnd(Math.min(width - 10, 70)) + ` ${t}`));
      if (s.why && s.state !== 'cached') rows.push(fit(`    (miss: ${s.why})`));
      if (s.state === 'run' || s.state === 'error') for (const l of s.tail) rows.push(fit(`    ${l}`));
    }
    return rows;
  }

  private draw(): void {
    const rows = this.frame();
    let s = '';
    if (this.lines > 0) s += `\x1b[${this.lines}A`;
    for (const r of rows) s += `\x1b[2K${r}\n`;
    this.out.write(s);
    this.lines = rows.length;
  }

  start(ev: StepEvent): void {
    const s: TtyStep = { ev, t0: Date.now(), state: 'run', tail: [] };
    this.steps.push(s); this.byId.set(ev.id, s); this.schedule();
  }
  cached(ev: StepEvent): void { const s = this.byId.get(ev.id); if (s) { s.state = 'cached'; s.ms = Date.now() - s.t0; } this.schedule(); }
  miss(ev: StepEvent, reasons: readonly string[]): void {
    // A first build of a line has nothing to explain; keep the live view quiet about it.
    const s = this.byId.get(ev.id);
    if (s && !reasons[0]?.startsWith('no earlier build')) s.why = reasons.join('; ');
    this.schedule();
  }
  output(ev: StepEvent, chunk: string): void {
    const s = this.byId.get(ev.id);
    if (!s) return;
    for (const l of chunk.split('\n')) if (l !== '') s.tail.push(l);
    if (s.tail.length > 6) s.tail.splice(0, s.tail.length - 6);
    this.schedule();
  }
  done(ev: StepEvent, ms: number): void { const s = this.byId.get(ev.id); if (s) { if (s.state === 'run') s.state = 'done'; s.ms = ms; } this.schedule(); }
  error(ev: StepEvent, err: unknown, ms: number): void {
    const s = this.byId.get(ev.id); if (s) { s.state = 'error'; s.ms = ms; s.tail.push(errText(err)); } this.schedule();
  }
  warn(m: string): void { this.notes.push(`WARNING: ${m}`); this.schedule(); }
  info(m: string): void { this.notes.push(m); this.schedule(); }
  finish(): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    this.draw();
  }
}

export type Progress = ProgressSink & { finish(): void };

export function makeProgress(mode: Exclude<ProgressMode, 'auto'>, stream: Out | (() => Out)): Progress {
  if (mode === 'quiet') return new QuietProgress();
  const out = typeof stream === 'function' ? stream() : stream;
  switch (mode) {
    case 'plain': return new PlainProgress(out);
    case 'json': return new JsonProgress(out);
    default: return new TtyProgress(out);
  }
}
