#!/usr/bin/env node
/**
 * `npm run bench [-- --quick] [-- <name>...]`: runs each `bench/*.bench.mjs` in turn and writes
 * `bench/results/<name>.md` plus the index `bench/results/RESULTS.md` (machine, date, status).
 * A bench module's default export is `async ({ quick, log }) => ({ markdown, failedSteps })`.
 * A bench that throws is reported in its results file; whatever it started is stopped.
 */
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { installSignalCleanup, runCleanup } from "./lib/cleanup.mjs";
import { machineInfo, machineMarkdown } from "./lib/machine.mjs";
import { errorBlock, table } from "./lib/markdown.mjs";

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const RESULTS_DIR = path.join(BENCH_DIR, "results");

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = args.filter((a) => !a.startsWith("--"));
const unknown = args.filter((a) => a.startsWith("--") && a !== "--quick");
if (unknown.length > 0) {
  console.error(`usage: node bench/run.mjs [--quick] [bench names...]; unknown option ${unknown.join(" ")}`);
  process.exit(2);
}

const log = (line) => console.error(line);
installSignalCleanup();

const names = (await readdir(BENCH_DIR))
  .filter((f) => f.endsWith(".bench.mjs"))
  .map((f) => f.slice(0, -".bench.mjs".length))
  .filter((name) => only.length === 0 || only.includes(name))
  .sort();
if (names.length === 0) {
  console.error(`no benchmark matches ${only.join(", ")}`);
  process.exit(2);
}

await mkdir(RESULTS_DIR, { recursive: true });
const machine = machineInfo();
const footer = `\n---\n\n${machineMarkdown(machine)}\n- Mode: ${quick ? "quick (`--quick`)" : "full"}\n`;
const summary = [];

for (const name of names) {
  log(`bench ${name}${quick ? " (quick)" : ""}`);
  const t0 = Date.now();
  let markdown;
  let status;
  try {
    const mod = await import(pathToFileURL(path.join(BENCH_DIR, `${name}.bench.mjs`)).href);
    const result = await mod.default({ quick, log });
    markdown = result.markdown;
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
  const seconds = ((Date.now() - t0) / 1000).toFixed(0);
  await writeFile(path.join(RESULTS_DIR, `${name}.md`), `${markdown}\n${footer}`);
  summary.push([`[${name}](${name}.md)`, status, `${seconds} s`]);
  log(`bench ${name}: ${status} (${seconds} s) → bench/results/${name}.md`);
}

// Benches not run this time keep their earlier results file: list them too, marked as such.
for (const file of (await readdir(RESULTS_DIR)).sort()) {
  const name = file.slice(0, -".md".length);
  if (!file.endsWith(".md") || file === "RESULTS.md" || names.includes(name)) continue;
  summary.push([`[${name}](${file})`, "not run this time (earlier results)", "–"]);
}

const index = [
  "# Benchmark results",
  "",
  `Written by \`npm run bench${quick ? " -- --quick" : ""}\`. Figures are only comparable within one run: each bench measures its floors and peers alongside.`,
  "",
  "## Machine",
  "",
  machineMarkdown(machine),
  `- Mode: ${quick ? "quick (`--quick`)" : "full"}`,
  "",
  "## Benchmarks",
  "",
  table(["Bench", "Status", "Duration"], summary),
  "",
].join("\n");
await writeFile(path.join(RESULTS_DIR, "RESULTS.md"), index);
log(`wrote bench/results/RESULTS.md`);
process.exit(summary.every(([, status]) => status === "ok") ? 0 : 1);
