/**
 * The user's data key: a random 256-bit AES-GCM key made with WebCrypto, shown to the user as
 * a 24-word BIP-39 recovery phrase (the phrase *is* the key: its 256 bits of entropy are the
 * raw key bytes) and read back from it. The key never leaves the device unless the user writes
 * the phrase down or types it into another app.
 */
import { entropyToMnemonic, mnemonicToEntropy } from "@scure/bip39";
import { wordlist } from "@scure/bip39/wordlists/english.js";
import { HearthCryptoError } from "./errors.ts";

export const DATA_KEY_ALGORITHM = { name: "AES-GCM", length: 256 } as const;
export const DATA_KEY_BYTES = 32;
export const RECOVERY_PHRASE_WORDS = 24;
const DATA_KEY_USAGES: KeyUsage[] = ["encrypt", "decrypt"];
const WORDS = new Set(wordlist);

/** How an imported key is made. */
export interface KeyImportOptions {
  /**
   * `false` (the default) makes a key whose bytes WebCrypto will not give back: it can be
   * stored in IndexedDB and used, but not shown as a phrase or wrapped under a passphrase.
   * Pass `true` only where the app will export the phrase or wrap the key again.
   */
  extractable?: boolean;
}

/** Throws HEARTH_BAD_KEY unless `key` is a 256-bit AES-GCM secret key for encrypt and decrypt. */
export function assertDataKey(key: unknown): asserts key is CryptoKey {
  const k = key as Partial<CryptoKey> | null;
  const alg = k?.algorithm as Partial<AesKeyAlgorithm> | undefined;
  const ok =
    typeof k === "object" &&
    k !== null &&
    k.type === "secret" &&
    alg?.name === "AES-GCM" &&
    alg.length === 256 &&
    DATA_KEY_USAGES.every((u) => k.usages?.includes(u));
  if (!ok) {
    throw new HearthCryptoError(
      "HEARTH_BAD_KEY",
      "not a Hearth data key: expected a 256-bit AES-GCM CryptoKey usable to encrypt and decrypt",
    );
  }
}

/**
 * Makes a new random data key (extractable, so that it can be shown as a recovery phrase and
 * wrapped under a passphrase; store it with `toNonExtractable` if it is kept as a CryptoKey).
 *
 * @example
 * const key = await generateDataKey();
 * const phrase = await exportRecoveryPhrase(key); // show once, ask the user to write it down
 */
export async function generateDataKey(): Promise<CryptoKey> {
  return crypto.subtle.generateKey(DATA_KEY_ALGORITHM, true, DATA_KEY_USAGES);
}

/**
 * Imports 32 raw key bytes as a data key.
 *
 * @example
 * const key = await importRawDataKey(bytes, { extractable: false });
 */
export async function importRawDataKey(
  bytes: Uint8Array,
  options: KeyImportOptions = {},
): Promise<CryptoKey> {
  if (!(bytes instanceof Uint8Array) || bytes.length !== DATA_KEY_BYTES) {
    throw new HearthCryptoError("HEARTH_BAD_KEY", `a raw data key is ${DATA_KEY_BYTES} bytes`);
  }
  return crypto.subtle.importKey(
    "raw",
    new Uint8Array(bytes),
    DATA_KEY_ALGORITHM,
    options.extractable ?? false,
    DATA_KEY_USAGES,
  );
}

/**
 * The 32 raw bytes of an extractable data key. Whoever holds them can read every encrypted
 * column: keep them on the device.
 *
 * @example
 * const bytes = await exportRawDataKey(key);
 */
export async function exportRawDataKey(key: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  assertDataKey(key);
  if (!key.extractable) {
    throw new HearthCryptoError(
      "HEARTH_BAD_KEY",
      "this data key is not extractable: import it again from the recovery phrase or the passphrase with { extractable: true } to export it",
    );
  }
  return new Uint8Array(await crypto.subtle.exportKey("raw", key));
}

/**
 * The same key as a non-extractable CryptoKey (what an app should keep in IndexedDB: scripts
 * can use it while the page is open, but cannot read its bytes).
 *
 * @example
 * await db.put("keys", await toNonExtractable(key), "data-key");
 */
export async function toNonExtractable(key: CryptoKey): Promise<CryptoKey> {
  assertDataKey(key);
  if (!key.extractable) return key;
  const raw = await exportRawDataKey(key);
  try {
    return await importRawDataKey(raw, { extractable: false });
  } finally {
    raw.fill(0);
  }
}

/**
 * The 24-word recovery phrase (BIP-39, English list) of an extractable data key.
 *
 * @example
 * const phrase = await exportRecoveryPhrase(key);
 * // "legal winner thank year wave sausage worth useful legal winner thank year ..."
 */
export async function exportRecoveryPhrase(key: CryptoKey): Promise<string> {
  const raw = await exportRawDataKey(key);
  try {
    return entropyToMnemonic(raw, wordlist);
  } finally {
    raw.fill(0);
  }
}

/** Lower case, single spaces, NFKD (as BIP-39 specifies): what users type is rarely exact. */
function normalizePhrase(phrase: string): string[] {
  return phrase.normalize("NFKD").trim().toLowerCase().split(/\s+/u).filter(Boolean);
}

/**
 * Reads a recovery phrase back into the data key. Case and extra spaces do not matter; a
 * wrong word count, a word outside the list or a bad checksum throw HEARTH_BAD_RECOVERY_PHRASE
 * (naming the position of an unknown word, never the word itself).
 *
 * @example
 * const key = await importRecoveryPhrase(input.value); // non-extractable by default
 */
export async function importRecoveryPhrase(
  phrase: string,
  options: KeyImportOptions = {},
): Promise<CryptoKey> {
  if (typeof phrase !== "string") {
    throw new HearthCryptoError("HEARTH_BAD_RECOVERY_PHRASE", "a recovery phrase is a string of 24 words");
  }
  const words = normalizePhrase(phrase);
  if (words.length !== RECOVERY_PHRASE_WORDS) {
    throw new HearthCryptoError(
      "HEARTH_BAD_RECOVERY_PHRASE",
      `a recovery phrase has ${RECOVERY_PHRASE_WORDS} words; this one has ${words.length}`,
    );
  }
  const unknown = words.flatMap((w, i) => (WORDS.has(w) ? [] : [i + 1]));
  if (unknown.length > 0) {
    throw new HearthCryptoError(
      "HEARTH_BAD_RECOVERY_PHRASE",
      `word${unknown.length > 1 ? "s" : ""} ${unknown.join(", ")} of the recovery phrase ${unknown.length > 1 ? "are" : "is"} not in the BIP-39 English word list: check the spelling`,
    );
  }
  let entropy: Uint8Array;
  try {
    entropy = mnemonicToEntropy(words.join(" "), wordlist);
  } catch {
    // No `cause`: the library's messages may quote words of the phrase.
    throw new HearthCryptoError(
      "HEARTH_BAD_RECOVERY_PHRASE",
      "the recovery phrase's checksum does not match: a word is mistyped (another valid word) or two words are swapped",
    );
  }
  try {
    return await importRawDataKey(entropy, options);
  } finally {
    entropy.fill(0);
  }
}
