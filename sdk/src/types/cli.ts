/**
 * `hearth types`: writes the `Database` type of a project, from its live schema
 * (`--url <projectUrl> --key <serviceKey>`, reading `GET {url}/schema`) or from a schema file
 * (`--schema file.json`), to stdout or `--out file`. Node only (reads files and argv).
 */
import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { fetchWithRetry, resolveRetry } from "../client/retry.ts";
import { parseHearthUrl } from "../client/url.ts";
import { errorFromResponse, HearthError } from "../errors.ts";
import { schemaToTypeScript } from "./generate.ts";

export const USAGE = `Usage:
  hearth types --url <projectUrl> --key <serviceKey> [--out <file>] [--bigint number]
  hearth types --schema <schema.json> [--out <file>] [--bigint number]

Writes the TypeScript Database type of a Hearth project, for createClient<Database>(...).
  --url      the project URL, http(s)://host/p/<projectId>
  --key      the project's service key (or set HEARTH_SERVICE_KEY); GET {url}/schema needs it
  --schema   read the schema JSON from a file instead
  --out      write to this file instead of stdout
  --bigint   "number" to type bigint columns as number only (default: number | string)
`;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: Record<string, string | undefined>;
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

class UsageError extends Error {}

async function liveSchema(url: string, key: string, io: CliIo): Promise<unknown> {
  const { projectUrl } = parseHearthUrl(url);
  if (projectUrl === null) throw new UsageError(`--url must be a project URL (…/p/<projectId>), not ${url}`);
  const doFetch = io.fetch ?? ((u: string, init: RequestInit) => fetch(u, init));
  const res = await fetchWithRetry(
    doFetch,
    `${projectUrl}/schema`,
    { method: "GET", headers: { apikey: key, authorization: `Bearer ${key}` } },
    resolveRetry({}),
  );
  if (!res.ok) throw await errorFromResponse(res);
  return res.json();
}

/** Runs the CLI with `argv` (without `node` and the script); answers the exit code. */
export async function main(argv: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        url: { type: "string" },
        key: { type: "string" },
        schema: { type: "string" },
        out: { type: "string" },
        bigint: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      io.stdout(USAGE);
      return 0;
    }
    if (positionals.length !== 1 || positionals[0] !== "types")
      throw new UsageError("the only command is `types`");
    if (values.bigint !== undefined && values.bigint !== "number" && values.bigint !== "number | string") {
      throw new UsageError('--bigint takes "number" or "number | string"');
    }
    let schema: unknown;
    if (values.schema !== undefined) {
      if (values.url !== undefined) throw new UsageError("give --schema or --url, not both");
      schema = JSON.parse(await readFile(values.schema, "utf8"));
    } else if (values.url !== undefined) {
      const key = values.key ?? io.env.HEARTH_SERVICE_KEY;
      if (!key) throw new UsageError("--url needs --key <serviceKey> (or HEARTH_SERVICE_KEY)");
      schema = await liveSchema(values.url, key, io);
    } else {
      throw new UsageError("give --url and --key, or --schema");
    }
    const source = schemaToTypeScript(schema, values.bigint === "number" ? { bigint: "number" } : {});
    if (values.out !== undefined) {
      await writeFile(values.out, source);
      io.stderr(`hearth types: wrote ${values.out}\n`);
    } else {
      io.stdout(source);
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      io.stderr(`hearth: ${(err as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof HearthError) {
      io.stderr(`hearth types: ${err.code}${err.status ? ` (HTTP ${err.status})` : ""}: ${err.message}\n`);
      if (err.hint) io.stderr(`hint: ${err.hint}\n`);
      return 1;
    }
    io.stderr(`hearth types: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}
