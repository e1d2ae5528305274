/**
 * The SDK's encryption (sdk/src/crypto): known-answer vectors checked against Node's own
 * crypto (node:crypto is the independent oracle here; the SDK itself uses WebCrypto only),
 * the data key and its recovery phrase, value round trips and tampering. The passphrase
 * envelope is in crypto-envelope.test.ts, rows and the filter guard in crypto-rows.test.ts.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  type CipherContext,
  decryptValue,
  encryptValue,
  exportRawDataKey,
  exportRecoveryPhrase,
  generateDataKey,
  HearthCryptoError,
  importRawDataKey,
  importRecoveryPhrase,
  isCiphertext,
  toNonExtractable,
  wrapDataKey,
} from "../src/crypto/index.ts";

const KEY_BYTES = new Uint8Array([...Array(32).keys()]); // 00 01 … 1f
const CTX: CipherContext = {
  table: "com.example.todos",
  column: "notes",
  primaryKey: { id: "6f1c2d3e-0000-4000-8000-000000000001" },
};
const aadOf = (c: CipherContext) =>
  Buffer.from(JSON.stringify(["hearth:e1", c.table, c.column, c.primaryKey]));

/** The AES-256-GCM ciphertext string, computed by Node. */
function nodeSeal(key: Uint8Array, iv: Buffer, aad: Buffer, plaintext: Buffer): string {
  const c = createCipheriv("aes-256-gcm", key, iv);
  c.setAAD(aad);
  const body = Buffer.concat([iv, c.update(plaintext), c.final(), c.getAuthTag()]);
  return `hearth:e1:${body.toString("base64url")}`;
}

/** Node's reading of a ciphertext string (either form). */
function nodeOpen(key: Uint8Array, text: string, aad: Buffer): Buffer {
  const body = text.startsWith("\\x")
    ? Buffer.from(text.slice(2), "hex").subarray("hearth:e1:".length)
    : Buffer.from(text.slice("hearth:e1:".length), "base64url");
  const d = createDecipheriv("aes-256-gcm", key, body.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(body.subarray(body.length - 16));
  return Buffer.concat([d.update(body.subarray(12, body.length - 16)), d.final()]);
}

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(HearthCryptoError);
    return (e as HearthCryptoError).code;
  }
  throw new Error("expected a HearthCryptoError, nothing was thrown");
}

const fixedKey = (extractable = false) => importRawDataKey(KEY_BYTES, { extractable });

describe("known answers", () => {
  it("AES-256-GCM: a fixed key, IV, AAD and plaintext give the expected ciphertext, which decrypts", async () => {
    const iv = Buffer.from("cafebabefacedbaddecaf888", "hex");
    const expected = nodeSeal(KEY_BYTES, iv, aadOf(CTX), Buffer.from('"call the dentist"'));
    // Frozen vector of format e1: a change here breaks every stored ciphertext.
    expect(expected).toBe("hearth:e1:yv66vvrO263eyviIqMDBSsZaO3MjKzm4FWngTHkCA3EjBFU4yadQnsDm0Gy8kw");
    expect(await decryptValue(await fixedKey(), expected, CTX)).toBe("call the dentist");
  });

  it("AES-256-GCM: what encryptValue writes, Node decrypts with the documented AAD and plaintext", async () => {
    const key = await fixedKey();
    const value = { title: "Ünïcödé ✓", n: 42, list: [1, null, true] };
    for (const format of ["text", "bytes"] as const) {
      const text = await encryptValue(key, value, CTX, { format });
      expect(JSON.parse(nodeOpen(KEY_BYTES, text, aadOf(CTX)).toString("utf8"))).toEqual(value);
    }
  });

  const dataKeyHex = "68a79eaca2324873eacc50cb9c6eca8cc68ea5d936f98787c60c7ebc74e6ce7c";

  // BIP-39 reference vectors (trezor/python-mnemonic vectors.json, 256-bit entropy, English).
  const BIP39 = [
    ["00".repeat(32), `${"abandon ".repeat(23)}art`],
    [
      "7f".repeat(32),
      "legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title",
    ],
    [
      "80".repeat(32),
      "letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless",
    ],
    ["ff".repeat(32), `${"zoo ".repeat(23)}vote`],
    [
      dataKeyHex,
      "hamster diagram private dutch cause delay private meat slide toddler razor book happy fancy gospel tennis maple dilemma loan word shrug inflict delay length",
    ],
  ] as const;

  it.each(BIP39)("BIP-39: key %s ↔ its recovery phrase", async (hex, phrase) => {
    const key = await importRawDataKey(Buffer.from(hex, "hex"), { extractable: true });
    expect(await exportRecoveryPhrase(key)).toBe(phrase);
    const back = await importRecoveryPhrase(phrase, { extractable: true });
    expect(Buffer.from(await exportRawDataKey(back)).toString("hex")).toBe(hex);
  });

  it("BIP-39: the key read from a phrase is the AES key Node uses with the phrase's entropy", async () => {
    const [hex, phrase] = BIP39[4];
    const sealed = nodeSeal(Buffer.from(hex, "hex"), Buffer.alloc(12, 7), aadOf(CTX), Buffer.from("[1,2,3]"));
    expect(await decryptValue(await importRecoveryPhrase(phrase), sealed, CTX)).toEqual([1, 2, 3]);
  });
});

