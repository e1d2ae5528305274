import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { ProjectDO } from "../durable-objects/project-do.ts";
import type { Env } from "../workers/env.ts";
import { notesTable, SECRETS_TABLE, TODOS_TABLE } from "./fixtures/feed-tables.ts";
import { account, TEST_JWT_SECRET } from "./helpers/accounts.ts";
import { admin, call, projectWithSchema, rest, type TestProject, workerApi } from "./helpers/api.ts";
import { type Api, connectApp, grantOf, registerApp, revokeGrant, signup } from "./helpers/oauth.ts";
import { connectRealtime, type PhxClient } from "./helpers/realtime.ts";

const api: Api = workerApi;

const SCHEMA = {
  tables: { todos: TODOS_TABLE, notes: notesTable("integer"), secrets: SECRETS_TABLE },
};

type Data = Record<string, unknown> & {
  type: string;
  record: Record<string, unknown>;
  old_record: Record<string, unknown>;
};

function insert(p: TestProject, table: string, row: unknown, key = p.serviceKey) {
  return rest(p, `/${table}`, { method: "POST", body: row, key });
}

/** Writes a marker row and waits until `c` has received it: everything before it has arrived. */
async function barrier(p: TestProject, c: PhxClient, topic: string, id: number): Promise<void> {
  expect((await insert(p, "todos", { id, title: "barrier" })).status).toBe(201);
  await c.waitFor(
    (f) =>
      f[2] === `realtime:${topic}` && f[3] === "postgres_changes" && (f[4].data as Data).record?.id === id,
  );
}

async function joinTodos(c: PhxClient, topic: string, bindings: Record<string, unknown>[], token?: string) {
  const reply = await c.join(topic, { postgres_changes: bindings }, token);
  expect(reply.status, JSON.stringify(reply)).toBe("ok");
  return reply;
}

describe("realtime: postgres_changes", () => {
  it("delivers INSERT, UPDATE and DELETE in order, with record, old_record, columns, commit time and LSN", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.anonKey);
    const reply = await joinTodos(c, "room", [{ event: "*", schema: "public", table: "todos" }]);
    // The reply echoes each binding exactly as sent, plus an id (realtime-js matches by index and equality).
    expect(reply.response).toEqual({
      postgres_changes: [{ id: 1, event: "*", schema: "public", table: "todos" }],
    });
    expect((await insert(p, "todos", { id: 1, title: "a", status: "open" })).status).toBe(201);
    expect((await rest(p, "/todos?id=eq.1", { method: "PATCH", body: { status: "paid" } })).status).toBe(204);
    expect((await rest(p, "/todos?id=eq.1", { method: "DELETE" })).status).toBe(204);
    await c.waitFor((f) => f[3] === "postgres_changes" && (f[4].data as Data).type === "DELETE");
    const events = c.changes("room") as Data[];
    expect(events.map((e) => e.type)).toEqual(["INSERT", "UPDATE", "DELETE"]);
    const [ins, upd, del] = events as [Data, Data, Data];
    expect(ins.record).toEqual({ id: 1, title: "a", status: "open", done: false });
    expect(ins.old_record).toEqual({});
    expect(upd.record).toMatchObject({ status: "paid" });
    expect(upd.old_record).toMatchObject({ status: "open" });
    expect(del.record).toEqual({});
    expect(del.old_record).toMatchObject({ id: 1, status: "paid" });
    expect((ins.lsn as number) < (upd.lsn as number) && (upd.lsn as number) < (del.lsn as number)).toBe(true);
    expect(ins.columns).toContainEqual({ name: "done", type: "bool" });
    expect(Date.parse(ins.commit_timestamp as string)).toBeGreaterThan(Date.now() - 60_000);
    expect(ins.schema).toBe("public");
    c.close();
  });

  it("matches events and PostgREST filters per binding, and sends the ids of every binding that matches", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.anonKey);
    const bindings = [
      { event: "INSERT", schema: "public", table: "todos", filter: "status=eq.paid" },
      { event: "UPDATE", schema: "public", table: "todos" },
      { event: "*", schema: "public", table: "todos", filter: "id=in.(2,3)" },
      { event: "INSERT", schema: "public", table: "todos", filter: "id=gt.10" },
    ];
    await joinTodos(c, "f", bindings);
    await insert(p, "todos", { id: 1, status: "open" }); // none
    await insert(p, "todos", { id: 2, status: "paid" }); // 1 and 3
    await insert(p, "todos", { id: 11, status: "open" }); // 4
    await rest(p, "/todos?id=eq.1", { method: "PATCH", body: { title: "x" } }); // 2
    await barrier(p, c, "f", 12); // 4 (id 12 > 10)
    const got = c.frames
      .filter((f) => f[3] === "postgres_changes")
      .map((f) => [(f[4].data as Data).type, (f[4].data as Data).record.id, f[4].ids]);
    expect(got).toEqual([
      ["INSERT", 2, [1, 3]],
      ["INSERT", 11, [4]],
      ["UPDATE", 1, [2]],
      ["INSERT", 12, [4]],
    ]);
    c.close();
  });

  it("refuses bad bindings with a clear join error and keeps the socket", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.anonKey);
    const cases: [Record<string, unknown>, string][] = [
      [{ event: "*", schema: "public", table: "nope" }, "nope"],
      [{ event: "TRUNCATE", schema: "public", table: "todos" }, "TRUNCATE"],
      [{ event: "*", schema: "public", table: "todos", filter: "missing=eq.1" }, "missing"],
      [{ event: "*", schema: "public", table: "todos", filter: "id=zz.1" }, "filter"],
      [{ event: "*", schema: "public", table: "todos", filter: "id=eq.notanumber" }, "filter"],
      [{ event: "*", schema: "other", table: "todos" }, "schema"],
      [{ event: "*", schema: "public", table: "secrets" }, "permission denied"],
    ];
    for (const [binding, words] of cases) {
      const reply = await c.join(`bad-${words}`, { postgres_changes: [binding] });
      expect(reply.status, JSON.stringify(binding)).toBe("error");
      expect(String(reply.response.reason)).toContain(words);
    }
    await joinTodos(c, "good", [{ event: "*", schema: "public", table: "todos" }]);
    await barrier(p, c, "good", 1);
    c.close();
  });
});

