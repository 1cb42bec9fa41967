/**
 * A small, binary-safe tar codec (POSIX ustar + PAX, reading also GNU long names and base-256
 * numbers).
 *
 * WHY not tar-stream: layers must carry binary xattrs (`security.capability` values contain NUL
 * and non-UTF-8 bytes) as PAX `SCHILY.xattr.*` records, exactly as Go's archive/tar (Docker,
 * BuildKit, containerd) writes them. tar-stream builds and parses PAX records as JS strings
 * (length counted in UTF-16 units, values decoded as UTF-8), which corrupts those values and
 * miscounts non-ASCII records. Everything else here follows POSIX.1-2001 pax/ustar.
 *
 * Writer contract: uname/gname empty, mtime whole seconds, no atime/ctime, PAX records sorted by
 * key, PAX header blocks as Go writes them (name `dir/PaxHeaders.0/base`, mode 0, no device
 * fields); names are raw bytes (non-UTF-8 names byte-exact, see names.ts); the archive ends with
 * two zero blocks (no padding to a 10 KiB record, like Go).
 */
import { LayerCodes, layerError } from './errors.js';
import { decodeName, encodeName } from './names.js';

export type TarType = 'file' | 'hardlink' | 'symlink' | 'char' | 'block' | 'dir' | 'fifo';

export interface TarHeader {
  /** As stored (directories written with a trailing '/'). */
  name: string;
  type: TarType;
  /** 0o7777 bits. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds (PAX may give fractions). */
  mtime: number;
  /** Reading only: the exact PAX mtime in nanoseconds when the archive gives one (GNU tar --format=posix does). */
  mtimeNs?: bigint;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  /** From PAX SCHILY.xattr.* records, raw bytes. */
  xattrs: Record<string, Buffer>;
}

const BLOCK = 512;
export const END_OF_ARCHIVE = Buffer.alloc(BLOCK * 2);

const TYPEFLAG: Record<TarType, string> = {
  file: '0', hardlink: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6',
};

function octal(buf: Buffer, off: number, len: number, v: number): boolean {
  // len-1 digits + NUL
  const s = Math.trunc(v).toString(8);
  if (v < 0 || s.length > len - 1) return false;
  buf.write(s.padStart(len - 1, '0'), off, len - 1, 'ascii');
  buf[off + len - 1] = 0;
  return true;
}

function isAsciiBytes(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i]! === 0 || b[i]! > 0x7f) return false;
  return true;
}

/** Go's toASCII: every NUL and non-ASCII byte dropped (what Go writes in ustar fields under PAX). */
function toAscii(b: Buffer): Buffer {
  return isAsciiBytes(b) ? b : Buffer.from(b.filter((c) => c !== 0 && c < 0x80));
}

/**
 * Go's formatter.formatString for a name field: the bytes, cut to the field (no NUL when full);
 * a cut that ends in '/' is NUL-terminated before its trailing slashes (a regular file must not
 * look like a directory to old readers).
 */
function nameField(buf: Buffer, off: number, len: number, v: Buffer): void {
  v.copy(buf, off, 0, Math.min(len, v.length));
  if (v.length > len && buf[off + len - 1] === 0x2f) {
    let n = len - 1;
    while (n > 0 && v[n - 1] === 0x2f) n--;
    buf[off + n] = 0;
  }
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return Buffer.concat([Buffer.from(String(len), 'ascii'), body]);
}

