/**
 * Bundle size of the Hearth SDK's core client against supabase-js, measured in the same run
 * with the same bundler and settings: esbuild (the repository's, through wrangler and vitest),
 * browser platform, ESM, minified, tree-shaken, then gzip (zlib, level 9) and brotli (zlib,
 * quality 11). Entries:
 * - `export { createClient } from "@hearth/sdk"`: what an app that imports the client pays;
 * - the whole of `sdk/src/index.ts`: every export (realtime, sync, crypto once they are exported);
 * - `export { createClient } from "@supabase/supabase-js"`: the peer (it also carries auth,
 *   realtime, storage and functions clients, which createClient builds eagerly);
 * - `export { PostgrestClient } from "@supabase/postgrest-js"`: the floor, the query builder
 *   both clients reuse.
 * The Hearth bundle is also checked for server code (workers/, durable-objects/), which the
 * SDK must never import.
 * Then the sync engine against `npm start` (bench/lib/sdk-sync.mjs): live-query latency for a
 * local and a remote write, and the initial sync of 10,000 rows, each beside its floor.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { figure } from "./lib/figures.mjs";
import { errorBlock, table } from "./lib/markdown.mjs";
import { syncSection } from "./lib/sdk-sync.mjs";
import { stepRunner } from "./lib/steps.mjs";

export const title = "SDK: bundle size, live queries, initial sync";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SDK_INDEX = path.join(ROOT, "sdk/src/index.ts");

const ENTRIES = [
  { name: "Hearth `createClient`", code: `export { createClient } from ${JSON.stringify(SDK_INDEX)};` },
  { name: "Hearth `sdk/src/index.ts` (all exports)", code: `export * from ${JSON.stringify(SDK_INDEX)};` },
  { name: "supabase-js `createClient`", code: `export { createClient } from "@supabase/supabase-js";` },
  {
    name: "postgrest-js `PostgrestClient` (floor)",
    code: `export { PostgrestClient } from "@supabase/postgrest-js";`,
  },
];

const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const times = (a, b) => `${(a / b).toFixed(2)}×`;

/** Bytes each package or SDK folder contributes to a bundle (esbuild's metafile). */
function contributions(metafile) {
  const out = Object.values(metafile.outputs)[0];
  const by = new Map();
  for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) {
    const rel = path.relative(ROOT, path.resolve(ROOT, input));
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(rel)?.[1];
    const key = pkg ?? rel.split(path.sep).slice(0, 3).join("/");
    by.set(key, (by.get(key) ?? 0) + bytesInOutput);
  }
  return [...by].sort((a, b) => b[1] - a[1]);
}

async function bundle(esbuild, entry) {
  const result = await esbuild.build({
    stdin: { contents: entry.code, resolveDir: ROOT, sourcefile: "entry.js", loader: "js" },
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    minify: true,
    treeShaking: true,
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const code = result.outputFiles[0].contents;
  return {
    name: entry.name,
    minified: code.byteLength,
    gzip: gzipSync(code, { level: 9 }).byteLength,
    brotli: brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).byteLength,
    inputs: Object.keys(result.metafile.inputs),
    parts: contributions(result.metafile),
  };
}

export default async function run({ quick, log }) {
  const { step, failedSteps } = stepRunner(log);
  const esbuild = await import("esbuild");
  const sizes = [];
  const errors = [];
  for (const entry of ENTRIES) {
    const r = await step(`bundle ${entry.name}`, () => bundle(esbuild, entry));
    if (r.ok) sizes.push(r.value);
    else errors.push(errorBlock(entry.name, r.error));
  }
  const byName = (prefix) => sizes.find((s) => s.name.startsWith(prefix));
  const core = byName("Hearth `createClient`");
  const all = byName("Hearth `sdk/src/index.ts`");
  const supabase = byName("supabase-js");
  const floor = byName("postgrest-js");

  const serverCode = await step("no server code in the SDK bundle", async () => {
    const bad = (all?.inputs ?? []).filter((p) => /(^|\/)(workers|durable-objects)\//.test(p));
    if (bad.length > 0) throw new Error(`the SDK bundle includes server code: ${bad.join(", ")}`);
    return all ? all.inputs.length : 0;
  });

  const rows = sizes.map((s) => [
    s.name,
    kb(s.minified),
    `${s.gzip.toLocaleString("en")} B (${kb(s.gzip)})`,
    `${s.brotli.toLocaleString("en")} B`,
    supabase ? times(s.gzip, supabase.gzip) : "–",
  ]);
  const lines = [
    `# ${title}${quick ? " (quick)" : ""}`,
    "",
    "## Bundle size",
    "",
    `esbuild ${esbuild.version}: browser platform, ESM, \`minify\`, tree-shaken; gzip level 9 and brotli quality 11 (zlib). Measured in one run, so the ratios compare like with like.`,
    "",
    table(["Bundle", "Minified", "Gzip", "Brotli", "Gzip vs supabase-js"], rows),
    "",
  ];
  if (core && supabase) {
    lines.push(
      `**Core client: ${core.gzip.toLocaleString("en")} B gzip, ${times(core.gzip, supabase.gzip)} the size of supabase-js's \`createClient\` (${supabase.gzip.toLocaleString("en")} B).**`,
      "",
    );
  }
  if (core && floor) {
    lines.push(
      `Of the core client, postgrest-js (the query builder, reused as is) is the floor: ${floor.gzip.toLocaleString("en")} B gzip on its own; Hearth's own code (retries, typed errors, account and app sign-in with PKCE, session storage and refresh) adds ${(core.gzip - floor.gzip).toLocaleString("en")} B gzip.`,
      "",
      "supabase-js's `createClient` also builds its realtime, storage and functions clients (they are not tree-shaken away), so the comparison is what each `createClient` costs an app, not feature for feature.",
      "",
    );
  }
  for (const s of [core, all].filter(Boolean)) {
    lines.push(
      `Largest parts of ${s.name}, in minified bytes before compression:`,
      "",
      table(
        ["Part", "Bytes"],
        s.parts
          .filter(([, v]) => v > 0)
          .slice(0, 8)
          .map(([k, v]) => [k, v.toLocaleString("en")]),
      ),
      "",
    );
  }
  lines.push(
    serverCode.ok
      ? `Server code check: none of the ${serverCode.value} files in the SDK bundle is under \`workers/\` or \`durable-objects/\`.`
      : errorBlock("The server code check", serverCode.error),
    "",
    ...errors,
  );
  const figures = [];
  const gzipFigure = (shape, hearth, peer, peerName, peerKind, note) =>
    hearth && peer
      ? figure({
          shape,
          unit: "B gzip",
          hearth: hearth.gzip,
          peer: peer.gzip,
          peerName,
          peerKind,
          lowerIsBetter: true,
          note,
        })
      : null;
  figures.push(
    gzipFigure(
      "SDK bundle: createClient",
      core,
      supabase,
      "supabase-js createClient",
      "peer",
      "esbuild, browser ESM, minified, tree-shaken, gzip -9; supabase-js's createClient also builds its realtime, storage and functions clients",
    ),
    gzipFigure(
      "SDK bundle: every export (realtime, sync, crypto)",
      all,
      supabase,
      "supabase-js createClient",
      "peer",
    ),
    gzipFigure(
      "SDK bundle: createClient",
      core,
      floor,
      "postgrest-js PostgrestClient (the query builder it reuses)",
      "floor",
    ),
  );
  lines.push(...(await syncSection({ quick, step, figures })));
  return { markdown: lines.join("\n"), failedSteps, figures: figures.filter(Boolean) };
}
