/**
 * The SDK's sync engine in a real browser, on the real IndexedDB: headless Debian chromium
 * (playwright-core) opens a loopback page that imports `createSync`, `IndexedDbReplica` and
 * `MemoryReplica` from sdk/src (bundled in memory by esbuild), against `npm start`. Measured in
 * the page: live-query latency for a local write and for a remote write (a REST insert sent
 * with `fetch`), and the initial sync of 10,000 rows into an empty IndexedDbReplica, beside
 * the same on a MemoryReplica in the same page (the peer) and floors from the same run: a bare
 * IndexedDB round trip, a plain `fetch`, a bare `/sync/v1` socket, the replica's own commits,
 * and the same rows put into IndexedDB in one transaction.
 * The Node figures (MemoryReplica, fake-indexeddb) are bench/sdk.bench.mjs.
 */
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { bundleForBrowser, callPage, openBenchPage } from "./lib/browser-host.mjs";
import { browserFigures, initialTable, latencyTables } from "./lib/browser-report.mjs";
import { createProject, putSchema, startBenchHearth } from "./lib/hearth.mjs";
import { errorBlock } from "./lib/markdown.mjs";
import { fillTable } from "./lib/sdk-initial.mjs";
import { SCHEMA, TABLE } from "./lib/sdk-sync.mjs";
import { stepRunner } from "./lib/steps.mjs";

export const title = "SDK in a browser: IndexedDB replica, live queries, initial sync";

const PAGE_ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), "lib/browser-page.mjs");
const GLOBAL = "hearthBench";
const KINDS = ["indexeddb", "memory"];

async function newProject(server, name) {
  const project = await createProject(server, name);
  await putSchema(project, SCHEMA);
  return project;
}

const target = (project) => ({ url: project.url, anonKey: project.anonKey, table: TABLE });

export default async function run({ quick, log }) {
  const { step, failedSteps } = stepRunner(log);
  const cfg = quick
    ? { writes: 50, warmup: 10, rows: 10_000, runs: 1 }
    : { writes: 200, warmup: 20, rows: 10_000, runs: 3 };
  const out = [`# ${title}${quick ? " (quick)" : ""}`, ""];
  const loadAtStart = os.loadavg()[0];
  const figures = [];
  const done = (lines) => ({ markdown: [...out, ...lines].join("\n"), failedSteps, figures });

  const bundled = await step("bundle the page entry for the browser", () => bundleForBrowser(PAGE_ENTRY));
  if (!bundled.ok) return done([errorBlock("Bundling the page", bundled.error)]);
  const hearth = await step("start Hearth (npm start)", () => startBenchHearth());
  if (!hearth.ok) return done([errorBlock("Starting Hearth", hearth.error)]);
  const server = hearth.value;
  let browser = null;
  try {
    const filled = await step(`project with ${cfg.rows} rows`, async () => {
      const project = await newProject(server, "bench-sdk-browser-initial");
      return { project, insertMs: await fillTable(project, TABLE, cfg.rows) };
    });
    const opened = await step("open the page in headless chromium", () =>
      openBenchPage(bundled.value.code, { readyGlobal: GLOBAL }),
    );
    if (!opened.ok) return done([errorBlock("Opening the page", opened.error)]);
    browser = opened.value;
    const call = (method, arg) => callPage(browser.page, GLOBAL, method, arg);
    const env = await step("the page's environment", () => call("env"));

    const floors = await step("floors: IndexedDB round trip, fetch GET /health", () =>
      call("floors", { serverUrl: server.url, count: cfg.writes, warmup: cfg.warmup }),
    );
    // Each series on a fresh project: every live query starts on an empty table.
    const series = (name, method, kind) =>
      step(`${name}, ${kind}`, async () => {
        const project = await newProject(server, `bench-sdk-browser-${method}-${kind}`);
        const { serviceKey } = project;
        return call(method, { ...target(project), serviceKey, kind, count: cfg.writes, warmup: cfg.warmup });
      });
    const local = {};
    const remote = {};
    for (const kind of KINDS) local[kind] = await series("local write → live callback", "localWrites", kind);
    for (const kind of KINDS)
      remote[kind] = await series("remote write → live callback", "remoteWrites", kind);

    const initial = { indexeddb: [], memory: [], replica: [], bulk: [], raw: [] };
    if (filled.ok) {
      const args = { ...target(filled.value.project), rows: cfg.rows };
      // Kinds alternate run by run, so a drift of the machine touches both alike.
      const initialRuns = await step(
        `initial sync of ${cfg.rows} rows (${cfg.runs} run(s) of each)`,
        async () => {
          for (let i = 0; i < cfg.runs; i++) {
            for (const kind of KINDS) initial[kind].push(await call("initialSync", { ...args, kind }));
            initial.replica.push(await call("replicaLoad", { table: TABLE, rows: cfg.rows }));
            initial.bulk.push(await call("idbBulk", { table: TABLE, rows: cfg.rows }));
            initial.raw.push(await call("rawPull", args));
          }
          const short = Object.entries(initial).find(([, runs]) => runs.some((r) => r.rows !== cfg.rows));
          if (short) throw new Error(`${short[0]}: got ${short[1].map((r) => r.rows).join(", ")} rows`);
        },
      );
      if (!initialRuns.ok) initial.error = initialRuns.error;
    } else initial.error = filled.error;

    await step("no error in the page", () => {
      if (browser.errors.length > 0) throw new Error(browser.errors.slice(0, 10).join("; "));
    });

    const e = env.ok ? env.value : {};
    // Browser, server and bench share 2 cores: anything else running shows up here.
    const load = `1-minute load average ${loadAtStart.toFixed(2)} at the start, ${os.loadavg()[0].toFixed(2)} at the end`;
    out.push(
      `Hearth runs under \`npm start\` (wrangler dev, local workerd, throwaway state dir); Debian's chromium (${browser.chromiumVersion}, headless, playwright-core) runs on the same 2 cores and reaches it over loopback. The page, served from a second loopback origin by a tiny \`node:http\` server, imports \`createSync\`, \`IndexedDbReplica\` and \`MemoryReplica\` from \`sdk/src/index.ts\` (bundled in memory by esbuild ${bundled.value.esbuildVersion}, browser platform, ESM: ${(bundled.value.bytes / 1024).toFixed(0)} KiB unminified) and uses the browser's own WebSocket, fetch and IndexedDB. The browser runs on a persistent profile in a temp dir (an incognito context would keep IndexedDB in memory), so IndexedDbReplica writes to LevelDB on disk, with Chromium's default (relaxed) transaction durability. The page is ${e.crossOriginIsolated ? "cross-origin isolated (COOP + COEP), so `performance.now()` has 5 µs steps" : "not cross-origin isolated: `performance.now()` has 100 µs steps"}; Web Locks ${e.locks ? "are" : "are not"} available (IndexedDbReplica takes one per database). Every time below is measured in the page with \`performance.now()\`. Table \`${TABLE}\` (uuid key, text, boolean, integer; public policy), followed with the anon key; the live query is the whole table (\`live("${TABLE}", {}, cb)\`). ${load}.`,
      "",
      ...latencyTables({ cfg, floors, local, remote }),
      ...initialTable({ cfg, filled, initial }),
    );
    figures.push(...browserFigures({ cfg, floors, local, remote, initial }));
    return done([]);
  } finally {
    await browser?.close();
    await server.stop();
  }
}