function pad(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

/**
 * One ustar block. Names are raw bytes (names.ts: non-UTF-8 names stay byte-exact). Names and
 * link targets over 100 bytes or not plain ASCII go to PAX `path` / `linkpath` as their raw bytes
 * (as Go's archive/tar, thus BuildKit, writes them: PAX says UTF-8, Linux names are bytes), the
 * ustar field then holding Go's toASCII of them. `paxHeader`: the block of the PAX extended header
 * itself (Go writes it with mode 0 and no device numbers).
 */
function ustarBlock(name: Buffer, type: string, h: Omit<TarHeader, 'name' | 'type' | 'xattrs'>, pax: Map<string, Buffer> | undefined, paxHeader = false): Buffer {
  const b = Buffer.alloc(BLOCK);
  if (name.length <= 100 && isAsciiBytes(name)) name.copy(b, 0);
  else { pax?.set('path', name); nameField(b, 0, 100, toAscii(name)); }
  octal(b, 100, 8, h.mode & 0o7777);
  if (!octal(b, 108, 8, h.uid)) { pax?.set('uid', Buffer.from(String(h.uid))); octal(b, 108, 8, 0); }
  if (!octal(b, 116, 8, h.gid)) { pax?.set('gid', Buffer.from(String(h.gid))); octal(b, 116, 8, 0); }
  if (!octal(b, 124, 12, h.size)) { pax?.set('size', Buffer.from(String(h.size))); octal(b, 124, 12, 0); }
  if (!octal(b, 136, 12, h.mtime)) { pax?.set('mtime', Buffer.from(String(Math.trunc(h.mtime)))); octal(b, 136, 12, 0); }
  b.write(type, 156, 1, 'ascii');
  const link = encodeName(h.linkname);
  if (link.length <= 100 && isAsciiBytes(link)) link.copy(b, 157);
  else { pax?.set('linkpath', link); nameField(b, 157, 100, toAscii(link)); }
  b.write('ustar\x0000', 257, 8, 'binary');
  // uname (265, 32) / gname (297, 32) stay empty on purpose.
  if (!paxHeader) {
    octal(b, 329, 8, h.devmajor);
    octal(b, 337, 8, h.devminor);
  }
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  octal(b, 148, 7, sum);
  b[155] = 0x20;
  return b;
}

/**
 * The header block(s) for one entry: an optional PAX extended header (entry + data, padded)
 * followed by the ustar block. The caller then writes `size` data bytes and padTo512(size).
 * The PAX header is named as Go names it: path.Join(dir, "PaxHeaders.0", file) of the entry name
 * split after its last '/' (so a directory `d/` gets `d/PaxHeaders.0`), toASCII'd, cut to 100.
 */
export function encodeHeader(h: TarHeader): Buffer {
  const pax = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(h.xattrs)) pax.set(`SCHILY.xattr.${k}`, v);
  const nameBytes = encodeName(h.name);
  const main = ustarBlock(nameBytes, TYPEFLAG[h.type], h, pax);
  if (pax.size === 0) return main;
  const keys = [...pax.keys()].sort();
  const data = Buffer.concat(keys.map((k) => paxRecord(k, pax.get(k)!)));
  const i = nameBytes.lastIndexOf(0x2f);
  const dir = nameBytes.subarray(0, i + 1), file = nameBytes.subarray(i + 1);
  const joined = Buffer.concat([dir, Buffer.from('PaxHeaders.0'), file.length ? Buffer.concat([Buffer.from('/'), file]) : Buffer.alloc(0)]);
  const paxName = toAscii(joined).subarray(0, 100);
  const ph = ustarBlock(paxName, 'x', {
    mode: 0, uid: 0, gid: 0, size: data.length, mtime: 0, linkname: '', uname: '', gname: '', devmajor: 0, devminor: 0,
  }, undefined, true);
  return Buffer.concat([ph, data, Buffer.alloc(pad(data.length)), main]);
}

/**
 * The byte sum of s when it is at most `limit` characters of plain ASCII without NUL (its bytes
 * are then its characters), else -1.
 */
function plainAsciiSum(s: string, limit: number): number {
  if (s.length > limit) return -1;
  let sum = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 0x7f) return -1;
    sum += c;
  }
  return sum;
}

/** `len - 1` octal digits (zero-padded) and a NUL, as octal() writes them; v must fit. Returns the bytes' sum. */
function octalInto(buf: Buffer, off: number, len: number, v: number): number {
  let sum = 0;
  for (let i = off + len - 2; i >= off; i--) {
    const c = 0x30 + (v % 8);
    buf[i] = c;
    sum += c;
    v = Math.floor(v / 8);
  }
  buf[off + len - 1] = 0;
  return sum;
}

const MAX7 = 0o7777777, MAX11 = 0o77777777777;
const ZERO_BLOCK = new Uint8Array(BLOCK);
const MAGIC = 'ustar\x0000';
const MAGIC_SUM = [...MAGIC].reduce((n, c) => n + c.charCodeAt(0), 0);