describe("realtime: authorization", () => {
  it("sends owner-policy rows only to their owner, and service-only tables to the service key", async () => {
    const p = await projectWithSchema(SCHEMA);
    const alice = await account(`rt-alice-${crypto.randomUUID()}`);
    const bob = await account(`rt-bob-${crypto.randomUUID()}`);
    const ca = await connectRealtime(p, p.anonKey);
    const cb = await connectRealtime(p, p.anonKey);
    const cs = await connectRealtime(p, p.serviceKey);
    await joinTodos(
      ca,
      "n",
      [
        { event: "*", schema: "public", table: "notes" },
        { event: "*", schema: "public", table: "todos" },
      ],
      alice,
    );
    await joinTodos(
      cb,
      "n",
      [
        { event: "*", schema: "public", table: "notes" },
        { event: "*", schema: "public", table: "todos" },
      ],
      bob,
    );
    await joinTodos(cs, "n", [{ event: "*", schema: "public", table: "*" }]);
    // The anon key cannot read owner-policy tables at all: refused at join.
    const anon = await connectRealtime(p, p.anonKey);
    expect(
      (await anon.join("n", { postgres_changes: [{ event: "*", schema: "public", table: "notes" }] })).status,
    ).toBe("error");

    expect((await insert(p, "notes", { id: 1, body: "alice's" }, alice)).status).toBe(201);
    expect((await insert(p, "notes", { id: 2, body: "bob's" }, bob)).status).toBe(201);
    expect((await insert(p, "secrets", { id: 1, value: "s" })).status).toBe(201);
    await rest(p, "/notes?id=eq.1", { method: "PATCH", body: { body: "edited" }, key: alice });
    await rest(p, "/notes?id=eq.1", { method: "DELETE", key: alice });
    await barrier(p, ca, "n", 100);
    for (const c of [cb, cs])
      await c.waitFor((f) => f[3] === "postgres_changes" && (f[4].data as Data).record?.id === 100);
    const seen = (c: PhxClient) =>
      (c.changes("n") as Data[])
        .filter((d) => d.table !== "todos")
        .map((d) => `${d.table}:${d.type}:${(d.type === "DELETE" ? d.old_record : d.record).id}`);
    expect(seen(ca)).toEqual(["notes:INSERT:1", "notes:UPDATE:1", "notes:DELETE:1"]);
    expect(seen(cb)).toEqual(["notes:INSERT:2"]);
    expect(seen(cs)).toEqual([
      "notes:INSERT:1",
      "notes:INSERT:2",
      "secrets:INSERT:1",
      "notes:UPDATE:1",
      "notes:DELETE:1",
    ]);
    for (const c of [ca, cb, cs, anon]) c.close();
  });

  it("an app token sees only its granted tables, and revoking the grant closes its channel at once", async () => {
    const owner = await signup(api, "rt-owner");
    const dev = await signup(api, "rt-dev");
    const tables = {
      "com.rt.todos": { columns: { id: { type: "integer", primaryKey: true }, title: { type: "text" } } },
      "com.rt.private": { columns: { id: { type: "integer", primaryKey: true }, title: { type: "text" } } },
    };
    const app = await registerApp(api, dev.accessToken, "RT app", tables);
    const projRes = await call("/v1/projects", {
      method: "POST",
      key: owner.accessToken,
      body: { name: "rt" },
    });
    const p = (await projRes.json()) as TestProject;
    const tokens = await connectApp(api, owner.accessToken, {
      clientId: app.clientId,
      scope: "db:com.rt.todos:read",
      projectId: p.id,
    });
    // The other table exists (owner adds it) but is not in the grant.
    const other = await connectApp(api, owner.accessToken, {
      clientId: app.clientId,
      scope: "db:com.rt.todos:read db:com.rt.private:read",
      projectId: p.id,
    });
    expect(other.access_token).not.toBe(tokens.access_token);
    const c = await connectRealtime(p, p.anonKey);
    const refused = await c.join(
      "x",
      { postgres_changes: [{ event: "*", schema: "public", table: "com.rt.private" }] },
      tokens.access_token,
    );
    // The second consent widened the same grant: a token's scopes are what it was issued with.
    expect(refused.status).toBe("error");
    await joinTodos(c, "app", [{ event: "*", schema: "public", table: "*" }], tokens.access_token);
    await insert(p, "com.rt.private", { id: 1, title: "hidden" });
    await insert(p, "com.rt.todos", { id: 1, title: "seen" });
    await c.waitFor((f) => f[3] === "postgres_changes");
    expect((c.changes("app") as Data[]).map((d) => d.table)).toEqual(["com.rt.todos"]);

    const grant = await grantOf(api, owner.accessToken, app.clientId, p.id);
    await revokeGrant(api, owner.accessToken, grant.id);
    const closed = await c.waitFor((f) => f[2] === "realtime:app" && f[3] === "phx_close");
    const system = c.frames.find(
      (f) => f[2] === "realtime:app" && f[3] === "system" && f[4].status === "error",
    );
    expect(String(system?.[4].message)).toContain("revoked");
    expect(closed).toBeDefined();
    const before = c.frames.length;
    await insert(p, "com.rt.todos", { id: 2, title: "after revoke" });
    // A rejoin with the revoked token is refused; nothing of the write arrives.
    const rejoin = await c.join(
      "app2",
      { postgres_changes: [{ event: "*", schema: "public", table: "com.rt.todos" }] },
      tokens.access_token,
    );
    expect(rejoin.status).toBe("error");
    expect(c.frames.slice(before).some((f) => f[3] === "postgres_changes")).toBe(false);
    c.close();
  });

  it("refuses an expired, forged or foreign token at connect and at join", async () => {
    const p = await projectWithSchema(SCHEMA);
    const q = await projectWithSchema(SCHEMA);
    for (const key of ["not.a.jwt", q.anonKey]) {
      const res = await call(`${p.url}/realtime/v1/websocket?apikey=${key}&vsn=2.0.0`, {
        headers: { upgrade: "websocket" },
      });
      expect(res.status).toBe(401);
      expect(((await res.json()) as { code: string }).code).toBe("PGRST301");
    }
    const noKey = await call(`${p.url}/realtime/v1/websocket?vsn=2.0.0`, {
      headers: { upgrade: "websocket" },
    });
    expect(noKey.status).toBe(401);
    const c = await connectRealtime(p, p.anonKey);
    const reply = await c.join("r", { postgres_changes: [] }, q.serviceKey);
    expect(reply.status).toBe("error");
    expect(String(reply.response.reason)).toContain("another project");
    c.close();
  });
});

