/**
 * Segments as other Arrow readers see them: a segment of every column type written in Node
 * by encodeSegment (LZ4-compressed record batches of 64k rows, one text buffer over 4 MiB),
 * opened by pyarrow (`ipc.open_file`), Polars (`read_ipc`) and DuckDB (querying the pyarrow
 * table). Python compares every value with what was written and reports types and mismatches.
 * Needs python3 with pyarrow, polars and duckdb (.ci/run installs them from /opt/pypi/files).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeSegment } from "../../shared/columnar/segment.ts";
import { COLUMNS } from "../fixtures/segment-columns.ts";

const ROWS = 70_000; // two record batches

function value(column: string, i: number): unknown {
  const edge = <T>(first: T, second: T, other: T) => (i === 0 ? first : i === 1 ? second : other);
  switch (column) {
    case "id":
      return edge(9007199254740991, -9007199254740991, i * 1000);
    case "n":
      return i % 3 === 2 ? null : edge(2147483647, -2147483648, i - 35_000);
    case "score":
      return i % 5 === 4 ? null : edge(-1.5e-300, 1e300, -i / 4 - 0.1);
    case "ok":
      return i % 7 === 6 ? null : i % 2;
    case "name":
      return i === 2 ? null : edge("", "héllo ✓ 🎉 \u0000 end", `name-${i}`);
    case "ref":
      return i % 11 === 10 ? null : `0190a3c4-${String(i).padStart(4, "0").slice(-4)}-4222-8333-444455556666`;
    case "meta":
      // ~125 bytes a row: batch 0's text buffer is about 8 MiB, so LZ4 writes full 4 MiB blocks
      return i % 13 === 12
        ? null
        : JSON.stringify({ i, kind: `k${i % 8}`, tags: ["a", "é"], pad: "x".repeat(i % 80), v: i / 8 });
    case "at":
      return i % 17 === 16
        ? null
        : new Date(Date.UTC(1969, 11, 31, 23, 59, 59, 999) + i * 61_001).toISOString();
    case "born":
      return i % 19 === 18
        ? null
        : new Date(Date.UTC(1815, 11, 10) + i * 86_400_000).toISOString().slice(0, 10);
    case "raw":
      return i % 23 === 22 ? null : Uint8Array.from({ length: i % 9 }, (_, k) => (i * 31 + k * 97) & 0xff);
  }
  throw new Error(`no column ${column}`);
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const PYTHON = `
import datetime, json, sys
try:
    import duckdb, polars as pl, pyarrow as pa, pyarrow.ipc as ipc
except ImportError as e:
    print(json.dumps({"missing": str(e)}))
    sys.exit(0)

segment, expected_file = sys.argv[1], sys.argv[2]
expected = json.load(open(expected_file))
UTC = datetime.timezone.utc

def norm(v, kind):
    if v is None:
        return None
    if kind == "epoch_ms":  # DuckDB hands timestamps over as epoch milliseconds
        v = datetime.datetime.fromtimestamp(v / 1000, UTC)
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, datetime.datetime):
        v = v.astimezone(UTC)
        return v.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (v.microsecond // 1000)
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    return v

def compare(columns, kinds={}):
    mismatches = []
    for name, want in expected.items():
        got = columns[name]
        if len(got) != len(want):
            mismatches.append([name, "rows", len(got), len(want)])
            continue
        for i, (g, w) in enumerate(zip(got, want)):
            g = norm(g, kinds.get(name))
            if g != w:
                mismatches.append([name, i, g, w])
                break
    return mismatches

out = {}
reader = ipc.open_file(segment)
table = reader.read_all()
out["pyarrow"] = {
    "batches": reader.num_record_batches,
    "types": {f.name: str(f.type) for f in table.schema},
    "hearthTypes": {f.name: (f.metadata or {}).get(b"hearth.type", b"").decode() for f in table.schema},
    "metadata": {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()},
    "mismatches": compare({n: table.column(n).to_pylist() for n in table.column_names}),
}

frame = pl.read_ipc(segment)
out["polars"] = {
    "types": {n: str(t) for n, t in frame.schema.items()},
    "mismatches": compare({n: frame[n].to_list() for n in frame.columns}),
}

con = duckdb.connect()
con.register("seg", table)
described = con.execute("DESCRIBE SELECT * FROM seg").fetchall()
types = {row[0]: row[1] for row in described}
stamps = [n for n, t in types.items() if t.startswith("TIMESTAMP")]
select = ", ".join('epoch_ms("%s") AS "%s"' % (n, n) if n in stamps else '"%s"' % n for n in types)
rows = con.execute("SELECT %s FROM seg" % select).fetchall()  # insertion order is kept
out["duckdb"] = {
    "types": types,
    "mismatches": compare(
        {n: [r[j] for r in rows] for j, n in enumerate(types)}, {n: "epoch_ms" for n in stamps}
    ),
}
print(json.dumps(out))
`;

describe("a segment opens in pyarrow, Polars and DuckDB", () => {
  let dir: string;
  let report: Record<
    string,
    { types: Record<string, string>; mismatches: unknown[] } & Record<string, unknown>
  >;

  beforeAll(() => {
    const data = COLUMNS.map((c) => Array.from({ length: ROWS }, (_, i) => value(c.name, i)));
    const { bytes, info } = encodeSegment(COLUMNS, data, { "hearth.table": "events" });
    expect(info.rows).toBe(ROWS);
    dir = mkdtempSync(path.join(tmpdir(), "hearth-segment-"));
    writeFileSync(path.join(dir, "segment.arrow"), bytes);
    const expected = Object.fromEntries(
      COLUMNS.map((c, j) => [c.name, data[j]!.map((v) => (v instanceof Uint8Array ? hex(v) : v))]),
    );
    writeFileSync(path.join(dir, "expected.json"), JSON.stringify(expected));
    writeFileSync(path.join(dir, "read.py"), PYTHON);
    const run = spawnSync(
      "python3",
      [path.join(dir, "read.py"), path.join(dir, "segment.arrow"), path.join(dir, "expected.json")],
      {
        encoding: "utf8",
        maxBuffer: 64 << 20,
        env: { ...process.env, POLARS_UNKNOWN_EXTENSION_TYPE_BEHAVIOR: "load_as_storage" },
      },
    );
    const install = "pip install --no-index --find-links /opt/pypi/files pyarrow polars duckdb";
    if (run.error)
      throw new Error(`python3 is needed to run this test (${run.error.message}); then ${install}`);
    if (run.status !== 0) throw new Error(`python3 failed (${run.status}): ${run.stderr}`);
    const parsed = JSON.parse(run.stdout);
    if (parsed.missing) throw new Error(`python3 lacks a module (${parsed.missing}): ${install}`);
    report = parsed;
  }, 120_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("pyarrow reads both record batches, their types, metadata and every value", () => {
    const py = report.pyarrow!;
    expect(py.batches).toBe(2);
    expect(py.types).toEqual({
      id: "int64",
      n: "int32",
      score: "double",
      ok: "bool",
      name: "string",
      ref: "string",
      meta: "extension<arrow.json>",
      at: "timestamp[ms, tz=UTC]",
      born: "date32[day]",
      raw: "binary",
    });
    expect(py.hearthTypes).toEqual(Object.fromEntries(COLUMNS.map((c) => [c.name, c.type])));
    expect(py.metadata).toEqual({ "hearth.table": "events" });
    expect(py.mismatches).toEqual([]);
  });

  it("Polars reads every value with its type", () => {
    const pl = report.polars!;
    expect(pl.types).toEqual({
      id: "Int64",
      n: "Int32",
      score: "Float64",
      ok: "Boolean",
      name: "String",
      ref: "String",
      meta: "String",
      at: "Datetime(time_unit='ms', time_zone='UTC')",
      born: "Date",
      raw: "Binary",
    });
    expect(pl.mismatches).toEqual([]);
  });

  it("DuckDB reads every value with its type, json as JSON", () => {
    const duck = report.duckdb!;
    expect(duck.types).toEqual({
      id: "BIGINT",
      n: "INTEGER",
      score: "DOUBLE",
      ok: "BOOLEAN",
      name: "VARCHAR",
      ref: "VARCHAR",
      meta: "JSON",
      at: "TIMESTAMP WITH TIME ZONE",
      born: "DATE",
      raw: "BLOB",
    });
    expect(duck.mismatches).toEqual([]);
  });
});
