/**
 * The passphrase envelope of the SDK's encryption (sdk/src/crypto/envelope.ts): PBKDF2-SHA-256
 * and AES-256-GCM key wrapping checked against Node's own crypto (the independent oracle;
 * the SDK uses WebCrypto only), wrong passphrases, altered and malformed envelopes, and a
 * passphrase change that keeps the data readable.
 */
import { createCipheriv, createDecipheriv, pbkdf2Sync } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  type CipherContext,
  changePassphrase,
  decryptValue,
  encryptValue,
  exportRawDataKey,
  generateDataKey,
  HearthCryptoError,
  importRawDataKey,
  type KeyEnvelope,
  parseKeyEnvelope,
  unwrapDataKey,
  wrapDataKey,
} from "../src/crypto/index.ts";

const CTX: CipherContext = { table: "com.example.todos", column: "notes", primaryKey: { id: "a" } };

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(HearthCryptoError);
    return (e as HearthCryptoError).code;
  }
  throw new Error("expected a HearthCryptoError, nothing was thrown");
}

describe("known answers", () => {
  it("PBKDF2-SHA-256: Node (the oracle used below) gives RFC 7914 §11's vectors", () => {
    expect(pbkdf2Sync("passwd", "salt", 1, 64, "sha256").toString("hex")).toBe(
      "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783",
    );
    expect(pbkdf2Sync("Password", "NaCl", 80000, 64, "sha256").toString("hex")).toBe(
      "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d",
    );
  });

  const dataKeyHex = "68a79eaca2324873eacc50cb9c6eca8cc68ea5d936f98787c60c7ebc74e6ce7c";
  const frozenEnvelope: KeyEnvelope = {
    v: 1,
    kdf: "pbkdf2-sha256",
    iterations: 600000,
    salt: "AAECAwQFBgcICQoLDA0ODw",
    wrap: "aes-256-gcm",
    iv: "EBESExQVFhcYGRob",
    wrappedKey: "ZLXjabLN4AQhdskDUJ2-dte2Pz2wnlEsBTxlVrxfjpOIpi7A2Zr-Ifi29D5OK0bB",
  };
  const envelopeAad = (e: KeyEnvelope) =>
    Buffer.from(JSON.stringify(["hearth:key-envelope", e.v, e.kdf, e.iterations, e.salt, e.wrap]));

  it("key envelope: the frozen vector is PBKDF2 (Node) + AES-GCM (Node) and unlocks the known key", async () => {
    const kek = pbkdf2Sync(
      "correct horse battery staple",
      Buffer.from(frozenEnvelope.salt, "base64url"),
      600000,
      32,
      "sha256",
    );
    const w = createCipheriv("aes-256-gcm", kek, Buffer.from(frozenEnvelope.iv, "base64url"));
    w.setAAD(envelopeAad(frozenEnvelope));
    const wrapped = Buffer.concat([w.update(Buffer.from(dataKeyHex, "hex")), w.final(), w.getAuthTag()]);
    expect(wrapped.toString("base64url")).toBe(frozenEnvelope.wrappedKey);
    const key = await unwrapDataKey(frozenEnvelope, "correct horse battery staple", { extractable: true });
    expect(Buffer.from(await exportRawDataKey(key)).toString("hex")).toBe(dataKeyHex);
  });

  it("key envelope: what wrapDataKey writes, Node unwraps with pbkdf2Sync and AES-GCM", async () => {
    const key = await importRawDataKey(Buffer.from(dataKeyHex, "hex"), { extractable: true });
    const e = await wrapDataKey(key, "pässwörd");
    const kek = pbkdf2Sync(
      Buffer.from("pässwörd".normalize("NFC")),
      Buffer.from(e.salt, "base64url"),
      e.iterations,
      32,
      "sha256",
    );
    const body = Buffer.from(e.wrappedKey, "base64url");
    const d = createDecipheriv("aes-256-gcm", kek, Buffer.from(e.iv, "base64url"));
    d.setAAD(envelopeAad(e));
    d.setAuthTag(body.subarray(32));
    expect(Buffer.concat([d.update(body.subarray(0, 32)), d.final()]).toString("hex")).toBe(dataKeyHex);
  });
});

