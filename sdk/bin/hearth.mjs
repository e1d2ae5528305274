#!/usr/bin/env node
/**
 * `npx hearth types ...`: see sdk/src/types/cli.ts. The SDK ships TypeScript sources (no build
 * step yet), so this launcher imports them directly where Node strips types itself, and
 * otherwise (Node 20) bundles the CLI in memory with esbuild, which this repository has
 * (through wrangler and vitest). A published package would point `bin` at compiled JavaScript.
 */
import { fileURLToPath } from "node:url";
import { importBundled } from "./import-bundled.mjs";

const entry = fileURLToPath(new URL("../src/types/cli.ts", import.meta.url));

async function load() {
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