describe("realtime: broadcast and presence", () => {
  it("broadcasts to the others (and to self only with self:true), with ack replies", async () => {
    const p = await projectWithSchema(SCHEMA);
    const a = await connectRealtime(p, p.anonKey);
    const b = await connectRealtime(p, p.anonKey);
    expect((await a.join("chat", { broadcast: { self: false, ack: true } })).status).toBe("ok");
    expect((await b.join("chat", { broadcast: { self: true, ack: false } })).status).toBe("ok");
    const ref = a.push(
      "realtime:chat",
      "broadcast",
      { type: "broadcast", event: "msg", payload: { text: "hi" } },
      "1",
    );
    expect((await a.reply(ref))[4]).toEqual({ status: "ok", response: {} });
    const got = await b.waitFor((f) => f[3] === "broadcast");
    expect(got).toEqual([
      null,
      null,
      "realtime:chat",
      "broadcast",
      { type: "broadcast", event: "msg", payload: { text: "hi" } },
    ]);
    b.push("realtime:chat", "broadcast", { type: "broadcast", event: "msg", payload: { text: "back" } }, "1");
    await a.waitFor((f) => f[3] === "broadcast" && (f[4].payload as { text: string }).text === "back");
    await b.waitFor((f) => f[3] === "broadcast" && (f[4].payload as { text: string }).text === "back");
    // a (self:false) never saw its own "hi".
    expect(
      a.frames.filter((f) => f[3] === "broadcast").map((f) => (f[4].payload as { text: string }).text),
    ).toEqual(["back"]);
    a.close();
    b.close();
  });

  it("accepts binary kind-3 broadcasts, and the HTTP broadcast API answers 202", async () => {
    const p = await projectWithSchema(SCHEMA);
    const a = await connectRealtime(p, p.anonKey);
    const b = await connectRealtime(p, p.anonKey);
    await a.join("bin", {});
    await b.join("bin", {});
    const enc = new TextEncoder();
    const parts = ["1", "9", "realtime:bin", "ping"].map((s) => enc.encode(s));
    const body = enc.encode(JSON.stringify({ n: 1 }));
    const frame = new Uint8Array(7 + parts.reduce((n, x) => n + x.length, 0) + body.length);
    frame.set([3, parts[0]!.length, parts[1]!.length, parts[2]!.length, parts[3]!.length, 0, 1]);
    let at = 7;
    for (const x of [...parts, body]) {
      frame.set(x, at);
      at += x.length;
    }
    a.send(frame.buffer);
    const got = await b.waitFor((f) => f[3] === "broadcast");
    expect(got[4]).toEqual({ type: "broadcast", event: "ping", payload: { n: 1 } });

    const res = await call(`${p.url}/realtime/v1/api/broadcast`, {
      method: "POST",
      key: p.anonKey,
      body: { messages: [{ topic: "bin", event: "server", payload: { n: 2 } }] },
    });
    expect(res.status).toBe(202);
    await a.waitFor((f) => f[3] === "broadcast" && f[4].event === "server");
    const single = await call(`${p.url}/realtime/v1/api/broadcast/bin/events/one`, {
      method: "POST",
      key: p.anonKey,
      body: { n: 3 },
    });
    expect(single.status).toBe(202);
    await b.waitFor((f) => f[3] === "broadcast" && f[4].event === "one");
    const bad = await call(`${p.url}/realtime/v1/api/broadcast`, {
      method: "POST",
      key: p.anonKey,
      body: { messages: "x" },
    });
    expect(bad.status).toBe(400);
    const priv = await call(`${p.url}/realtime/v1/api/broadcast`, {
      method: "POST",
      key: p.anonKey,
      body: { messages: [{ topic: "bin", event: "e", payload: {}, private: true }] },
    });
    expect(priv.status).toBe(401);
    a.close();
    b.close();
  });

  it("tracks presence: state after join, join and leave diffs with the phx_ref, leave when a socket closes", async () => {
    const p = await projectWithSchema(SCHEMA);
    const a = await connectRealtime(p, p.anonKey);
    const b = await connectRealtime(p, p.anonKey);
    expect((await a.join("lobby", { presence: { key: "alice", enabled: true } })).status).toBe("ok");
    await a.waitFor((f) => f[3] === "presence_state");
    const t = a.push(
      "realtime:lobby",
      "presence",
      { type: "presence", event: "track", payload: { mood: "happy" } },
      "1",
    );
    expect((await a.reply(t))[4].status).toBe("ok");
    const join = await a.waitFor((f) => f[3] === "presence_diff");
    const joins = join[4].joins as Record<string, { metas: Record<string, unknown>[] }>;
    expect(joins.alice!.metas[0]).toMatchObject({ mood: "happy" });
    const ref = joins.alice!.metas[0]!.phx_ref;
    expect(typeof ref).toBe("string");

    expect((await b.join("lobby", { presence: { key: "bob", enabled: true } })).status).toBe("ok");
    const state = await b.waitFor((f) => f[3] === "presence_state");
    expect(state[4]).toEqual({ alice: { metas: [{ mood: "happy", phx_ref: ref }] } });
    // presence_state comes after the join reply (diffs before it would be queued forever).
    const replyAt = b.frames.findIndex((f) => f[3] === "phx_reply");
    expect(b.frames.indexOf(state)).toBeGreaterThan(replyAt);

    a.close();
    const leave = await b.waitFor(
      (f) => f[3] === "presence_diff" && Object.keys(f[4].leaves as object).length > 0,
    );
    expect(leave[4]).toEqual({ joins: {}, leaves: { alice: { metas: [{ mood: "happy", phx_ref: ref }] } } });
    b.close();
  });

  it("private channels need the service key or a member", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.anonKey);
    expect((await c.join("p1", { private: true })).status).toBe("error");
    expect((await c.join("p2", { private: true }, p.serviceKey)).status).toBe("ok");
    c.close();
  });
});