describe("passphrase envelope", () => {
  it("wraps a data key into storable JSON and unwraps it with the passphrase", async () => {
    const key = await generateDataKey();
    const envelope = await wrapDataKey(key, "correct horse battery staple");
    expect(envelope).toMatchObject({ v: 1, kdf: "pbkdf2-sha256", iterations: 600000, wrap: "aes-256-gcm" });
    expect(Buffer.from(envelope.salt, "base64url")).toHaveLength(16);
    const stored = JSON.stringify(envelope); // as the app would keep it
    const back = await unwrapDataKey(stored, "correct horse battery staple", { extractable: true });
    expect(await exportRawDataKey(back)).toEqual(await exportRawDataKey(key));
    expect(back.extractable).toBe(true);
    expect((await unwrapDataKey(envelope, "correct horse battery staple")).extractable).toBe(false);
  });

  it("uses a fresh salt and IV for every wrap, and honours a higher iteration count", async () => {
    const key = await generateDataKey();
    const [a, b] = await Promise.all([wrapDataKey(key, "p"), wrapDataKey(key, "p", { iterations: 700_000 })]);
    expect(a.salt).not.toBe(b.salt);
    expect(a.iv).not.toBe(b.iv);
    expect(b.iterations).toBe(700_000);
    expect(await exportRawDataKey(await unwrapDataKey(b, "p", { extractable: true }))).toEqual(
      await exportRawDataKey(key),
    );
  });

  it("refuses a wrong passphrase, and an envelope whose parameters were altered, with HEARTH_WRONG_PASSPHRASE", async () => {
    const envelope = await wrapDataKey(await generateDataKey(), "right");
    const otherSalt = Buffer.alloc(16, 1).toString("base64url");
    const flipped = Buffer.from(envelope.wrappedKey, "base64url");
    flipped[0]! ^= 1;
    const codes = await Promise.all([
      codeOf(unwrapDataKey(envelope, "wrong")),
      codeOf(unwrapDataKey(envelope, "Right")),
      codeOf(unwrapDataKey({ ...envelope, iterations: 600_001 }, "right")),
      codeOf(unwrapDataKey({ ...envelope, salt: otherSalt }, "right")),
      codeOf(unwrapDataKey({ ...envelope, wrappedKey: flipped.toString("base64url") }, "right")),
    ]);
    expect(codes).toEqual(Array(5).fill("HEARTH_WRONG_PASSPHRASE"));
  });

  it("refuses malformed envelopes with HEARTH_BAD_ENVELOPE before any key derivation", async () => {
    const good = await wrapDataKey(await generateDataKey(), "p");
    const bad: unknown[] = [
      "not json",
      null,
      [good],
      { ...good, v: 2 },
      { ...good, kdf: "argon2id" },
      { ...good, wrap: "aes-kw" },
      { ...good, iterations: 1000 }, // below the floor: a store must not weaken the key
      { ...good, iterations: 1e12 }, // far above: a store must not hang the device
      { ...good, iterations: "600000" },
      { ...good, salt: "AAEC" },
      { ...good, iv: `${good.iv}==` },
      { ...good, wrappedKey: good.wrappedKey.slice(4) },
    ];
    for (const e of bad) {
      expect(() => parseKeyEnvelope(e)).toThrow(HearthCryptoError);
      expect(await codeOf(unwrapDataKey(e, "p"))).toBe("HEARTH_BAD_ENVELOPE");
    }
    expect(parseKeyEnvelope(JSON.stringify(good))).toEqual(good);
    expect(await codeOf(wrapDataKey(await generateDataKey(), "p", { iterations: 100_000 }))).toBe(
      "HEARTH_BAD_ENVELOPE",
    );
  });

  it("refuses an empty passphrase with HEARTH_BAD_PASSPHRASE", async () => {
    const key = await generateDataKey();
    expect(await codeOf(wrapDataKey(key, ""))).toBe("HEARTH_BAD_PASSPHRASE");
    expect(await codeOf(unwrapDataKey(await wrapDataKey(key, "p"), ""))).toBe("HEARTH_BAD_PASSPHRASE");
  });

  it("reads the same passphrase typed in composed or decomposed Unicode (NFC)", async () => {
    const envelope = await wrapDataKey(await generateDataKey(), "caf\u00e9");
    await expect(unwrapDataKey(envelope, "cafe\u0301")).resolves.toBeDefined();
  });

  it("changes the passphrase without touching data: old ciphertexts decrypt, the old passphrase stops working", async () => {
    const key = await generateDataKey();
    const before = await wrapDataKey(key, "old passphrase");
    const cell = await encryptValue(key, { note: "written before the change" }, CTX);
    const after = await changePassphrase(before, "old passphrase", "new passphrase");
    expect(after.salt).not.toBe(before.salt);
    expect(after.wrappedKey).not.toBe(before.wrappedKey);
    const unlocked = await unwrapDataKey(after, "new passphrase");
    expect(await decryptValue(unlocked, cell, CTX)).toEqual({ note: "written before the change" });
    expect(await codeOf(unwrapDataKey(after, "old passphrase"))).toBe("HEARTH_WRONG_PASSPHRASE");
    expect(await codeOf(changePassphrase(before, "not it", "new"))).toBe("HEARTH_WRONG_PASSPHRASE");
    expect(await codeOf(changePassphrase(before, "old passphrase", ""))).toBe("HEARTH_BAD_PASSPHRASE");
  });
});
