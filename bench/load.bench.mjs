/**
 * Load: many concurrent clients doing a mixed read/write workload against one project, then
 * spread over many projects while 1,000 realtime subscribers hold sockets open; afterwards every
 * acknowledged write is looked up: each must be present exactly once. Loopback only, bounded
 * in time. The floor is the same concurrency answered by `GET /health` (a constant handler of
 * the same Worker) in the same run.
 *
 *   node bench/run.mjs load            # 20 s phases, 100 projects, 1,000 subscribers
 *   node bench/run.mjs --quick load    # 5 s phases, 10 projects, 200 subscribers
 */
import http from "node:http";
import os from "node:os";
import { figure, latencyFigure } from "./lib/figures.mjs";
import { createProject, putSchema, startBenchHearth } from "./lib/hearth.mjs";
import { table } from "./lib/markdown.mjs";
import { realtimeUrl, SubscriberPool } from "./lib/realtime-client.mjs";
import { int, ms, ratio, summarize } from "./lib/stats.mjs";
import { stepRunner } from "./lib/steps.mjs";

const SCHEMA = {
  tables: {
    ops: {
      columns: {
        id: { type: "text", primaryKey: true },
        client: { type: "integer", notNull: true },
        seq: { type: "integer", notNull: true },
        payload: { type: "text" },
      },
      policy: { read: "public", write: "public" },
    },
  },
};

/** One keep-alive agent per phase, as many sockets as clients. */
function agentFor(connections) {
  return new http.Agent({ keepAlive: true, maxSockets: connections });
}

function send(agent, url, { method = "GET", headers = {}, body } = {}) {
  const u = new URL(url);
  if (u.hostname !== "127.0.0.1" && u.hostname !== "localhost") throw new Error(`refusing to load ${u.host}`);
  return new Promise((resolve) => {
    const t0 = performance.now();
    const req = http.request(url, { method, headers, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
      res.on("error", () => resolve({ status: 0, ms: performance.now() - t0 }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve({ status: 0, ms: performance.now() - t0 }));
    req.end(body);
  });
}

/**
 * `clients` loops for `seconds`: each picks a project, then reads (80 %: a key it wrote, or
 * the latest 10 rows) or writes (20 %: an insert with a key of its own). Returns latencies
 * by kind, statuses, and the keys each project acknowledged.
 */
async function mixed({ projects, clients, seconds, tag }) {
  const agent = agentFor(clients);
  const acked = projects.map(() => []);
  const unacked = projects.map(() => []);
  const lat = { read: [], write: [] };
  const statuses = new Map();
  const deadline = performance.now() + seconds * 1000;
  const count = (s) => statuses.set(s, (statuses.get(s) ?? 0) + 1);
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      let seq = 0;
      while (performance.now() < deadline) {
        const pi = projects.length === 1 ? 0 : Math.floor(Math.random() * projects.length);
        const p = projects[pi];
        const headers = { apikey: p.anonKey, authorization: `Bearer ${p.anonKey}` };
        if (Math.random() < 0.2) {
          const id = `${tag}-${c}-${seq++}`;
          const body = JSON.stringify({ id, client: c, seq, payload: "x".repeat(64) });
          const r = await send(agent, `${p.url}/rest/v1/ops`, {
            method: "POST",
            headers: { ...headers, "content-type": "application/json", prefer: "return=minimal" },
            body,
          });
          count(r.status);
          lat.write.push(r.ms);
          (r.status === 201 ? acked : unacked)[pi].push(id);
        } else {
          const mine = acked[pi];
          const path =
            mine.length > 0 && Math.random() < 0.5
              ? `/rest/v1/ops?id=eq.${encodeURIComponent(mine[Math.floor(Math.random() * mine.length)])}`
              : "/rest/v1/ops?select=id,seq&order=id.desc&limit=10";
          const r = await send(agent, `${p.url}${path}`, { headers });
          count(r.status);
          lat.read.push(r.ms);
        }
      }
    }),
  );
  agent.destroy();
  return { acked, unacked, lat, statuses, seconds };
}

/** The floor: the same number of clients asking `GET /health` for the same time. */
async function floor({ url, clients, seconds }) {
  const agent = agentFor(clients);
  const lat = [];
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) lat.push((await send(agent, `${url}/health`)).ms);
    }),
  );
  agent.destroy();
  return { lat, seconds };
}

