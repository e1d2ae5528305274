/**
 * A client given the schema refuses, before sending anything, a query that filters or orders on
 * an encrypted column (plain filters, logic trees, negations, order, update/delete filters),
 * and sends every other query unchanged.
 */
import { describe, expect, it } from "vitest";
import { createClient, HearthCryptoError } from "../src/index.ts";
import { fakeFetch, json, PROJECT } from "./fixtures/fake-fetch.ts";

const schema = {
  tables: {
    "com.example.todos": {
      columns: {
        id: { type: "uuid", primaryKey: true },
        title: { type: "text" },
        done: { type: "boolean" },
        notes: { type: "text", encrypted: true },
      },
    },
  },
};
const TODOS = "com.example.todos";
type Select = ReturnType<ReturnType<ReturnType<typeof createClient>["from"]>["select"]>;

function client(...answers: ReturnType<typeof json>[]) {
  const f = fakeFetch(...answers);
  return { f, hearth: createClient(PROJECT, { key: "anon", fetch: f.fetch, schema }) };
}

describe("filters on encrypted columns", () => {
  it.each([
    ["eq", (q: Select) => q.eq("notes", "x")],
    ["ilike", (q: Select) => q.ilike("notes", "%x%")],
    ["not", (q: Select) => q.not("notes", "is", null)],
    ["or", (q: Select) => q.or("done.is.true,notes.eq.x")],
    ["nested and", (q: Select) => q.or("done.is.true,and(title.eq.a,notes.eq.b)")],
    ["order", (q: Select) => q.order("notes")],
    ["json path", (q: Select) => q.eq("notes->>a", "x")],
  ])("refuses %s before sending", async (_name, build) => {
    const { f, hearth } = client();
    const { data, error } = await build(hearth.from(TODOS).select("*"));
    expect(data).toBeNull();
    expect(error).toBeInstanceOf(HearthCryptoError);
    expect(error).toMatchObject({
      code: "HEARTH_ENCRYPTED_FILTER",
      table: TODOS,
      column: "notes",
      status: 0,
    });
    expect(error?.message).toMatch(/encrypted end-to-end: the server only holds ciphertext/);
    expect(f.calls).toHaveLength(0);
  });

  it("refuses an update or delete whose filter names an encrypted column", async () => {
    const { f, hearth } = client();
    const upd = await hearth.from(TODOS).update({ done: true }).eq("notes", "x");
    expect(upd.error).toMatchObject({ code: "HEARTH_ENCRYPTED_FILTER" });
    const del = await hearth.from(TODOS).delete().eq("notes", "x");
    expect(del.error).toMatchObject({ code: "HEARTH_ENCRYPTED_FILTER" });
    expect(f.calls).toHaveLength(0);
  });

  it("sends filters on plaintext columns, selects and writes of encrypted ones", async () => {
    const { f, hearth } = client(json(200, []), json(201, []), json(200, []));
    expect((await hearth.from(TODOS).select("id,notes").eq("done", false).order("title")).error).toBeNull();
    expect((await hearth.from(TODOS).insert({ id: "a", notes: "hearth:e1:x" }).select()).error).toBeNull();
    expect((await hearth.from(TODOS).select("*").or("done.is.true,title.eq.notes")).error).toBeNull();
    expect(f.calls.map((c) => c.method)).toEqual(["GET", "POST", "GET"]);
  });

  it("checks nothing without a schema (the server refuses comparisons itself)", async () => {
    const f = fakeFetch(json(200, []));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch });
    expect((await hearth.from(TODOS).select("*").eq("notes", "x")).error).toBeNull();
    expect(f.calls).toHaveLength(1);
  });
});
