/**
 * End-to-end encrypted columns: the user's data key (recovery phrase, passphrase envelope),
 * value and row encryption bound to each value's place, and the filter guard. See
 * sdk/docs/encryption.md for the scheme and the threat model.
 */
export {
  CIPHERTEXT_PREFIX,
  type CipherContext,
  type CiphertextFormat,
  decryptValue,
  type EncryptOptions,
  encryptValue,
  isCiphertext,
} from "./cipher.ts";
export type { JsonValue } from "./encoding.ts";
export {
  changePassphrase,
  type KeyEnvelope,
  PBKDF2_MIN_ITERATIONS,
  parseKeyEnvelope,
  unwrapDataKey,
  type WrapOptions,
  wrapDataKey,
} from "./envelope.ts";
export { CRYPTO_ERROR_CODES, type CryptoErrorCode, HearthCryptoError } from "./errors.ts";
export {
  exportRawDataKey,
  exportRecoveryPhrase,
  generateDataKey,
  importRawDataKey,
  importRecoveryPhrase,
  type KeyImportOptions,
  toNonExtractable,
} from "./keys.ts";
export {
  assertNoEncryptedFilter,
  decryptRow,
  type EncryptionColumn,
  type EncryptionSchema,
  encryptedColumns,
  encryptRow,
  type RowCryptoOptions,
} from "./rows.ts";
