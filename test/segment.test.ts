/**
 * The segment codec (shared/columnar/segment.ts) inside workerd: storage values of every
 * column type through an LZ4-compressed Arrow IPC file and back, record batches of 64k rows,
 * column stats, and the primary-key bloom filter.
 */
import { CompressionType, compressionRegistry, RecordBatchReader } from "apache-arrow";
import { compress } from "lz4js";
import { describe, expect, it } from "vitest";
import { bloomMayContain, buildBloom, encodeSegment, SegmentData } from "../shared/columnar/segment.ts";
import { COLUMNS } from "./fixtures/segment-columns.ts";

// Column-major storage values: row 0 and 1 at the extremes, row 2 all null, row 3 ordinary.
const DATA: unknown[][] = [
  [9007199254740991, -9007199254740991, null, 0],
  [2147483647, -2147483648, null, 7],
  [-1.5e-300, -123456.789, null, 0.1],
  [1, 0, null, 1],
  ["", "héllo ✓ 🎉 \u0000 end", null, "plain"],
  [
    "0190a3c4-1111-4222-8333-444455556666",
    "0190a3c4-2222-4222-8333-444455556666",
    null,
    "ffffffff-0000-4000-8000-000000000000",
  ],
  ['{"nested":{"list":[1,"two",null,true]},"u":"é"}', "[]", null, '"text"'],
  ["2024-02-29T23:59:59.999Z", "1969-12-31T23:59:59.999Z", null, "2000-01-01T00:00:00.000Z"],
  ["2024-02-29", "1815-12-10", null, "1970-01-01"],
  [new Uint8Array([0, 255, 16]), new Uint8Array(0), null, new Uint8Array([1, 2, 3]).buffer],
];

function expected(j: number): unknown[] {
  // bytes come back as Uint8Array whatever they went in as
  return DATA[j]!.map((v) => (v instanceof ArrayBuffer ? new Uint8Array(v) : v));
}

const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

