/**
 * The SDK bench's sync part (issue 6, Benchmark): live-query latency for a local and a remote
 * write, and the initial sync of 10,000 rows into an empty replica, against `npm start`, each
 * with its floor measured in the same run. Returns markdown lines. Every server, socket and
 * engine it opens is closed in a `finally` (and registered with the cleanup registry).
 */

import { figure, latencyFigure } from "./figures.mjs";
import { createProject, putSchema, startBenchHearth } from "./hearth.mjs";
import { errorBlock, errorCell, table } from "./markdown.mjs";
import { openEngine, REPLICAS, watch, within } from "./sdk-engines.mjs";
import { engineInitialSync, fillTable, replicaLoad, restKeyset } from "./sdk-initial.mjs";
import { engineWriter, localFloors, localWrites, remoteWrites, restWriter } from "./sdk-live.mjs";
import { loadSdk } from "./sdk-load.mjs";
import { rawFollower, rawPull } from "./sdk-raw.mjs";
import { int, ms, ratio, summarize } from "./stats.mjs";

/** The table both SDK benches sync (this one in Node, sdk-browser.bench.mjs in the page). */
export const TABLE = "todos";
export const SCHEMA = {
  tables: {
    [TABLE]: {
      columns: {
        id: { type: "uuid", primaryKey: true },
        title: { type: "text", notNull: true },
        done: { type: "boolean", default: false },
        n: { type: "integer" },
      },
      policy: { read: "public", write: "public" },
    },
  },
};
const KINDS = ["memory", "indexeddb"];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

async function newProject(server, name) {
  const project = await createProject(server, name);
  await putSchema(project, SCHEMA);
  return project;
}

async function localSeries(sdk, project, kind, cfg) {
  const { engine, errors, close } = openEngine(sdk, project, kind, [TABLE]);
  try {
    await within(engine.settled(), "settled()");
    const watcher = watch(engine, TABLE);
    const live = await localWrites({ engine, watcher, table: TABLE, count: cfg.writes, warmup: cfg.warmup });
    watcher.stop();
    const rows = (await engine.query(TABLE)).length;
    const floors = await localFloors({
      replica: REPLICAS[kind].make(sdk),
      engine,
      table: TABLE,
      count: cfg.writes,
      warmup: cfg.warmup,
    });
    if (errors.length > 0) throw new Error(`the engine reported: ${errors.map((e) => e.message).join("; ")}`);
    return { live: summarize(live), commit: summarize(floors.commit), query: summarize(floors.query), rows };
  } finally {
    await close();
  }
}

async function remoteSeries(sdk, project, series, cfg) {
  const opened = [];
  let raw = null;
  try {
    const reader = openEngine(sdk, project, series.kind, [TABLE]);
    opened.push(reader);
    let write = restWriter(project, TABLE);
    let settle = null;
    if (series.writer === "engine") {
      const writer = openEngine(sdk, project, "memory", [TABLE]);
      opened.push(writer);
      await within(writer.engine.settled(), "settled()");
      write = engineWriter(writer.engine, TABLE);
      settle = () => writer.engine.settled();
    }
    await within(reader.engine.settled(), "settled()");
    raw = await rawFollower(project, project.anonKey, TABLE);
    const watcher = watch(reader.engine, TABLE);
    const r = await remoteWrites({
      write,
      settle,
      watcher,
      raw,
      engine: reader.engine,
      count: cfg.writes,
      warmup: cfg.warmup,
    });
    watcher.stop();
    const rows = (await reader.engine.query(TABLE)).length;
    const errors = opened.flatMap((o) => o.errors);
    if (errors.length > 0) throw new Error(`an engine reported: ${errors.map((e) => e.message).join("; ")}`);
    return { ack: summarize(r.ack), raw: summarize(r.raw), live: summarize(r.live), rows };
  } finally {
    raw?.close();
    for (const o of opened.reverse()) await o.close();
  }
}

const REMOTE = [
  { name: "REST insert (service key) → engine on MemoryReplica", kind: "memory", writer: "rest" },
  { name: "REST insert (service key) → engine on IndexedDbReplica", kind: "indexeddb", writer: "rest" },
  { name: "second engine's `insert` → engine on MemoryReplica", kind: "memory", writer: "engine" },
];