describe("realtime: protocol hygiene and limits", () => {
  it("answers heartbeats, errors malformed frames and unknown topics without closing the socket", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.anonKey);
    const hb = c.push("phoenix", "heartbeat", {});
    expect((await c.reply(hb))[4]).toEqual({ status: "ok", response: {} });
    for (const junk of ["not json", '{"object":"frame"}', "[1,2]", '[null,"1","t","e",[1]]']) c.send(junk);
    c.send(new Uint8Array([9, 9, 9]).buffer);
    await c.waitFor((f) => f[3] === "error", 5000);
    const errors = () => c.frames.filter((f) => f[3] === "error");
    while (errors().length < 5) await c.waitFor(() => errors().length >= 5);
    expect(errors().every((f) => (f[4] as { code: string }).code === "HEARTH_BAD_FRAME")).toBe(true);
    const stray = c.push("realtime:never-joined", "broadcast", { type: "broadcast", event: "x" });
    expect((await c.reply(stray))[4]).toEqual({ status: "error", response: { reason: "unmatched topic" } });
    const big = c.push("phoenix", "heartbeat", { pad: "x".repeat(300 * 1024) });
    expect((await c.reply(big))[4].status).toBe("error");
    // Still alive.
    await joinTodos(c, "alive", [{ event: "*", schema: "public", table: "todos" }]);
    await barrier(p, c, "alive", 1);
    c.close();
  });

  it("caps channels per socket", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.anonKey);
    for (let i = 0; i < 100; i++) c.push(`realtime:c${i}`, "phx_join", { config: {} });
    await c.waitFor(() => c.frames.filter((f) => f[3] === "phx_reply").length >= 100);
    const over = await c.join("c100", {});
    expect(over.status).toBe("error");
    expect(over.response.code).toBe("HEARTH_REALTIME_LIMIT");
    // Rejoining a topic it holds is not a new channel.
    expect((await c.join("c5", {})).status).toBe("ok");
    c.close();
  });

  it("leaving a channel stops its events", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.anonKey);
    await joinTodos(c, "a", [{ event: "*", schema: "public", table: "todos" }]);
    await joinTodos(c, "b", [{ event: "*", schema: "public", table: "todos" }]);
    const leave = c.push("realtime:a", "phx_leave", {}, "1");
    expect((await c.reply(leave))[4].status).toBe("ok");
    await barrier(p, c, "b", 7);
    expect(c.changes("a")).toEqual([]);
    c.close();
  });
});

