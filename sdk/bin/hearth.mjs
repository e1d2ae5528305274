#!/usr/bin/env node
/**
 * `npx hearth types ...`: see sdk/src/types/cli.ts. A published package runs the compiled CLI
 * in dist/ (`npm run build -w @hearth/sdk`). In this repository, without a build, it imports
 * the TypeScript sources directly where Node strips types itself, and otherwise (Node 20)
 * bundles the CLI in memory with esbuild, which this repository has (through wrangler and vitest).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { importBundled } from "./import-bundled.mjs";

const built = new URL("../dist/sdk/src/types/cli.js", import.meta.url);
const entry = fileURLToPath(new URL("../src/types/cli.ts", import.meta.url));

async function load() {
  if (existsSync(built)) return import(built.href);
  try {
    return await import(entry);
  } catch (err) {
    if (err?.code !== "ERR_UNKNOWN_FILE_EXTENSION") throw err;
  }
  return importBundled({ entryPoints: [entry] });
}

const { main } = await load();
process.exitCode = await main(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
});
