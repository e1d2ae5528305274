/**
 * Column values encrypted with the data key: AES-256-GCM, a fresh random 96-bit IV per value,
 * and additional authenticated data that names the value's place (table, column, the row's
 * primary key) so a ciphertext copied to another place fails to decrypt.
 *
 * Formats (version e1), both holding the same bytes `iv (12) || ciphertext || tag (16)`:
 *   text:  `hearth:e1:` + base64url(bytes), no padding (for `text` columns)
 *   bytes: `\x` + hex("hearth:e1:" as ASCII || bytes) (for `bytes` columns, PostgreSQL's spelling)
 * The plaintext is the UTF-8 JSON of the value, so every column type round-trips as itself.
 * AAD: UTF-8 of the canonical JSON `["hearth:e1", table, column, primaryKey]`.
 */
import {
  canonicalJson,
  concatBytes,
  fromBase64Url,
  fromHex,
  fromUtf8,
  type JsonValue,
  strictJson,
  toBase64Url,
  toHex,
  utf8,
} from "./encoding.ts";
import { HearthCryptoError } from "./errors.ts";
import { assertDataKey } from "./keys.ts";

export const CIPHERTEXT_VERSION = "e1";
export const CIPHERTEXT_PREFIX = `hearth:${CIPHERTEXT_VERSION}:`;
const PREFIX_BYTES = utf8(CIPHERTEXT_PREFIX);
const MAGIC = utf8("hearth:");
const MAGIC_HEX = `\\x${toHex(MAGIC)}`;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** The smallest well-formed body: an IV and a tag around an empty ciphertext. */
export const MIN_CIPHERTEXT_BYTES = IV_BYTES + TAG_BYTES;

/** Where a value lives. The same place must be given to decrypt it. */
export interface CipherContext {
  table: string;
  column: string;
  /**
   * The row's primary key, column → value (`{ id: "6f1c…" }`, or several columns for a
   * composite key). Bound as canonical JSON: key order does not matter, but `5` and `"5"`
   * differ; `encryptRow`/`decryptRow` normalise it per column type for you.
   */
  primaryKey: Record<string, unknown>;
}

export type CiphertextFormat = "text" | "bytes";

export interface EncryptOptions {
  /** `"text"` (default) for a `text` column, `"bytes"` for a `bytes` column (`\x…` hex). */
  format?: CiphertextFormat;
}

function aadOf(context: CipherContext): Uint8Array<ArrayBuffer> {
  const { table, column, primaryKey } = context ?? {};
  if (
    typeof table !== "string" ||
    typeof column !== "string" ||
    typeof primaryKey !== "object" ||
    !primaryKey
  ) {
    throw new TypeError("a cipher context is { table: string, column: string, primaryKey: object }");
  }
  try {
    return utf8(canonicalJson([`hearth:${CIPHERTEXT_VERSION}`, table, column, primaryKey]));
  } catch (e) {
    throw new HearthCryptoError(
      "HEARTH_MISSING_PRIMARY_KEY",
      `the primary key of a row of ${table} is not JSON (${(e as Error).message})`,
      { table, column },
    );
  }
}

/**
 * Encrypts one JSON value (any column type: strings, numbers, booleans, null, objects, arrays;
 * bigint as a string or number, bytes as `"\x…"` hex) for its place.
 *
 * @example
 * const cell = await encryptValue(key, "call the dentist", { table: "com.example.todos", column: "notes", primaryKey: { id } });
 * // "hearth:e1:…"
 */
export async function encryptValue(
  key: CryptoKey,
  value: unknown,
  context: CipherContext,
  options: EncryptOptions = {},
): Promise<string> {
  assertDataKey(key);
  let json: string;
  try {
    json = strictJson(value);
  } catch (e) {
    throw new HearthCryptoError(
      "HEARTH_BAD_PLAINTEXT",
      `only JSON values can be encrypted: ${(e as Error).message}`,
      { table: context?.table, column: context?.column },
    );
  }
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aadOf(context) }, key, utf8(json)),
  );
  const body = concatBytes(iv, sealed);
  return options.format === "bytes"
    ? `\\x${toHex(concatBytes(PREFIX_BYTES, body))}`
    : CIPHERTEXT_PREFIX + toBase64Url(body);
}

