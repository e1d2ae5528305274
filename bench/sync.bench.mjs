/**
 * Sync catch-up (issue 5) under `npm start` (wrangler dev, local workerd): a client 100,000
 * changes behind pulls from cursor 0 over `{url}/sync/v1` (one `ws` socket, acking every
 * frame as the protocol asks) and we time it until the server says `live`: changes per
 * second, checked for count, LSN order and duplicates. Floors in the same run: the same
 * rows read over REST in keyset pages of 10,000 (the fastest bulk read path), and the sync
 * snapshot (`cursor: null`) of the same table, which reads through that REST path. The aim
 * is catch-up above 50,000 changes/s.
 * A step that fails is reported in the results with its error; the others still run.
 */
import WebSocket from "ws";
import { figure } from "./lib/figures.mjs";
import {
  createProject,
  expectStatus,
  keyHeaders,
  putSchema,
  request,
  startBenchHearth,
} from "./lib/hearth.mjs";
import { errorBlock, errorCell, table } from "./lib/markdown.mjs";
import { int, ms, ratio } from "./lib/stats.mjs";
import { stepRunner } from "./lib/steps.mjs";
import { HEARTH_ENV } from "./lib/storage-hearth.mjs";

export const title = "Sync catch-up";

const TABLE = "items";
const SCHEMA = {
  tables: {
    [TABLE]: {
      columns: {
        id: { type: "integer", primaryKey: true },
        name: { type: "text" },
        score: { type: "float" },
        done: { type: "boolean", default: false },
        created_at: { type: "timestamp" },
      },
      policy: { read: "public", write: "public" },
    },
  },
};
/** The same rows in an `owner` table, written half by each of two accounts. */
const NOTES = "notes";
SCHEMA.tables[NOTES] = { ...SCHEMA.tables[TABLE], policy: { read: "owner", write: "owner" } };
const INSERT_CHUNK = 10_000;
const REST_PAGE = 10_000;
const AIM = 50_000;
const TIMEOUT_MS = 300_000;

function rowsOf(from, n) {
  const base = Date.UTC(2026, 0, 1);
  return Array.from({ length: n }, (_, i) => {
    const id = from + i;
    return {
      id,
      name: `item ${id}`,
      score: (id * 7919) % 1000,
      created_at: new Date(base + id * 1000).toISOString(),
    };
  });
}

function syncUrl(project, key) {
  return `${project.url.replace(/^http/, "ws")}/sync/v1?apikey=${encodeURIComponent(key)}`;
}

/**
 * Opens a socket, pulls `cursor`, acks every data frame after parsing it, and resolves at
 * `live` with the time from the pull to `live`, what arrived, and the checks.
 */
function pull(project, key, cursor, tableName = TABLE) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(syncUrl(project, key), { perMessageDeflate: false });
    let t0 = 0n;
    let changes = 0;
    let rows = 0;
    let frames = 0;
    let bytes = 0;
    let lastLsn = -1;
    let ordered = true;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no live within ${TIMEOUT_MS / 1000} s (${changes} changes, ${rows} rows so far)`));
    }, TIMEOUT_MS);
    const fail = (err) => {
      clearTimeout(timer);
      ws.terminate();
      reject(err);
    };
    ws.on("error", fail);
    ws.on("close", (code, reason) => fail(new Error(`closed ${code} ${reason}`)));
    ws.on("message", (data) => {
      bytes += data.length;
      const f = JSON.parse(String(data));
      if (f.type === "hello") {
        t0 = process.hrtime.bigint();
        ws.send(JSON.stringify({ type: "pull", cursor, tables: [tableName] }));
      } else if (f.type === "changes") {
        frames++;
        for (const c of f.changes) {
          if (c.lsn <= lastLsn) ordered = false;
          lastLsn = c.lsn;
        }
        changes += f.changes.length;
        ws.send(JSON.stringify({ type: "ack", seq: f.seq }));
      } else if (f.type === "snapshot") {
        frames++;
        rows += f.rows.length;
        ws.send(JSON.stringify({ type: "ack", seq: f.seq }));
      } else if (f.type === "live") {
        const msTaken = Number(process.hrtime.bigint() - t0) / 1e6;
        clearTimeout(timer);
        ws.removeAllListeners("close");
        ws.close(1000, "done");
        resolve({ ms: msTaken, changes, rows, frames, bytes, ordered, cursor: f.cursor });
      } else if (f.type === "error") fail(new Error(`error frame ${f.code}: ${f.message}`));
    });
  });
}

async function bulkInsert(project, key, tableName, from, count) {
  for (let at = from; at < from + count; at += INSERT_CHUNK) {
    const n = Math.min(INSERT_CHUNK, from + count - at);
    expectStatus(
      await request(`${project.url}/rest/v1/${tableName}`, {
        method: "POST",
        headers: { ...keyHeaders(key), "content-type": "application/json", prefer: "return=minimal" },
        body: JSON.stringify(rowsOf(at, n)),
      }),
      201,
      "bulk insert",
    );
  }
}

async function signup(server, n) {
  const res = await fetch(`${server.url}/auth/v1/signup`, {
    method: "POST",
    // A distinct client IP per sign-up keeps the per-IP sign-up limit out of the way.
    headers: { "content-type": "application/json", "cf-connecting-ip": `10.78.0.${n}` },
    body: JSON.stringify({ email: `sync-${n}-${Date.now()}@bench.test`, password: "bench password 1234" }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`signup answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text).access_token;
}