/** Every row id of `ops` in a project, paged by key. */
async function allIds(p) {
  const ids = [];
  let after = "";
  for (;;) {
    const q = `select=id&order=id&limit=10000${after ? `&id=gt.${encodeURIComponent(after)}` : ""}`;
    const res = await fetch(`${p.url}/rest/v1/ops?${q}`, {
      headers: { apikey: p.serviceKey, authorization: `Bearer ${p.serviceKey}` },
    });
    if (res.status !== 200) throw new Error(`reading ops back answered ${res.status}: ${await res.text()}`);
    const page = await res.json();
    for (const r of page) ids.push(r.id);
    if (page.length < 10_000) return ids;
    after = page[page.length - 1].id;
  }
}

/** Acknowledged keys missing, present more than once, and unacknowledged ones that committed. */
async function verify(projects, run) {
  let lost = 0;
  let doubled = 0;
  let committedUnacked = 0;
  let checked = 0;
  for (let i = 0; i < projects.length; i++) {
    const ids = await allIds(projects[i]);
    const seen = new Map();
    for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
    for (const id of run.acked[i]) {
      checked++;
      const n = seen.get(id) ?? 0;
      if (n === 0) lost++;
      if (n > 1) doubled++;
    }
    for (const id of run.unacked[i]) if (seen.has(id)) committedUnacked++;
  }
  return { lost, doubled, committedUnacked, checked };
}

function phaseRow(name, run, floorRun) {
  const reads = summarize(run.lat.read);
  const writes = summarize(run.lat.write);
  const total = run.lat.read.length + run.lat.write.length;
  const opsPerSec = total / run.seconds;
  const floorPerSec = floorRun.lat.length / floorRun.seconds;
  const bad = [...run.statuses]
    .filter(([s]) => s !== 200 && s !== 201)
    .map(([s, n]) => `${s || "network"}: ${n}`);
  return [
    name,
    int(opsPerSec),
    ratio(opsPerSec, floorPerSec),
    `${ms(reads.p50)} / ${ms(reads.p99)}`,
    `${ms(writes.p50)} / ${ms(writes.p99)}`,
    int(run.lat.write.length),
    bad.length ? bad.join(", ") : "none",
  ];
}

export const title = "Load: mixed reads and writes, many projects, held subscribers";

/** The card's figures for one phase: ops/s and read latency beside `GET /health` at the same concurrency. */
function phaseFigures(name, run, floorRun, clients) {
  const floorName = `GET /health, ${clients} clients (a constant answer)`;
  return [
    figure({
      shape: `mixed load, ${name}: ops/s`,
      unit: "ops/s",
      hearth: (run.lat.read.length + run.lat.write.length) / run.seconds,
      peer: floorRun.lat.length / floorRun.seconds,
      peerName: floorName,
      peerKind: "floor",
      lowerIsBetter: false,
      note: `${clients} concurrent clients, 80 % reads, 20 % inserts`,
    }),
    latencyFigure(
      { shape: `mixed load, ${name}: read latency`, peerName: floorName, peerKind: "floor" },
      summarize(run.lat.read),
      summarize(floorRun.lat),
    ),
  ];
}

