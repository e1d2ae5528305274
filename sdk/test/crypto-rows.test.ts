/**
 * Rows through the SDK's encryption, driven by schema JSON: only `encrypted: true` columns
 * change, ciphertexts are bound to the row's primary key (spelled as the server gives it
 * back), and filters on encrypted columns are refused before they reach the server.
 */
import { beforeAll, describe, expect, it } from "vitest";
import {
  assertNoEncryptedFilter,
  decryptRow,
  type EncryptionSchema,
  encryptedColumns,
  encryptRow,
  generateDataKey,
  HearthCryptoError,
  isCiphertext,
} from "../src/crypto/index.ts";

const SCHEMA = {
  tables: {
    "com.example.todos": {
      columns: {
        id: { type: "uuid", primaryKey: true, default: "random" },
        title: { type: "text", notNull: true },
        done: { type: "boolean", default: false },
        notes: { type: "text", encrypted: true },
        attachment: { type: "bytes", encrypted: true },
        meta: { type: "json" },
      },
    },
    posts: {
      columns: {
        id: { type: "bigint", primaryKey: true, default: "increment" },
        body: { type: "text", encrypted: true },
        title: { type: "text" },
      },
    },
    readings: {
      columns: {
        device: { type: "text", primaryKey: true },
        at: { type: "timestamp", primaryKey: true },
        day: { type: "date" },
        secret: { type: "text", encrypted: true },
      },
    },
    daily: {
      columns: {
        day: { type: "date", primaryKey: true },
        secret: { type: "text", encrypted: true },
      },
    },
  },
} satisfies EncryptionSchema;

const TODOS = "com.example.todos";
const ID = "6f1c2d3e-0000-4000-8000-00000000000a";
let key: CryptoKey;
beforeAll(async () => {
  key = await generateDataKey();
});

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(HearthCryptoError);
    return (e as HearthCryptoError).code;
  }
  throw new Error("expected a HearthCryptoError, nothing was thrown");
}

