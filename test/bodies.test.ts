// Request bodies → row batches, CSV output and the OpenAPI document. Runs inside workerd, so
// Arrow inputs are built without apache-arrow's builders (they need `new Function`, which
// workerd forbids): vectors come from typed arrays via makeData, and tableToIPC writes them.
import {
  Bool,
  DateDay,
  Dictionary,
  Field,
  FixedSizeBinary,
  Float64,
  Int32,
  Int64,
  List,
  makeData,
  makeVector,
  Struct,
  Table,
  TimestampMicrosecond,
  TimestampMillisecond,
  TimestampNanosecond,
  tableToIPC,
  Utf8,
} from "apache-arrow";
import { describe, expect, it } from "vitest";
import { HearthError } from "../shared/errors.ts";
import { MISSING, type RowBatch, readRowBatch } from "../shared/rest/bodies.ts";
import { toCsv } from "../shared/rest/csv.ts";
import { buildOpenApi } from "../shared/rest/openapi.ts";
import type { ProjectSchema } from "../shared/schema.ts";
import { utf8Data } from "./fixtures/arrow.ts";

const MAX = 1 << 20;
const enc = new TextEncoder();

function req(body: BodyInit | null, type: string | null, headers: Record<string, string> = {}): Request {
  return new Request("http://x/rest/v1/t", {
    method: "POST",
    body,
    headers: { ...(type === null ? {} : { "content-type": type }), ...headers },
  });
}

function read(body: BodyInit | null, type: string | null, columns?: string[]): Promise<RowBatch> {
  return readRowBatch(req(body, type), { maxBytes: MAX, ...(columns ? { columns } : {}) });
}

async function failure(p: Promise<unknown>): Promise<HearthError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(HearthError);
    return err as HearthError;
  }
  throw new Error("expected a HearthError");
}

describe("JSON bodies", () => {
  it("reads an object, an array, {} and []", async () => {
    expect(await read('{"a":1,"b":{"x":[1]}}', "application/json; charset=utf-8")).toEqual({
      columns: ["a", "b"],
      rows: [[1, { x: [1] }]],
      single: true,
    });
    // No Content-Type means JSON (a bytes body: a string body would get text/plain).
    expect(await read(enc.encode('[{"a":1,"b":2},{"b":3,"a":4}]'), null)).toEqual({
      columns: ["a", "b"],
      rows: [
        [1, 2],
        [4, 3],
      ],
      single: false,
    });
    expect(await read("{}", "application/json")).toEqual({ columns: [], rows: [[]], single: true });
    expect(await read("[{}]", "application/json")).toEqual({ columns: [], rows: [[]], single: false });
    expect(await read("[]", "application/json")).toEqual({ columns: [], rows: [], single: false });
  });

  it("refuses empty or invalid JSON, non-objects and mismatched keys", async () => {
    for (const body of ["", "  ", "{", "[1,"]) {
      const err = await failure(read(body, "application/json"));
      expect([err.code, err.status, err.message]).toEqual(["PGRST102", 400, "Empty or invalid json"]);
    }
    expect((await failure(read("[{}, 3]", "application/json"))).message).toBe(
      "Expected a JSON object at element 1, got a number",
    );
    expect((await failure(read("null", "application/json"))).message).toMatch(/got null/);
    const err = await failure(read('[{"a":1},{"a":2},{"b":2}]', "application/json"));
    expect(err.code).toBe("PGRST102");
    expect(err.message).toBe("All object keys must match");
    expect(err.details).toBe("Element 2 has keys (b) but element 0 has (a)");
    expect((await failure(read('[{"a":1},{"a":2,"b":2}]', "application/json"))).details).toMatch(
      /^Element 1/,
    );
  });

  it("with columns: exactly those columns, extra keys ignored, absent keys MISSING", async () => {
    const batch = await read('[{"a":1,"z":9},{"b":2}]', "application/json", ["a", "b"]);
    expect(batch.columns).toEqual(["a", "b"]);
    expect(batch.rows).toEqual([
      [1, MISSING],
      [MISSING, 2],
    ]);
  });
});

