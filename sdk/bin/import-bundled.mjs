/**
 * Imports TypeScript sources on Node 20, which cannot strip types: esbuild (present in this
 * repository through wrangler and vitest) bundles them in memory for Node, and the bundle is
 * imported from a data URL. `source` is esbuild's `entryPoints` or `stdin` option.
 */
export async function importBundled(source) {
  let esbuild;
  try {
    esbuild = await import("esbuild");
  } catch {
    throw new Error("hearth: this Node cannot run TypeScript; use Node ≥ 22.18, or install esbuild");
  }
  const out = await esbuild.build({
    ...source,
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
