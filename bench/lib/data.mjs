/**
 * The bench table `items(id bigint pk, name text, score float, flag boolean, created_at
 * timestamp)`: a seeded generator (same rows on every run) and its encodings: JSON array,
 * NDJSON, Arrow IPC stream, CSV (for PostgreSQL COPY), and SQL for PostgreSQL and SQLite.
 */
import {
  Bool,
  Float64,
  Int64,
  Table,
  TimestampMillisecond,
  tableToIPC,
  Utf8,
  vectorFromArray,
} from "apache-arrow";

export const ITEMS_SCHEMA = {
  tables: {
    items: {
      columns: {
        id: { type: "bigint", primaryKey: true },
        name: { type: "text" },
        score: { type: "float" },
        flag: { type: "boolean" },
        created_at: { type: "timestamp" },
      },
      policy: { read: "public", write: "public" },
    },
  },
};

export const PG_ITEMS_DDL = (table) =>
  `CREATE TABLE ${table} (id bigint PRIMARY KEY, name text, score double precision, flag boolean, created_at timestamp)`;

export const SQLITE_ITEMS_DDL =
  "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, score REAL, flag INTEGER, created_at TEXT)";

const BASE_TIME_MS = Date.UTC(2024, 0, 1);

/** mulberry32: a small deterministic PRNG. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` rows, column-wise; ids are `firstId..firstId+n-1`; scores are uniform in [0, 1000). */
export function makeItems(n, { seed = 42, firstId = 1 } = {}) {
  const rand = prng(seed);
  const id = new Array(n);
  const name = new Array(n);
  const score = new Float64Array(n);
  const flag = new Array(n);
  const createdAtMs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    id[i] = firstId + i;
    name[i] = `item ${firstId + i}`;
    score[i] = Math.floor(rand() * 1_000_000) / 1000;
    flag[i] = rand() < 0.5;
    createdAtMs[i] = BASE_TIME_MS + (firstId + i) * 1000;
  }
  return { n, id, name, score, flag, createdAtMs };
}

const iso = (ms) => new Date(ms).toISOString();

function rowObject(items, i) {
  return {
    id: items.id[i],
    name: items.name[i],
    score: items.score[i],
    flag: items.flag[i],
    created_at: iso(items.createdAtMs[i]),
  };
}

/** [start, end) chunks of at most `size` rows. */
export function chunks(n, size) {
  const out = [];
  for (let start = 0; start < n; start += size) out.push([start, Math.min(n, start + size)]);
  return out;
}

export function toJsonArray(items, start, end) {
  const rows = [];
  for (let i = start; i < end; i++) rows.push(rowObject(items, i));
  return JSON.stringify(rows);
}

export function toNdjson(items, start, end) {
  const lines = [];
  for (let i = start; i < end; i++) lines.push(JSON.stringify(rowObject(items, i)));
  return `${lines.join("\n")}\n`;
}

/** Arrow IPC stream: Int64 id, Utf8 name (plain, not dictionary), Float64, Bool, Timestamp(ms). */
export function toArrowIpc(items, start, end) {
  const table = new Table({
    id: vectorFromArray(
      BigInt64Array.from(items.id.slice(start, end), (v) => BigInt(v)),
      new Int64(),
    ),
    name: vectorFromArray(items.name.slice(start, end), new Utf8()),
    score: vectorFromArray(items.score.slice(start, end), new Float64()),
    flag: vectorFromArray(items.flag.slice(start, end), new Bool()),
    created_at: vectorFromArray(Array.from(items.createdAtMs.slice(start, end)), new TimestampMillisecond()),
  });
  return tableToIPC(table, "stream");
}

/** CSV without a header, as PostgreSQL's `COPY ... (FORMAT csv)` reads it. */
export function toCsv(items, start = 0, end = items.n) {
  const lines = [];
  for (let i = start; i < end; i++) {
    lines.push(
      `${items.id[i]},${items.name[i]},${items.score[i]},${items.flag[i]},${iso(items.createdAtMs[i])}`,
    );
  }
  return `${lines.join("\n")}\n`;
}

/** Loads the rows into a better-sqlite3 database (one transaction). */
export function loadSqlite(db, items) {
  db.exec(SQLITE_ITEMS_DDL);
  const insert = db.prepare("INSERT INTO items (id, name, score, flag, created_at) VALUES (?, ?, ?, ?, ?)");
  db.transaction(() => {
    for (let i = 0; i < items.n; i++) {
      insert.run(
        items.id[i],
        items.name[i],
        items.score[i],
        items.flag[i] ? 1 : 0,
        iso(items.createdAtMs[i]),
      );
    }
  })();
}
