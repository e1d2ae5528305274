/**
 * Passphrase protection of the data key: a key envelope. PBKDF2-SHA-256 turns the passphrase
 * and a random per-user salt into a key-encryption key (KEK); the KEK wraps the random data
 * key with AES-256-GCM. The envelope (JSON, nothing secret in it) can sit in the user's store
 * next to the data, so any app on the user's device can unlock the key with the passphrase.
 * Changing the passphrase rewraps the same data key: no data is re-encrypted.
 */
import { canonicalJson, fromBase64Url, toBase64Url, utf8 } from "./encoding.ts";
import { HearthCryptoError } from "./errors.ts";
import { assertDataKey, DATA_KEY_ALGORITHM, DATA_KEY_BYTES, type KeyImportOptions } from "./keys.ts";

/** OWASP's figure for PBKDF2-HMAC-SHA-256 (2023); also the least an envelope may ask for. */
export const PBKDF2_MIN_ITERATIONS = 600_000;
/** Refused above this: a hostile envelope must not make a device spin for minutes. */
export const PBKDF2_MAX_ITERATIONS = 10_000_000;
export const ENVELOPE_SALT_BYTES = 16;
const WRAP_IV_BYTES = 12;
const WRAPPED_KEY_BYTES = DATA_KEY_BYTES + 16;

/**
 * The stored form of a passphrase-protected data key. Not secret: its safety rests on the
 * passphrase and the PBKDF2 cost.
 *
 * ```json
 * { "v": 1, "kdf": "pbkdf2-sha256", "iterations": 600000, "salt": "<16 bytes, base64url>",
 *   "wrap": "aes-256-gcm", "iv": "<12 bytes, base64url>", "wrappedKey": "<48 bytes, base64url>" }
 * ```
 * `wrappedKey` is AES-256-GCM(KEK, iv, raw data key) with its 16-byte tag, and the additional
 * data `["hearth:key-envelope",v,kdf,iterations,salt,wrap]` (canonical JSON) so that none of
 * the parameters can be changed unnoticed.
 */
export interface KeyEnvelope {
  v: 1;
  kdf: "pbkdf2-sha256";
  iterations: number;
  salt: string;
  wrap: "aes-256-gcm";
  iv: string;
  wrappedKey: string;
}

export interface WrapOptions {
  /** PBKDF2 iterations, at least 600,000 (the default). */
  iterations?: number;
}

function badEnvelope(message: string): HearthCryptoError {
  return new HearthCryptoError("HEARTH_BAD_ENVELOPE", `not a Hearth key envelope: ${message}`);
}

function checkIterations(n: unknown): number {
  if (
    typeof n !== "number" ||
    !Number.isInteger(n) ||
    n < PBKDF2_MIN_ITERATIONS ||
    n > PBKDF2_MAX_ITERATIONS
  ) {
    throw badEnvelope(
      `iterations must be an integer from ${PBKDF2_MIN_ITERATIONS} to ${PBKDF2_MAX_ITERATIONS}, not ${String(n)}`,
    );
  }
  return n;
}

function field(o: Record<string, unknown>, name: string, bytes: number): Uint8Array<ArrayBuffer> {
  const text = o[name];
  const decoded = typeof text === "string" ? fromBase64Url(text) : null;
  if (decoded?.length !== bytes) throw badEnvelope(`${name} must be ${bytes} bytes in base64url`);
  return decoded;
}

/**
 * Checks untrusted JSON (an object, or its text) and returns it as a KeyEnvelope, or throws
 * HEARTH_BAD_ENVELOPE saying which field is wrong.
 *
 * @example
 * const envelope = parseKeyEnvelope(await store.get("key-envelope"));
 */
export function parseKeyEnvelope(json: unknown): KeyEnvelope {
  let o = json;
  if (typeof o === "string") {
    try {
      o = JSON.parse(o);
    } catch {
      throw badEnvelope("the text is not JSON");
    }
  }
  if (typeof o !== "object" || o === null || Array.isArray(o)) throw badEnvelope("expected a JSON object");
  const r = o as Record<string, unknown>;
  if (r.v !== 1) throw badEnvelope(`version ${String(r.v)} is unknown (this SDK reads v 1)`);
  if (r.kdf !== "pbkdf2-sha256")
    throw badEnvelope(`kdf ${String(r.kdf)} is unknown (expected pbkdf2-sha256)`);
  if (r.wrap !== "aes-256-gcm") throw badEnvelope(`wrap ${String(r.wrap)} is unknown (expected aes-256-gcm)`);
  const iterations = checkIterations(r.iterations);
  field(r, "salt", ENVELOPE_SALT_BYTES);
  field(r, "iv", WRAP_IV_BYTES);
  field(r, "wrappedKey", WRAPPED_KEY_BYTES);
  return {
    v: 1,
    kdf: "pbkdf2-sha256",
    iterations,
    salt: r.salt as string,
    wrap: "aes-256-gcm",
    iv: r.iv as string,
    wrappedKey: r.wrappedKey as string,
  };
}

