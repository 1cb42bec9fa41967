#!/usr/bin/env node
// Entry point: the compiled CLI lives in dist/ (`npm run build`, run by `npm ci` through `prepare`).
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error('tsbuild: internal error:', err); process.exitCode = 70; },
);
