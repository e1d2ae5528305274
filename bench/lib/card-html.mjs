/**
 * `bench/results/index.html`: the results card as one static file (inline CSS, Chart.js's UMD
 * build inlined from node_modules, the figures as inline JSON), so it opens from disk with no
 * server and no network. Every string from a bench is escaped; the figures reach the page's
 * script as JSON with `<` escaped, never as markup.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { headlineRows, REPRODUCE, tally } from "./card.mjs";
import { formatRatio, formatValue } from "./figures.mjs";

const require = createRequire(import.meta.url);

export const esc = (v) =>
  String(v ?? "")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");

/** Escaped text whose markdown code spans (`x`) become <code> elements. */
const inline = (v) => esc(v).replace(/`([^`]+)`/g, "<code>$1</code>");
const plain = (v) => String(v ?? "").replaceAll("`", "");

const LABEL_WIDTH = 48;
/** A chart label as lines of at most LABEL_WIDTH characters (Chart.js draws an array as lines). */
function wrap(text) {
  const lines = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && `${line} ${word}`.length > LABEL_WIDTH) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines;
}

/** JSON safe inside a <script> element: no `</script>`, no `<!--`. */
const scriptJson = (v) =>
  JSON.stringify(v)
    .replaceAll("<", "\\u003c")
    .replaceAll("\u2028", "\\u2028")
    .replaceAll("\u2029", "\\u2029");

const CSS = `
:root { --hearth: #c2410c; --floor: #64748b; --peer: #0369a1; --win: #15803d; --loss: #b91c1c; --tie: #a16207; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1e293b; margin: 0; background: #f8fafc; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 6px; border-top: 1px solid #cbd5e1; padding-top: 20px; }
h3 { font-size: 15px; margin: 16px 0 4px; color: #475569; }
.sub { color: #475569; margin: 0 0 16px; }
.tally { display: flex; gap: 12px; margin: 12px 0 20px; }
.tally div { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 8px 16px; }
.tally b { font-size: 22px; display: block; }
.win { color: var(--win); } .loss { color: var(--loss); } .tie { color: var(--tie); }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #e2e8f0; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f1f5f9; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.meta { color: #475569; font-size: 13px; }
.badge { display: inline-block; font-size: 12px; border-radius: 4px; padding: 0 6px; margin-left: 6px; background: #e2e8f0; color: #334155; font-weight: normal; }
.badge.old { background: #fef3c7; color: #92400e; }
.badge.bad { background: #fee2e2; color: #991b1b; }
.chart { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 8px 12px; margin: 8px 0; position: relative; }
code, pre { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; }
pre { background: #0f172a; color: #e2e8f0; padding: 10px 14px; border-radius: 6px; overflow-x: auto; }
ul.machine { margin: 4px 0; }
`;

// Runs in the page: one chart per unit per bench, Hearth beside its floor/peer, ratio labels.
const PAGE_SCRIPT = `
const data = JSON.parse(document.getElementById("card-data").textContent);
const css = getComputedStyle(document.documentElement);
const color = (name) => css.getPropertyValue("--" + name).trim();
// Hearth ÷ floor/peer and the verdict, written after each pair of bars.
const ratioLabels = (figures) => ({
  id: "ratioLabels",
  afterDatasetsDraw(chart) {
    const { ctx } = chart;
    const meta = chart.getDatasetMeta(0);
    const peerMeta = chart.getDatasetMeta(1);
    ctx.save();
    ctx.font = "bold 12px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    meta.data.forEach((bar, i) => {
      const f = figures[i];
      const x = Math.max(bar.x, peerMeta.data[i].x) + 6;
      ctx.fillStyle = color(f.result === "–" ? "floor" : f.result);
      ctx.fillText(f.ratioText + " " + f.result, x, (bar.y + peerMeta.data[i].y) / 2);
    });
    ctx.restore();
  },
});
const isPowerOf10 = (v) => Math.abs(Math.log10(v) - Math.round(Math.log10(v))) < 1e-9;
for (const group of data.groups) {
  const canvas = document.getElementById(group.id);
  const values = group.figures.flatMap((f) => [f.hearth, f.peer]).filter((v) => v > 0);
  const spread = Math.max(...values) / Math.min(...values);
  const log = spread > 30;
  new Chart(canvas, {
    type: "bar",
    data: {
      labels: group.figures.map((f) => f.label),
      datasets: [
        { label: "Hearth", data: group.figures.map((f) => f.hearth), backgroundColor: color("hearth") },
        {
          label: "floor / peer",
          data: group.figures.map((f) => f.peer),
          backgroundColor: group.figures.map((f) => color(f.peerKind === "floor" ? "floor" : "peer")),
        },
      ],
    },
    options: {
      indexAxis: "y",
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      layout: { padding: { right: 90 } },
      plugins: {
        legend: {
          position: "top",
          align: "start",
          onClick: null,
          labels: {
            generateLabels: () =>
              [
                ["Hearth", "hearth"],
                ["floor", "floor"],
                ["peer", "peer"],
              ].map(([text, name]) => ({ text, fillStyle: color(name), strokeStyle: color(name), lineWidth: 0 })),
          },
        },
        title: { display: true, text: group.title, align: "start" },
        tooltip: { callbacks: { label: (c) => c.dataset.label + ": " + group.figures[c.dataIndex][c.datasetIndex === 0 ? "hearthText" : "peerText"] } },
      },
      scales: {
        x: log
          ? {
              type: "logarithmic",
              min: 10 ** Math.floor(Math.log10(Math.min(...values))),
              max: 10 ** Math.ceil(Math.log10(Math.max(...values))),
              ticks: { callback: (v) => (isPowerOf10(v) ? Number(v).toLocaleString("en-US") : "") },
              title: { display: true, text: group.axis + " (log scale)" },
            }
          : { type: "linear", beginAtZero: true, title: { display: true, text: group.axis } },
        y: { ticks: { autoSkip: false, font: { size: 11 } } },
      },
    },
    plugins: [ratioLabels(group.figures)],
  });
}
`;

