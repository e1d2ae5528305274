/**
 * The results card's data: every `bench/results/<name>.json` written by bench/run.mjs, and the
 * index `RESULTS.md` built from them (status per bench, machine, and a headline table of every
 * figure). bench/lib/card-html.mjs renders the same data as `index.html`.
 */
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { formatRatio, formatValue, validFigures, verdict } from "./figures.mjs";
import { machineMarkdown } from "./machine.mjs";
import { table } from "./markdown.mjs";

export const REPRODUCE = [
  ["Everything (full sizes)", "npm install && npm run bench"],
  ["Everything, smaller sizes (a few minutes)", "npm install && npm run bench -- --quick"],
  ["Some benches only", "node bench/run.mjs --quick core sdk"],
  [
    "Rebuild this card from the json files present, without running anything",
    "node bench/run.mjs --card-only",
  ],
];

/**
 * Every bench with a results file: its json when there is one (figures, status, machine, mode,
 * date), else only the markdown's name (written before figures existed, or by a bench that
 * crashed before run.mjs could write json).
 */
export async function loadResults(dir, warn) {
  const files = (await readdir(dir)).sort();
  const names = new Set();
  for (const f of files) {
    if (f.endsWith(".json")) names.add(f.slice(0, -".json".length));
    else if (f.endsWith(".md") && f !== "RESULTS.md") names.add(f.slice(0, -".md".length));
  }
  const out = [];
  for (const name of [...names].sort()) {
    if (!files.includes(`${name}.json`)) {
      out.push({ name, json: null, md: await footerOf(path.join(dir, `${name}.md`)) });
      continue;
    }
    try {
      const json = JSON.parse(await readFile(path.join(dir, `${name}.json`), "utf8"));
      json.figures = validFigures(json.figures, (m) => warn(`${name}.json: ${m}`));
      out.push({ name, json });
    } catch (err) {
      warn(`${name}.json is not readable: ${err.message}`);
      out.push({ name, json: null });
    }
  }
  return out;
}

/** Date and mode from the footer run.mjs writes under a results file, for benches without json. */
async function footerOf(file) {
  const text = await readFile(file, "utf8").catch(() => "");
  return {
    date: /^- Date: (\S+)$/m.exec(text)?.[1] ?? null,
    mode: /^- Mode: (quick|full)/m.exec(text)?.[1] ?? null,
  };
}

const day = (iso) =>
  String(iso ?? "")
    .slice(0, 16)
    .replace("T", " ");

/** One line of the status table per bench; `ranNow` names the benches of this run. */
export function statusRows(results, ranNow) {
  return results.map(({ name, json, md }) => {
    const link = `[${name}](${name}.md)`;
    if (!json) {
      const when = md?.date ? `${day(md.date)} (earlier run)` : "–";
      return [link, "earlier results, no figures yet (no json)", md?.mode ?? "–", when, "–"];
    }
    const when = ranNow.includes(name) ? `${day(json.date)} (this run)` : `${day(json.date)} (earlier run)`;
    return [link, json.status, json.mode, when, `${json.durationSeconds} s`];
  });
}

/** Every figure of every bench, with its ratio and verdict. */
export function headlineRows(results) {
  const rows = [];
  for (const { name, json } of results) {
    for (const f of json?.figures ?? []) {
      const { ratio, result } = verdict(f);
      rows.push({ bench: name, mode: json.mode, f, ratio, result });
    }
  }
  return rows;
}

export function tally(rows) {
  const count = (r) => rows.filter((x) => x.result === r).length;
  return { win: count("win"), tie: count("tie"), loss: count("loss") };
}

/** RESULTS.md: how it was written, the machine, each bench's status, then the headline. */
export function resultsMarkdown({ results, ranNow, machine, mode, cardOnly }) {
  const rows = headlineRows(results);
  const peers = tally(rows.filter((r) => r.f.peerKind === "peer"));
  const floors = tally(rows.filter((r) => r.f.peerKind === "floor"));
  const stat = (f) => (f.stat ? ` ${f.stat}` : "");
  return [
    "# Benchmark results",
    "",
    cardOnly
      ? "Rebuilt by `node bench/run.mjs --card-only` from the json files in this folder (nothing was run). Figures are only comparable within one bench run: each bench measures its floors and peers alongside."
      : `Written by \`npm run bench${mode === "quick" ? " -- --quick" : ""}\`. Figures are only comparable within one bench run: each bench measures its floors and peers alongside.`,
    "",
    "The card with charts: [index.html](index.html) (one static file; open it from disk).",
    "",
    "## Machine",
    "",
    machineMarkdown(machine),
    `- Mode: ${mode === "quick" ? "quick (`--quick`)" : mode}`,
    "",
    "## Benchmarks",
    "",
    table(["Bench", "Status", "Mode", "Date (UTC)", "Duration"], statusRows(results, ranNow)),
    "",
    "## Headline",
    "",
    `Every figure the benches returned, Hearth beside its floor (a lower bound: what the platform, the storage engine or the network costs alone, so Hearth cannot beat it) or its peer (another system doing the same job), measured in the same run. Ratio is Hearth ÷ floor/peer; win, loss or tie (within 5 %) says which side is better for that unit. Against peers: ${peers.win} won, ${peers.tie} tied, ${peers.loss} lost; against floors: ${floors.win} won, ${floors.tie} tied, ${floors.loss} lost.`,
    "",
    table(
      ["Bench", "Shape", "Hearth", "Floor / peer", "Hearth ÷ it", "Result"],
      rows.map(({ bench, mode: m, f, ratio, result }) => [
        m === "quick" ? `${bench} (quick)` : bench,
        f.shape,
        `${formatValue(f.hearth, f.unit)}${stat(f)}`,
        `${formatValue(f.peer, f.unit)}${stat(f)}, ${f.peerName} (${f.peerKind})`,
        formatRatio(ratio),
        `${result}${f.lowerIsBetter ? " (lower is better)" : " (higher is better)"}`,
      ]),
    ),
    "",
    "## How to reproduce",
    "",
    ...REPRODUCE.map(([what, cmd]) => `- ${what}: \`${cmd}\``),
    "",
  ].join("\n");
}