/** The section's markdown lines; its figures (bench/lib/figures.mjs) are pushed to `figures`. */
export async function syncSection({ quick, step, figures = [] }) {
  const cfg = quick
    ? { writes: 50, warmup: 10, rows: 10_000, runs: 1 }
    : { writes: 200, warmup: 20, rows: 10_000, runs: 3 };
  const out = [
    "## Live queries and initial sync",
    "",
    `Hearth runs under \`npm start\` (wrangler dev, local workerd, throwaway state dir) on the same machine as the clients, over loopback. The SDK's sync engine (\`createSync\` from \`sdk/src\`, bundled in memory with esbuild for Node 20) follows one public-policy \`${TABLE}\` table (uuid key, text, boolean, integer) with the anon key over \`ws\`; its live query is the whole table (\`live("${TABLE}", {}, cb)\`). IndexedDbReplica runs on \`fake-indexeddb\` (an in-memory IndexedDB written in JavaScript, so it says how the engine's IndexedDB path costs in Node, not a browser's IndexedDB). Everything runs in one Node process, so the clients share its event loop. Latency samples run one at a time (${cfg.warmup} untimed first, then ${cfg.writes}); between two, untimed, the write is awaited and every engine settles.`,
    "",
  ];
  const loaded = await step("bundle the SDK's sync engine for Node", loadSdk);
  if (!loaded.ok) return [...out, errorBlock("Bundling the SDK", loaded.error)];
  const sdk = loaded.value;
  const hearth = await step("start Hearth (npm start)", () => startBenchHearth());
  if (!hearth.ok) return [...out, errorBlock("Starting Hearth", hearth.error)];
  const server = hearth.value;
  try {
    const live = await step("project for the live queries", () => newProject(server, "bench-sdk-live"));
    if (!live.ok) return [...out, errorBlock("Creating the project", live.error)];
    const project = live.value;

    const localRows = [];
    for (const kind of KINDS) {
      const r = await step(`local write → live callback, ${kind}`, () =>
        localSeries(sdk, project, kind, cfg),
      );
      if (!r.ok) {
        localRows.push([REPLICAS[kind].label, errorCell(r.error), "–", "–", "–", "–", "–", "–"]);
        continue;
      }
      const v = r.value;
      figures.push(
        latencyFigure(
          {
            shape: `SDK live query after a local insert, ${REPLICAS[kind].label} (Node)`,
            peerName: "the replica's own queue commit",
            peerKind: "floor",
          },
          v.live,
          v.commit,
        ),
      );
      localRows.push([
        REPLICAS[kind].label,
        ms(v.live.p50),
        ms(v.live.p99),
        ms(v.commit.p50),
        ms(v.query.p50),
        ratio(v.live.p50, v.commit.p50),
        int(v.rows),
      ]);
    }
    out.push(
      "### Live query, local write (optimistic path)",
      "",
      "From calling `insert` to the first live callback whose rows hold the new row. Floors, same run: the engine's own queue commit (the `putMutations` batch `insert` stores before the row counts as made) on a bare, open replica of the same kind, and one `query` of the whole table on the engine (what every live callback re-runs), timed once at the end on the largest table, so it is not comparable sample by sample with the live figures (which ran as the table grew).",
      "",
      table(
        [
          "Replica",
          "insert → live p50 ms",
          "p99 ms",
          "replica commit p50 ms (floor)",
          "query p50 ms (floor)",
          "live ÷ commit",
          "rows in the table after",
        ],
        localRows,
      ),
      "",
    );

    const remoteRows = [];
    for (const series of REMOTE) {
      const r = await step(`remote write → live callback: ${series.name}`, () =>
        remoteSeries(sdk, project, series, cfg),
      );
      if (!r.ok) {
        remoteRows.push([series.name, errorCell(r.error), "–", "–", "–", "–", "–", "–"]);
        continue;
      }
      const v = r.value;
      figures.push(
        latencyFigure(
          {
            shape: `SDK live query after a remote write: ${series.name}`,
            peerName: "bare /sync/v1 socket receiving the same change",
            peerKind: "floor",
          },
          v.live,
          v.raw,
        ),
      );
      remoteRows.push([
        series.name,
        ms(v.ack.p50),
        ms(v.raw.p50),
        ms(v.live.p50),
        ms(v.live.p99),
        ratio(v.live.p50, v.raw.p50),
        ms(v.live.p50 - v.raw.p50),
        int(v.rows),
      ]);
    }
    out.push(
      "### Live query, remote write",
      "",
      "From sending the write to the first live callback of another engine whose rows hold it. Floors on the same writes: the write's own ack (the REST `201`, or the writer engine's `push_result` resolving its `insert`), and a bare `/sync/v1` client (one `ws` socket, JSON parse, ack; no replica) following the same table, which receives the same change frame as the engine.",
      "",
      table(
        [
          "Writer → reader",
          "ack p50 ms",
          "bare /sync/v1 receipt p50 ms (floor)",
          "live callback p50 ms",
          "live p99 ms",
          "live ÷ bare (p50)",
          "SDK's share (p50 live − bare) ms",
          "rows in the table after",
        ],
        remoteRows,
      ),
      "",
    );

    out.push(...(await initialSection(sdk, server, cfg, step, figures)));
  } finally {
    await server.stop();
  }
  return out;
}

