/**
 * Realtime fan-out (issue 5) under `npm start` (wrangler dev, local workerd): 1, 100 and 1,000
 * subscribers, each its own `ws` socket joined to postgres_changes on one table of one project.
 * - One write at a time: time from the write's ack (and from its send) to receipt at every
 *   subscriber, p50/p99; floors in the same run: the REST write alone (no subscriber) and a
 *   broadcast from one client to the same sockets (no WAL, no REST).
 * - A burst of writes from 4 concurrent writers: change frames delivered per second.
 * - workerd resident memory per idle subscriber (RSS before and after opening the sockets).
 * - Where the time goes at the largest N: CPU of each process, and the same fan-out with the
 *   sockets connected past wrangler's proxy, and with permessage-deflate as browsers offer it.
 * A step that fails is reported in the results with its error; the others still run.
 */
import os from "node:os";
import { latencyFigure } from "./lib/figures.mjs";
import { createProject, putSchema, startBenchHearth } from "./lib/hearth.mjs";
import { errorBlock } from "./lib/markdown.mjs";
import { realtimeUrl, SubscriberPool } from "./lib/realtime-client.mjs";
import { p } from "./lib/realtime-format.mjs";
import { broadcaster, burst, oneAtATime, rowWriter } from "./lib/realtime-measure.mjs";
import { cpuBetween, cpuSample, serverProcesses, workerdMemory } from "./lib/realtime-procs.mjs";
import { report } from "./lib/realtime-report.mjs";
import { int } from "./lib/stats.mjs";
import { stepRunner } from "./lib/steps.mjs";

export const title = "Realtime fan-out";

const TABLE = "todos";
const SCHEMA = {
  tables: {
    [TABLE]: {
      columns: {
        id: { type: "integer", primaryKey: true },
        title: { type: "text" },
        done: { type: "boolean", default: false },
      },
      policy: { read: "public", write: "public" },
    },
  },
};

