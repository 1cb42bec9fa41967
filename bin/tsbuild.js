#!/bin/sh
':' //; if [ -n "$NODE_EXTRA_CA_CERTS" ]; then TSBUILD_DEFERRED_CA_CERTS=$NODE_EXTRA_CA_CERTS; export TSBUILD_DEFERRED_CA_CERTS; unset NODE_EXTRA_CA_CERTS; fi; exec node -e 'require(require("node:fs").realpathSync(process.argv[1]).replace(/\.js$/, ".cjs"))' "$0" "$@"
// The `tsbuild` command. Two languages in one file, so `tsbuild …` (package.json "bin", run through
// the first line) and `node bin/tsbuild.js …` (the README's quick start) both work:
// - run as a command, /bin/sh reads line 2 and execs Node on bin/tsbuild.cjs, with
//   NODE_EXTRA_CA_CERTS moved to TSBUILD_DEFERRED_CA_CERTS: Node 20 parses that bundle (and its
//   own ~140 roots) at start-up, ~40 ms, before any of our code runs, although most commands never
//   open a TLS connection. tsbuild.cjs puts the variable back in process.env at once, and the
//   registry client adds the file to the CAs it trusts (src/oci/http.ts trustedCAs), so HTTPS
//   trusts what it trusted before. (`node -e` with the real path: npm links the command as a
//   symlink; a CommonJS entry also starts sooner than an ES module one.)
// - run by `node bin/tsbuild.js`, line 2 is a string and a comment; this ES module loads the
//   same loader (Node has parsed NODE_EXTRA_CA_CERTS already: nothing to move).
import { createRequire } from 'node:module';

createRequire(import.meta.url)('./tsbuild.cjs');