const tallyBox = (title, t) =>
  `<div><span class="meta">${esc(title)}</span><b><span class="win">${t.win} won</span> · <span class="tie">${t.tie} tied</span> · <span class="loss">${t.loss} lost</span></b></div>`;

function machineList(machines) {
  return machines
    .map(
      ({ m, benches }) =>
        `<ul class="machine"><li>${esc(m.cpu)}, ${esc(m.cores)} cores, ${esc(m.memoryGB)} GB RAM; ${esc(m.os)}; Node ${esc(m.node)}; PostgreSQL client: ${esc(m.postgres)}</li><li>Benches measured on it: ${esc(benches.join(", "))}</li></ul>`,
    )
    .join("\n");
}

/** Groups the machines the json files were measured on (usually one). */
function machinesOf(results) {
  const by = new Map();
  for (const { name, json } of results) {
    if (!json?.machine) continue;
    const m = json.machine;
    const key = [m.cpu, m.cores, m.memoryGB, m.os, m.node].join("|");
    if (!by.has(key)) by.set(key, { m, benches: [] });
    by.get(key).benches.push(name);
  }
  return [...by.values()];
}

function statusBadges(name, json, ranNow) {
  const badges = [`<span class="badge">${esc(json.mode)}</span>`];
  const when = esc(String(json.date).slice(0, 16).replace("T", " "));
  badges.push(
    ranNow.includes(name)
      ? `<span class="badge">${when} UTC, this run</span>`
      : `<span class="badge old">${when} UTC, earlier run</span>`,
  );
  if (json.status !== "ok") badges.push(`<span class="badge bad">${esc(json.status)}</span>`);
  return badges.join("");
}

function figureTable(rows) {
  const tr = rows.map(({ f, ratio, result }) => {
    const tail = f.p99
      ? `${esc(formatValue(f.p99.hearth, f.unit))} / ${esc(formatValue(f.p99.peer, f.unit))}`
      : "–";
    return `<tr><td>${inline(f.shape)}${f.note ? `<div class="meta">${inline(f.note)}</div>` : ""}</td><td class="num">${esc(formatValue(f.hearth, f.unit))}${f.stat ? ` ${esc(f.stat)}` : ""}</td><td class="num">${esc(formatValue(f.peer, f.unit))}</td><td>${inline(f.peerName)} <span class="meta">(${esc(f.peerKind)})</span></td><td class="num">${tail}</td><td class="num">${esc(formatRatio(ratio))}</td><td class="${esc(result)}">${esc(result)} <span class="meta">(${f.lowerIsBetter ? "lower" : "higher"} is better)</span></td></tr>`;
  });
  return `<table><thead><tr><th>Shape</th><th>Hearth</th><th>Floor / peer</th><th>Which</th><th>p99 Hearth / it</th><th>Hearth ÷ it</th><th>Result</th></tr></thead><tbody>${tr.join("")}</tbody></table>`;
}