describe("realtime: hibernation and flushed rows", () => {
  const testEnv = env as unknown as Env;
  const stubOf = (p: TestProject) => testEnv.PROJECT.get(testEnv.PROJECT.idFromName(p.id));

  it("channels, filters and presence come back from storage when the object wakes from hibernation", async () => {
    const p = await projectWithSchema(SCHEMA);
    const a = await connectRealtime(p, p.anonKey);
    await joinTodos(a, "h", [
      { event: "INSERT", schema: "public", table: "todos", filter: "status=eq.paid" },
    ]);
    const t = a.push("realtime:h", "presence", { type: "presence", event: "track", payload: { at: 1 } }, "1");
    expect((await a.reply(t))[4].status).toBe("ok");
    // Hibernation drops memory, keeps storage and the sockets: rebuild the object's state.
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      (instance as unknown as { load(): void }).load();
    });
    await insert(p, "todos", { id: 1, status: "open" });
    await insert(p, "todos", { id: 2, status: "paid" });
    const got = await a.waitFor((f) => f[3] === "postgres_changes");
    expect(((got[4] as { data: Data }).data.record as { id: number }).id).toBe(2);
    expect((got[4] as { ids: number[] }).ids).toEqual([1]);
    const b = await connectRealtime(p, p.anonKey);
    await b.join("h", { presence: { key: "b", enabled: true } });
    const state = await b.waitFor((f) => f[3] === "presence_state");
    expect(Object.keys(state[4])).toHaveLength(1);
    a.close();
    b.close();
  });

  it("updates and deletes of flushed rows arrive with their old rows", async () => {
    const p = await projectWithSchema(SCHEMA);
    await insert(p, "todos", [
      { id: 1, title: "a", status: "open" },
      { id: 2, title: "b", status: "open" },
    ]);
    await admin(p, "flush");
    const c = await connectRealtime(p, p.anonKey);
    await joinTodos(c, "cold", [{ event: "*", schema: "public", table: "todos", filter: "status=eq.open" }]);
    await rest(p, "/todos?id=eq.1", { method: "PATCH", body: { title: "a2" } });
    await rest(p, "/todos?id=eq.2", { method: "DELETE" });
    await c.waitFor((f) => f[3] === "postgres_changes" && (f[4].data as Data).type === "DELETE");
    const events = c.changes("cold") as Data[];
    expect(events.map((e) => e.type)).toEqual(["UPDATE", "DELETE"]);
    expect(events[0]!.old_record).toMatchObject({ id: 1, title: "a" });
    expect(events[0]!.record).toMatchObject({ id: 1, title: "a2" });
    expect(events[1]!.old_record).toMatchObject({ id: 2, title: "b" });
    c.close();
  });

  it("an open socket keeps the project from freezing", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.anonKey);
    await joinTodos(c, "f", [{ event: "*", schema: "public", table: "todos" }]);
    const frozen = await admin<{ frozen: boolean }>(p, "freeze");
    expect(frozen.frozen).toBe(false);
    await barrier(p, c, "f", 1);
    c.close();
  });
});

