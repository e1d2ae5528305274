/**
 * Request bytes → R2, streamed: never the whole body in memory. A body of known length up
 * to SINGLE_PUT_MAX goes through a FixedLengthStream into one `put`; a larger one, or one
 * of unknown length (multipart forms, chunked bodies), goes PART_BYTES at a time into an
 * R2 multipart upload (a body that ends within the first part is one `put` of that part).
 * Every byte is counted against `maxBytes` (bucket limit, remaining quota) and hashed
 * (SHA-256) on the way. Any failure leaves no bytes behind: the caller aborts the upload.
 */
import { HearthError } from "../../shared/errors.ts";

export const SINGLE_PUT_MAX = 64 * 1024 * 1024;
/** R2 needs equal parts of ≥ 5 MiB (but the last); 8 MiB bounds memory per upload. */
export const PART_BYTES = 8 * 1024 * 1024;

export interface Stored {
  size: number;
  checksum: string;
}

export interface StoreOptions {
  declared: number | null;
  maxBytes: number;
  boundBy: "bucket" | "quota";
  contentType: string;
  cacheControl: string;
  /** called once a multipart upload exists, so a crash can still abort it */
  onMultipart?: (uploadId: string) => Promise<void>;
}

function tooLarge(opts: StoreOptions): HearthError {
  if (opts.boundBy === "quota") {
    return new HearthError(
      "HEARTH_STORAGE_QUOTA_EXCEEDED",
      `The project's storage quota would be exceeded: ${opts.maxBytes} bytes left`,
    );
  }
  return new HearthError(
    "HEARTH_STORAGE_TOO_LARGE",
    `The object exceeded the maximum allowed size: the bucket takes at most ${opts.maxBytes} bytes`,
  );
}

function hex(buf: ArrayBuffer): string {
  return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function storeBody(
  r2: R2Bucket,
  key: string,
  body: ReadableStream<Uint8Array>,
  opts: StoreOptions,
): Promise<Stored> {
  if (opts.declared !== null && opts.declared > opts.maxBytes) throw tooLarge(opts);
  const httpMetadata = { contentType: opts.contentType, cacheControl: opts.cacheControl };
  const digest = new crypto.DigestStream("SHA-256");
  const hashWriter = digest.getWriter();
  const reader = body.getReader();
  let size = 0;
  const next = async (): Promise<Uint8Array | null> => {
    let chunk: ReadableStreamReadResult<Uint8Array>;
    try {
      chunk = await reader.read();
    } catch {
      throw new HearthError("HEARTH_STORAGE_UPLOAD_INCOMPLETE", "The upload was interrupted before its end");
    }
    if (chunk.done) return null;
    size += chunk.value.byteLength;
    if (size > opts.maxBytes) throw tooLarge(opts);
    if (opts.declared !== null && size > opts.declared) {
      throw new HearthError("HEARTH_STORAGE_UPLOAD_INCOMPLETE", "The body is longer than its Content-Length");
    }
    await hashWriter.write(chunk.value);
    return chunk.value;
  };
  const finish = async (): Promise<Stored> => {
    if (opts.declared !== null && size !== opts.declared) {
      throw new HearthError(
        "HEARTH_STORAGE_UPLOAD_INCOMPLETE",
        `The body ended after ${size} of its ${opts.declared} bytes`,
      );
    }
    await hashWriter.close();
    return { size, checksum: hex(await digest.digest) };
  };
  try {
    if (opts.declared !== null && opts.declared <= SINGLE_PUT_MAX) {
      const fixed = new FixedLengthStream(opts.declared);
      const writer = fixed.writable.getWriter();
      const put = r2.put(key, fixed.readable, { httpMetadata });
      put.catch(() => {}); // awaited below; a failed write must not be an unhandled rejection
      try {
        for (let c = await next(); c !== null; c = await next()) await writer.write(c);
        const stored = await finish();
        await writer.close();
        await put;
        return stored;
      } catch (err) {
        await writer.abort(err).catch(() => {});
        await put.catch(() => {});
        throw err;
      }
    }
    return await storeParts(r2, key, next, finish, httpMetadata, opts);
  } finally {
    reader.releaseLock();
  }
}

async function storeParts(
  r2: R2Bucket,
  key: string,
  next: () => Promise<Uint8Array | null>,
  finish: () => Promise<Stored>,
  httpMetadata: R2HTTPMetadata,
  opts: StoreOptions,
): Promise<Stored> {
  let part = new Uint8Array(PART_BYTES);
  let fill = 0;
  let upload: R2MultipartUpload | null = null;
  const parts: R2UploadedPart[] = [];
  try {
    for (let c = await next(); c !== null; c = await next()) {
      let off = 0;
      while (off < c.byteLength) {
        const n = Math.min(PART_BYTES - fill, c.byteLength - off);
        part.set(c.subarray(off, off + n), fill);
        fill += n;
        off += n;
        if (fill === PART_BYTES) {
          if (!upload) {
            upload = await r2.createMultipartUpload(key, { httpMetadata });
            await opts.onMultipart?.(upload.uploadId);
          }
          parts.push(await upload.uploadPart(parts.length + 1, part));
          part = new Uint8Array(PART_BYTES);
          fill = 0;
        }
      }
    }
    const stored = await finish();
    if (!upload) {
      await r2.put(key, part.subarray(0, fill), { httpMetadata });
      return stored;
    }
    if (fill > 0) parts.push(await upload.uploadPart(parts.length + 1, part.subarray(0, fill)));
    await upload.complete(parts);
    return stored;
  } catch (err) {
    if (upload) await upload.abort().catch(() => {});
    throw err;
  }
}