/** The whole card. */
export async function cardHtml({ results, ranNow, titles, generatedAt }) {
  // The UMD build is not in the package's exports map: find it beside the main entry.
  const umd = path.join(path.dirname(require.resolve("chart.js")), "chart.umd.min.js");
  const chartJs = (await readFile(umd, "utf8")).replaceAll("</script", "<\\/script");
  const rows = headlineRows(results);
  const groups = [];
  const sections = [];
  for (const { name, json, md } of results) {
    const title = titles[name] ?? name;
    const head = `<h2 id="${esc(name)}">${esc(title)} <span class="meta">(bench/${esc(name)}.bench.mjs)</span></h2>`;
    const link = `<p class="meta">All of its tables: <a href="${esc(name)}.md">${esc(name)}.md</a></p>`;
    if (!json) {
      sections.push(
        `${head}<p class="meta">No figures yet: this bench does not return <code>figures</code>, or its results were written before it did${md?.date ? ` (last run ${esc(md.date.slice(0, 16).replace("T", " "))} UTC, ${esc(md.mode ?? "?")})` : ""}.</p>${link}`,
      );
      continue;
    }
    const mine = rows.filter((r) => r.bench === name);
    const parts = [`${head}<p>${statusBadges(name, json, ranNow)}</p>`];
    if (mine.length === 0) parts.push(`<p class="meta">This bench returned no figures.</p>`);
    const units = [...new Set(mine.map((r) => r.f.unit))];
    for (const unit of units) {
      const inUnit = mine.filter((r) => r.f.unit === unit);
      const id = `chart-${groups.length}`;
      const lowerIsBetter = inUnit.every((r) => r.f.lowerIsBetter);
      const higher = inUnit.every((r) => !r.f.lowerIsBetter);
      groups.push({
        id,
        title: `${title}: ${unit}`,
        axis: `${unit}${lowerIsBetter ? ", lower is better" : higher ? ", higher is better" : ""}`,
        figures: inUnit.map(({ f, ratio, result }) => ({
          label: wrap(`${plain(f.shape)} — vs ${plain(f.peerName)}`),
          peerKind: f.peerKind,
          hearth: f.hearth,
          peer: f.peer,
          hearthText: formatValue(f.hearth, f.unit),
          peerText: formatValue(f.peer, f.unit),
          ratioText: formatRatio(ratio),
          result,
        })),
      });
      // Room for each label's lines (13 px each) or its two bars, whichever is taller.
      const rowHeights = groups.at(-1).figures.map((f) => Math.max(48, 13 * f.label.length + 14));
      const height = 110 + rowHeights.reduce((a, b) => a + b, 0);
      parts.push(
        `<div class="chart" style="height:${height}px"><canvas id="${id}" role="img" aria-label="${esc(`${title}: Hearth beside its floor or peer, ${unit}`)}"></canvas></div>`,
      );
    }
    if (mine.length > 0) parts.push(figureTable(mine));
    parts.push(link);
    sections.push(parts.join("\n"));
  }

  const machines = machinesOf(results);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hearth benchmark card</title>
<style>${CSS}</style>
</head>
<body>
<main>
<h1>Hearth benchmark card</h1>
<p class="sub">Each shape is Hearth beside its <b>floor</b> (a lower bound: the platform, the storage engine or the network alone; Hearth cannot beat it, the ratio is its overhead) or its <b>peer</b> (better-sqlite3, PostgreSQL from Debian, DuckDB, supabase-js, …) measured in the same run, on the same machine. Ratios are Hearth ÷ floor/peer; wins and losses are both listed. Card built ${esc(generatedAt)} UTC; every bench is marked with its own date and mode (quick runs use smaller sizes).</p>
<div class="tally">${tallyBox("Against peers", tally(rows.filter((r) => r.f.peerKind === "peer")))}${tallyBox("Against floors (the overhead)", tally(rows.filter((r) => r.f.peerKind === "floor")))}<div><b>${rows.length}</b>figures from ${results.filter((r) => r.json?.figures?.length).length} benches</div></div>
<h3>Machine</h3>
${machineList(machines)}
<h3>How to reproduce</h3>
<pre>${REPRODUCE.map(([what, cmd]) => `# ${esc(what)}\n${esc(cmd)}`).join("\n")}</pre>
<p class="meta">PostgreSQL is Debian's, started by the benches in a throwaway cluster; Hearth runs under <code>npm start</code> (wrangler dev, local workerd) on loopback. Text version: <a href="RESULTS.md">RESULTS.md</a>.</p>
${sections.join("\n")}
</main>
<script>${chartJs}</script>
<script type="application/json" id="card-data">${scriptJson({ groups })}</script>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
}
