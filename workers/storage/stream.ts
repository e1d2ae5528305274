/**
 * Request bytes → R2, streamed: never the whole body in memory. A body of known length up
 * to SINGLE_PUT_MAX goes as it is into one `put`; a larger one, or one
 * of unknown length (multipart forms, chunked bodies), goes PART_BYTES at a time into an
 * R2 multipart upload (a body that ends within the first part is one `put` of that part).
 * A declared length is checked against `maxBytes` (bucket limit, remaining quota) before the
 * first byte; a body of unknown length is counted as it streams. The checksum is R2's ETag
 * (what S3 and Supabase report as `eTag`). Any failure leaves no bytes behind: the caller
 * aborts the upload.
 */
import { HearthError } from "../../shared/errors.ts";

/**
 * Up to this, a body of known length is one native streamed `put`. Past it (R2 takes at most
 * 5 GiB in one put) or without a length, multipart. Locally a 200 MiB multipart object read
 * back at 44 MB/s against 247 MB/s for a single-part one (bench/results/storage-files.md).
 */
export const SINGLE_PUT_MAX = 1024 * 1024 * 1024;
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
  /** the refusal past maxBytes, when not a file's (an import's zip) */
  tooLarge?: () => HearthError;
}

function tooLarge(opts: StoreOptions): HearthError {
  if (opts.tooLarge) return opts.tooLarge();
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

export async function storeBody(
  r2: R2Bucket,
  key: string,
  body: ReadableStream<Uint8Array> | null,
  opts: StoreOptions,
): Promise<Stored> {
  if (opts.declared !== null && opts.declared > opts.maxBytes) throw tooLarge(opts);
  const httpMetadata = { contentType: opts.contentType, cacheControl: opts.cacheControl };
  if (body === null) {
    const obj = await r2.put(key, new Uint8Array(0), { httpMetadata });
    return { size: 0, checksum: obj.etag };
  }
  if (opts.declared !== null && opts.declared <= SINGLE_PUT_MAX) {
    // A body of known length (a request with Content-Length, an R2 object's body) goes to R2
    // as it is: the runtime streams it natively and holds it to its length.
    let obj: R2Object;
    try {
      obj = await r2.put(key, body, { httpMetadata });
    } catch {
      throw new HearthError(
        "HEARTH_STORAGE_UPLOAD_INCOMPLETE",
        `The upload was interrupted before its ${opts.declared} bytes arrived`,
      );
    }
    if (obj.size !== opts.declared) {
      throw new HearthError(
        "HEARTH_STORAGE_UPLOAD_INCOMPLETE",
        `The body ended after ${obj.size} of its ${opts.declared} bytes`,
      );
    }
    return { size: obj.size, checksum: obj.etag };
  }
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
    return chunk.value;
  };
  const finish = (): void => {
    if (opts.declared !== null && size !== opts.declared) {
      throw new HearthError(
        "HEARTH_STORAGE_UPLOAD_INCOMPLETE",
        `The body ended after ${size} of its ${opts.declared} bytes`,
      );
    }
  };
  try {
    const obj = await storeParts(r2, key, next, finish, httpMetadata, opts);
    return { size, checksum: obj.etag };
  } finally {
    reader.releaseLock();
  }
}

async function storeParts(
  r2: R2Bucket,
  key: string,
  next: () => Promise<Uint8Array | null>,
  finish: () => void,
  httpMetadata: R2HTTPMetadata,
  opts: StoreOptions,
): Promise<R2Object> {
  const part = new Uint8Array(PART_BYTES);
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
          // The part is uploaded when this resolves: the buffer is reused for the next one.
          parts.push(await upload.uploadPart(parts.length + 1, part));
          fill = 0;
        }
      }
    }
    finish();
    if (!upload) return await r2.put(key, part.subarray(0, fill), { httpMetadata });
    if (fill > 0) parts.push(await upload.uploadPart(parts.length + 1, part.subarray(0, fill)));
    return await upload.complete(parts);
  } catch (err) {
    if (upload) await upload.abort().catch(() => {});
    throw err;
  }
}