describe("realtime: access ending mid-subscription, and limits", () => {
  const testEnv = env as unknown as Env;
  const stubOf = (p: TestProject) => testEnv.PROJECT.get(testEnv.PROJECT.idFromName(p.id));
  const MEMBERS_SCHEMA = {
    tables: {
      team: {
        columns: { id: { type: "integer", primaryKey: true }, title: { type: "text" } },
        policy: { read: "members", write: "members" },
      },
      todos: SCHEMA.tables.todos,
    },
  };

  it("a member removed from the project stops hearing about members-only rows before the next event", async () => {
    const owner = await signup(api, "rt-team-owner");
    const member = await signup(api, "rt-team-member");
    const res = await call("/v1/projects", {
      method: "POST",
      key: owner.accessToken,
      body: { name: "team" },
    });
    const p = (await res.json()) as TestProject;
    expect(
      (await call(`${p.url}/schema`, { method: "PUT", key: p.serviceKey, body: MEMBERS_SCHEMA })).status,
    ).toBe(200);
    const add = await call(`/v1/projects/${p.id}/members`, {
      method: "POST",
      key: owner.accessToken,
      body: { email: member.email, role: "reader" },
    });
    expect(add.status).toBe(201);
    const c = await connectRealtime(p, p.anonKey);
    await joinTodos(c, "team", [{ event: "*", schema: "public", table: "team" }], member.accessToken);
    await insert(p, "team", { id: 1, title: "before" });
    await c.waitFor((f) => f[3] === "postgres_changes");
    const removed = await call(`/v1/projects/${p.id}/members/${member.id}`, {
      method: "DELETE",
      key: owner.accessToken,
    });
    expect(removed.status).toBe(204);
    await insert(p, "team", { id: 2, title: "after" });
    await c.waitFor((f) => f[2] === "realtime:team" && f[3] === "phx_close");
    expect(c.changes("team").map((d) => (d.record as { id: number }).id)).toEqual([1]);
    c.close();
  });

  it("an expired token's channel is closed before the next event reaches it", async () => {
    const p = await projectWithSchema(SCHEMA);
    const id = `rt-exp-${crypto.randomUUID()}`;
    await account(id);
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await new SignJWT({ role: "authenticated" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("hearth")
      .setSubject(id)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(TEST_JWT_SECRET);
    const c = await connectRealtime(p, p.anonKey);
    await joinTodos(c, "exp", [{ event: "*", schema: "public", table: "notes" }], token);
    // Waiting for a deadline of the token itself, not synchronising with the server.
    await new Promise((r) => setTimeout(r, exp * 1000 - Date.now() + 50));
    await insert(p, "notes", { id: 1, body: "x", owner_id: id });
    const system = await c.waitFor(
      (f) => f[2] === "realtime:exp" && f[3] === "system" && f[4].status === "error",
    );
    expect(system[4]).toMatchObject({ status: "error", message: "Token has expired" });
    await c.waitFor((f) => f[3] === "phx_close");
    expect(c.changes("exp")).toEqual([]);
    c.close();
  });

  it("caps connections per project with 429 HEARTH_REALTIME_LIMIT", async () => {
    const p = await projectWithSchema(SCHEMA);
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      instance.tuning.maxConnections = 2;
    });
    const a = await connectRealtime(p, p.anonKey);
    const b = await connectRealtime(p, p.anonKey);
    const res = await call(`${p.url}/realtime/v1/websocket?apikey=${p.anonKey}&vsn=2.0.0`, {
      headers: { upgrade: "websocket" },
    });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { code: string }).code).toBe("HEARTH_REALTIME_LIMIT");
    a.close();
    b.close();
  });

  it("drops a consumer that reads nothing while events pile up, with close code 4008", async () => {
    const p = await projectWithSchema(SCHEMA);
    await runInDurableObject(stubOf(p), (instance: ProjectDO) => {
      (
        instance as unknown as { realtime: { host: { limits: { unreadBytes: number } } } }
      ).realtime.host.limits.unreadBytes = 4096;
    });
    const c = await connectRealtime(p, p.anonKey);
    await joinTodos(c, "slow", [{ event: "*", schema: "public", table: "todos" }]);
    const rows = Array.from({ length: 50 }, (_, i) => ({ id: i + 1, title: "x".repeat(200) }));
    expect((await insert(p, "todos", rows)).status).toBe(201);
    const closed = await c.waitClosed();
    expect(closed.code).toBe(4008);
    expect(closed.reason).toContain("slow consumer");
  });
});