export default async function load({ quick, log }) {
  const { step, failedSteps } = stepRunner(log);
  const cfg = quick
    ? { seconds: 5, clients: 32, projects: 10, subscribers: 200 }
    : { seconds: 20, clients: 64, projects: 100, subscribers: 1000 };
  const out = [`# ${title}${quick ? " (quick)" : ""}`, ""];
  const figures = [];
  const loadBefore = os.loadavg()[0];
  const server = await startBenchHearth();
  try {
    const projects = [];
    const made = await step(`create ${cfg.projects} projects`, async () => {
      for (let i = 0; i < cfg.projects; i++) {
        const p = await createProject(server, `load-${i}`);
        await putSchema(p, SCHEMA);
        projects.push(p);
      }
    });
    if (!made.ok) throw made.error;

    const floorRun = (
      await step("floor: GET /health", () =>
        floor({ url: server.url, clients: cfg.clients, seconds: cfg.seconds }),
      )
    ).value;
    const one = (
      await step("mixed load on 1 project", () =>
        mixed({ projects: [projects[0]], clients: cfg.clients, seconds: cfg.seconds, tag: "one" }),
      )
    ).value;

    let pool;
    const subscribed = await step(`open ${cfg.subscribers} realtime subscribers`, async () => {
      pool = new SubscriberPool({ url: realtimeUrl(server.url, projects[0], projects[0].anonKey) });
      const received = new Set();
      pool.onEvent = (index, _t, kind, key) => {
        if (kind === "change") received.add(`${index}:${key}`);
      };
      await pool.add(cfg.subscribers, { table: "ops" });
      return received;
    });
    const many = (
      await step(`mixed load on ${cfg.projects} projects with ${cfg.subscribers} subscribers`, () =>
        mixed({ projects, clients: cfg.clients, seconds: cfg.seconds, tag: "many" }),
      )
    ).value;
    let delivery = null;
    if (subscribed.ok && many) {
      // Give the fan-out a bounded moment to finish, then count what each socket got.
      const expected = many.acked[0].length * pool.size;
      const until = performance.now() + 30_000;
      while (subscribed.value.size < expected && performance.now() < until)
        await new Promise((r) => setTimeout(r, 200));
      delivery = { expected, got: subscribed.value.size, problems: pool.problemCount, sockets: pool.size };
    }
    await pool?.close();

    if (floorRun) {
      if (one) figures.push(...phaseFigures("1 project", one, floorRun, cfg.clients));
      if (many)
        figures.push(
          ...phaseFigures(
            `${cfg.projects} projects, ${cfg.subscribers} subscribers held`,
            many,
            floorRun,
            cfg.clients,
          ),
        );
    }
    const checks = [];
    for (const [name, run, ps] of [
      ["1 project", one, [projects[0]]],
      [`${cfg.projects} projects`, many, projects],
    ]) {
      if (!run) continue;
      const v = await step(`verify the acknowledged writes (${name})`, () => verify(ps, run));
      if (v.ok) {
        checks.push([
          name,
          int(v.value.checked),
          int(v.value.lost),
          int(v.value.doubled),
          int(v.value.committedUnacked),
        ]);
        if (v.value.lost > 0 || v.value.doubled > 0)
          failedSteps.push(`${name}: ${v.value.lost} lost, ${v.value.doubled} doubled`);
      }
    }

    out.push(
      `Hearth runs under \`npm start\` (wrangler dev, local workerd, throwaway state dir; the per-project rate limit is off there) on the same 2 cores as the load generator. ${cfg.clients} concurrent clients over kept-alive loopback connections, each in a loop for ${cfg.seconds} s: 80 % reads (half a key it wrote, half the latest 10 rows), 20 % inserts with a key of its own (anon key, \`return=minimal\`). The floor is the same clients asking \`GET /health\` (a constant answer of the same Worker) for the same time.`,
      "",
      `Load average (1 min) of the machine: ${loadBefore.toFixed(2)} before the run, ${os.loadavg()[0].toFixed(2)} after it, on ${os.cpus().length} cores: above that, other work shared the CPU and the figures are low.`,
      "",
      table(
        [
          "Phase",
          "ops/s",
          "÷ floor",
          "read p50 / p99 ms",
          "write p50 / p99 ms",
          "writes acked",
          "other statuses",
        ],
        [
          ...(floorRun
            ? [
                [
                  "floor: `GET /health`",
                  int(floorRun.lat.length / floorRun.seconds),
                  "1.00×",
                  `${ms(summarize(floorRun.lat).p50)} / ${ms(summarize(floorRun.lat).p99)}`,
                  "–",
                  "–",
                  "none",
                ],
              ]
            : []),
          ...(one && floorRun ? [phaseRow("1 project", one, floorRun)] : []),
          ...(many && floorRun
            ? [phaseRow(`${cfg.projects} projects, ${cfg.subscribers} subscribers held`, many, floorRun)]
            : []),
        ],
      ),
      "",
      "## Every acknowledged write, exactly once",
      "",
      "After the load, every project's `ops` table is read back in full (service key, paged by key). An acknowledged insert (201) must be there exactly once; an insert that got no answer may or may not have committed (counted, not an error).",
      "",
      table(["Phase", "acknowledged", "lost", "doubled", "unacknowledged but committed"], checks),
      "",
      "## Realtime subscribers during the spread load",
      "",
      delivery
        ? `${int(delivery.sockets)} sockets subscribed to \`postgres_changes\` on project 0's \`ops\` held open during the ${cfg.projects}-project phase; they received ${int(delivery.got)} of the ${int(delivery.expected)} change events due (every acknowledged insert into project 0 to every socket: ${ratio(delivery.got, delivery.expected)}), with ${int(delivery.problems)} unexpected frames or closes.`
        : "Not measured (a step failed above).",
      "",
    );
  } finally {
    await server.stop();
  }
  return { markdown: out.join("\n"), failedSteps, figures: figures.filter(Boolean) };
}
