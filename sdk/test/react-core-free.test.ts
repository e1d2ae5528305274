/**
 * React is an optional peer of the SDK: only `@hearth/sdk/react` may import it. Bundling the
 * core entry (sdk/src/index.ts) with esbuild, React not marked external, must pull in no
 * module of react or react-dom; the React entry, bundled the same way, does (so the check
 * can fail).
 */
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const sdk = (path: string) => fileURLToPath(new URL(`../src/${path}`, import.meta.url));

/** Every input file esbuild bundled from `entry`. */
async function inputsOf(entry: string): Promise<string[]> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    metafile: true,
    format: "esm",
    platform: "browser",
    logLevel: "silent",
  });
  return Object.keys(result.metafile.inputs);
}

const isReact = (input: string) => /(^|\/)node_modules\/(react|react-dom|scheduler)\//.test(input);

describe("the core bundle", () => {
  it("never reaches react", async () => {
    const inputs = await inputsOf(sdk("index.ts"));
    // The whole graph, dependencies included (a dependency importing react would count).
    expect(inputs.some((i) => i.includes("sdk/src/sync/engine.ts"))).toBe(true);
    expect(inputs.some((i) => i.includes("node_modules/@supabase/realtime-js/"))).toBe(true);
    expect(inputs.filter(isReact)).toEqual([]);
    expect(inputs.filter((i) => i.includes("sdk/src/react/"))).toEqual([]);
  });

  it("while the React entry does", async () => {
    const inputs = await inputsOf(sdk("react/index.ts"));
    expect(inputs.some(isReact)).toBe(true);
  });
});
