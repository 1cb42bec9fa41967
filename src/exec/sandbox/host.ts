/**
 * The few libc calls the PARENT side needs that Node does not offer: real pipes (Node's 'pipe'
 * stdio is a socketpair, which breaks `> /dev/stdout` in the command) and a pty for `run -t`.
 * koffi is loaded lazily: importing the sandbox costs nothing until a RUN happens.
 */
import { createRequire } from 'node:module';

/* eslint-disable @typescript-eslint/no-explicit-any */
let lib: any;
let koffiMod: any;

let koffiResolved: string | undefined;
/** Where koffi is (the Node init loads it); resolved once per process, as it is asked per RUN. */
export function koffiPath(): string {
  koffiResolved ??= createRequire(import.meta.url).resolve('koffi');
  return koffiResolved;
}

function libc(): any {
  if (!lib) {
    koffiMod = createRequire(import.meta.url)('koffi');
    const l = koffiMod.load('libc.so.6');
    lib = {
      pipe2: l.func('int pipe2(_Out_ int *fds, int flags)'),
      posixOpenpt: l.func('int posix_openpt(int flags)'),
      grantpt: l.func('int grantpt(int fd)'),
      unlockpt: l.func('int unlockpt(int fd)'),
      ptsname: l.func('const char *ptsname(int fd)'),
      ioctl: l.func('int ioctl(int fd, unsigned long req, ...)'),
      strerror: l.func('const char *strerror(int errnum)'),
    };
  }
  return lib;
}

function fail(what: string): never {
  const en = koffiMod.errno() as number;
  throw new Error(`${what}: ${String(libc().strerror(en))}`);
}

const O_CLOEXEC = 0o2000000;

/** A close-on-exec pipe: [readFd, writeFd]. */
export function pipe(): [number, number] {
  const buf = Buffer.alloc(8);
  if (libc().pipe2(buf, O_CLOEXEC) < 0) fail('pipe2');
  return [buf.readInt32LE(0), buf.readInt32LE(4)];
}

/** A new pty: master fd (close-on-exec) and the slave's path. */
export function openPty(rows?: number, cols?: number): { master: number; slavePath: string } {
  const c = libc();
  const master = c.posixOpenpt(0o2 | 0o400 | O_CLOEXEC); // O_RDWR|O_NOCTTY|O_CLOEXEC
  if (master < 0) fail('posix_openpt');
  if (c.grantpt(master) < 0) fail('grantpt');
  if (c.unlockpt(master) < 0) fail('unlockpt');
  const slavePath = String(c.ptsname(master));
  if (rows && cols) resizePty(master, rows, cols);
  return { master, slavePath };
}

export function resizePty(fd: number, rows: number, cols: number): void {
  const ws = Buffer.alloc(8);
  ws.writeUInt16LE(rows, 0);
  ws.writeUInt16LE(cols, 2);
  libc().ioctl(fd, 0x5414 /* TIOCSWINSZ */, 'void *', ws);
}
