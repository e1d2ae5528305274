/**
 * A streaming reader of the `multipart/form-data` body storage-js sends for a Blob or File:
 * small fields (`cacheControl`, `metadata`) first, then the file under an empty field name
 * (or any part with a filename). The file part is handed on as a stream, never buffered;
 * fields after it are ignored (storage-js sends none).
 */
import { HearthError } from "../../shared/errors.ts";

const MAX_HEADER_BYTES = 16 * 1024;
const MAX_FIELD_BYTES = 64 * 1024;

function bad(message: string): HearthError {
  return new HearthError("HEARTH_BAD_REQUEST", `Malformed multipart body: ${message}`);
}

export function boundaryOf(contentType: string): string | null {
  const m = /;\s*boundary=(?:"([^"]{1,70})"|([^\s;]{1,70}))/i.exec(contentType);
  return m ? (m[1] ?? m[2] ?? null) : null;
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from = 0): number {
  const first = needle[0]!;
  outer: for (
    let i = hay.indexOf(first, from);
    i !== -1 && i + needle.length <= hay.length;
    i = hay.indexOf(first, i + 1)
  ) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

class Source {
  buf = new Uint8Array(0);
  done = false;
  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  async more(): Promise<boolean> {
    if (this.done) return false;
    let r: ReadableStreamReadResult<Uint8Array>;
    try {
      r = await this.reader.read();
    } catch {
      throw new HearthError("HEARTH_STORAGE_UPLOAD_INCOMPLETE", "The upload was interrupted before its end");
    }
    if (r.done) {
      this.done = true;
      return false;
    }
    const joined = new Uint8Array(this.buf.length + r.value.length);
    joined.set(this.buf);
    joined.set(r.value, this.buf.length);
    this.buf = joined;
    return true;
  }

  /** Bytes up to `needle` (consumed with it), reading at most `max` bytes. */
  async until(needle: Uint8Array, max: number): Promise<Uint8Array> {
    for (;;) {
      const i = indexOf(this.buf, needle);
      if (i !== -1) {
        const out = this.buf.slice(0, i);
        this.buf = this.buf.subarray(i + needle.length);
        return out;
      }
      if (this.buf.length > max + needle.length) throw bad("a part's headers or field is too long");
      if (!(await this.more())) throw bad("the body ended early");
    }
  }
}

export interface FormFile {
  fields: Map<string, string>;
  contentType: string;
  stream: ReadableStream<Uint8Array>;
}

export async function readFormFile(body: ReadableStream<Uint8Array>, boundary: string): Promise<FormFile> {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const src = new Source(body.getReader());
  const delimiter = enc.encode(`\r\n--${boundary}`);
  // The first boundary has no CRLF before it.
  await src.until(enc.encode(`--${boundary}\r\n`), MAX_HEADER_BYTES);
  const fields = new Map<string, string>();
  for (;;) {
    const head = dec.decode(await src.until(enc.encode("\r\n\r\n"), MAX_HEADER_BYTES));
    const disposition = /content-disposition:([^\r\n]*)/i.exec(head)?.[1] ?? "";
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? null;
    const hasFile = /\bfilename\*?=/i.test(disposition);
    if (hasFile || name === "") {
      const contentType = /content-type:\s*([^\r\n]*)/i.exec(head)?.[1]?.trim() || "application/octet-stream";
      return { fields, contentType, stream: fileStream(src, delimiter) };
    }
    const value = await src.until(delimiter, MAX_FIELD_BYTES);
    if (name !== null) fields.set(name, dec.decode(value));
    // After a delimiter: "--" ends the body, CRLF starts the next part.
    while (src.buf.length < 2) if (!(await src.more())) throw bad("the body ended early");
    if (src.buf[0] === 0x2d && src.buf[1] === 0x2d) throw bad("no file part");
    src.buf = src.buf.subarray(2);
  }
}

function fileStream(src: Source, delimiter: Uint8Array): ReadableStream<Uint8Array> {
  let ended = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (ended) return;
      for (;;) {
        const i = indexOf(src.buf, delimiter);
        if (i !== -1) {
          if (i > 0) controller.enqueue(src.buf.slice(0, i));
          src.buf = new Uint8Array(0);
          ended = true;
          controller.close();
          return;
        }
        // Keep a tail that may be the start of the delimiter.
        const safe = src.buf.length - (delimiter.length - 1);
        if (safe > 64 * 1024 || (safe > 0 && src.done)) {
          controller.enqueue(src.buf.slice(0, safe));
          src.buf = src.buf.slice(safe);
          return;
        }
        if (!(await src.more())) {
          controller.error(bad("the file part has no closing boundary"));
          return;
        }
      }
    },
  });
}