describe("encryptRow / decryptRow", () => {
  it("encrypts exactly the encrypted columns, and decrypts them back", async () => {
    const row = {
      id: ID,
      title: "Dentist",
      done: false,
      notes: "bring the x-rays",
      attachment: "\\x89504e470d0a1a0a",
      meta: { tags: ["health"] },
      owner_id: "someone", // a column the server adds: passed through
    };
    const sealed = await encryptRow(key, SCHEMA, TODOS, row);
    expect(sealed).toEqual({ ...row, notes: expect.any(String), attachment: expect.any(String) });
    expect(sealed.notes).toMatch(/^hearth:e1:/);
    expect(sealed.attachment).toMatch(/^\\x6865617274683a65313a[0-9a-f]+$/); // fits a bytes column
    expect(row.notes).toBe("bring the x-rays"); // the input is not modified
    expect(await decryptRow(key, SCHEMA, TODOS, sealed)).toEqual(row);
  });

  it("leaves null and absent encrypted cells as they are", async () => {
    const row = { id: ID, title: "t", notes: null };
    const sealed = await encryptRow(key, SCHEMA, TODOS, row);
    expect(sealed).toEqual(row);
    expect("attachment" in sealed).toBe(false);
    expect(await decryptRow(key, SCHEMA, TODOS, sealed)).toEqual(row);
  });

  it("needs no primary key when no encrypted cell is present (a list of titles)", async () => {
    expect(await decryptRow(key, SCHEMA, TODOS, { title: "t", done: true })).toEqual({
      title: "t",
      done: true,
    });
  });

  it("encrypts any JSON value in an encrypted column", async () => {
    for (const notes of ["", 42, true, { a: [1, 2] }, [null]]) {
      const sealed = await encryptRow(key, SCHEMA, TODOS, { id: ID, notes });
      expect(isCiphertext(sealed.notes)).toBe(true);
      expect((await decryptRow(key, SCHEMA, TODOS, sealed)).notes).toEqual(notes);
    }
  });

  it("binds each cell to its row: a ciphertext copied to another row or column does not decrypt", async () => {
    const a = await encryptRow(key, SCHEMA, TODOS, { id: ID, notes: "a's notes", attachment: "\\x00" });
    const other = "6f1c2d3e-0000-4000-8000-00000000000b";
    const moved = await decryptRow(key, SCHEMA, TODOS, { id: other, notes: a.notes }).catch(
      (e: unknown) => e,
    );
    expect(moved).toMatchObject({ code: "HEARTH_DECRYPT_FAILED", table: TODOS, column: "notes" });
    expect(await codeOf(decryptRow(key, SCHEMA, TODOS, { id: ID, notes: a.attachment }))).toBe(
      "HEARTH_DECRYPT_FAILED",
    );
    expect(await codeOf(decryptRow(key, SCHEMA, TODOS, { id: ID, attachment: a.notes }))).toBe(
      "HEARTH_DECRYPT_FAILED",
    );
    const posts = await encryptRow(key, SCHEMA, "posts", { id: 1, body: "b" });
    const readings = await encryptRow(key, SCHEMA, "readings", {
      device: "d",
      at: "2024-01-01T00:00:00Z",
      secret: "s",
    });
    expect(await codeOf(decryptRow(key, SCHEMA, "posts", { id: 1, body: readings.secret }))).toBe(
      "HEARTH_DECRYPT_FAILED",
    );
    expect(await codeOf(decryptRow(key, SCHEMA, "posts", { id: 2, body: posts.body }))).toBe(
      "HEARTH_DECRYPT_FAILED",
    );
  });

  it("binds the key as the server spells it back: bigint 5 = '5', upper- or lower-case uuid", async () => {
    const p = await encryptRow(key, SCHEMA, "posts", { id: "0005", body: "b" });
    expect(await decryptRow(key, SCHEMA, "posts", { id: 5, body: p.body })).toEqual({ id: 5, body: "b" });
    const big = await encryptRow(key, SCHEMA, "posts", { id: "9223372036854775807", body: "b" });
    expect(
      (await decryptRow(key, SCHEMA, "posts", { id: "+9223372036854775807", body: big.body })).body,
    ).toBe("b");
    const t = await encryptRow(key, SCHEMA, TODOS, { id: ID.toUpperCase(), notes: "n" });
    expect((await decryptRow(key, SCHEMA, TODOS, { id: ID, notes: t.notes })).notes).toBe("n");
  });

  it("binds a composite key, timestamps in any spelling of the same instant", async () => {
    const r = await encryptRow(key, SCHEMA, "readings", {
      device: "d1",
      at: "2024-01-02 03:04:05",
      secret: "s",
    });
    for (const at of [
      "2024-01-02T03:04:05.000Z",
      "2024-01-02T04:04:05+01:00",
      new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
    ]) {
      expect((await decryptRow(key, SCHEMA, "readings", { at, device: "d1", secret: r.secret })).secret).toBe(
        "s",
      );
    }
    expect(
      await codeOf(
        decryptRow(key, SCHEMA, "readings", { device: "d2", at: "2024-01-02T03:04:05Z", secret: r.secret }),
      ),
    ).toBe("HEARTH_DECRYPT_FAILED");
    const d = await encryptRow(key, SCHEMA, "daily", { day: "2024-03-01", secret: "s" });
    expect(
      (await decryptRow(key, SCHEMA, "daily", { day: "2024-03-01T10:00:00Z", secret: d.secret })).secret,
    ).toBe("s");
  });

  it("refuses a row without its primary key with HEARTH_MISSING_PRIMARY_KEY, unless given as an option", async () => {
    const err = await encryptRow(key, SCHEMA, "posts", { body: "new post" }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "HEARTH_MISSING_PRIMARY_KEY", table: "posts", column: "body" });
    expect((err as Error).message).toMatch(/has no id/);
    expect(await codeOf(encryptRow(key, SCHEMA, "readings", { device: "d", secret: "s" }))).toBe(
      "HEARTH_MISSING_PRIMARY_KEY",
    );
    // A partial update: the body holds only the changed column, the filter names the row.
    const patch = await encryptRow(key, SCHEMA, TODOS, { notes: "edited" }, { primaryKey: { id: ID } });
    expect(Object.keys(patch)).toEqual(["notes"]);
    expect((await decryptRow(key, SCHEMA, TODOS, { id: ID, ...patch })).notes).toBe("edited");
    // A read that did not select the key.
    expect(await codeOf(decryptRow(key, SCHEMA, TODOS, { notes: patch.notes }))).toBe(
      "HEARTH_MISSING_PRIMARY_KEY",
    );
  });

  it("refuses a table without a primary key, and an unknown table", async () => {
    const noKey = { tables: { t: { columns: { s: { type: "text", encrypted: true } } } } };
    expect(await codeOf(encryptRow(key, noKey, "t", { s: "x" }))).toBe("HEARTH_MISSING_PRIMARY_KEY");
    expect(await codeOf(encryptRow(key, SCHEMA, "nope", { id: 1 }))).toBe("HEARTH_UNKNOWN_TABLE");
    expect(await codeOf(decryptRow(key, SCHEMA, "toString", { id: 1 }))).toBe("HEARTH_UNKNOWN_TABLE");
  });

  it("refuses plaintext found in an encrypted column with HEARTH_BAD_CIPHERTEXT, naming the column", async () => {
    for (const notes of ["written by an app that does not encrypt", 42, { a: 1 }]) {
      const err = await decryptRow(key, SCHEMA, TODOS, { id: ID, notes }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "HEARTH_BAD_CIPHERTEXT", table: TODOS, column: "notes" });
    }
  });

  it("lists a table's encrypted columns", () => {
    expect(encryptedColumns(SCHEMA, TODOS)).toEqual(["notes", "attachment"]);
    expect(encryptedColumns(SCHEMA, "posts")).toEqual(["body"]);
  });
});

