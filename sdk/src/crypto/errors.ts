/**
 * The error type of the SDK's encryption, a `HearthError` (status 0: nothing reached a server).
 * Every failure has a stable `code` (append-only: never rename or reuse one) so that an app can
 * tell "wrong passphrase" from "tampered data" without parsing messages. Messages never hold
 * key material, passphrases or phrase words.
 */
import { HearthError } from "../errors.ts";

export const CRYPTO_ERROR_CODES = [
  /** Authentication failed: wrong key, wrong context (row/column/table), or altered bytes. */
  "HEARTH_DECRYPT_FAILED",
  /** Not a Hearth ciphertext: wrong prefix, unknown version, bad base64url/hex, too short. */
  "HEARTH_BAD_CIPHERTEXT",
  /** A recovery phrase that is not 24 words of the BIP-39 English list with a valid checksum. */
  "HEARTH_BAD_RECOVERY_PHRASE",
  /** A passphrase that does not unlock a key envelope (or an envelope that was altered). */
  "HEARTH_WRONG_PASSPHRASE",
  /** An empty passphrase, or one that is not a string. */
  "HEARTH_BAD_PASSPHRASE",
  /** A key envelope that is not the JSON this SDK writes (version, KDF, iterations, salt...). */
  "HEARTH_BAD_ENVELOPE",
  /** A key that is not a 256-bit AES-GCM data key, or cannot be used as asked (not extractable). */
  "HEARTH_BAD_KEY",
  /** A value that is not JSON (undefined, bigint, a function, NaN/Infinity). */
  "HEARTH_BAD_PLAINTEXT",
  /** A row with encrypted values but without its full primary key (the ciphertext binds to it). */
  "HEARTH_MISSING_PRIMARY_KEY",
  /** A table that the schema does not declare. */
  "HEARTH_UNKNOWN_TABLE",
  /** A filter or order on a column that is encrypted end-to-end. */
  "HEARTH_ENCRYPTED_FILTER",
] as const;

export type CryptoErrorCode = (typeof CRYPTO_ERROR_CODES)[number];

/** Where an error happened, when it concerns one column of one table. */
export interface CryptoErrorPlace {
  table?: string | undefined;
  column?: string | undefined;
}

/**
 * Thrown by every function of the SDK's encryption on an expected failure; `instanceof
 * HearthError` holds too.
 *
 * @example
 * try {
 *   row = await decryptRow(key, schema, "com.example.todos", row);
 * } catch (e) {
 *   if (e instanceof HearthCryptoError && e.code === "HEARTH_DECRYPT_FAILED") showLockedBadge(e.column);
 *   else throw e;
 * }
 */
export class HearthCryptoError extends HearthError {
  override readonly name: string = "HearthCryptoError";
  declare readonly code: CryptoErrorCode;
  readonly table: string | undefined;
  readonly column: string | undefined;

  constructor(code: CryptoErrorCode, message: string, place: CryptoErrorPlace = {}, cause?: unknown) {
    super(code, message, cause === undefined ? {} : { cause });
    this.table = place.table;
    this.column = place.column;
  }
}