describe("NDJSON bodies", () => {
  it("reads lines, skips blank ones, accepts the aliases and CRLF", async () => {
    for (const type of ["application/x-ndjson", "application/ndjson", "application/jsonl"]) {
      const batch = await read('{"a":1,"b":"x"}\r\n\n{"b":"y","a":2}\n', type);
      expect(batch).toEqual({
        columns: ["a", "b"],
        rows: [
          [1, "x"],
          [2, "y"],
        ],
        single: false,
      });
    }
    expect(await read("", "application/x-ndjson")).toEqual({ columns: [], rows: [], single: false });
  });

  it("names the bad line", async () => {
    const bad = await failure(read('{"a":1}\n\n{"a":\n', "application/x-ndjson"));
    expect([bad.code, bad.message]).toEqual(["PGRST102", "Invalid JSON on line 3 of the NDJSON body"]);
    expect((await failure(read('{"a":1}\n[1]', "application/x-ndjson"))).message).toBe(
      "Expected a JSON object at line 2, got an array",
    );
    const keys = await failure(read('{"a":1}\n{"a":1}\n{"c":1}', "application/x-ndjson"));
    expect([keys.message, keys.details]).toEqual([
      "All object keys must match",
      "Line 3 has keys (c) but line 1 has (a)",
    ]);
  });

  it("streams 100k lines split at arbitrary chunk boundaries", async () => {
    const text = Array.from({ length: 100_000 }, (_, i) => `{"id":${i},"name":"n${i}","v":${i / 2}}`).join(
      "\n",
    );
    const bytes = enc.encode(text);
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let at = 0; at < bytes.length; at += 4093) c.enqueue(bytes.subarray(at, at + 4093));
        c.close();
      },
    });
    const batch = await readRowBatch(req(stream, "application/x-ndjson"), {
      maxBytes: 64 << 20,
      columns: ["id", "v"],
    });
    expect(batch.rows.length).toBe(100_000);
    expect(batch.rows[99_999]).toEqual([99_999, 49_999.5]);
  });
});

describe("CSV bodies", () => {
  it("reads a header and records with RFC 4180 quoting, NULL and empty fields", async () => {
    const body = 'a,b,c\n1,NULL,\n"x,y","say ""hi""","NULL"\r\n"multi\nline",  ,NULL\n';
    expect(await read(body, "text/csv")).toEqual({
      columns: ["a", "b", "c"],
      rows: [
        ["1", null, ""],
        ["x,y", 'say "hi"', "NULL"],
        ["multi\nline", "  ", null],
      ],
      single: false,
      text: true,
    });
    expect(await read("a,b", "text/csv; charset=utf-8")).toEqual({
      columns: ["a", "b"],
      rows: [],
      single: false,
      text: true,
    });
    expect((await read("a,b\n1,2", "text/csv", ["b", "z"])).rows).toEqual([["2", MISSING]]);
  });

  it("parses 100k records", async () => {
    const lines = Array.from({ length: 100_000 }, (_, i) => `${i},"name, ${i}",NULL,${i / 2}`);
    const body = `id,name,gone,v\n${lines.join("\n")}\n`;
    const batch = await readRowBatch(req(body, "text/csv"), { maxBytes: 64 << 20 });
    expect(batch.rows.length).toBe(100_000);
    expect(batch.rows[99_999]).toEqual(["99999", "name, 99999", null, "49999.5"]);
  });

  it("refuses ragged rows naming the line, bad quoting and an empty body", async () => {
    const err = await failure(read('a,b\n1,2\n"x\ny",2\n3\n', "text/csv"));
    expect([err.code, err.message]).toEqual(["PGRST102", "All lines must have same number of fields"]);
    expect(err.details).toBe("Line 5 has 1 fields but the header (line 1) has 2");
    expect((await failure(read('a\n"open', "text/csv"))).message).toMatch(
      /Unterminated quoted field .* line 2/,
    );
    expect((await failure(read('a,b\n"x"y,1', "text/csv"))).message).toMatch(
      /closing quote of field 1 on line 2/,
    );
    expect((await failure(read("", "text/csv"))).message).toBe("Empty CSV body");
    expect((await failure(read("a,a\n1,2", "text/csv"))).message).toBe(
      'Column "a" appears twice in the body',
    );
  });
});