describe("data key and recovery phrase", () => {
  it("generates distinct extractable 256-bit AES-GCM keys whose 24-word phrase reads back", async () => {
    const [a, b] = await Promise.all([generateDataKey(), generateDataKey()]);
    expect(a.algorithm).toMatchObject({ name: "AES-GCM", length: 256 });
    expect(a.extractable).toBe(true);
    const phrase = await exportRecoveryPhrase(a);
    expect(phrase.split(" ")).toHaveLength(24);
    expect(phrase).not.toBe(await exportRecoveryPhrase(b));
    const text = await encryptValue(a, "secret", CTX);
    expect(await decryptValue(await importRecoveryPhrase(phrase), text, CTX)).toBe("secret");
  });

  it("reads a phrase typed with other case, spaces and line breaks", async () => {
    const phrase = `  ${"ZOO  ".repeat(23)}\n Vote `;
    const key = await importRecoveryPhrase(phrase, { extractable: true });
    expect(Buffer.from(await exportRawDataKey(key)).toString("hex")).toBe("ff".repeat(32));
  });

  it("refuses wrong or mistyped phrases with HEARTH_BAD_RECOVERY_PHRASE, naming positions, never words", async () => {
    const good = "abandon ".repeat(23) + "art";
    const words = good.split(" ");
    const cases: [string, RegExp][] = [
      [words.slice(1).join(" "), /has 24 words; this one has 23/],
      [`${"abandon ".repeat(11)}about`, /this one has 12/], // a valid 12-word phrase is not a data key
      [
        ["abandon", "abandn", ...words.slice(2)].join(" "),
        /word 2 of the recovery phrase is not in the BIP-39/,
      ],
      [[...words.slice(0, 23), "zoo"].join(" "), /checksum/], // all listed words, wrong checksum
      [["art", ...words.slice(1, 23), "abandon"].join(" "), /checksum/], // two words swapped
      ["", /this one has 0/],
    ];
    for (const [phrase, message] of cases) {
      const err = await importRecoveryPhrase(phrase).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HearthCryptoError);
      expect((err as HearthCryptoError).code).toBe("HEARTH_BAD_RECOVERY_PHRASE");
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toMatch(/abandn|abandon|zoo/);
    }
    expect(await codeOf(importRecoveryPhrase(42 as unknown as string))).toBe("HEARTH_BAD_RECOVERY_PHRASE");
  });

  it("imports as non-extractable by default: usable, but its bytes and phrase cannot be read", async () => {
    const key = await importRecoveryPhrase(`${"zoo ".repeat(23)}vote`);
    expect(key.extractable).toBe(false);
    expect(await codeOf(exportRawDataKey(key))).toBe("HEARTH_BAD_KEY");
    expect(await codeOf(exportRecoveryPhrase(key))).toBe("HEARTH_BAD_KEY");
    expect(await codeOf(wrapDataKey(key, "pass"))).toBe("HEARTH_BAD_KEY");
    const locked = await toNonExtractable(await generateDataKey());
    expect(locked.extractable).toBe(false);
    expect(await decryptValue(locked, await encryptValue(locked, 1, CTX), CTX)).toBe(1);
  });

  it("toNonExtractable keeps the same key", async () => {
    const key = await fixedKey(true);
    const text = await encryptValue(key, "x", CTX);
    expect(await decryptValue(await toNonExtractable(key), text, CTX)).toBe("x");
  });

  it("refuses keys that are not 256-bit AES-GCM data keys with HEARTH_BAD_KEY", async () => {
    expect(await codeOf(importRawDataKey(new Uint8Array(16)))).toBe("HEARTH_BAD_KEY");
    const aes128 = await crypto.subtle.generateKey({ name: "AES-GCM", length: 128 }, false, [
      "encrypt",
      "decrypt",
    ]);
    const cbc = await crypto.subtle.generateKey({ name: "AES-CBC", length: 256 }, false, [
      "encrypt",
      "decrypt",
    ]);
    const hmac = await crypto.subtle.generateKey({ name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    for (const k of [aes128, cbc, hmac, null, "key"]) {
      expect(await codeOf(encryptValue(k as CryptoKey, 1, CTX))).toBe("HEARTH_BAD_KEY");
    }
  });
});

describe("values", () => {
  // One value of each column type, as the wire (JSON) holds it.
  const VALUES: [string, unknown][] = [
    ["text", "call the dentist"],
    ["text, empty", ""],
    ["text, unicode", "naïve café ✓ 🔥 中文 \u0000 \n"],
    ["integer", -2147483648],
    ["bigint as a number", 9007199254740991],
    ["bigint as a string", "9223372036854775807"],
    ["float", Math.PI],
    ["float, tiny", -1.5e-7],
    ["boolean true", true],
    ["boolean false", false],
    ["timestamp", "2024-01-02T03:04:05.678Z"],
    ["date", "2024-02-29"],
    ["uuid", "6f1c2d3e-0000-4000-8000-000000000001"],
    ["json object", { a: 1, nested: { b: [true, null, "x"] }, z: "last" }],
    ["json array", [1, "two", { three: 3 }, [4]]],
    ["json empty object", {}],
    ["bytes", "\\xdeadbeef00ff"],
    ["null", null],
    ["a long text", "x".repeat(100_000)],
  ];

  it.each(VALUES)("round-trips %s", async (_name, value) => {
    const key = await fixedKey();
    for (const format of ["text", "bytes"] as const) {
      const text = await encryptValue(key, value, CTX, { format });
      expect(isCiphertext(text)).toBe(true);
      expect(await decryptValue(key, text, CTX)).toEqual(value);
    }
  });

  it("keeps an object's key order", async () => {
    const key = await fixedKey();
    const back = await decryptValue(key, await encryptValue(key, { z: 1, a: 2 }, CTX), CTX);
    expect(Object.keys(back as object)).toEqual(["z", "a"]);
  });

  it("writes hearth:e1:<base64url(iv || ciphertext || tag)> with a fresh IV each time", async () => {
    const key = await fixedKey();
    const texts = await Promise.all(Array.from({ length: 50 }, () => encryptValue(key, "same", CTX)));
    for (const t of texts) {
      expect(t).toMatch(/^hearth:e1:[A-Za-z0-9_-]+$/);
      expect(Buffer.from(t.slice(10), "base64url")).toHaveLength(12 + '"same"'.length + 16);
    }
    expect(new Set(texts.map((t) => t.slice(10, 26))).size).toBe(50);
  });

  it("writes the bytes form as \\x hex of the ASCII prefix and the same body", async () => {
    const text = await encryptValue(await fixedKey(), "same", CTX, { format: "bytes" });
    expect(text).toMatch(/^\\x6865617274683a65313a[0-9a-f]+$/);
    const raw = Buffer.from(text.slice(2), "hex");
    expect(await decryptValue(await fixedKey(), new Uint8Array(raw), CTX)).toBe("same");
  });

  it("binds the primary key as canonical JSON: key order does not matter", async () => {
    const key = await fixedKey();
    const a = { table: "t", column: "c", primaryKey: { org: "o", id: 1 } };
    const b = { table: "t", column: "c", primaryKey: { id: 1, org: "o" } };
    expect(await decryptValue(key, await encryptValue(key, "v", a), b)).toBe("v");
  });

  it("refuses values that JSON cannot hold with HEARTH_BAD_PLAINTEXT", async () => {
    const key = await fixedKey();
    for (const v of [
      undefined,
      1n,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      () => 1,
      Symbol("s"),
      { a: 1n },
      [Number.NaN],
    ]) {
      expect(await codeOf(encryptValue(key, v, CTX))).toBe("HEARTH_BAD_PLAINTEXT");
    }
  });
});

describe("tampering and misuse", () => {
  /** Flips one bit of the decoded body at `index` (negative: from the end). */
  function flip(text: string, index: number): string {
    const body = Buffer.from(text.slice(10), "base64url");
    body[index < 0 ? body.length + index : index]! ^= 0x01;
    return `hearth:e1:${body.toString("base64url")}`;
  }

  it("rejects a flipped bit in the IV, the ciphertext or the tag with HEARTH_DECRYPT_FAILED", async () => {
    const key = await fixedKey();
    const text = await encryptValue(key, "attack at dawn", CTX);
    for (const at of [0, 11, 12, 20, -17, -16, -1]) {
      expect(await codeOf(decryptValue(key, flip(text, at), CTX))).toBe("HEARTH_DECRYPT_FAILED");
    }
    const bytes = await encryptValue(key, "attack at dawn", CTX, { format: "bytes" });
    const tampered = `${bytes.slice(0, -1)}${bytes.endsWith("0") ? "1" : "0"}`;
    expect(await codeOf(decryptValue(key, tampered, CTX))).toBe("HEARTH_DECRYPT_FAILED");
  });

  it("rejects truncation: a shorter body fails authentication, a body shorter than IV + tag is malformed", async () => {
    const key = await fixedKey();
    const text = await encryptValue(key, "attack at dawn", CTX);
    const body = Buffer.from(text.slice(10), "base64url");
    const cut = (n: number) => `hearth:e1:${body.subarray(0, n).toString("base64url")}`;
    expect(await codeOf(decryptValue(key, cut(body.length - 1), CTX))).toBe("HEARTH_DECRYPT_FAILED");
    expect(await codeOf(decryptValue(key, cut(28), CTX))).toBe("HEARTH_DECRYPT_FAILED");
    expect(await codeOf(decryptValue(key, cut(27), CTX))).toBe("HEARTH_BAD_CIPHERTEXT");
    expect(await codeOf(decryptValue(key, cut(0), CTX))).toBe("HEARTH_BAD_CIPHERTEXT");
  });

  it("rejects the wrong key with HEARTH_DECRYPT_FAILED", async () => {
    const text = await encryptValue(await fixedKey(), "attack at dawn", CTX);
    expect(await codeOf(decryptValue(await generateDataKey(), text, CTX))).toBe("HEARTH_DECRYPT_FAILED");
  });

  it("rejects a ciphertext moved to another row, column or table with HEARTH_DECRYPT_FAILED", async () => {
    const key = await fixedKey();
    const text = await encryptValue(key, "attack at dawn", CTX);
    const moved: CipherContext[] = [
      { ...CTX, primaryKey: { id: "6f1c2d3e-0000-4000-8000-000000000002" } },
      { ...CTX, primaryKey: { id: "6f1c2d3e-0000-4000-8000-000000000001", extra: 1 } },
      { ...CTX, column: "title" },
      { ...CTX, table: "com.other.todos" },
    ];
    for (const ctx of moved) {
      const err = await decryptValue(key, text, ctx).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HearthCryptoError);
      expect(err).toMatchObject({ code: "HEARTH_DECRYPT_FAILED", table: ctx.table, column: ctx.column });
    }
  });

  it("rejects what is not a Hearth ciphertext with HEARTH_BAD_CIPHERTEXT", async () => {
    const key = await fixedKey();
    const text = await encryptValue(key, "attack at dawn", CTX);
    const body = text.slice(10);
    const malformed = [
      "attack at dawn", // plaintext written by an app that does not encrypt
      "",
      `hearth:e2:${body}`,
      `hearth:E1:${body}`,
      `hearth:${body}`,
      `hearth:e1:${body}=`,
      `hearth:e1:${body.slice(0, 20)}*${body.slice(21)}`,
      `hearth:e1:${"A".repeat(4 * 10 + 1)}`, // 4n+1 characters spell no bytes
      "\\xdeadbeef",
      "\\x6865617274683a65323a00", // "hearth:e2:" + one byte
      "\\xzz",
      new Uint8Array([1, 2, 3]),
    ];
    for (const m of malformed) {
      expect(await codeOf(decryptValue(key, m, CTX))).toBe("HEARTH_BAD_CIPHERTEXT");
    }
  });

  it("rejects base64url with non-zero spare bits (a second spelling of the same bytes)", async () => {
    const key = await fixedKey();
    const text = await encryptValue(key, "ab", CTX); // body 12 + 4 + 16 = 32 bytes: 43 chars, 2 spare bits
    const last = text.at(-1)!;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const respelled = text.slice(0, -1) + alphabet[alphabet.indexOf(last) | 1];
    expect(respelled).not.toBe(text);
    expect(Buffer.from(respelled.slice(10), "base64url")).toEqual(Buffer.from(text.slice(10), "base64url"));
    expect(await codeOf(decryptValue(key, respelled, CTX))).toBe("HEARTH_BAD_CIPHERTEXT");
  });

  it("rejects authentic bytes that are not UTF-8 JSON with HEARTH_BAD_CIPHERTEXT, never returning them", async () => {
    const key = await fixedKey();
    for (const plain of [Buffer.from("not json"), Buffer.from([0xff, 0xfe])]) {
      const sealed = nodeSeal(KEY_BYTES, Buffer.alloc(12), aadOf(CTX), plain);
      expect(await codeOf(decryptValue(key, sealed, CTX))).toBe("HEARTH_BAD_CIPHERTEXT");
    }
  });

  it("says why in the message, without the plaintext", async () => {
    const key = await fixedKey();
    const text = await encryptValue(key, "attack at dawn", CTX);
    const err = (await decryptValue(await generateDataKey(), text, CTX).catch((e: unknown) => e)) as Error;
    expect(err.message).toBe(
      "cannot decrypt column notes of com.example.todos: wrong key, the value was moved from another row, column or table, or it was altered",
    );
  });
});

