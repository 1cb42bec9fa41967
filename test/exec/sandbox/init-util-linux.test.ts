/**
 * The lifecycle tests (abort, SIGKILLed parent, limits) with setpriv + util-linux unshare in
 * front of the C init (TSBUILD_SANDBOX_UNSHARE=util-linux), the chain the Node init always uses.
 */
process.env.TSBUILD_SANDBOX_UNSHARE = 'util-linux';
await import('./lifecycle.test.js');