describe("other bodies", () => {
  it("reads a form as one row of strings", async () => {
    expect(await read("a=1&b=h%C3%A9+llo&a=2", "application/x-www-form-urlencoded")).toEqual({
      columns: ["a", "b"],
      rows: [["2", "hé llo"]],
      single: true,
      text: true,
    });
  });

  it("refuses other content types and invalid UTF-8", async () => {
    const err = await failure(read("<x/>", "text/xml; charset=utf-8"));
    expect([err.code, err.status, err.message]).toEqual([
      "PGRST102",
      400,
      "Content-Type not acceptable: text/xml; charset=utf-8",
    ]);
    expect((await failure(read(new Uint8Array([0x7b, 0xff, 0x7d]), "application/json"))).message).toBe(
      "Request body is not valid UTF-8",
    );
  });

  it("stops at maxBytes: 413 from Content-Length or while streaming", async () => {
    const big = await failure(
      readRowBatch(req("[]", "application/json", { "content-length": "5000" }), { maxBytes: 100 }),
    );
    expect([big.code, big.status]).toEqual(["HEARTH_PAYLOAD_TOO_LARGE", 413]);
    let pulled = 0;
    const endless = () =>
      new ReadableStream<Uint8Array>({
        pull(c) {
          pulled++;
          c.enqueue(new Uint8Array(1024).fill(0x20));
        },
      });
    for (const type of ["application/json", "application/x-ndjson", "text/csv"]) {
      const err = await failure(readRowBatch(req(endless(), type), { maxBytes: 10_000 }));
      expect([err.code, err.status]).toEqual(["HEARTH_PAYLOAD_TOO_LARGE", 413]);
      expect(err.message).toBe("Request body is larger than the limit of 10000 bytes");
    }
    expect(pulled).toBeLessThan(3 * 20); // ~11 chunks each, not the endless rest
  });
});

function arrowRequest(table: Table, format: "stream" | "file" = "stream"): Request {
  return req(tableToIPC(table, format), `application/vnd.apache.arrow.${format}`);
}

