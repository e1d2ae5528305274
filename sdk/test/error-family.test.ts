/**
 * One error family: every failure the SDK raises is a `HearthError` with a stable `code` and a
 * numeric `status` (0 when no HTTP answer is involved), whatever its subclass adds; and every
 * client code is listed in the README's Errors section.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  CLIENT_ERROR_CODES,
  CRYPTO_ERROR_CODES,
  createSync,
  HearthCryptoError,
  HearthError,
  importRecoveryPhrase,
  MemoryReplica,
  SyncConfigError,
  SyncError,
  SyncMutationError,
} from "../src/index.ts";

describe("the error family", () => {
  it("a crypto failure is a HearthCryptoError and a HearthError, with its code and place", async () => {
    const err = await importRecoveryPhrase("not a phrase").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HearthCryptoError);
    expect(err).toBeInstanceOf(HearthError);
    expect(err).toMatchObject({ name: "HearthCryptoError", code: "HEARTH_BAD_RECOVERY_PHRASE", status: 0 });
    expect((err as HearthError).toJSON()).toMatchObject({ code: "HEARTH_BAD_RECOVERY_PHRASE", status: 0 });
    const placed = new HearthCryptoError("HEARTH_DECRYPT_FAILED", "no", { table: "t", column: "c" });
    expect(placed).toMatchObject({ table: "t", column: "c", details: null, hint: null, requestId: null });
  });

  it("createSync's refusals are SyncConfigErrors with HEARTH_SYNC_CONFIG", () => {
    const make = (tables: string[]) => () =>
      createSync({ url: "http://h.test/p/x", token: "k", tables, replica: new MemoryReplica() });
    expect(make([])).toThrow(SyncConfigError);
    try {
      make([])();
    } catch (err) {
      expect(err).toBeInstanceOf(HearthError);
      expect(err).toMatchObject({ name: "SyncConfigError", code: "HEARTH_SYNC_CONFIG", status: 0 });
    }
  });

  it("SyncError and SyncMutationError carry the server's body; the mutation's outcome is `outcome`", () => {
    const body = { code: "42501", message: "no write access", details: "d", hint: "h" };
    const m = { id: 3, table: "todos", op: "insert" as const, state: "pending" as const, queuedAt: 0 };
    const rejected = new SyncMutationError("rejected", body, m);
    expect(rejected).toBeInstanceOf(HearthError);
    expect(rejected).toMatchObject({ ...body, status: 0, outcome: "rejected", mutation: m });
    const frame = new SyncError(body);
    expect(frame).toBeInstanceOf(HearthError);
    expect(frame.toJSON()).toEqual({ ...body, status: 0 });
    const cause = new Error("boom");
    expect(SyncError.client("failed", null, cause)).toMatchObject({ code: "HEARTH_SYNC_CLIENT", cause });
  });

  it("the README lists every client code in its Errors section", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const errors = readme.slice(readme.indexOf("## Errors"), readme.indexOf("## Retries"));
    const missing = [...Object.keys(CLIENT_ERROR_CODES), ...CRYPTO_ERROR_CODES].filter(
      (code) => !errors.includes(`\`${code}\``),
    );
    expect(missing).toEqual([]);
  });
});
