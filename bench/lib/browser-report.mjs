/**
 * Markdown of bench/sdk-browser.bench.mjs: the page's samples (milliseconds) become p50/p95
 * tables with ratios against the floors and the MemoryReplica peer of the same run. Inputs
 * are step results (`{ ok, value }` or `{ ok: false, error }`).
 */
import { figure, latencyFigure } from "./figures.mjs";
import { errorBlock, errorCell, table } from "./markdown.mjs";
import { int, ms, percentile, ratio, summarize } from "./stats.mjs";

const LABEL = {
  indexeddb: "IndexedDbReplica (Chromium's IndexedDB)",
  memory: "MemoryReplica (peer)",
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

function lat(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  return { ...summarize(sorted), p95: percentile(sorted, 95) };
}

const signedMs = (v) => (v < 0 ? `−${ms(-v)}` : ms(v));
const p50Of = (r, key) => (r?.ok ? lat(r.value[key]).p50 : Number.NaN);

export function latencyTables({ cfg, floors, local, remote }) {
  const idbFloor = p50Of(floors, "idb");
  const fetchFloor = p50Of(floors, "fetch");
  const floorRow = (name, key) => {
    if (!floors.ok) return [name, errorCell(floors.error), "–", "–", "–"];
    const l = lat(floors.value[key]);
    return [name, ms(l.p50), ms(l.p95), `${ms(l.min)} / ${ms(l.max)}`, l.n];
  };
  const out = [
    "## Floors in the page",
    "",
    `Samples run one at a time (${cfg.warmup} untimed first, then ${cfg.writes}). IndexedDB round trip: one \`readwrite\` transaction putting a record the size of a queued mutation into a database of its own, awaited to \`complete\`, then a \`readonly\` \`get\` of it, with the raw API (no \`idb\`). \`fetch\`: \`GET /health\` of the server from the page's origin (a simple cross-origin request: no preflight), body read.`,
    "",
    table(
      ["Floor", "p50 ms", "p95 ms", "min / max ms", "samples"],
      [
        floorRow("IndexedDB put + get round trip", "idb"),
        floorRow("`fetch` `GET /health` round trip", "fetch"),
      ],
    ),
    "",
  ];

  const memLocal = p50Of(local.memory, "live");
  const localRows = Object.entries(local).map(([kind, r]) => {
    if (!r.ok) return [LABEL[kind], errorCell(r.error), "–", "–", "–", "–"];
    const l = lat(r.value.live);
    return [
      LABEL[kind],
      ms(l.p50),
      ms(l.p95),
      ratio(l.p50, idbFloor),
      ratio(l.p50, memLocal),
      int(r.value.rows),
    ];
  });
  out.push(
    "## Live query, local write (optimistic path)",
    "",
    "From calling `sync.insert` to the first live callback whose rows hold the new row: the mutation is committed to the replica's queue (one IndexedDB transaction for IndexedDbReplica), then the live query re-runs. Between two samples, untimed, the insert's answer is awaited and the engine settles. Each replica on a fresh project (the table starts empty).",
    "",
    table(
      [
        "Replica",
        "insert → live p50 ms",
        "p95 ms",
        "÷ IndexedDB round trip (p50)",
        "÷ MemoryReplica (p50)",
        "rows in the table after",
      ],
      localRows,
    ),
    "",
  );

  const memRemote = p50Of(remote.memory, "live");
  const remoteRows = Object.entries(remote).map(([kind, r]) => {
    if (!r.ok)
      return [`REST insert → engine on ${LABEL[kind]}`, errorCell(r.error), "–", "–", "–", "–", "–", "–"];
    const l = lat(r.value.live);
    const raw = lat(r.value.raw).p50;
    return [
      `REST insert → engine on ${LABEL[kind]}`,
      ms(lat(r.value.ack).p50),
      ms(raw),
      ms(l.p50),
      ms(l.p95),
      ratio(l.p50, raw),
      signedMs(l.p50 - raw),
      ratio(l.p50, memRemote),
      int(r.value.rows),
    ];
  });
  out.push(
    "## Live query, remote write",
    "",
    `From sending a REST insert (\`fetch\` \`POST /rest/v1/todos\` with the service key, from the page) to the engine's first live callback whose rows hold the row. Timed on the same writes: the insert's \`201\`, and the receipt of its change by a bare \`/sync/v1\` WebSocket in the same page (parse, ack; no replica), the floor. Both sockets and the writer share the page's main thread, and both receive the same change frame: whichever the page reads first wins, so the SDK's share can come out below zero. Each replica on a fresh project.${Number.isFinite(fetchFloor) ? ` For scale, the \`fetch\` floor above: ${ms(fetchFloor)} ms.` : ""}`,
    "",
    table(
      [
        "Writer → reader",
        "REST 201 p50 ms",
        "bare /sync/v1 receipt p50 ms (floor)",
        "live callback p50 ms",
        "live p95 ms",
        "live ÷ bare (p50)",
        "SDK's share (p50 live − bare) ms",
        "÷ MemoryReplica (p50)",
        "rows in the table after",
      ],
      remoteRows,
    ),
    "",
  );
  for (const [what, r] of [
    ["The floors", floors],
    ...Object.entries(local).map(([k, r]) => [`Local writes on ${LABEL[k]}`, r]),
    ...Object.entries(remote).map(([k, r]) => [`Remote writes on ${LABEL[k]}`, r]),
  ]) {
    if (!r.ok) out.push(errorBlock(what, r.error), "");
  }
  return out;
}

export function initialTable({ cfg, filled, initial }) {
  const out = [`## Initial sync of ${int(cfg.rows)} rows`, ""];
  if (!filled.ok) return [...out, errorBlock("Filling the table", filled.error), ""];
  const entries = [
    ["SDK engine, empty IndexedDbReplica", initial.indexeddb],
    ["SDK engine, empty MemoryReplica (peer)", initial.memory],
    ["bare IndexedDbReplica: the same snapshot commits, no network (floor)", initial.replica],
    [`bare IndexedDB: ${int(cfg.rows)} puts in one transaction, then getAll (floor)`, initial.bulk],
    ["bare /sync/v1 snapshot in the page, cursor null (floor)", initial.raw],
  ].map(([name, runs]) => ({
    name,
    runs,
    ms: runs.length ? median(runs.map((r) => r.ms)) : Number.NaN,
    settledMs: runs[0]?.settledMs === undefined ? Number.NaN : median(runs.map((r) => r.settledMs)),
  }));
  const [idb, mem, bare, bulk, snap] = entries;
  const rows = entries.map((m) =>
    m.runs.length === 0
      ? [m.name, initial.error ? errorCell(initial.error) : "–", "–", "–", "–", "–", "–"]
      : [
          m.name,
          ms(m.ms),
          ms(m.settledMs),
          int((cfg.rows / m.ms) * 1000),
          ratio(m.ms, mem.ms),
          ratio(m.ms, snap.ms),
          m.runs.map((r) => ms(r.ms)).join(", "),
        ],
  );
  out.push(
    `${int(cfg.rows)} rows are inserted beforehand over REST (service key, bulk inserts of 2,000: ${ms(filled.value.insertMs)} ms). A fresh engine on an empty replica is timed from \`createSync\` (replica open, connect, \`hello\`, \`pull\` with cursor null, the snapshot in pages of 1,000 staged in the replica and swapped in at \`snapshot_end\`) to its live callback showing all ${int(cfg.rows)} rows, and to \`settled()\`; then \`query\` must return all of them. Floors in the same page: a bare, empty IndexedDbReplica given the commits of a snapshot load (ten staged pages of 1,000, one swap with the cursor, then its rows read back), the same number of rows put into a database of their own in one transaction with the raw API (what IndexedDB itself costs for them), and a bare \`/sync/v1\` WebSocket taking the snapshot (timed from opening it to \`live\`). ${cfg.runs} run(s) of each, interleaved; the median is reported.`,
    "",
    table(
      [
        "What",
        "to live callback with all rows, median ms",
        "to settled(), median ms",
        "rows/s",
        "÷ MemoryReplica engine",
        "÷ bare snapshot",
        "runs ms",
      ],
      rows,
    ),
    "",
  );
  if (Number.isFinite(idb.ms) && Number.isFinite(mem.ms)) {
    out.push(
      `**In Chromium, ${int(cfg.rows)} rows sync into an empty IndexedDbReplica in ${ms(idb.ms)} ms (${ms(idb.settledMs)} ms to \`settled()\`), against ${ms(mem.ms)} ms into a MemoryReplica in the same page: IndexedDB ÷ memory = ${ratio(idb.ms, mem.ms)}.**`,
      "",
    );
  }
  if (Number.isFinite(idb.ms) && Number.isFinite(bare.ms)) {
    out.push(
      `- The engine on IndexedDB takes ${ratio(idb.ms, bare.ms)} the time of the bare replica's snapshot commits (${ms(idb.ms)} vs ${ms(bare.ms)} ms)${Number.isFinite(snap.ms) ? ` and ${ratio(idb.ms, snap.ms)} the bare /sync/v1 snapshot's (${ms(snap.ms)} ms)` : ""}.`,
      "",
    );
  }
  if (bare.runs.length > 0) {
    const part = (key) => ms(median(bare.runs.map((r) => r[key])));
    out.push(
      `- The bare replica's time, split (medians): staging the ten pages ${part("stageMs")} ms, the swap commit ${part("swapMs")} ms, reading the rows back ${part("readMs")} ms.`,
      "",
    );
  }
  if (Number.isFinite(bare.ms) && Number.isFinite(bulk.ms)) {
    out.push(
      `- The bare replica's commits take ${ratio(bare.ms, bulk.ms)} the time of putting the same rows into IndexedDB in one transaction (${ms(bare.ms)} vs ${ms(bulk.ms)} ms; of that, the puts ${ms(median(bulk.runs.map((r) => r.putMs)))} ms, the getAll ${ms(median(bulk.runs.map((r) => r.readMs)))} ms).`,
      "",
    );
  }
  if (initial.error) out.push(errorBlock("The initial sync", initial.error), "");
  return out;
}

/**
 * The card's figures: the SDK engine on Chromium's IndexedDB beside its floors (a bare
 * IndexedDB round trip, a bare /sync/v1 socket, the bare replica's own commits) and beside
 * the same engine on a MemoryReplica in the same page (the peer).
 */
export function browserFigures({ cfg, floors, local, remote, initial }) {
  const stats = (r, key) => (r?.ok ? lat(r.value[key]) : null);
  const medianMs = (runs) => (runs?.length ? median(runs.map((r) => r.ms)) : Number.NaN);
  const engine = "SDK engine on IndexedDbReplica (Chromium)";
  const initialFigure = (peer, peerName, peerKind) =>
    figure({
      shape: `${engine}: initial sync of ${int(cfg.rows)} rows`,
      unit: "ms",
      stat: cfg.runs > 1 ? `median of ${cfg.runs}` : "1 run",
      hearth: medianMs(initial.indexeddb),
      peer: medianMs(peer),
      peerName,
      peerKind,
      lowerIsBetter: true,
    });
  return [
    latencyFigure(
      {
        shape: `${engine}: local insert → live query`,
        peerName: "IndexedDB put + get round trip",
        peerKind: "floor",
      },
      stats(local.indexeddb, "live"),
      stats(floors, "idb"),
    ),
    latencyFigure(
      {
        shape: `${engine}: local insert → live query`,
        peerName: "the engine on a MemoryReplica",
        peerKind: "peer",
      },
      stats(local.indexeddb, "live"),
      stats(local.memory, "live"),
    ),
    latencyFigure(
      {
        shape: `${engine}: REST insert → live query`,
        peerName: "bare /sync/v1 socket receiving the same change",
        peerKind: "floor",
      },
      stats(remote.indexeddb, "live"),
      stats(remote.indexeddb, "raw"),
    ),
    initialFigure(initial.replica, "bare IndexedDbReplica: the same snapshot commits, no network", "floor"),
    initialFigure(initial.memory, "the engine on a MemoryReplica", "peer"),
  ].filter(Boolean);
}
