/**
 * The user's data key on this device. The key that opens the encrypted `notes` column is made
 * on the first device, shown once as a recovery phrase, and wrapped under the user's passphrase
 * into an envelope kept in the user's own store (`com.example.keyring`, no secret in it). Any
 * app the user grants that table unwraps it on the user's device; no server ever sees the key.
 * Once unlocked, the key is kept in this origin's IndexedDB as a non-extractable CryptoKey, so
 * a reload (offline too) needs no passphrase and no script can read its bytes.
 */
import {
  exportRecoveryPhrase,
  generateDataKey,
  type HearthClient,
  type KeyEnvelope,
  parseKeyEnvelope,
  toNonExtractable,
  unwrapDataKey,
  wrapDataKey,
} from "@hearth/sdk";

const KEYRING = "com.example.keyring";
const ENVELOPE_ID = "data-key";
const DB = "hearth-example-keys";
const STORE = "keys";

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function run<T>(mode: IDBTransactionMode, op: (store: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = op(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result as T);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    db.close();
  }
}

/** The key this device keeps for `slot` (project + account), or null. */
export function storedKey(slot: string): Promise<CryptoKey | null> {
  return run<CryptoKey | undefined>("readonly", (s) => s.get(slot)).then((k) => k ?? null);
}

async function keep(slot: string, key: CryptoKey): Promise<CryptoKey> {
  const sealed = await toNonExtractable(key);
  await run("readwrite", (s) => s.put(sealed, slot));
  return sealed;
}

/** Forgets the key on this device (sign-out); the envelope in the store stays. */
export function forgetKey(slot: string): Promise<void> {
  return run("readwrite", (s) => s.delete(slot));
}

/** The envelope in the user's store, or null when no app has made a key yet (needs the network). */
export async function fetchEnvelope(client: HearthClient): Promise<KeyEnvelope | null> {
  const { data, error } = await client.from(KEYRING).select("envelope").eq("id", ENVELOPE_ID).maybeSingle();
  if (error) throw error;
  return data ? parseKeyEnvelope((data as { envelope: unknown }).envelope) : null;
}

/** Unwraps the stored envelope with the passphrase and keeps the key on this device. */
export async function unlock(slot: string, envelope: KeyEnvelope, passphrase: string): Promise<CryptoKey> {
  const key = await unwrapDataKey(envelope, passphrase); // non-extractable by default
  await run("readwrite", (s) => s.put(key, slot));
  return key;
}

/**
 * First use: makes the data key, stores its envelope in the user's store and keeps the key on
 * this device. Returns the recovery phrase, to show once.
 */
export async function createKey(
  client: HearthClient,
  slot: string,
  passphrase: string,
): Promise<{ key: CryptoKey; recoveryPhrase: string }> {
  const key = await generateDataKey();
  const envelope = await wrapDataKey(key, passphrase);
  const { error } = await client.from(KEYRING).insert({ id: ENVELOPE_ID, envelope });
  if (error) throw error; // 409 when another app made one meanwhile: unlock that one instead
  const recoveryPhrase = await exportRecoveryPhrase(key);
  return { key: await keep(slot, key), recoveryPhrase };
}