function passphraseBytes(passphrase: unknown): Uint8Array<ArrayBuffer> {
  if (typeof passphrase !== "string" || passphrase.length === 0) {
    throw new HearthCryptoError("HEARTH_BAD_PASSPHRASE", "a passphrase is a non-empty string");
  }
  // NFC, so that the same passphrase typed on two systems gives the same bytes.
  return utf8(passphrase.normalize("NFC"));
}

async function deriveKek(
  passphrase: Uint8Array<ArrayBuffer>,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
) {
  const base = await crypto.subtle.importKey("raw", passphrase, "PBKDF2", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["wrapKey", "unwrapKey"],
  );
}

function envelopeAad(e: Pick<KeyEnvelope, "v" | "kdf" | "iterations" | "salt" | "wrap">) {
  return utf8(canonicalJson(["hearth:key-envelope", e.v, e.kdf, e.iterations, e.salt, e.wrap]));
}

/**
 * Wraps an extractable data key under a passphrase (fresh salt and IV each time).
 *
 * @example
 * const key = await generateDataKey();
 * const envelope = await wrapDataKey(key, passphrase);
 * await store.put("key-envelope", envelope); // safe to store anywhere: it holds no secret
 */
export async function wrapDataKey(
  key: CryptoKey,
  passphrase: string,
  options: WrapOptions = {},
): Promise<KeyEnvelope> {
  assertDataKey(key);
  if (!key.extractable) {
    throw new HearthCryptoError(
      "HEARTH_BAD_KEY",
      "this data key is not extractable, so it cannot be wrapped: unlock it with { extractable: true }, or use changePassphrase",
    );
  }
  const pass = passphraseBytes(passphrase);
  const iterations = checkIterations(options.iterations ?? PBKDF2_MIN_ITERATIONS);
  const salt = crypto.getRandomValues(new Uint8Array(ENVELOPE_SALT_BYTES));
  const iv = crypto.getRandomValues(new Uint8Array(WRAP_IV_BYTES));
  const head = {
    v: 1,
    kdf: "pbkdf2-sha256",
    iterations,
    salt: toBase64Url(salt),
    wrap: "aes-256-gcm",
  } as const;
  const kek = await deriveKek(pass, salt, iterations);
  const wrapped = await crypto.subtle.wrapKey("raw", key, kek, {
    name: "AES-GCM",
    iv,
    additionalData: envelopeAad(head),
  });
  return { ...head, iv: toBase64Url(iv), wrappedKey: toBase64Url(new Uint8Array(wrapped)) };
}

/**
 * Unlocks the data key of an envelope (a KeyEnvelope, or its JSON text, read from anywhere:
 * it is checked here) with the passphrase. A wrong passphrase (or an altered
 * envelope) throws HEARTH_WRONG_PASSPHRASE; a malformed envelope HEARTH_BAD_ENVELOPE.
 *
 * @example
 * const key = await unwrapDataKey(await store.get("key-envelope"), passphrase);
 */
export async function unwrapDataKey(
  envelope: unknown,
  passphrase: string,
  options: KeyImportOptions = {},
): Promise<CryptoKey> {
  const e = parseKeyEnvelope(envelope);
  const pass = passphraseBytes(passphrase);
  const kek = await deriveKek(pass, fromBase64Url(e.salt)!, e.iterations);
  try {
    return await crypto.subtle.unwrapKey(
      "raw",
      fromBase64Url(e.wrappedKey)!,
      kek,
      { name: "AES-GCM", iv: fromBase64Url(e.iv)!, additionalData: envelopeAad(e) },
      DATA_KEY_ALGORITHM,
      options.extractable ?? false,
      ["encrypt", "decrypt"],
    );
  } catch (err) {
    throw new HearthCryptoError(
      "HEARTH_WRONG_PASSPHRASE",
      "the passphrase does not unlock this key envelope (wrong passphrase, or the envelope was altered)",
      {},
      err,
    );
  }
}

/**
 * Rewraps the envelope's data key under a new passphrase (new salt). The data key, and so
 * every ciphertext, stays the same; store the returned envelope in place of the old one.
 *
 * @example
 * const next = await changePassphrase(envelope, oldPassphrase, newPassphrase);
 * await store.put("key-envelope", next);
 */
export async function changePassphrase(
  envelope: unknown,
  oldPassphrase: string,
  newPassphrase: string,
  options: WrapOptions = {},
): Promise<KeyEnvelope> {
  passphraseBytes(newPassphrase);
  const key = await unwrapDataKey(envelope, oldPassphrase, { extractable: true });
  return wrapDataKey(key, newPassphrase, options);
}
