/**
 * The e2e tests' handle on a real `npm start` server: `startServer()` runs
 * `node scripts/start.mjs` detached in its own process group on a free port with a fresh
 * HEARTH_STATE_DIR (see scripts/server-process.mjs), and `stop()` kills that group and removes
 * the directory. `createProject` and `putSchema` call the admin and schema endpoints.
 */
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { processGroupMembers, startHearth } from "../../scripts/server-process.mjs";

export interface Server {
  url: string;
  adminKey: string;
}

export interface RunningServer extends Server {
  /** the process group of `npm start` (wrangler and its workerd processes are in it) */
  pgid: number | undefined;
  stop(): Promise<void>;
}

export interface Project {
  id: string;
  url: string;
  anonKey: string;
  serviceKey: string;
}

/**
 * Starts Hearth; rejects with the tail of the server's output if it dies or never gets healthy.
 * `logFile` receives everything the server prints (wrangler's request log, uncaught errors).
 */
export async function startServer(
  opts: { timeoutMs?: number; logFile?: string } = {},
): Promise<RunningServer> {
  const { logFile } = opts;
  if (logFile) writeFileSync(logFile, "");
  const server = await startHearth({
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    ...(logFile ? { onOutput: (chunk: string) => appendFileSync(logFile, chunk) } : {}),
  });
  return { url: server.url, adminKey: server.adminKey, pgid: server.pid, stop: () => server.stop() };
}

/**
 * Resident memory (VmRSS, bytes) of the workerd processes in the server's process group,
 * summed (wrangler dev runs two: a proxy and the Worker's runtime). Linux only (/proc).
 */
export async function workerdRss(pgid: number): Promise<number> {
  let total = 0;
  let found = 0;
  for (const pid of await processGroupMembers(pgid)) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "workerd") continue;
      const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
      if (Number.isFinite(kb)) {
        total += kb * 1024;
        found++;
      }
    } catch {
      // exited between the listing and the read
    }
  }
  if (found === 0) throw new Error(`no workerd process in process group ${pgid}`);
  return total;
}

async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function describe(method: string, url: string, status: number, body: unknown): string {
  return `${method} ${url} answered ${status}: ${typeof body === "string" ? body : JSON.stringify(body)}`;
}

/** `POST /v1/projects` with the admin key; expects 201 `{id, url, anonKey, serviceKey}`. */
export async function createProject(server: Server, name: string): Promise<Project> {
  const url = `${server.url}/v1/projects`;
  const res = await fetch(url, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  const body = await readBody(res);
  if (res.status !== 201) throw new Error(describe("POST", url, res.status, body));
  const p = body as Partial<Project>;
  if (
    typeof p.id !== "string" ||
    typeof p.url !== "string" ||
    typeof p.anonKey !== "string" ||
    typeof p.serviceKey !== "string"
  ) {
    throw new Error(`POST ${url}: expected {id, url, anonKey, serviceKey}, got ${JSON.stringify(body)}`);
  }
  return { id: p.id, url: p.url, anonKey: p.anonKey, serviceKey: p.serviceKey };
}

/** `DELETE /v1/projects/<id>` with the admin key; expects 204. */
export async function deleteProject(server: Server, id: string): Promise<void> {
  const url = `${server.url}/v1/projects/${encodeURIComponent(id)}`;
  const res = await fetch(url, { method: "DELETE", headers: { authorization: `Bearer ${server.adminKey}` } });
  const body = await readBody(res);
  if (res.status !== 204) throw new Error(describe("DELETE", url, res.status, body));
}

/** `PUT {url}/schema` with the service key; expects 200 `{schema, applied}`. */
export async function putSchema(
  project: Project,
  schema: unknown,
): Promise<{ schema: unknown; applied: unknown[] }> {
  const url = `${project.url}/schema`;
  const res = await fetch(url, {
    method: "PUT",
    headers: { authorization: `Bearer ${project.serviceKey}`, "content-type": "application/json" },
    body: JSON.stringify(schema),
  });
  const body = await readBody(res);
  if (res.status !== 200) throw new Error(describe("PUT", url, res.status, body));
  return body as { schema: unknown; applied: unknown[] };
}
