/**
 * The same sandbox and escape tests against the Node + koffi init (the fallback when the host
 * has no C compiler): both inits must behave identically.
 */
import { expect, it } from 'vitest';
import { sandboxInitKind } from '../../../src/exec/sandbox/index.js';

process.env.TSBUILD_SANDBOX_INIT = 'node';
it('uses the Node init', async () => { expect(await sandboxInitKind()).toBe('node'); });
await import('./sandbox.test.js');
await import('./security.test.js');