/**
 * The common header fast: when an entry needs no PAX record (ASCII name and link target of at
 * most 100 bytes, no xattrs, numbers that fit their fields), writes exactly the block
 * encodeHeader(h) would return into buf[off, off+512) and returns true; else writes nothing and
 * returns false (call encodeHeader). Saves a Buffer and a name encoding per entry.
 */
export function encodeHeaderInto(h: TarHeader, buf: Buffer, off: number): boolean {
  const nameSum = plainAsciiSum(h.name, 100), linkSum = plainAsciiSum(h.linkname, 100);
  if (nameSum < 0 || linkSum < 0) return false;
  for (const _ in h.xattrs) return false;
  const mtime = Math.trunc(h.mtime);
  if (h.uid < 0 || h.uid > MAX7 || h.gid < 0 || h.gid > MAX7 || h.size < 0 || h.size > MAX11 || h.mtime < 0 || mtime > MAX11) return false;
  if (h.devmajor < 0 || h.devmajor > MAX7 || h.devminor < 0 || h.devminor > MAX7) return false;
  if (!Number.isInteger(h.uid) || !Number.isInteger(h.gid) || !Number.isInteger(h.size) || !Number.isInteger(h.devmajor) || !Number.isInteger(h.devminor)) return false;
  buf.set(ZERO_BLOCK, off);
  // The checksum is the sum of the block's bytes with its own field as spaces: summed as written
  // (every other byte is zero) instead of re-reading the 512 bytes.
  let sum = nameSum + linkSum + MAGIC_SUM + 8 * 0x20;
  buf.write(h.name, off, 'latin1');
  sum += octalInto(buf, off + 100, 8, h.mode & 0o7777);
  sum += octalInto(buf, off + 108, 8, h.uid);
  sum += octalInto(buf, off + 116, 8, h.gid);
  sum += octalInto(buf, off + 124, 12, h.size);
  sum += octalInto(buf, off + 136, 12, mtime);
  const flag = TYPEFLAG[h.type].charCodeAt(0);
  buf[off + 156] = flag;
  sum += flag;
  if (h.linkname) buf.write(h.linkname, off + 157, 'latin1');
  buf.write(MAGIC, off + 257, 'latin1');
  sum += octalInto(buf, off + 329, 8, h.devmajor);
  sum += octalInto(buf, off + 337, 8, h.devminor);
  octalInto(buf, off + 148, 7, sum);
  buf[off + 155] = 0x20;
  return true;
}

export function padding(size: number): Buffer {
  return Buffer.alloc(pad(size));
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Pulls exact byte counts out of an async chunk source without copying large bodies. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Uint8Array>) {}

  private async fill(n: number): Promise<boolean> {
    while (this.buffered < n && !this.done) {
      const r = await this.it.next();
      if (r.done) { this.done = true; break; }
      const c = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
      if (c.length) { this.chunks.push(c); this.buffered += c.length; }
    }
    return this.buffered >= n;
  }

  /** Exactly n bytes, or undefined at a clean EOF (nothing buffered); throws on a short read. */
  async read(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill(n))) {
      if (this.buffered === 0) return undefined;
      throw layerError(LayerCodes.BAD_TAR, 'truncated tar archive', 'The archive is incomplete: re-download or re-create it.');
    }
    const out = this.take(n);
    return out;
  }

  private take(n: number): Buffer {
    if (this.chunks[0]!.length >= n) {
      const c = this.chunks[0]!;
      const out = c.subarray(0, n);
      if (c.length === n) this.chunks.shift(); else this.chunks[0] = c.subarray(n);
      this.buffered -= n;
      return out;
    }
    const parts: Buffer[] = [];
    let need = n;
    while (need > 0) {
      const c = this.chunks[0]!;
      if (c.length <= need) { parts.push(c); this.chunks.shift(); need -= c.length; }
      else { parts.push(c.subarray(0, need)); this.chunks[0] = c.subarray(need); need = 0; }
    }
    this.buffered -= n;
    return Buffer.concat(parts, n);
  }

  /** Streams n bytes as they arrive. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buffered === 0 && !(await this.fill(1))) {
        throw layerError(LayerCodes.BAD_TAR, 'truncated tar archive (inside an entry body)', 'The archive is incomplete: re-download or re-create it.');
      }
      const c = this.chunks[0]!;
      const k = Math.min(c.length, left);
      yield this.take(k);
      left -= k;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.stream(n)) { /* drain */ }
  }
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return decodeName(z < 0 ? s : s.subarray(0, z));
}