describe("Arrow IPC bodies", () => {
  const table = new Table({
    i: makeVector(
      makeData({ type: new Int32(), data: Int32Array.from([1, 2, 3]), nullBitmap: Uint8Array.of(0b101) }),
    ),
    big: makeVector(makeData({ type: new Int64(), data: BigInt64Array.from([1n, -(2n ** 53n) + 1n, 0n]) })),
    f: makeVector(makeData({ type: new Float64(), data: Float64Array.from([0.5, Number.NaN, -1]) })),
    ok: makeVector(makeData({ type: new Bool(), data: Uint8Array.of(0b011), length: 3 })),
    s: makeVector(utf8Data(["a", "hé", ""])),
    ts: makeVector(
      makeData({
        type: new TimestampMicrosecond("UTC"),
        data: BigInt64Array.from([1704164645123456n, -1n, 0n]),
      }),
    ),
    tsn: makeVector(makeData({ type: new TimestampNanosecond(), data: BigInt64Array.from([1n, 2n, 3n]) })),
    day: makeVector(makeData({ type: new DateDay(), data: Int32Array.from([19724, 0, -1]) })),
    bin: makeVector(makeData({ type: new FixedSizeBinary(2), data: Uint8Array.of(1, 2, 3, 4, 5, 6) })),
    cat: makeVector(
      makeData({
        type: new Dictionary(new Utf8(), new Int32()),
        data: Int32Array.from([1, 0, 1]),
        dictionary: makeVector(utf8Data(["x", "y"])),
      }),
    ),
    tags: makeVector(
      makeData({
        type: new List(new Field("item", new Int32(), true)),
        valueOffsets: Int32Array.from([0, 2, 2, 3]),
        child: makeData({ type: new Int32(), data: Int32Array.from([7, 8, 9]) }),
      }),
    ),
    st: makeVector(
      makeData({
        type: new Struct([new Field("a", new Int32()), new Field("b", new Utf8())]),
        children: [
          makeData({ type: new Int32(), data: Int32Array.from([1, 2, 3]) }),
          utf8Data(["p", "q", "r"]),
        ],
      }),
    ),
  });

  it("converts every supported type, from a stream and from a file", async () => {
    for (const format of ["stream", "file"] as const) {
      const batch = await readRowBatch(arrowRequest(table, format), { maxBytes: MAX });
      expect(batch.columns).toEqual([
        "i",
        "big",
        "f",
        "ok",
        "s",
        "ts",
        "tsn",
        "day",
        "bin",
        "cat",
        "tags",
        "st",
      ]);
      expect(batch.single).toBe(false);
      const [r0, r1, r2] = batch.rows;
      expect(r0).toEqual([
        1,
        1,
        0.5,
        true,
        "a",
        "2024-01-02T03:04:05.123Z",
        "1970-01-01T00:00:00.000Z",
        "2024-01-02",
        Uint8Array.of(1, 2),
        "y",
        [7, 8],
        { a: 1, b: "p" },
      ]);
      expect(r1?.slice(0, 8)).toEqual([
        null,
        -(2 ** 53) + 1,
        Number.NaN,
        true,
        "hé",
        "1969-12-31T23:59:59.999Z",
        "1970-01-01T00:00:00.000Z",
        "1970-01-01",
      ]);
      expect(r1?.slice(9)).toEqual(["x", [], { a: 2, b: "q" }]);
      expect(r2?.slice(0, 5)).toEqual([3, 0, -1, false, ""]);
      expect(r2?.[7]).toBe("1969-12-31");
    }
    // Two record batches: the second chunk's rows land after the first's.
    const twice = await readRowBatch(arrowRequest(table.concat(table)), { maxBytes: MAX });
    expect(twice.rows.length).toBe(6);
    expect(twice.rows[4]).toEqual((await readRowBatch(arrowRequest(table), { maxBytes: MAX })).rows[1]);
    const projected = await readRowBatch(arrowRequest(table), { maxBytes: MAX, columns: ["s", "nope"] });
    expect(projected.rows[1]).toEqual(["hé", MISSING]);
  });

  it("refuses unsafe 64-bit integers naming the column and row, and malformed streams", async () => {
    const unsafe = new Table({
      n: makeVector(makeData({ type: new Int64(), data: BigInt64Array.from([1n, 2n ** 53n]) })),
    });
    const err = await failure(readRowBatch(arrowRequest(unsafe), { maxBytes: MAX }));
    expect(err.code).toBe("PGRST102");
    expect(err.message).toMatch(/^Column "n", row 1 \(from 0\): 9007199254740992 is beyond/);
    const bytes = tableToIPC(table, "stream");
    for (const body of [
      bytes.slice(0, bytes.length - 40),
      enc.encode("not arrow at all"),
      enc.encode('{"a":1}'),
      new Uint8Array(0),
    ]) {
      const bad = await failure(read(body, "application/vnd.apache.arrow.stream"));
      expect([bad.code, bad.message]).toEqual(["PGRST102", "Invalid Arrow IPC stream"]);
    }
  });

  it("converts 100k rows × 5 columns", async () => {
    const n = 100_000;
    const big = new Table({
      id: makeVector(
        makeData({ type: new Int64(), data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i)) }),
      ),
      v: makeVector(
        makeData({ type: new Float64(), data: Float64Array.from({ length: n }, (_, i) => i / 4) }),
      ),
      k: makeVector(makeData({ type: new Int32(), data: Int32Array.from({ length: n }, (_, i) => i % 7) })),
      at: makeVector(
        makeData({
          type: new TimestampMillisecond(),
          data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i * 1000)),
        }),
      ),
      name: makeVector(utf8Data(Array.from({ length: n }, (_, i) => `name-${i}`))),
    });
    const request = arrowRequest(big);
    const batch = await readRowBatch(request, { maxBytes: 64 << 20 });
    expect(batch.rows.length).toBe(n);
    expect(batch.rows[n - 1]).toEqual([
      n - 1,
      (n - 1) / 4,
      (n - 1) % 7,
      new Date((n - 1) * 1000).toISOString(),
      `name-${n - 1}`,
    ]);
  });
});

