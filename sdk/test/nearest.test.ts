/**
 * `.from(table).nearest(column, vector, options)`: what goes over the wire (POST
 * `{url}/rest/v1/rpc/vector_search` with the client's credentials), what comes back (rows
 * with `_distance`, or a `HearthError`), and the types (only vector columns are accepted).
 */
import { describe, expect, expectTypeOf, it } from "vitest";
import { createClient, HearthError } from "../src/index.ts";
import { fakeFetch, json, networkError, PROJECT } from "./fixtures/fake-fetch.ts";

type Database = {
  public: {
    Tables: {
      docs: {
        Row: { id: number; title: string; embedding: number[] | null };
        Insert: { id?: number; title: string; embedding?: number[] | null };
        Update: { id?: number; title?: string; embedding?: number[] | null };
        Relationships: [];
      };
    };
    Views: Record<string, never>;
    Functions: Record<string, never>;
  };
};

describe("nearest", () => {
  it("posts the search to rpc/vector_search with the key and answers the rows with _distance", async () => {
    const rows = [{ id: 7, title: "a", embedding: [1, 0], _distance: 0.01 }];
    const f = fakeFetch(json(200, rows));
    const hearth = createClient<Database>(PROJECT, { key: "anon-key", fetch: f.fetch });
    const res = await hearth.from("docs").nearest("embedding", Float32Array.of(1, 0.5), {
      k: 3,
      metric: "l2",
      filter: "title=neq.x",
      select: "id,title",
    });
    expect(res.error).toBeNull();
    expect(res.status).toBe(200);
    expect(res.data).toEqual(rows);
    const call = f.calls[0]!;
    expect(call.method).toBe("POST");
    expect(call.url).toBe(`${PROJECT}/rest/v1/rpc/vector_search`);
    expect(call.headers).toMatchObject({ apikey: "anon-key", authorization: "Bearer anon-key" });
    expect(JSON.parse(call.body!)).toEqual({
      table: "docs",
      column: "embedding",
      vector: [1, 0.5],
      k: 3,
      metric: "l2",
      filter: "title=neq.x",
      select: "id,title",
    });
    if (res.data) {
      expectTypeOf(res.data[0]!._distance).toEqualTypeOf<number>();
      expectTypeOf(res.data[0]!.title).toEqualTypeOf<string>();
    }
  });

  it("sends only the options given, and exact/probes when asked", async () => {
    const f = fakeFetch(json(200, []), json(200, []));
    const hearth = createClient<Database>(PROJECT, { key: "k", fetch: f.fetch });
    await hearth.from("docs").nearest("embedding", [0, 1]);
    await hearth.from("docs").nearest("embedding", [0, 1], { exact: true, probes: 4 });
    expect(JSON.parse(f.calls[0]!.body!)).toEqual({ table: "docs", column: "embedding", vector: [0, 1] });
    expect(JSON.parse(f.calls[1]!.body!)).toMatchObject({ exact: true, probes: 4 });
  });

  it("a server refusal is a HearthError with its code and status; a network failure too", async () => {
    const refusal = {
      code: "HEARTH_VECTOR_INVALID",
      message: "expected 2 dimensions, not 3",
      details: null,
      hint: null,
    };
    const f = fakeFetch(json(400, refusal, { "x-request-id": "r1" }), { throws: networkError() });
    const hearth = createClient<Database>(PROJECT, { key: "k", fetch: f.fetch, retry: false });
    const bad = await hearth.from("docs").nearest("embedding", [1, 2, 3]);
    expect(bad.data).toBeNull();
    expect(bad.status).toBe(400);
    expect(bad.error).toBeInstanceOf(HearthError);
    expect(bad.error?.code).toBe("HEARTH_VECTOR_INVALID");
    expect(bad.error?.requestId).toBe("r1");
    const down = await hearth.from("docs").nearest("embedding", [1, 2]);
    expect(down.error?.code).toBe("HEARTH_NETWORK");
    expect(down.status).toBe(0);
  });

  it("accepts only the table's vector columns (types)", () => {
    const hearth = createClient<Database>(PROJECT, { key: "k", fetch: fakeFetch().fetch });
    const docs = hearth.from("docs");
    expectTypeOf(docs.nearest<"embedding">).toBeFunction();
    // @ts-expect-error title is not a vector column
    const wrong = () => docs.nearest("title", [1]);
    expect(typeof wrong).toBe("function");
  });
});