/** Every row of the table over REST, in keyset pages: rows and milliseconds. */
async function restScan(project) {
  const t0 = process.hrtime.bigint();
  let after = 0;
  let rows = 0;
  for (;;) {
    const res = expectStatus(
      await request(`${project.url}/rest/v1/${TABLE}?order=id.asc&id=gt.${after}&limit=${REST_PAGE}`, {
        headers: keyHeaders(project.serviceKey),
      }),
      200,
      "REST page",
    );
    const page = JSON.parse(res.body);
    rows += page.length;
    if (page.length < REST_PAGE) break;
    after = page[page.length - 1].id;
  }
  return { rows, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export default async function run({ quick, log }) {
  const cfg = quick ? { changes: 20_000, runs: 2 } : { changes: 100_000, runs: 3 };
  const { step, failedSteps } = stepRunner(log);
  const figures = [];
  const out = [
    `# ${title}${quick ? " (quick)" : ""}`,
    "",
    `Hearth runs under \`npm start\` (wrangler dev, local workerd, throwaway state dir; flushes and freezes only when asked) on the same machine as the client. A project gets ${int(cfg.changes)} changes (bulk inserts of ${int(INSERT_CHUNK)} rows into \`${TABLE}\`: integer key, text, float, boolean, timestamp); then a client that is ${int(cfg.changes)} changes behind opens \`{url}/sync/v1\` with the service key (one \`ws\` socket through wrangler's proxy), pulls from cursor 0 and acknowledges every frame after parsing it (the server keeps at most 8 frames of 1,000 changes in flight). Time runs from the pull to the \`live\` frame. ${cfg.runs} runs, fresh socket each; the median is reported. A second catch-up follows an \`owner\` table holding the same rows, written half by each of two accounts, as one of them: the WAL entries of the other are filtered out by the server. Floors in the same run: the same rows over REST in keyset pages of ${int(REST_PAGE)} (\`GET ?order=id&id=gt.<last>&limit=${REST_PAGE}\`, one connection), and the sync snapshot of the same table (\`cursor: null\`: keyset pages of 1,000 through the REST read path, then \`live\`).`,
    "",
  ];
  const hearth = await step("start Hearth", () => startBenchHearth({ env: HEARTH_ENV }));
  if (!hearth.ok) {
    out.push(errorBlock("Starting Hearth", hearth.error));
    return { markdown: out.join("\n"), failedSteps };
  }
  const server = hearth.value;
  try {
    const setup = await step(`project with ${cfg.changes} changes`, async () => {
      const project = await createProject(server, "bench-sync");
      await putSchema(project, SCHEMA);
      const t0 = process.hrtime.bigint();
      await bulkInsert(project, project.serviceKey, TABLE, 1, cfg.changes);
      return { project, insertMs: Number(process.hrtime.bigint() - t0) / 1e6 };
    });
    if (!setup.ok) {
      out.push(errorBlock("Setting up the project", setup.error));
      return { markdown: out.join("\n"), failedSteps };
    }
    const { project, insertMs } = setup.value;
    const key = project.serviceKey;
    const rowsTable = [];
    const measure = async (name, fn, unit) => {
      const r = await step(name, async () => {
        const runs = [];
        for (let i = 0; i < cfg.runs; i++) runs.push(await fn());
        return runs;
      });
      if (!r.ok) {
        rowsTable.push([name, errorCell(r.error), "–", "–", "–", "–"]);
        return null;
      }
      const runs = r.value;
      const t = median(runs.map((x) => x.ms));
      const n = runs[0][unit];
      return { name, runs, ms: t, n, perSec: (n / t) * 1000 };
    };

    const catchup = await measure("catch-up from cursor 0", () => pull(project, key, 0), "changes");
    const rest = await measure("REST keyset scan (floor)", () => restScan(project), "rows");
    const snapshot = await measure(
      "sync snapshot, cursor null (floor)",
      () => pull(project, key, null),
      "rows",
    );
    // Owner policy: as many WAL entries after the cursor, half of them the caller's.
    const owned = await step("owner table: two accounts write half each", async () => {
      const [alice, bob] = [await signup(server, 1), await signup(server, 2)];
      const before = cfg.changes; // the last LSN before these writes
      for (let at = 1; at <= cfg.changes; at += 2 * INSERT_CHUNK) {
        await bulkInsert(project, alice, NOTES, at, Math.min(INSERT_CHUNK, cfg.changes - at + 1));
        const b = at + INSERT_CHUNK;
        if (b <= cfg.changes)
          await bulkInsert(project, bob, NOTES, b, Math.min(INSERT_CHUNK, cfg.changes - b + 1));
      }
      return { alice, before };
    });
    const ownerCatchup = owned.ok
      ? await measure(
          "catch-up, owner table (half the entries visible)",
          () => pull(project, owned.value.alice, owned.value.before, NOTES),
          "changes",
        )
      : null;

    const checks = [];
    if (catchup) {
      const bad = catchup.runs.filter(
        (x) => x.changes !== cfg.changes || !x.ordered || x.cursor !== cfg.changes,
      );
      checks.push(
        bad.length === 0
          ? `every catch-up run received exactly ${int(cfg.changes)} changes, in strictly increasing LSN order (no duplicates), and went live at cursor ${int(cfg.changes)}`
          : `**${bad.length} catch-up run(s) were wrong**: ${JSON.stringify(bad.map(({ changes, ordered, cursor }) => ({ changes, ordered, cursor })))}`,
      );
      if (bad.length > 0) failedSteps.push("catch-up correctness");
    }
    if (snapshot) {
      const bad = snapshot.runs.filter((x) => x.rows !== cfg.changes);
      checks.push(
        bad.length === 0
          ? `every snapshot run received exactly ${int(cfg.changes)} rows`
          : `**snapshot runs received ${bad.map((x) => x.rows).join(", ")} rows**`,
      );
    }
    if (ownerCatchup) {
      const half = Math.ceil(cfg.changes / 2);
      const bad = ownerCatchup.runs.filter((x) => x.changes !== half || !x.ordered);
      checks.push(
        bad.length === 0
          ? `every owner-table run received exactly the caller's ${int(half)} changes out of ${int(cfg.changes)} WAL entries, in order (${int((cfg.changes / ownerCatchup.ms) * 1000)} entries/s scanned)`
          : `**owner-table runs received ${bad.map((x) => x.changes).join(", ")} changes**`,
      );
      if (bad.length > 0) failedSteps.push("owner catch-up correctness");
    }
    for (const [m, peerName] of [
      [rest, "REST keyset scan of the same rows"],
      [snapshot, "sync snapshot (cursor null) of the same table"],
    ]) {
      if (!catchup || !m) continue;
      figures.push(
        figure({
          shape: `sync catch-up of ${int(cfg.changes)} changes from cursor 0`,
          unit: "rows/s",
          stat: "median",
          hearth: catchup.perSec,
          peer: m.perSec,
          peerName,
          peerKind: "floor",
          lowerIsBetter: false,
          note: "changes/s for catch-up, rows/s for the floor",
        }),
      );
    }
    for (const m of [catchup, rest, snapshot, ownerCatchup]) {
      if (!m) continue;
      const first = m.runs[0];
      rowsTable.push([
        m.name,
        int(m.n),
        ms(m.ms),
        int(m.perSec),
        catchup && m !== catchup ? ratio(catchup.perSec, m.perSec) : "1.00×",
        first.frames === undefined ? "–" : `${int(first.frames)} / ${(first.bytes / 1e6).toFixed(1)} MB`,
      ]);
    }
    out.push(
      "## Catch-up",
      "",
      table(
        ["What", "Changes or rows", "Median ms", "Per second", "Catch-up ÷ this", "Frames / bytes received"],
        rowsTable,
      ),
      "",
      catchup
        ? `Catch-up: **${int(catchup.perSec)} changes/s** (aim: above ${int(AIM)}/s: ${catchup.perSec > AIM ? "met" : "**not met**"}); runs: ${catchup.runs.map((x) => ms(x.ms)).join(", ")} ms.`
        : "Catch-up failed: see the table.",
      "",
      ...checks.map((c) => `- ${c}`),
      `- Setting up: ${int(cfg.changes)} rows inserted in ${ms(insertMs)} ms (${int((cfg.changes / insertMs) * 1000)} rows/s).`,
      "",
      "How catch-up reads: one SQL range scan of `_hearth_wal` by LSN per 2,000 entries (table filter and, for `owner` tables, the owner ids extracted by SQLite); each change's row JSON, as the WAL trigger stored it, is spliced into the frame without being parsed or re-serialized. The REST floor parses SQLite rows into objects and serializes them again; the snapshot adds the protocol's frames and acks to that.",
      "",
    );
  } finally {
    await server.stop();
  }
  return { markdown: out.join("\n"), failedSteps, figures: figures.filter(Boolean) };
}