describe("assertNoEncryptedFilter", () => {
  it("refuses a filter or order on an encrypted column, saying why", () => {
    let err: unknown;
    try {
      assertNoEncryptedFilter(SCHEMA, TODOS, ["done", "notes"]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HearthCryptoError);
    expect(err).toMatchObject({
      code: "HEARTH_ENCRYPTED_FILTER",
      table: TODOS,
      column: "notes",
      message:
        "column notes of com.example.todos is encrypted end-to-end: the server only holds ciphertext, so it cannot filter or order on it; filter on the client after reading",
    });
  });

  it("sees through JSON paths and casts", () => {
    for (const name of ["notes->>title", "notes->a->>b", "notes::text", " notes "]) {
      expect(() => assertNoEncryptedFilter(SCHEMA, TODOS, [name])).toThrow(
        /column notes of com\.example\.todos/,
      );
    }
  });

  it("lets plaintext columns, unknown columns and unknown tables through (the server answers those)", () => {
    expect(() =>
      assertNoEncryptedFilter(SCHEMA, TODOS, ["id", "title", "done", "meta->>tags", "nope"]),
    ).not.toThrow();
    expect(() => assertNoEncryptedFilter(SCHEMA, "nope", ["notes"])).not.toThrow();
    expect(() => assertNoEncryptedFilter(SCHEMA, "constructor", ["notes"])).not.toThrow();
    expect(() => assertNoEncryptedFilter(SCHEMA, TODOS, [])).not.toThrow();
  });
});

describe("schema types", () => {
  it("accepts the server's parsed schema type as it is", () => {
    // Compile-time check: shared/schema.ts's ProjectSchema fits EncryptionSchema.
    const parsed: import("../../shared/schema.ts").ProjectSchema = { tables: {} };
    const fits: EncryptionSchema = parsed;
    expect(fits.tables).toEqual({});
  });
});
