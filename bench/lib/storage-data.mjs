/**
 * The storage bench's tables: an append-only `audit_log`, and `users` + `events` (events
 * refer to users). Row `i` is a pure function of `i` (a hash, no PRNG state), so any chunk is
 * generated on demand in the same form for Hearth (NDJSON), PostgreSQL (CSV for COPY) and
 * the size comparison (the CSV bytes), without holding a million row objects.
 */

const BASE_MS = Date.UTC(2024, 0, 1);
const ACTIONS = ["login", "logout", "read", "update", "delete", "share", "export", "invite"];
const KINDS = ["view", "click", "signup", "purchase", "refund", "search", "share", "logout"];
const PLANS = ["free", "pro", "team"];

/** A uniform [0, 1) from (i, salt): a 32-bit integer hash (murmur3's finaliser). */
function u(i, salt) {
  let x = (Math.imul(i, 0x9e3779b1) ^ Math.imul(salt + 1, 0x85ebca77)) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return (x >>> 0) / 4294967296;
}
const pick = (list, i, salt) => list[Math.floor(u(i, salt) * list.length)];
const iso = (ms) => new Date(ms).toISOString();

/** Events are spaced 500 ms apart from 2024-01-01: `eventsAt(k)` is the time of event id k+1. */
export const eventsAt = (k) => iso(BASE_MS + k * 500);

/**
 * A table of the bench: its Hearth columns, its PostgreSQL DDL and `row(i)` (values in
 * column order, for rows 0..n-1).
 */
function tableDef(name, n, columns, pgDdl, row) {
  return { name, n, columns, pgDdl, row, names: Object.keys(columns) };
}

export function auditLog(n) {
  return tableDef(
    "audit_log",
    n,
    {
      id: { type: "bigint", primaryKey: true },
      at: { type: "timestamp" },
      actor: { type: "text" },
      action: { type: "text" },
      target: { type: "text" },
      ip: { type: "text" },
      ok: { type: "boolean" },
    },
    "CREATE TABLE audit_log (id bigint PRIMARY KEY, at timestamptz, actor text, action text, target text, ip text, ok boolean)",
    (i) => [
      i + 1,
      iso(BASE_MS + i * 1000),
      `user${Math.floor(u(i, 1) * 2000)}@example.com`,
      pick(ACTIONS, i, 2),
      `doc/${Math.floor(u(i, 3) * 50_000)}`,
      `10.${Math.floor(u(i, 4) * 256)}.${Math.floor(u(i, 5) * 256)}.${Math.floor(u(i, 6) * 256)}`,
      u(i, 7) < 0.97,
    ],
  );
}

export function users(n) {
  return tableDef(
    "users",
    n,
    {
      id: { type: "bigint", primaryKey: true },
      email: { type: "text" },
      name: { type: "text" },
      plan: { type: "text" },
      created_at: { type: "timestamp" },
    },
    "CREATE TABLE users (id bigint PRIMARY KEY, email text, name text, plan text, created_at timestamptz)",
    (i) => [
      i + 1,
      `user${i + 1}@example.com`,
      `User ${i + 1}`,
      pick(PLANS, i, 11),
      iso(BASE_MS - (n - i) * 60_000),
    ],
  );
}

export function events(n, userCount) {
  return tableDef(
    "events",
    n,
    {
      id: { type: "bigint", primaryKey: true },
      user_id: { type: "bigint", references: "users.id" },
      kind: { type: "text" },
      amount: { type: "float" },
      at: { type: "timestamp" },
    },
    "CREATE TABLE events (id bigint PRIMARY KEY, user_id bigint REFERENCES users(id), kind text, amount double precision, at timestamptz)",
    (i) => [
      i + 1,
      1 + Math.floor(u(i, 21) * userCount),
      pick(KINDS, i, 22),
      Math.floor(u(i, 23) * 100_000) / 100,
      eventsAt(i),
    ],
  );
}

/** The two datasets of the bytes-at-rest section: `n` audit rows; `n` events plus n/100 users. */
export function datasets(n) {
  const userCount = Math.max(1, Math.floor(n / 100));
  return [
    { name: "audit log (append-only)", key: "audit", tables: [auditLog(n)] },
    { name: "users + events", key: "events", tables: [users(userCount), events(n, userCount)] },
  ];
}

/** `{ tables: {...} }` for PUT /schema: public reads and writes (the bench uses the service key). */
export function schemaOf(dataset) {
  const tables = {};
  for (const t of dataset.tables)
    tables[t.name] = { columns: t.columns, policy: { read: "public", write: "public" } };
  return { tables };
}

export function ndjson(table, start, end) {
  let out = "";
  for (let i = start; i < end; i++) {
    const values = table.row(i);
    const obj = {};
    for (let c = 0; c < values.length; c++) obj[table.names[c]] = values[c];
    out += `${JSON.stringify(obj)}\n`;
  }
  return out;
}

/** CSV without a header (no value of these tables needs quoting), as COPY ... (FORMAT csv) reads it. */
export function csv(table, start = 0, end = table.n) {
  const lines = [];
  for (let i = start; i < end; i++) lines.push(table.row(i).join(","));
  return `${lines.join("\n")}\n`;
}
