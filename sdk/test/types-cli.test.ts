/**
 * `hearth types` as a user runs it: the launcher `sdk/bin/hearth.mjs` in a child process, from a
 * schema file and from a live `GET {url}/schema` (a local HTTP server standing in for Hearth),
 * with the exit codes and messages of its failures.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const here = path.dirname(fileURLToPath(import.meta.url));
const bin = path.resolve(here, "../bin/hearth.mjs");
const schemaFile = path.join(here, "fixtures/schema.json");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function hearth(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
    });
  });
}

let server: Server;
let base: string;
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];

beforeAll(async () => {
  const schema = await readFile(schemaFile, "utf8");
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    if (req.headers.authorization !== "Bearer service-key") {
      res.writeHead(403, { "content-type": "application/json", "x-request-id": "r-403" });
      res.end(
        JSON.stringify({
          code: "HEARTH_FORBIDDEN",
          message: "The schema API needs the service key.",
          details: null,
          hint: "Send the project's serviceKey.",
        }),
      );
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "x-hearth-schema-version": "1" });
    res.end(schema);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
});

describe("hearth types", () => {
  it("--schema prints the Database type", async () => {
    const run = await hearth(["types", "--schema", schemaFile]);
    expect(run).toMatchObject({ code: 0, stderr: "" });
    expect(run.stdout).toBe(await readFile(path.join(here, "fixtures/database.ts"), "utf8"));
  });

  it("--url --key reads GET {url}/schema with the service key and writes --out", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "hearth-cli-"));
    try {
      const out = path.join(dir, "database.ts");
      const run = await hearth([
        "types",
        "--url",
        `${base}/p/abcdefghij0123456789`,
        "--key",
        "service-key",
        "--out",
        out,
      ]);
      expect(run).toEqual({ code: 0, stdout: "", stderr: `hearth types: wrote ${out}\n` });
      expect(await readFile(out, "utf8")).toBe(
        await readFile(path.join(here, "fixtures/database.ts"), "utf8"),
      );
      expect(seen.at(-1)).toMatchObject({
        url: "/p/abcdefghij0123456789/schema",
        headers: { apikey: "service-key", authorization: "Bearer service-key" },
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("takes the key from HEARTH_SERVICE_KEY, and --bigint number", async () => {
    const run = await hearth(["types", "--url", `${base}/p/abcdefghij0123456789`, "--bigint", "number"], {
      HEARTH_SERVICE_KEY: "service-key",
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain("          id: number;\n          author_id: string | null;");
  });

  it("a refused key exits 1 with the server's code and hint", async () => {
    const run = await hearth(["types", "--url", `${base}/p/abcdefghij0123456789`, "--key", "anon-key"]);
    expect(run).toEqual({
      code: 1,
      stdout: "",
      stderr:
        "hearth types: HEARTH_FORBIDDEN (HTTP 403): The schema API needs the service key.\nhint: Send the project's serviceKey.\n",
    });
  });

  it("usage mistakes exit 2 with the usage", async () => {
    for (const args of [
      [],
      ["types"],
      ["types", "--url", base, "--key", "k"],
      ["types", "--bogus"],
      ["nope"],
    ]) {
      const run = await hearth(args, { HEARTH_SERVICE_KEY: "" });
      expect(run.code).toBe(2);
      expect(run.stderr).toContain("Usage:");
    }
    const help = await hearth(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("hearth types --url <projectUrl> --key <serviceKey>");
  });
});