async function initialSection(sdk, server, cfg, step, figures) {
  const out = ["### Initial sync of 10,000 rows", ""];
  const setup = await step(`project with ${cfg.rows} rows`, async () => {
    const project = await newProject(server, "bench-sdk-initial");
    return { project, insertMs: await fillTable(project, TABLE, cfg.rows) };
  });
  if (!setup.ok) return [...out, errorBlock("Filling the table", setup.error)];
  const { project, insertMs } = setup.value;
  const measured = [];
  const measure = async (name, fn, runCount = cfg.runs) => {
    const r = await step(name, async () => {
      const runs = [];
      for (let i = 0; i < runCount; i++) runs.push(await fn());
      return runs;
    });
    if (!r.ok) return measured.push({ name, error: r.error });
    const bad = r.value.find((x) => x.rows !== cfg.rows && x.changes !== cfg.rows);
    if (bad)
      return measured.push({ name, error: new Error(`got ${bad.rows} rows / ${bad.changes} changes`) });
    measured.push({
      name,
      ms: median(r.value.map((x) => x.ms)),
      settledMs: r.value[0].settledMs === undefined ? undefined : median(r.value.map((x) => x.settledMs)),
      runs: r.value.map((x) => x.ms),
    });
  };
  // fake-indexeddb takes tens of seconds for 10,000 rows: one run of its two rows.
  const runsOf = (kind) => (kind === "indexeddb" ? 1 : cfg.runs);
  for (const kind of KINDS) {
    await measure(
      `SDK engine, empty ${REPLICAS[kind].label}`,
      () => engineInitialSync(sdk, project, kind, TABLE, cfg.rows),
      runsOf(kind),
    );
    await measure(
      `bare ${REPLICAS[kind].label}: the same snapshot commits, no network (floor)`,
      () => replicaLoad(REPLICAS[kind].make(sdk), TABLE, cfg.rows),
      runsOf(kind),
    );
  }
  await measure("bare /sync/v1 snapshot, cursor null (floor)", () =>
    rawPull(project, project.anonKey, TABLE, null),
  );
  await measure("bare /sync/v1 catch-up from cursor 0", () => rawPull(project, project.anonKey, TABLE, 0));
  await measure("REST keyset read, pages of 1,000 (floor)", () => restKeyset(project, TABLE));
  const snapshot = measured.find((m) => m.name.startsWith("bare /sync/v1 snapshot") && !m.error);
  const rows = measured.map((m) =>
    m.error
      ? [m.name, errorCell(m.error), "–", "–", "–", "–"]
      : [
          m.name,
          ms(m.ms),
          m.settledMs === undefined ? "–" : ms(m.settledMs),
          int((cfg.rows / m.ms) * 1000),
          snapshot ? ratio(m.ms, snapshot.ms) : "–",
          m.runs.map(ms).join(", "),
        ],
  );
  out.push(
    `${int(cfg.rows)} rows are inserted over REST (service key, bulk inserts of 2,000: ${ms(insertMs)} ms). A fresh engine on an empty replica is created and timed from \`createSync\` (replica open, connect, \`hello\`, \`pull\` with cursor null, the snapshot in pages of 1,000 staged in the replica and swapped in at \`snapshot_end\`) to its live callback showing all ${int(cfg.rows)} rows, and to \`settled()\`; the replica's row count is checked. Floors, same run and same rows: a bare \`/sync/v1\` client (timed from opening its socket to \`live\`) taking the snapshot and, separately, catching up from cursor 0 (the WAL holds every insert), a REST read in keyset pages of 1,000 (the pages the snapshot reads), and, for each replica, the replica alone: a bare, empty replica given the same commits as a snapshot load (ten staged pages of 1,000, one swap with the cursor, then its rows read back), with no network and no engine. ${cfg.runs} run(s) each, except one run for each IndexedDbReplica row; the median is reported.`,
    "",
    table(
      [
        "What",
        "to live callback with all rows, median ms",
        "to settled(), median ms",
        "rows/s",
        "÷ bare snapshot",
        "runs ms",
      ],
      rows,
    ),
    "",
  );
  for (const kind of KINDS) {
    const engine = measured.find((m) => m.name.startsWith(`SDK engine, empty ${REPLICAS[kind].label}`));
    const bare = measured.find((m) => m.name.startsWith(`bare ${REPLICAS[kind].label}`));
    if (!engine?.ms || !bare?.ms) continue;
    out.push(
      `- ${REPLICAS[kind].label}: the engine takes ${ratio(engine.ms, bare.ms)} the time of the bare replica's snapshot commits (${ms(engine.ms)} vs ${ms(bare.ms)} ms)${snapshot ? ` and ${ratio(engine.ms, snapshot.ms)} the bare /sync/v1 snapshot's` : ""}.`,
    );
  }
  out.push("");
  const memory = measured.find((m) => m.name === `SDK engine, empty ${REPLICAS.memory.label}`);
  if (memory?.ms && snapshot) {
    figures.push(
      figure({
        shape: `SDK initial sync of ${int(cfg.rows)} rows into an empty MemoryReplica (Node)`,
        unit: "ms",
        stat: cfg.runs > 1 ? `median of ${cfg.runs}` : "1 run",
        hearth: memory.ms,
        peer: snapshot.ms,
        peerName: "bare /sync/v1 snapshot of the same rows",
        peerKind: "floor",
        lowerIsBetter: true,
      }),
    );
  }
  return out;
}