function num(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    // GNU base-256 (big endian, two's complement when the sign bit 0x40 is set).
    let v = 0n;
    for (let i = 0; i < len; i++) v = (v << 8n) | BigInt(i === 0 ? b[off]! & 0x7f : b[off + i]!);
    if (b[off]! & 0x40) v -= 1n << BigInt(len * 8 - 1);
    return Number(v);
  }
  const s = b.subarray(off, off + len).toString('ascii').replace(/[\0 ]+$/g, '').replace(/^[\0 ]+/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw layerError(LayerCodes.BAD_TAR, `malformed number field in tar header: ${JSON.stringify(s)}`, 'The archive is corrupt.');
  return parseInt(s, 8);
}

function checksumOk(b: Buffer): boolean {
  const want = num(b, 148, 8);
  let u = 0, s = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
    u += c;
    s += c > 127 ? c - 256 : c;
  }
  return want === u || want === s;
}

function parsePax(data: Buffer, into: Map<string, Buffer>): void {
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(data.subarray(i, sp).toString('ascii'), 10);
    if (!Number.isSafeInteger(len) || len <= sp - i || i + len > data.length) {
      throw layerError(LayerCodes.BAD_TAR, 'malformed PAX record in tar archive', 'The archive is corrupt.');
    }
    const rec = data.subarray(sp + 1, i + len - 1); // without trailing \n
    const eq = rec.indexOf(0x3d);
    if (eq > 0) into.set(rec.subarray(0, eq).toString('utf8'), rec.subarray(eq + 1));
    i += len;
  }
}

/** A PAX time record ("-?digits[.digits]") as exact nanoseconds; undefined when malformed. */
function paxMtimeNs(v: string): bigint | undefined {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(v.trim());
  if (!m) return undefined;
  const ns = BigInt(m[2]!) * 1_000_000_000n + BigInt(((m[3] ?? '') + '000000000').slice(0, 9));
  return m[1] ? -ns : ns;
}

export interface TarEntry {
  header: TarHeader;
  /** The entry's data (size bytes). Consume it or not: the reader skips what is left. */
  body: AsyncIterable<Buffer>;
}

/**
 * Parses a tar stream into entries, in archive order. PAX (local and global), GNU 'L'/'K' long
 * names and base-256 numbers are understood; sparse files, multi-volume and unknown types throw
 * TSB4406; bad checksums / truncation throw TSB4405. Entry names are returned raw (the caller
 * normalizes and judges them).
 */
