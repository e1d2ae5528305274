#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [-- <name>...]`: runs each `bench/*.bench.mjs` in turn and writes
 * `bench/results/<name>.md` and `<name>.json`, then the index `bench/results/RESULTS.md` and the
 * card `bench/results/index.html` (charts, one static file) from every json file present.
 * `node bench/run.mjs --card-only` rebuilds RESULTS.md and index.html without running anything.
 *
 * A bench module exports `title` and a default `async ({ quick, log }) => ({ markdown,
 * failedSteps, figures? })`. A bench that throws is reported in its results file; whatever it
 * started is stopped (bench/lib/cleanup.mjs).
 *
 * `figures` (optional) is what the card charts: one entry per shape, Hearth beside its floor or
 * peer measured in the same run. Build them with bench/lib/figures.mjs (`figure`,
 * `latencyFigure`; both return null for a missing value, so `.filter(Boolean)` drops the shapes
 * whose step failed):
 *   { shape: string,            what was measured ("point read by primary key, 10,000 rows")
 *     unit: string,             of hearth and peer: "ms", "rows/s", "B gzip", ...
 *     hearth: number,           Hearth's value
 *     peer: number,             the floor's or peer's value, same unit, same run
 *     peerName: string,         "PostgreSQL 15 (Debian)", "better-sqlite3", "GET /health", ...
 *     peerKind: "floor"|"peer", floor: a lower bound (the platform or storage alone); peer:
 *                               another system doing the same job
 *     lowerIsBetter: boolean,   sets win/loss: ratio = hearth ÷ peer, a tie is within 5 %
 *     stat?: string,            which statistic hearth/peer are ("p50", "median of 3")
 *     p50?, p99?: { hearth, peer },  latency percentiles, ms (latencyFigure fills both)
 *     note?: string }           one line of context shown under the shape
 * A figure that is malformed is left out of the card with a warning, never a crash.
 *
 * The json file per bench: { name, title, status, durationSeconds, machine, mode ("quick" |
 * "full"), date, figures }. Benches not run this time keep their json, and the card shows them
 * with their own date and mode. So a bench joins the card (e.g. storage-files or vectors) by
 * returning `figures` from its default export; its next `node bench/run.mjs <name>` writes its
 * json, and the card picks it up. Until then it is listed without figures.
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { loadResults, resultsMarkdown } from "./lib/card.mjs";
import { cardHtml } from "./lib/card-html.mjs";
import { installSignalCleanup, runCleanup } from "./lib/cleanup.mjs";
import { validFigures } from "./lib/figures.mjs";
import { machineInfo, machineMarkdown } from "./lib/machine.mjs";
import { errorBlock } from "./lib/markdown.mjs";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = path.join(BENCH_DIR, "results");
const OPTIONS = ["--quick", "--card-only"];

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const cardOnly = args.includes("--card-only");
const only = args.filter((a) => !a.startsWith("--"));
const unknown = args.filter((a) => a.startsWith("--") && !OPTIONS.includes(a));
if (unknown.length > 0 || (cardOnly && (quick || only.length > 0))) {
  console.error(
    `usage: node bench/run.mjs [--quick] [bench names...] | node bench/run.mjs --card-only${unknown.length ? `; unknown option ${unknown.join(" ")}` : ""}`,
  );
  process.exit(2);
}

const log = (line) => console.error(line);
installSignalCleanup();
await mkdir(RESULTS_DIR, { recursive: true });

const names = cardOnly
  ? []
  : (await readdir(BENCH_DIR))
      .filter((f) => f.endsWith(".bench.mjs"))
      .map((f) => f.slice(0, -".bench.mjs".length))
      .filter((name) => only.length === 0 || only.includes(name))
      .sort();
if (!cardOnly && names.length === 0) {
  console.error(`no benchmark matches ${only.join(", ")}`);
  process.exit(2);
}

const machine = machineInfo();
const mode = quick ? "quick" : "full";
const footer = `\n---\n\n${machineMarkdown(machine)}\n- Mode: ${quick ? "quick (`--quick`)" : "full"}\n`;
const statuses = [];

for (const name of names) {
  log(`bench ${name}${quick ? " (quick)" : ""}`);
  const t0 = Date.now();
  const date = new Date().toISOString();
  let markdown;
  let status;
  let figures = [];
  let title = name;
  try {
    const mod = await import(pathToFileURL(path.join(BENCH_DIR, `${name}.bench.mjs`)).href);
    title = mod.title ?? name;
    const result = await mod.default({ quick, log });
    markdown = result.markdown;
    figures = validFigures(result.figures, (m) => log(`bench ${name}: ${m}`));
    status =
      result.failedSteps.length === 0
        ? "ok"
        : `${result.failedSteps.length} step(s) failed: ${result.failedSteps.join("; ")}`;
  } catch (err) {
    markdown = `# ${name}\n\n${errorBlock("The benchmark", err)}\n`;
    status = `failed: ${String(err?.message ?? err).split("\n")[0]}`;
  } finally {
    await runCleanup();
  }
  const durationSeconds = Math.round((Date.now() - t0) / 1000);
  await writeFile(path.join(RESULTS_DIR, `${name}.md`), `${markdown}\n${footer}`);
  const json = { name, title, status, durationSeconds, machine, mode, date, figures };
  await writeFile(path.join(RESULTS_DIR, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
  statuses.push(status);
  log(
    `bench ${name}: ${status} (${durationSeconds} s, ${figures.length} figures) → bench/results/${name}.md`,
  );
}

// The card: every json present, this run's and earlier ones (each marked with its date).
const results = await loadResults(RESULTS_DIR, log);
const latest = results
  .map((r) => r.json)
  .filter(Boolean)
  .sort((a, b) => String(b.date).localeCompare(String(a.date)))[0];
const cardMachine = cardOnly ? (latest?.machine ?? machine) : machine;
const cardMode = cardOnly ? "each bench's own (see the table)" : mode;
const titles = Object.fromEntries(results.map((r) => [r.name, r.json?.title ?? r.name]));
await writeFile(
  path.join(RESULTS_DIR, "RESULTS.md"),
  resultsMarkdown({ results, ranNow: names, machine: cardMachine, mode: cardMode, cardOnly }),
);
await writeFile(
  path.join(RESULTS_DIR, "index.html"),
  await cardHtml({ results, ranNow: names, titles, generatedAt: new Date().toISOString().slice(0, 16) }),
);
log("wrote bench/results/RESULTS.md and bench/results/index.html");
process.exit(statuses.every((s) => s === "ok") ? 0 : 1);