describe("portability", () => {
  it("the crypto module imports only its own files, the SDK's errors and @scure/bip39: no Node built-ins, no server code", () => {
    const dir = new URL("../src/crypto/", import.meta.url);
    let seen = 0;
    // HearthCryptoError extends the SDK's HearthError, whose only import is a type.
    const base = readFileSync(new URL("../src/errors.ts", import.meta.url), "utf8");
    expect([...base.matchAll(/^import (?!type )/gm)]).toEqual([]);
    expect(base).not.toMatch(/\brequire\(|\bprocess\.|\bBuffer\b/);
    for (const file of readdirSync(dir)) {
      const source = readFileSync(new URL(file, dir), "utf8");
      const specs = [
        ...source.matchAll(/\bfrom "([^"]+)";$|^import "([^"]+)";$|\bimport\(\s*["'`]([^"'`]+)/gm),
      ];
      seen += specs.length;
      for (const [, a, b, c] of specs) {
        const spec = a ?? b ?? c;
        expect(spec, `${file} imports ${spec}`).toMatch(
          /^(\.\/[a-z-]+\.ts|\.\.\/errors\.ts|@scure\/bip39(\/wordlists\/english\.js)?)$/,
        );
      }
      expect(source).not.toMatch(/\brequire\(|\bprocess\.|\bBuffer\b/);
    }
    expect(seen).toBeGreaterThan(10); // the pattern does find imports
  });
});