describe("realtime: channel isolation, schema changes and presence limits", () => {
  it("a private and a public channel of one name share no broadcast and no presence", async () => {
    const p = await projectWithSchema(SCHEMA);
    const priv = await connectRealtime(p, p.serviceKey);
    const pub = await connectRealtime(p, p.anonKey);
    const pub2 = await connectRealtime(p, p.anonKey);
    expect(
      (await priv.join("room", { private: true, presence: { key: "boss", enabled: true } })).status,
    ).toBe("ok");
    expect((await pub.join("room", { presence: { key: "guest", enabled: true } })).status).toBe("ok");
    expect((await pub2.join("room", { broadcast: { self: true } })).status).toBe("ok");
    const t = priv.push(
      "realtime:room",
      "presence",
      { type: "presence", event: "track", payload: { secret: 1 } },
      "1",
    );
    expect((await priv.reply(t))[4].status).toBe("ok");
    priv.push("realtime:room", "broadcast", { type: "broadcast", event: "secret", payload: {} }, "1");
    pub.push("realtime:room", "broadcast", { type: "broadcast", event: "public", payload: {} }, "1");
    // pub2 hears the public broadcast; by then the private one would have arrived too.
    await pub2.waitFor((f) => f[3] === "broadcast" && f[4].event === "public");
    expect(pub2.frames.some((f) => f[3] === "broadcast" && f[4].event === "secret")).toBe(false);
    expect(pub.frames.some((f) => f[3] === "presence_diff")).toBe(false);
    expect(priv.frames.some((f) => f[3] === "broadcast" && f[4].event === "public")).toBe(false);
    const late = await connectRealtime(p, p.anonKey);
    await late.join("room", { presence: { key: "late", enabled: true } });
    expect((await late.waitFor((f) => f[3] === "presence_state"))[4]).toEqual({});
    for (const c of [priv, pub, pub2, late]) c.close();
  });

  it("a member removed from the project loses its private channel at the next broadcast", async () => {
    const owner = await signup(api, "rt-priv-owner");
    const member = await signup(api, "rt-priv-member");
    const res = await call("/v1/projects", { method: "POST", key: owner.accessToken, body: { name: "hq" } });
    const p = (await res.json()) as TestProject;
    const add = await call(`/v1/projects/${p.id}/members`, {
      method: "POST",
      key: owner.accessToken,
      body: { email: member.email, role: "reader" },
    });
    expect(add.status).toBe(201);
    const m = await connectRealtime(p, p.anonKey);
    const boss = await connectRealtime(p, p.serviceKey);
    expect((await m.join("hq", { private: true }, member.accessToken)).status).toBe("ok");
    expect((await boss.join("hq", { private: true, broadcast: { ack: true } })).status).toBe("ok");
    const removed = await call(`/v1/projects/${p.id}/members/${member.id}`, {
      method: "DELETE",
      key: owner.accessToken,
    });
    expect(removed.status).toBe(204);
    const ref = boss.push("realtime:hq", "broadcast", { type: "broadcast", event: "plan", payload: {} }, "1");
    await boss.reply(ref);
    await m.waitFor((f) => f[2] === "realtime:hq" && f[3] === "phx_close");
    expect(m.frames.some((f) => f[3] === "broadcast")).toBe(false);
    m.close();
    boss.close();
  });

  it("a schema change that breaks a channel's filter closes that channel only", async () => {
    const p = await projectWithSchema(SCHEMA);
    const filtered = await connectRealtime(p, p.anonKey);
    const plain = await connectRealtime(p, p.anonKey);
    await joinTodos(filtered, "f", [
      { event: "*", schema: "public", table: "todos", filter: "status=eq.paid" },
    ]);
    await joinTodos(plain, "p", [{ event: "*", schema: "public", table: "todos" }]);
    const { status: _drop, ...columns } = SCHEMA.tables.todos.columns;
    const next = {
      tables: { ...SCHEMA.tables, todos: { ...SCHEMA.tables.todos, columns } },
      migrations: [{ op: "dropColumn", table: "todos", column: "status" }],
    };
    expect((await call(`${p.url}/schema`, { method: "PUT", key: p.serviceKey, body: next })).status).toBe(
      200,
    );
    const closed = await filtered.waitFor(
      (f) => f[2] === "realtime:f" && f[3] === "system" && f[4].status === "error",
    );
    expect(String(closed[4].message)).toContain("status");
    await barrier(p, plain, "p", 1);
    filtered.close();
    plain.close();
  });

  it("refuses a presence state over 4 KiB, and sends presence_state before the first diff of a channel joined without presence", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.anonKey);
    expect((await c.join("lobby", {})).status).toBe("ok");
    const big = c.push(
      "realtime:lobby",
      "presence",
      { type: "presence", event: "track", payload: { pad: "x".repeat(5000) } },
      "1",
    );
    const refused = await c.reply(big);
    expect(refused[4]).toMatchObject({ status: "error", response: { code: "HEARTH_REALTIME_LIMIT" } });
    const ok = c.push(
      "realtime:lobby",
      "presence",
      { type: "presence", event: "track", payload: { n: 1 } },
      "1",
    );
    expect((await c.reply(ok))[4].status).toBe("ok");
    const state = c.frames.findIndex((f) => f[3] === "presence_state");
    const diff = c.frames.findIndex((f) => f[3] === "presence_diff");
    expect(state).toBeGreaterThanOrEqual(0);
    expect(diff).toBeGreaterThan(state);
    c.close();
  });
});
