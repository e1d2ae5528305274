#!/usr/bin/env node
/**
 * `npx hearth types ...`: see sdk/src/types/cli.ts. The SDK ships TypeScript sources (no build
 * step yet), so this launcher imports them directly where Node strips types itself, and
 * otherwise (Node 20) bundles the CLI in memory with esbuild, which this repository has
 * (through wrangler and vitest). A published package would point `bin` at compiled JavaScript.
 */
import { fileURLToPath } from "node:url";

const entry = fileURLToPath(new URL("../src/types/cli.ts", import.meta.url));

async function load() {
  try {
    return await import(entry);
  } catch (err) {
    if (err?.code !== "ERR_UNKNOWN_FILE_EXTENSION") throw err;
  }
  let esbuild;
  try {
    esbuild = await import("esbuild");
  } catch {
    throw new Error("hearth: this Node cannot run TypeScript; use Node ≥ 22.18, or install esbuild");
  }
  const out = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    write: false,
    logLevel: "silent",
  });
  const code = out.outputFiles[0].text;
  return import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
}

const { main } = await load();
process.exitCode = await main(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
});