describe("toCsv", () => {
  it("follows PostgREST's quoting", () => {
    const rows = [
      { a: 1, b: "plain", c: null },
      { a: true, b: "", c: 'say "hi"' },
      { a: false, b: "x,y", c: "back\\slash" },
      { a: 1.5, b: "two words", c: { k: [1, "v"] } },
      { a: "(paren)", b: "tab\there", c: Uint8Array.of(10, 255) },
    ];
    expect(toCsv(["a", "b", "c"], rows)).toBe(
      [
        "a,b,c",
        "1,plain,",
        'true,"","say ""hi"""',
        'false,"x,y","back\\\\slash"',
        '1.5,"two words","{""k"":[1,""v""]}"',
        '"(paren)","tab\there","\\\\x0aff"',
      ].join("\n"),
    );
    expect(toCsv(["a", "b"], [{ a: "NULL" }])).toBe("a,b\nNULL,");
  });

  it("answers a body of just a newline when there are no rows", () => {
    expect(toCsv(["a", "b"], [])).toBe("\n");
  });
});

describe("buildOpenApi", () => {
  const schema: ProjectSchema = {
    tables: {
      authors: {
        columns: {
          id: { type: "uuid", primaryKey: true, default: "random" },
          name: { type: "text", notNull: true, description: "Pen name" },
        },
      },
      "com.example.posts": {
        columns: {
          id: { type: "bigint", primaryKey: true },
          author_id: { type: "uuid", references: "authors.id" },
          score: { type: "float" },
          meta: { type: "json" },
          blob: { type: "bytes" },
          at: { type: "timestamp", default: "now" },
        },
        policy: { read: "public", write: "owner" },
      },
    },
  };
  const doc = buildOpenApi(schema, {
    serverUrl: "http://h/p/x/rest/v1",
    tables: ["authors", "com.example.posts"],
  });

  it("is an OpenAPI 3.0.3 document with PostgREST's paths and parameters", () => {
    expect(doc.openapi).toBe("3.0.3");
    expect(doc.info).toMatchObject({ title: "Hearth REST API", version: "0.1.0" });
    expect(doc.servers).toEqual([{ url: "http://h/p/x/rest/v1" }]);
    const paths = doc.paths as Record<string, Record<string, { parameters?: { $ref: string }[] }>>;
    expect(Object.keys(paths)).toEqual(["/", "/authors", "/com.example.posts"]);
    expect(Object.keys(paths["/authors"]!)).toEqual(["get", "post", "patch", "delete"]);
    const getRefs = paths["/authors"]!.get!.parameters!.map((p) => p.$ref.split("/").pop());
    expect(getRefs).toEqual([
      "rowFilter.authors.id",
      "rowFilter.authors.name",
      "select",
      "order",
      "range",
      "rangeUnit",
      "offset",
      "limit",
      "preferCount",
    ]);
    const params = (doc.components as { parameters: Record<string, Record<string, unknown>> }).parameters;
    expect(params["rowFilter.authors.name"]).toMatchObject({
      name: "name",
      in: "query",
      description: "PostgREST filter, e.g. eq.1",
    });
    expect(params.range).toMatchObject({ name: "Range", in: "header" });
  });

  it("describes each table as a JSON Schema with PostgREST's pk/fk notes", () => {
    const schemas = (doc.components as { schemas: Record<string, Record<string, unknown>> }).schemas;
    const authors = schemas.authors!;
    expect(authors.required).toEqual(["name"]);
    const ap = authors.properties as Record<string, Record<string, unknown>>;
    expect(ap.id).toMatchObject({
      type: "string",
      format: "uuid",
      description: "Note:\nThis is a Primary Key.<pk/>",
    });
    expect(ap.name).toMatchObject({ type: "string", description: "Pen name" });
    const posts = schemas["com.example.posts"]!;
    expect(posts.required).toEqual(["id"]);
    expect(posts["x-hearth-policy"]).toEqual({ read: "public", write: "owner" });
    const pp = posts.properties as Record<string, Record<string, unknown>>;
    expect(pp.id).toMatchObject({ type: "integer", format: "int64" });
    expect(pp.author_id?.description).toBe(
      "Note:\nThis is a Foreign Key to `authors.id`.<fk table='authors' column='id'/>",
    );
    expect(pp.score).toMatchObject({ type: "number", format: "double", nullable: true });
    expect(pp.meta).toEqual({});
    expect(pp.blob).toMatchObject({ type: "string", format: "byte", description: "hex-encoded, \\x prefix" });
    expect(pp.at).toMatchObject({ type: "string", format: "date-time" });
  });
});
