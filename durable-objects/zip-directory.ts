/**
 * A zip's central directory, read through byte ranges (an R2 object's ranged gets), so a zip
 * of any size is listed with a few small reads: the tail (end of central directory, and its
 * zip64 record when sizes or offsets pass 4 GiB or 65535 entries), then the directory.
 * A member's bytes are found through its local header (`dataRange`). fflate reads zips held
 * in memory only, hence this small reader. Every problem is a ZipFormatError.
 */

export interface RangeReader {
  size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  stream(offset: number, length: number): Promise<ReadableStream<Uint8Array>>;
}

export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated (others are refused by the caller) */
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  /** where the member's local header starts */
  localOffset: number;
}

export class ZipFormatError extends Error {}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const EOCD_BYTES = 22;
const MAX_COMMENT = 0xffff;

function u64(v: DataView, at: number): number {
  const n = v.getBigUint64(at, true);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipFormatError("a zip64 size or offset is too large");
  return Number(n);
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function decodeName(bytes: Uint8Array, utf8Flag: boolean): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    if (utf8Flag) throw new ZipFormatError("a member name is not valid UTF-8");
    // Without the UTF-8 flag a name is CP437 in theory; Latin-1 keeps every byte.
    return Array.from(bytes, (c) => String.fromCharCode(c)).join("");
  }
}

/**
 * The members listed in the central directory, in its order. `maxDirectoryBytes` bounds
 * the memory it takes (the directory is read at once).
 */
export async function readDirectory(src: RangeReader, maxDirectoryBytes: number): Promise<ZipEntry[]> {
  if (src.size < EOCD_BYTES) throw new ZipFormatError("too short for a zip (no end of central directory)");
  const tailLength = Math.min(src.size, EOCD_BYTES + MAX_COMMENT + 20);
  const tailStart = src.size - tailLength;
  const tail = await src.read(tailStart, tailLength);
  const tv = view(tail);
  let at = -1;
  for (let i = tail.length - EOCD_BYTES; i >= 0; i--) {
    // the record ends the file: its comment length must reach exactly to the end
    if (tv.getUint32(i, true) === EOCD && i + EOCD_BYTES + tv.getUint16(i + 20, true) === tail.length) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new ZipFormatError("no end of central directory record (truncated, or not a zip)");
  let entries = tv.getUint16(at + 10, true);
  let dirSize = tv.getUint32(at + 12, true);
  let dirOffset = tv.getUint32(at + 16, true);
  if (at >= 20 && tv.getUint32(at - 20, true) === ZIP64_LOCATOR) {
    const recordOffset = u64(tv, at - 20 + 8);
    if (recordOffset + 56 > src.size)
      throw new ZipFormatError("the zip64 end of central directory is past the end");
    const rec = view(await src.read(recordOffset, 56));
    if (rec.getUint32(0, true) !== ZIP64_EOCD)
      throw new ZipFormatError("no zip64 end of central directory record");
    entries = u64(rec, 32);
    dirSize = u64(rec, 40);
    dirOffset = u64(rec, 48);
  } else if (entries === 0xffff || dirSize === 0xffffffff || dirOffset === 0xffffffff) {
    throw new ZipFormatError("a zip64 archive without its zip64 locator");
  }
  if (dirOffset + dirSize > src.size) {
    throw new ZipFormatError("the central directory is past the end of the file (truncated?)");
  }
  if (dirSize > maxDirectoryBytes) {
    throw new ZipFormatError(`the central directory takes ${dirSize} bytes, more than ${maxDirectoryBytes}`);
  }
  const dir = dirSize === 0 ? new Uint8Array(0) : await src.read(dirOffset, dirSize);
  const dv = view(dir);
  const out: ZipEntry[] = [];
  let p = 0;
  for (let n = 0; n < entries; n++) {
    if (p + 46 > dir.length || dv.getUint32(p, true) !== CENTRAL) {
      throw new ZipFormatError(`central directory entry ${n + 1} of ${entries} is damaged`);
    }
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLength = dv.getUint16(p + 28, true);
    const extraLength = dv.getUint16(p + 30, true);
    const commentLength = dv.getUint16(p + 32, true);
    let localOffset = dv.getUint32(p + 42, true);
    const end = p + 46 + nameLength + extraLength + commentLength;
    if (end > dir.length)
      throw new ZipFormatError(`central directory entry ${n + 1} of ${entries} is damaged`);
    const name = decodeName(dir.subarray(p + 46, p + 46 + nameLength), (flags & 0x800) !== 0);
    // zip64 extra field: the 8-byte values of exactly the fields saturated above, in this order
    for (let x = p + 46 + nameLength; x + 4 <= p + 46 + nameLength + extraLength; ) {
      const id = dv.getUint16(x, true);
      const len = dv.getUint16(x + 2, true);
      if (id === 0x0001) {
        let q = x + 4;
        const take = (): number => {
          if (q + 8 > x + 4 + len) throw new ZipFormatError(`${name}: a short zip64 extra field`);
          const v = u64(dv, q);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localOffset === 0xffffffff) localOffset = take();
      }
      x += 4 + len;
    }
    if (localOffset + 30 + compressedSize > dirOffset) {
      throw new ZipFormatError(`${name}: its data runs past the central directory`);
    }
    out.push({ name, method, flags, compressedSize, size, localOffset });
    p = end;
  }
  return out;
}

/** Where the member's (compressed) bytes are: after its local header, whose extra field may differ. */
export async function dataRange(src: RangeReader, e: ZipEntry): Promise<{ offset: number; length: number }> {
  const head = view(await src.read(e.localOffset, 30));
  if (head.getUint32(0, true) !== LOCAL)
    throw new ZipFormatError(`${e.name}: no local file header where the directory says`);
  const offset = e.localOffset + 30 + head.getUint16(26, true) + head.getUint16(28, true);
  if (offset + e.compressedSize > src.size)
    throw new ZipFormatError(`${e.name}: its data is past the end of the file`);
  return { offset, length: e.compressedSize };
}

/** An empty stream that ends. */
export function emptyStream(): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
}

/** A RangeReader over bytes in memory (tests, small zips). */
export function memoryReader(bytes: Uint8Array): RangeReader {
  return {
    size: bytes.length,
    read: async (offset, length) => bytes.subarray(offset, offset + length),
    stream: async (offset, length) => {
      // a body of known length, as an R2 ranged get's
      if (length === 0) return emptyStream();
      return new Response(bytes.slice(offset, offset + length)).body!;
    },
  };
}