export async function* readTar(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const r = new ByteReader(source[Symbol.asyncIterator]());
  const global = new Map<string, Buffer>();
  let local = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let index = 0;
  for (;;) {
    const b = await r.read(BLOCK);
    if (!b) {
      if (index === 0) throw layerError(LayerCodes.BAD_TAR, 'empty input: not a tar archive', 'Check that the file is a tar (or compressed tar) archive.');
      return; // tolerate a missing end-of-archive marker, like GNU tar
    }
    if (b.every((x) => x === 0)) return;
    index++;
    if (!checksumOk(b)) {
      throw layerError(LayerCodes.BAD_TAR, `tar header checksum mismatch at entry ${index}`, 'The file is not a tar archive or is corrupt.');
    }
    const flag = String.fromCharCode(b[156]!);
    const ext = flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K';
    let size = num(b, 124, 12);
    if (!ext && local.has('size')) {
      size = Number(local.get('size')!.toString('ascii'));
      if (!Number.isSafeInteger(size) || size < 0) throw layerError(LayerCodes.BAD_TAR, 'malformed PAX size in tar archive', 'The archive is corrupt.');
    }
    const dataPad = pad(size);
    if (ext) {
      if (size > 16 << 20) throw layerError(LayerCodes.BAD_TAR, `oversized tar extended header (${size} bytes)`, 'The archive is corrupt or hostile.');
      const data = (await r.read(size + dataPad)) ?? Buffer.alloc(0);
      const d = data.subarray(0, size);
      if (flag === 'x') parsePax(d, local);
      else if (flag === 'g') {
        parsePax(d, global);
        // Per-file keys make no sense globally (Go ignores them too).
        for (const k of ['path', 'linkpath', 'size']) global.delete(k);
      }
      else if (flag === 'L') longName = cstr(d, 0, d.length);
      else longLink = cstr(d, 0, d.length);
      continue;
    }
    const pax = new Map([...global, ...local]);
    local = new Map();
    for (const k of pax.keys()) {
      if (k.startsWith('GNU.sparse.')) throw layerError(LayerCodes.UNSUPPORTED_ENTRY, 'sparse files in tar archives are not supported', 'Re-create the archive without --sparse.');
    }
    const magic = b.subarray(257, 263).toString('binary');
    let name = cstr(b, 0, 100);
    const prefix = magic.startsWith('ustar') ? cstr(b, 345, 155) : '';
    if (prefix && magic === 'ustar\0') name = `${prefix}/${name}`;
    if (longName !== undefined) name = longName;
    if (pax.has('path')) name = decodeName(pax.get('path')!);
    let linkname = cstr(b, 157, 100);
    if (longLink !== undefined) linkname = longLink;
    if (pax.has('linkpath')) linkname = decodeName(pax.get('linkpath')!);
    longName = longLink = undefined;
    let type: TarType;
    switch (flag) {
      case '0': case '\0': case '7': type = name.endsWith('/') && flag === '\0' ? 'dir' : 'file'; break;
      case '1': type = 'hardlink'; break;
      case '2': type = 'symlink'; break;
      case '3': type = 'char'; break;
      case '4': type = 'block'; break;
      case '5': type = 'dir'; break;
      case '6': type = 'fifo'; break;
      default:
        throw layerError(LayerCodes.UNSUPPORTED_ENTRY, `unsupported tar entry type ${JSON.stringify(flag)} for ${JSON.stringify(name)}`,
          'Re-create the archive with plain files, directories, links and devices only.');
    }
    const xattrs: Record<string, Buffer> = {};
    for (const [k, v] of pax) if (k.startsWith('SCHILY.xattr.')) xattrs[k.slice(13)] = v;
    const paxNum = (k: string, dflt: number): number => {
      const v = pax.get(k);
      if (!v) return dflt;
      const n = Number(v.toString('ascii'));
      if (!Number.isFinite(n)) throw layerError(LayerCodes.BAD_TAR, `malformed PAX ${k} for ${JSON.stringify(name)}`, 'The archive is corrupt.');
      return n;
    };
    const header: TarHeader = {
      name, type, linkname, xattrs,
      mode: num(b, 100, 8) & 0o7777,
      uid: paxNum('uid', num(b, 108, 8)),
      gid: paxNum('gid', num(b, 116, 8)),
      size: type === 'file' ? size : 0,
      mtime: paxNum('mtime', num(b, 136, 12)),
      uname: pax.get('uname')?.toString('utf8') ?? cstr(b, 265, 32),
      gname: pax.get('gname')?.toString('utf8') ?? cstr(b, 297, 32),
      devmajor: type === 'char' || type === 'block' ? num(b, 329, 8) : 0,
      devminor: type === 'char' || type === 'block' ? num(b, 337, 8) : 0,
    };
    const pm = pax.get('mtime');
    const paxMtime = pm ? paxMtimeNs(pm.toString('ascii')) : undefined;
    if (paxMtime !== undefined) header.mtimeNs = paxMtime;
    let taken = 0;
    const body = (async function* () {
      for await (const c of r.stream(size)) { taken += c.length; yield c; }
    })();
    yield { header, body };
    // Whatever the consumer did not read is skipped (a broken-off body is closed first).
    await body.return(undefined);
    await r.skip(size - taken);
    await r.skip(dataPad);
  }
}
