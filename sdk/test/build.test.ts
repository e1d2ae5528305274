/**
 * The publishing build (`npm run build -w @hearth/sdk`, sdk/tsconfig.build.json) run into a
 * temporary package laid out as `npm pack` ships it (package.json, dist/, bin/): the emitted
 * JavaScript loads in plain Node with its `.ts` imports rewritten to `.js`, declarations sit
 * beside it, only the React entry imports React, and the `hearth` command runs from dist/.
 */
import { execFile } from "node:child_process";
import { copyFile, cp, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const sdk = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const repo = path.resolve(sdk, "..");
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");

function run(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd }, (err, stdout, stderr) => {
      resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

let pkg: string;
let dist: string;

beforeAll(async () => {
  pkg = await mkdtemp(path.join(tmpdir(), "hearth-sdk-build-"));
  dist = path.join(pkg, "dist");
  const build = await run([tsc, "-p", path.join(sdk, "tsconfig.build.json"), "--outDir", dist], repo);
  expect(build.stdout + build.stderr).toBe("");
  await copyFile(path.join(sdk, "package.json"), path.join(pkg, "package.json"));
  await cp(path.join(sdk, "bin"), path.join(pkg, "bin"), { recursive: true });
  // The SDK's dependencies, as an install would provide them.
  await symlink(path.join(repo, "node_modules"), path.join(pkg, "node_modules"), "dir");
}, 20_000);

afterAll(async () => {
  if (pkg) await rm(pkg, { recursive: true, force: true });
});

describe("the publishing build", () => {
  it("emits JavaScript that Node imports, with declarations beside it", async () => {
    const script = `
      const sdk = await import("./dist/sdk/src/index.js");
      const crypto = new sdk.HearthCryptoError("HEARTH_BAD_KEY", "x");
      console.log(JSON.stringify({
        version: sdk.SDK_VERSION,
        createClient: typeof sdk.createClient,
        createSync: typeof sdk.createSync,
        family: crypto instanceof sdk.HearthError,
        unknownTable: sdk.CLIENT_ERROR_CODES.HEARTH_SYNC_UNKNOWN_TABLE,
      }));`;
    const loaded = await run(["--input-type=module", "-e", script], pkg);
    expect(loaded.stderr).toBe("");
    const version = JSON.parse(await readFile(path.join(sdk, "package.json"), "utf8")).version;
    expect(JSON.parse(loaded.stdout)).toEqual({
      version,
      createClient: "function",
      createSync: "function",
      family: true,
      unknownTable: "HEARTH_SYNC_UNKNOWN_TABLE",
    });

    const files = (await filesUnder(dist)).map((f) => path.relative(dist, f));
    for (const entry of ["sdk/src/index", "sdk/src/react/index"]) {
      expect(files).toContain(`${entry}.js`);
      expect(files).toContain(`${entry}.d.ts`);
    }
    // publishConfig points at files the build makes.
    const { publishConfig } = JSON.parse(await readFile(path.join(pkg, "package.json"), "utf8"));
    const targets = Object.values(publishConfig.exports).flatMap((e) => Object.values(e as object));
    for (const target of [...targets, publishConfig.types]) {
      expect(files).toContain(path.relative("./dist", target as string));
    }
  });

  it("rewrites relative imports to .js, and only dist/sdk/src/react/ imports React", async () => {
    const offenders: string[] = [];
    const reactUsers: string[] = [];
    for (const file of await filesUnder(dist)) {
      const js = file.endsWith(".js");
      if (!js && !file.endsWith(".d.ts")) continue;
      const source = await readFile(file, "utf8");
      const specs = source.matchAll(
        /^(?:import|export)\b[^;]*?\bfrom\s*"([^"]+)"|^import\s*"([^"]+)"|\bimport\(\s*"([^"]+)"/gm,
      );
      for (const [, a, b, c] of specs) {
        const spec = (a ?? b ?? c)!;
        // Declarations keep `.ts`, which TypeScript resolves to the `.d.ts` beside them.
        if (js && spec.startsWith(".") && !spec.endsWith(".js")) offenders.push(`${file}: ${spec}`);
        if (spec === "react" || spec.startsWith("react/")) reactUsers.push(path.relative(dist, file));
      }
    }
    expect(offenders).toEqual([]);
    expect(reactUsers.length).toBeGreaterThan(0); // the pattern does find React's imports
    const reactDir = path.join("sdk", "src", "react") + path.sep;
    expect(reactUsers.filter((f) => !f.startsWith(reactDir))).toEqual([]);
  });

  it("the hearth command runs the compiled CLI from dist/", async () => {
    const schema = path.join(sdk, "test/fixtures/schema.json");
    // No TypeScript sources next to this bin/: it can only have used dist/.
    const out = await run([path.join(pkg, "bin/hearth.mjs"), "types", "--schema", schema], pkg);
    expect(out.stderr).toBe("");
    expect(out.code).toBe(0);
    expect(out.stdout).toContain("export type Database");
  });
});