describe("encodeSegment / SegmentData", () => {
  it("round-trips every column type, nulls included, with the schema metadata", () => {
    const { bytes, info } = encodeSegment(COLUMNS, DATA, { "hearth.table": "people" });
    expect(info.rows).toBe(4);
    expect(info.bytes).toBe(bytes.byteLength);
    const seg = SegmentData.decode(bytes);
    expect(seg.rows).toBe(4);
    expect(seg.columns).toEqual(COLUMNS);
    expect(seg.metadata).toEqual({ "hearth.table": "people" });
    COLUMNS.forEach((c, j) => {
      expect(seg.column(c.name), c.name).toEqual(expected(j));
    });
    expect(seg.column("raw")[0]).toBeInstanceOf(Uint8Array);
    expect(seg.column("nope")).toEqual([null, null, null, null]);
  });

  it("converts a column once and reports the memory it holds", () => {
    const seg = SegmentData.decode(encodeSegment(COLUMNS, DATA).bytes);
    const before = seg.approxBytes();
    expect(before).toBeGreaterThan(0);
    const names = seg.column("name");
    expect(seg.column("name")).toBe(names);
    expect(seg.approxBytes()).not.toBe(before);
  });

  it("reads a segment whose bytes start at an unaligned offset", () => {
    const { bytes } = encodeSegment(COLUMNS, DATA);
    const padded = new Uint8Array(bytes.byteLength + 3);
    padded.set(bytes, 3);
    const seg = SegmentData.decode(padded.subarray(3));
    expect(seg.column("id")).toEqual(expected(0));
    expect(seg.column("at")).toEqual(expected(7));
  });

  it("writes one record batch per 64k rows and concatenates them on decode", () => {
    const rows = 150_000;
    const values = Array.from({ length: rows }, (_, i) => (i % 1000 === 0 ? null : i * 3 - 200_000));
    const { bytes, info } = encodeSegment([{ name: "v", type: "integer" }], [values]);
    expect(info.rows).toBe(rows);
    const reader = RecordBatchReader.from(bytes).open();
    expect(reader.isFile()).toBe(true);
    expect([...reader].map((b) => b.numRows)).toEqual([65_536, 65_536, 18_928]);
    const seg = SegmentData.decode(bytes);
    expect(seg.rows).toBe(rows);
    expect(seg.column("v")).toEqual(values);
  });

  it("round-trips text over 4 MiB in one batch and incompressible floats", () => {
    const rows = 60_000;
    const text = Array.from(
      { length: rows },
      (_, i) => `row ${i} ${"é✓".repeat(i % 7)} ${"x".repeat(i % 90)}`,
    );
    const utf8Bytes = text.reduce((sum, t) => sum + new TextEncoder().encode(t).byteLength, 0);
    expect(utf8Bytes).toBeGreaterThan(4 << 20); // more than one LZ4 block
    const floats = Array.from({ length: rows }, (_, i) => Math.sin(i) * 1e6 - i / 3);
    const { bytes } = encodeSegment(
      [
        { name: "t", type: "text" },
        { name: "f", type: "float" },
      ],
      [text, floats],
    );
    const seg = SegmentData.decode(bytes);
    expect(seg.column("t")).toEqual(text);
    expect(seg.column("f")).toEqual(floats);
  });

  it("writes timestamps and dates as toISOString does, across and beyond four-digit years", () => {
    const DAY = 86_400_000;
    const first = Date.parse("0000-01-01T00:00:00.000Z");
    const end = Date.parse("+010000-01-01T00:00:00.000Z");
    let seed = 7;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const instants = [first, end - 1, end, first - 1, 0, -1, Date.parse("2000-02-29T12:00:00.000Z")];
    for (let i = 0; i < 5_000; i++) instants.push(Math.floor(first + rnd() * (end - first)));
    const stamps = instants.map((ms) => new Date(ms).toISOString());
    const dates = instants
      .filter((ms) => ms >= first && ms < end)
      .map((ms) => new Date(Math.floor(ms / DAY) * DAY).toISOString().slice(0, 10));
    const seg = SegmentData.decode(
      encodeSegment(
        [
          { name: "at", type: "timestamp" },
          { name: "day", type: "date" },
        ],
        [stamps, [...dates, ...stamps.slice(dates.length).map(() => null)]],
      ).bytes,
    );
    expect(seg.column("at")).toEqual(stamps);
    expect(seg.column("day").slice(0, dates.length)).toEqual(dates);
    expect(stamps).toContain("+010000-01-01T00:00:00.000Z");
    expect(stamps).toContain("-000001-12-31T23:59:59.999Z");
  });

  it("encodes a segment without rows", () => {
    const { bytes, info } = encodeSegment(
      COLUMNS,
      COLUMNS.map(() => []),
    );
    expect(info.rows).toBe(0);
    const seg = SegmentData.decode(bytes);
    expect(seg.rows).toBe(0);
    expect(seg.columns).toEqual(COLUMNS);
    expect(seg.column("name")).toEqual([]);
  });

  it("refuses columns of different lengths and bytes that are not an Arrow file", () => {
    expect(() => encodeSegment(COLUMNS.slice(0, 2), [[1, 2], [1]])).toThrow(/column n has 1 values, not 2/);
    expect(() => encodeSegment(COLUMNS.slice(0, 2), [[1]])).toThrow(/1 value arrays for 2 columns/);
    expect(() => SegmentData.decode(new TextEncoder().encode("not an arrow file at all"))).toThrow();
  });

  it("is an Arrow IPC file whose buffers are LZ4 frames prefixed with their uncompressed length", () => {
    const rows = 100_000;
    const kinds = Array.from({ length: rows }, (_, i) => i % 8);
    const { bytes } = encodeSegment([{ name: "kind", type: "bigint" }], [kinds]);
    expect(ascii(bytes, 0, 6)).toBe("ARROW1");
    expect(ascii(bytes, bytes.byteLength - 6, bytes.byteLength)).toBe("ARROW1");
    // 800 kB of int64 values uncompressed; eight distinct values compress far below that
    expect(bytes.byteLength).toBeLessThan((rows * 8) / 20);
    const frame = bytes.findIndex(
      (_, i) => bytes[i] === 0x04 && bytes[i + 1] === 0x22 && bytes[i + 2] === 0x4d,
    );
    expect(frame).toBeGreaterThan(8);
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    // the first compressed buffer is batch 0's values (no nulls, so no validity buffer)
    expect(view.getBigInt64(frame - 8, true)).toBe(BigInt(65_536 * 8));
    expect(view.getUint32(frame + 6, true)).toBe(65_536 * 8); // the frame's content size
  });
});

/** Sequences of the frame's compressed blocks that start a match in the last 12 bytes of a block. */
function lateMatches(frame: Uint8Array): number {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let p = 7 + (frame[4]! & 0x08 ? 8 : 0); // magic, FLG, BD, [content size], HC
  let late = 0;
  for (let size = view.getUint32(p, true); size !== 0; size = view.getUint32(p, true)) {
    p += 4;
    const end = p + (size & 0x7fffffff);
    const matchStarts: number[] = [];
    let out = 0;
    while (size < 0x80000000 && p < end) {
      const token = frame[p++]!;
      let literals = token >> 4;
      if (literals === 15) for (let b = 255; b === 255; literals += b) b = frame[p++]!;
      p += literals;
      out += literals;
      if (p >= end) break;
      matchStarts.push(out);
      p += 2;
      let match = token & 15;
      if (match === 15) for (let b = 255; b === 255; match += b) b = frame[p++]!;
      out += match + 4;
    }
    late += matchStarts.filter((s) => s > out - 12).length;
    p = end;
  }
  return late;
}