/**
 * True when `value` is spelled like a Hearth ciphertext of any version (text or bytes form),
 * e.g. to tell legacy plaintext from ciphertext; says nothing of whether it decrypts.
 */
export function isCiphertext(value: unknown): boolean {
  if (typeof value === "string") {
    return value.startsWith("hearth:") || value.toLowerCase().startsWith(MAGIC_HEX);
  }
  return value instanceof Uint8Array && startsWith(value, MAGIC);
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function badCiphertext(message: string, context: CipherContext | undefined): HearthCryptoError {
  return new HearthCryptoError("HEARTH_BAD_CIPHERTEXT", message, {
    table: context?.table,
    column: context?.column,
  });
}

/** The `iv || ciphertext || tag` bytes of either form, or HEARTH_BAD_CIPHERTEXT. */
function bodyOf(value: unknown, context: CipherContext | undefined): Uint8Array<ArrayBuffer> {
  let body: Uint8Array<ArrayBuffer> | null = null;
  if (typeof value === "string" && value.startsWith("hearth:")) {
    const version = /^hearth:([^:]*):/.exec(value)?.[1];
    if (version !== CIPHERTEXT_VERSION) {
      throw badCiphertext(
        `unknown ciphertext version ${JSON.stringify(version ?? "")} (this SDK reads ${CIPHERTEXT_VERSION}): update the SDK`,
        context,
      );
    }
    body = fromBase64Url(value.slice(CIPHERTEXT_PREFIX.length));
    if (!body) throw badCiphertext("the ciphertext is not valid base64url", context);
  } else {
    let bytes: Uint8Array | null = null;
    if (value instanceof Uint8Array) bytes = value;
    else if (typeof value === "string" && value.startsWith("\\x")) {
      bytes = fromHex(value.slice(2));
      if (!bytes) throw badCiphertext("the ciphertext is not valid \\x hex", context);
    }
    if (bytes && startsWith(bytes, MAGIC) && !startsWith(bytes, PREFIX_BYTES)) {
      throw badCiphertext(
        `unknown ciphertext version (this SDK reads ${CIPHERTEXT_VERSION}): update the SDK`,
        context,
      );
    }
    if (!bytes || !startsWith(bytes, PREFIX_BYTES)) {
      throw badCiphertext(
        `not a Hearth ciphertext (it does not start with ${CIPHERTEXT_PREFIX}): was this value written without encryption?`,
        context,
      );
    }
    body = new Uint8Array(bytes.subarray(PREFIX_BYTES.length));
  }
  if (body.length < MIN_CIPHERTEXT_BYTES) {
    throw badCiphertext(
      `the ciphertext is truncated: ${body.length} bytes, less than the ${MIN_CIPHERTEXT_BYTES} of an IV and a tag`,
      context,
    );
  }
  return body;
}

/**
 * Decrypts a value written by `encryptValue` (either format) for the same place. Wrong key,
 * wrong place or altered bytes throw HEARTH_DECRYPT_FAILED; a value that is not a Hearth
 * ciphertext at all throws HEARTH_BAD_CIPHERTEXT. Never returns garbage.
 *
 * @example
 * const notes = await decryptValue(key, row.notes, { table: "com.example.todos", column: "notes", primaryKey: { id: row.id } });
 */
export async function decryptValue(
  key: CryptoKey,
  ciphertext: string | Uint8Array,
  context: CipherContext,
): Promise<JsonValue> {
  assertDataKey(key);
  const body = bodyOf(ciphertext, context);
  const additionalData = aadOf(context);
  const place = { table: context.table, column: context.column };
  let plain: Uint8Array;
  try {
    plain = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: body.subarray(0, IV_BYTES), additionalData },
        key,
        body.subarray(IV_BYTES),
      ),
    );
  } catch {
    throw new HearthCryptoError(
      "HEARTH_DECRYPT_FAILED",
      `cannot decrypt column ${place.column} of ${place.table}: wrong key, the value was moved from another row, column or table, or it was altered`,
      place,
    );
  }
  try {
    return JSON.parse(fromUtf8(plain)) as JsonValue;
  } catch {
    // Authentic bytes that are not UTF-8 JSON: written by something else holding the key.
    throw badCiphertext(
      "the value decrypts, but not to UTF-8 JSON: it was not written by encryptValue",
      context,
    );
  }
}
