/**
 * The SDK's sync engine and replicas for the bench, in Node 20: the SDK ships TypeScript
 * sources, so they are bundled in memory with the repository's esbuild (as sdk/bin/hearth.mjs
 * does) and imported from a data URL. `ws` and `fake-indexeddb` are imported by the bench
 * itself: the SDK takes them as options.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { importBundled } from "../../sdk/bin/import-bundled.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const from = (rel) => JSON.stringify(path.join(ROOT, rel));

const ENTRY = [
  `export { createSync } from ${from("sdk/src/sync/engine.ts")};`,
  `export { MemoryReplica } from ${from("sdk/src/replica/memory.ts")};`,
  `export { IndexedDbReplica } from ${from("sdk/src/replica/indexeddb.ts")};`,
].join("\n");

/** `{ createSync, MemoryReplica, IndexedDbReplica }` from sdk/src. */
export function loadSdk() {
  return importBundled({
    stdin: { contents: ENTRY, resolveDir: ROOT, sourcefile: "sdk-bench-entry.js", loader: "js" },
  });
}