/** Deterministic JSON-like text a little over 4 MiB (one full LZ4 block and a bit). */
function jsonLines(seed: number): Uint8Array {
  let s = seed;
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) & 0x7fffffff;
    return s >> 8;
  };
  const parts: string[] = [];
  for (let len = 0; len < (4 << 20) + 2000; ) {
    const line = `{"id":${rnd() % 100000},"kind":"k${rnd() % 8}","v":${(rnd() % 1000) / 8}}`;
    parts.push(line);
    len += line.length;
  }
  return new TextEncoder().encode(parts.join("").slice(0, (4 << 20) + 1000));
}

// toEqual walks megabytes of bytes one matcher step at a time
const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

describe("LZ4 frames", () => {
  const codec = compressionRegistry.get(CompressionType.LZ4_FRAME)!;

  it("keep the last match of a block 12 bytes from its end, which lz4js's compress does not", () => {
    const text = jsonLines(1);
    expect(lateMatches(compress(text))).toBeGreaterThan(0); // liblz4 (pyarrow) rejects that frame
    const frame = codec.encode!(text);
    expect(lateMatches(frame)).toBe(0);
    expect(frame.byteLength).toBeLessThan(text.byteLength / 2);
    expect(sameBytes(codec.decode!(frame), text)).toBe(true);
  });

  it("round-trip sizes around the block size, compressible or not", () => {
    for (const n of [0, 1, 31, 32, 100, 70_000, (4 << 20) - 1, 4 << 20, (4 << 20) + 13]) {
      const text = jsonLines(n).subarray(0, n);
      const noise = text.map((_, i) => Math.imul(i + n, 2654435761) >>> 24);
      for (const src of [text, noise]) {
        const frame = codec.encode!(src);
        expect(lateMatches(frame)).toBe(0);
        expect(new DataView(frame.buffer, frame.byteOffset).getUint32(6, true)).toBe(n); // content size
        expect(sameBytes(codec.decode!(frame), src)).toBe(true);
      }
    }
  });
});

describe("column stats", () => {
  it("gives min, max and nulls over non-null storage values", () => {
    const { info } = encodeSegment(COLUMNS, DATA);
    expect(info.stats).toEqual({
      id: { min: -9007199254740991, max: 9007199254740991, nulls: 1 },
      n: { min: -2147483648, max: 2147483647, nulls: 1 },
      score: { min: -123456.789, max: 0.1, nulls: 1 },
      ok: { min: 0, max: 1, nulls: 1 },
      name: { min: "", max: "plain", nulls: 1 },
      ref: {
        min: "0190a3c4-1111-4222-8333-444455556666",
        max: "ffffffff-0000-4000-8000-000000000000",
        nulls: 1,
      },
      meta: { min: null, max: null, nulls: 1 },
      at: { min: "1969-12-31T23:59:59.999Z", max: "2024-02-29T23:59:59.999Z", nulls: 1 },
      born: { min: "1815-12-10", max: "2024-02-29", nulls: 1 },
      raw: { min: null, max: null, nulls: 1 },
    });
  });

  it("has no min or max for a column of nulls", () => {
    const { info } = encodeSegment([{ name: "x", type: "float" }], [[null, null, null]]);
    expect(info.stats.x).toEqual({ min: null, max: null, nulls: 3 });
  });
});

describe("bloom filter", () => {
  const key = (i: number) => JSON.stringify([`user-${i}`, i]);

  it("has no false negatives and under 3% false positives at 10k keys", () => {
    const present = Array.from({ length: 10_000 }, (_, i) => key(i));
    const bloom = buildBloom(present);
    // about 10 bits per key, and the header says how many and how many hashes
    expect(bloom.byteLength).toBeLessThan(8 + (10_000 * 11) / 8);
    const header = new DataView(bloom.buffer, bloom.byteOffset);
    expect(header.getUint32(0, true)).toBe((bloom.byteLength - 8) * 8);
    expect(bloom[4]).toBe(7);
    expect(present.every((k) => bloomMayContain(bloom, k))).toBe(true);
    let falsePositives = 0;
    for (let i = 10_000; i < 20_000; i++) if (bloomMayContain(bloom, key(i))) falsePositives++;
    expect(falsePositives / 10_000).toBeLessThan(0.03);
  });

  it("is deterministic and holds unicode keys", () => {
    const keys = ['["é✓🎉"]', '["a"]', "[1]"];
    expect(buildBloom(keys)).toEqual(buildBloom(keys));
    expect(keys.every((k) => bloomMayContain(buildBloom(keys), k))).toBe(true);
  });

  it("contains nothing when empty and refuses a truncated filter", () => {
    const empty = buildBloom([]);
    expect(bloomMayContain(empty, key(1))).toBe(false);
    expect(() => bloomMayContain(buildBloom([key(1)]).subarray(0, 9), key(1))).toThrow(/header/);
  });
});
