/**
 * Hearth for benchmarks: started exactly as the e2e tests start it (scripts/server-process.mjs,
 * i.e. `node scripts/start.mjs` in its own process group with a throwaway state dir), plus
 * the admin calls and a keep-alive HTTP client with little overhead of its own.
 */
import http from "node:http";
import { startHearth } from "../../scripts/server-process.mjs";
import { onCleanup } from "./cleanup.mjs";

/** Starts Hearth and registers its stop with the cleanup registry. */
export async function startBenchHearth(opts = {}) {
  const server = await startHearth(opts);
  const unregister = onCleanup(() => server.stop());
  return {
    ...server,
    stop: async () => {
      unregister();
      await server.stop();
    },
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/**
 * One HTTP request over a kept-alive loopback connection. Resolves
 * `{ status, headers, body }` (body as a string); rejects only on network errors.
 */
export function request(url, { method = "GET", headers = {}, body } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        }),
      );
      res.on("error", reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error(`${method} ${url} timed out after 120 s`)));
    req.on("error", reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

/** Throws with the status and body unless `res.status` is one of `ok`. */
export function expectStatus(res, ok, what) {
  const okList = Array.isArray(ok) ? ok : [ok];
  if (!okList.includes(res.status)) {
    throw new Error(`${what} answered ${res.status}: ${String(res.body).slice(0, 500)}`);
  }
  return res;
}

export function keyHeaders(key) {
  return { apikey: key, authorization: `Bearer ${key}` };
}

/** `POST /v1/projects` → `{id, url, anonKey, serviceKey}`. */
export async function createProject(server, name) {
  const res = await fetch(`${server.url}/v1/projects`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST /v1/projects answered ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

/** `PUT {url}/schema` with the service key. */
export async function putSchema(project, schema) {
  const res = await fetch(`${project.url}/schema`, {
    method: "PUT",
    headers: { ...keyHeaders(project.serviceKey), "content-type": "application/json" },
    body: JSON.stringify(schema),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`PUT /schema answered ${res.status}: ${text.slice(0, 500)}`);
  return JSON.parse(text);
}

/** Total row count of a table through `Prefer: count=exact` (parsed from Content-Range). */
export async function countRows(project, table, query = "") {
  const res = await fetch(`${project.url}/rest/v1/${table}?select=id&limit=1${query ? `&${query}` : ""}`, {
    headers: { ...keyHeaders(project.serviceKey), prefer: "count=exact" },
  });
  const text = await res.text();
  if (res.status !== 200 && res.status !== 206) {
    throw new Error(`count of ${table} answered ${res.status}: ${text.slice(0, 300)}`);
  }
  const total = Number(res.headers.get("content-range")?.split("/")[1]);
  if (!Number.isInteger(total)) {
    throw new Error(`count of ${table}: no total in Content-Range "${res.headers.get("content-range")}"`);
  }
  return total;
}
