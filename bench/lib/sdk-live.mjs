/**
 * Live-query latency of the SDK's sync engine (issue 6, Benchmark): from a write to the first
 * live callback whose rows hold it. Samples run one at a time; between two, untimed, the write
 * is awaited and every engine settles, so no sample overlaps the previous one's round trip.
 */
import { randomUUID } from "node:crypto";
import { expectStatus, keyHeaders, request } from "./hearth.mjs";
import { within } from "./sdk-engines.mjs";
import { timeSequential } from "./stats.mjs";

const since = (t0, t1) => Number(t1 - t0) / 1e6;

/** A local write: `insert` on the engine, to its own live callback (the optimistic path). */
export async function localWrites({ engine, watcher, table, count, warmup }) {
  const samples = [];
  for (let i = 0; i < warmup + count; i++) {
    const id = randomUUID();
    const seen = watcher.next(id);
    const t0 = process.hrtime.bigint();
    const write = engine.insert(table, { id, title: `local ${i}`, n: i });
    const at = await seen;
    await within(write, "the insert's answer");
    await within(engine.settled(), "settled()");
    if (i >= warmup) samples.push(since(t0, at));
  }
  return samples;
}

/**
 * Floors of a local write: the engine's queue commit (a `putMutations` batch, as `insert`
 * stores it) on a bare, open replica of the same kind, and a read of the engine's view
 * (`query`, what each live callback re-runs).
 */
export async function localFloors({ replica, engine, table, count, warmup }) {
  await within(replica.open(), "opening the bare replica");
  let next = 1;
  const commit = await timeSequential(
    async (i) => {
      const id = next++;
      const m = {
        id,
        table,
        state: "pending",
        queuedAt: Date.now(),
        op: "insert",
        row: { id: randomUUID(), title: `floor ${i}`, n: i },
      };
      await replica.commit({ putMutations: [m], meta: { nextMutationId: id + 1 } });
    },
    { count, warmup },
  );
  await replica.close();
  const query = await timeSequential(() => engine.query(table), { count, warmup });
  return { commit, query };
}

/** `write(id, i)` as a REST insert with the service key (one kept-alive connection). */
export function restWriter(project, table) {
  return async (id, i) => {
    expectStatus(
      await request(`${project.url}/rest/v1/${table}`, {
        method: "POST",
        headers: {
          ...keyHeaders(project.serviceKey),
          "content-type": "application/json",
          prefer: "return=minimal",
        },
        body: JSON.stringify({ id, title: `remote ${i}`, n: i }),
      }),
      201,
      "REST insert",
    );
  };
}

/** `write(id, i)` as an insert on another engine, resolved when the server applied it. */
export function engineWriter(writer, table) {
  return async (id, i) => {
    const r = await writer.insert(table, { id, title: `remote ${i}`, n: i });
    if (r.status !== "applied") throw new Error(`the writer's insert came back ${r.status}`);
  };
}

/**
 * A remote write: `write(id)` from outside the engine; times from the write's send to its
 * ack, to a bare /sync/v1 follower's receipt of the change, and to the engine's live callback.
 */
export async function remoteWrites({ write, settle, watcher, raw, engine, count, warmup }) {
  const ack = [];
  const rawMs = [];
  const live = [];
  for (let i = 0; i < warmup + count; i++) {
    const id = randomUUID();
    const seen = watcher.next(id);
    const rawSeen = raw.next(id);
    const t0 = process.hrtime.bigint();
    await within(write(id, i), "the write's ack");
    const acked = process.hrtime.bigint();
    const [atLive, atRaw] = await Promise.all([seen, rawSeen]);
    await within(Promise.all([engine.settled(), settle?.()]), "settled()");
    if (i < warmup) continue;
    ack.push(since(t0, acked));
    rawMs.push(since(t0, atRaw));
    live.push(since(t0, atLive));
  }
  return { ack, raw: rawMs, live };
}
