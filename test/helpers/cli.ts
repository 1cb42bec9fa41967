/** Run the real CLI dispatcher in process, collecting what it prints: the one way tests drive main(). */
import { PassThrough, Readable } from 'node:stream';
import { main } from '../../src/cli/main.js';

export interface CliResult { code: number; stdout: string; stderr: string }

export interface CliRunOptions {
  cwd?: string;
  /** The whole environment the command sees (default: this process's). */
  env?: NodeJS.ProcessEnv;
  stdin?: Buffer | string;
}

export async function runMain(argv: readonly string[], opts: CliRunOptions = {}): Promise<CliResult> {
  const out = new PassThrough(); const err = new PassThrough();
  let stdout = ''; let stderr = '';
  out.on('data', (d: Buffer) => { stdout += d.toString(); });
  err.on('data', (d: Buffer) => { stderr += d.toString(); });
  const stdin = Readable.from(opts.stdin !== undefined ? [Buffer.from(opts.stdin)] : []);
  const code = await main([...argv], {
    stdout: out, stderr: err, stdin, env: opts.env ?? process.env,
    cwd: opts.cwd ?? process.cwd(), signal: new AbortController().signal,
  });
  return { code, stdout, stderr };
}