export default async function run({ quick, log }) {
  const cfg = {
    sizes: [1, 100, 1_000],
    writes: quick ? 50 : 200,
    warmup: quick ? 5 : 10,
    burstWrites: quick ? 200 : 1_000,
    profileWrites: quick ? 30 : 100,
    writers: 4,
    batch: 50,
    timeoutMs: 5_000,
    quietMs: 10_000,
    aimMs: 50,
    aimN: 1_000,
  };
  const { step, failedSteps } = stepRunner(log);
  const hearth = await step("start Hearth", () => startBenchHearth());
  if (!hearth.ok) {
    return {
      markdown: `# ${title}\n\n${errorBlock("Starting Hearth", hearth.error)}\n`,
      failedSteps,
    };
  }
  const server = hearth.value;
  const pools = [];
  const openPool = (opts) => {
    const pool = new SubscriberPool(opts);
    pools.push(pool);
    return pool;
  };
  const results = {
    cfg,
    quick,
    stages: [],
    profiles: [],
    cores: os.cpus().length,
    loadavg: [os.loadavg()[0]],
  };
  try {
    const setup = await step("project, schema and server processes", async () => {
      const project = await createProject(server, "bench-realtime");
      await putSchema(project, SCHEMA);
      return { project, procs: await serverProcesses(server) };
    });
    if (!setup.ok) {
      results.setupError = setup.error;
      return { markdown: report(results), failedSteps };
    }
    const { project, procs } = setup.value;
    results.procs = procs;
    let nextId = 1;
    const nextKey = () => nextId++;
    const write = rowWriter(project, TABLE);

    results.floor = await step("REST write alone, no subscriber", async () => {
      const ack = [];
      for (let i = 0; i < cfg.warmup + cfg.writes; i++) {
        const { tSend, tAck } = await write(nextKey());
        if (i >= cfg.warmup) ack.push(tAck - tSend);
      }
      return ack;
    });

    const url = realtimeUrl(server.url, project, project.anonKey);
    const sender = openPool({ url });
    const subs = openPool({ url });
    const opened = await step("open the broadcast sender", () => sender.add(1, { table: null }));
    for (const n of cfg.sizes) {
      if (!opened.ok) break;
      const stage = { n };
      results.stages.push(stage);
      stage.mem = await step(`open ${n} subscribers (memory)`, async () => {
        const before = await workerdMemory(procs);
        const added = n - subs.size;
        await subs.add(added, { batch: cfg.batch, table: TABLE });
        return { before, after: await workerdMemory(procs), added };
      });
      if (!stage.mem.ok) break;
      const timed = async (fn) => {
        const a = await cpuSample(procs);
        const value = await fn();
        return { ...value, cpu: cpuBetween(a, await cpuSample(procs)) };
      };
      const seq = { pool: subs, n, count: cfg.writes, warmup: cfg.warmup, timeoutMs: cfg.timeoutMs, nextKey };
      stage.changes = await step(`${n} subscribers: writes one at a time`, () =>
        timed(() => oneAtATime({ ...seq, kind: "change", fire: write })),
      );
      stage.broadcast = await step(`${n} subscribers: broadcasts one at a time`, () =>
        timed(() => oneAtATime({ ...seq, kind: "broadcast", fire: broadcaster(sender) })),
      );
      const firstId = nextId;
      nextId += cfg.burstWrites;
      stage.burst = await step(`${n} subscribers: burst of ${cfg.burstWrites} writes`, () =>
        timed(() =>
          burst({
            pool: subs,
            n,
            write,
            firstId,
            writes: cfg.burstWrites,
            writers: cfg.writers,
            quietMs: cfg.quietMs,
          }),
        ),
      );
      stage.problems = { count: subs.problemCount, first: [...subs.problems] };
    }
    results.problems = { count: subs.problemCount, first: [...subs.problems] };
    await subs.close();
    await sender.close();

    // The same fan-out at the largest N with one thing changed, to see what limits it.
    const nMax = cfg.sizes[cfg.sizes.length - 1];
    const variants = [
      {
        name: "past wrangler's proxy (straight to the inner workerd)",
        base: procs.innerUrl,
        deflate: false,
      },
      { name: "permessage-deflate offered (as browsers do), via the proxy", base: server.url, deflate: true },
    ];
    for (const v of variants) {
      const profile = { name: v.name, n: nMax };
      results.profiles.push(profile);
      profile.run = await step(`profile: ${v.name}`, async () => {
        if (!v.base) throw new Error("the inner workerd's entry port was not found");
        const vProject = { ...project, url: project.url.replace(server.url, v.base) };
        const vUrl = realtimeUrl(v.base, project, project.anonKey);
        const vSender = openPool({ url: vUrl, deflate: v.deflate });
        const vSubs = openPool({ url: vUrl, deflate: v.deflate });
        try {
          await vSender.add(1, { table: null });
          await vSubs.add(nMax, { batch: cfg.batch, table: TABLE });
          const vWrite = rowWriter(vProject, TABLE);
          const seq = {
            pool: vSubs,
            n: nMax,
            count: cfg.profileWrites,
            warmup: cfg.warmup,
            timeoutMs: cfg.timeoutMs,
          };
          const a = await cpuSample(procs);
          const changes = await oneAtATime({ ...seq, nextKey, kind: "change", fire: (id) => vWrite(id) });
          const b = await cpuSample(procs);
          const bcast = await oneAtATime({ ...seq, nextKey, kind: "broadcast", fire: broadcaster(vSender) });
          const c = await cpuSample(procs);
          return {
            changes: { ...changes, cpu: cpuBetween(a, b) },
            broadcast: { ...bcast, cpu: cpuBetween(b, c) },
            deflate: vSubs.subs[0]?.ws.extensions ?? "",
            problems: vSubs.problemCount,
          };
        } finally {
          await vSubs.close();
          await vSender.close();
        }
      });
    }
  } finally {
    results.loadavg.push(os.loadavg()[0]);
    for (const pool of pools) pool.terminate();
    await server.stop();
  }
  return { markdown: report(results), failedSteps, figures: figuresOf(results) };
}

/**
 * For the card, per N: a write's fan-out (send → receipt at every subscriber) beside a
 * broadcast on the same sockets (no REST, no WAL), and the write's own ack beside the same
 * write with no subscriber.
 */
function figuresOf(r) {
  const alone = r.floor?.ok ? p(r.floor.value) : null;
  return r.stages
    .flatMap((st) => {
      const subscribers = `${int(st.n)} subscriber${st.n === 1 ? "" : "s"}`;
      const changes = st.changes?.ok ? st.changes.value : null;
      return [
        latencyFigure(
          {
            shape: `write → receipt at ${st.n === 1 ? "its" : "all"} ${subscribers}`,
            peerName: "broadcast → receipt on the same sockets",
            peerKind: "floor",
          },
          changes ? p(changes.sendToRecv) : null,
          st.broadcast?.ok ? p(st.broadcast.value.sendToRecv) : null,
        ),
        latencyFigure(
          {
            shape: `write ack with ${subscribers}`,
            peerName: "the same write with no subscriber",
            peerKind: "floor",
          },
          changes ? p(changes.ack) : null,
          alone,
        ),
      ];
    })
    .filter(Boolean);
}
