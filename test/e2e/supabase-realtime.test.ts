/**
 * Realtime through an unmodified supabase-js (`channel().on(...).subscribe()`) against the
 * real `npm start` server: postgres_changes with filters, broadcast (WebSocket and the HTTP
 * fallback), presence, and a signed-in user who only hears about their own rows.
 * Waiting is by promise on the callbacks, never by sleeping; every client is removed at the end.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import ws from "ws";
import { collector, subscribed } from "./realtime-wait.ts";
import { createProject, type Project, putSchema, type Server } from "./server.ts";

const server: Server = { url: inject("hearthUrl"), adminKey: inject("hearthAdminKey") };

const SCHEMA = {
  tables: {
    todos: {
      columns: {
        id: { type: "integer", primaryKey: true },
        title: { type: "text" },
        status: { type: "text" },
        done: { type: "boolean", default: false },
        meta: { type: "json" },
      },
      policy: { read: "public", write: "public" },
    },
    notes: {
      columns: { id: { type: "integer", primaryKey: true }, body: { type: "text" } },
      policy: { read: "owner", write: "owner" },
    },
  },
};

const clients: SupabaseClient[] = [];

function client(project: Project, key: string): SupabaseClient {
  const sb = createClient(project.url, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: ws as never },
  });
  clients.push(sb);
  return sb;
}

let project: Project;
beforeAll(async () => {
  project = await createProject(server, "realtime-e2e");
  await putSchema(project, SCHEMA);
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.removeAllChannels()));
});

describe("supabase-js realtime against npm start", () => {
  it("postgres_changes: INSERT with a filter, UPDATE and DELETE with typed values", async () => {
    const sb = client(project, project.anonKey);
    const paid = collector<Record<string, unknown>>();
    const all = collector<Record<string, unknown>>();
    const channel = sb
      .channel("todos-feed")
      .on(
        "postgres_changes",
        { event: "INSERT", schema: "public", table: "todos", filter: "status=eq.paid" },
        (p) => paid.push(p as never),
      )
      .on("postgres_changes", { event: "*", schema: "public", table: "todos" }, (p) => all.push(p as never));
    await subscribed(channel);
    const writer = client(project, project.serviceKey);
    expect(
      (await writer.from("todos").insert({ id: 1, title: "a", status: "open", meta: { n: 1 } })).error,
    ).toBeNull();
    expect((await writer.from("todos").insert({ id: 2, title: "b", status: "paid" })).error).toBeNull();
    expect((await writer.from("todos").update({ done: true }).eq("id", 1)).error).toBeNull();
    expect((await writer.from("todos").delete().eq("id", 2)).error).toBeNull();
    const events = await all.until(4);
    expect(events.map((e) => e.eventType)).toEqual(["INSERT", "INSERT", "UPDATE", "DELETE"]);
    expect(events[0]).toMatchObject({
      schema: "public",
      table: "todos",
      new: { id: 1, title: "a", status: "open", done: false, meta: { n: 1 } },
    });
    expect(events[2]).toMatchObject({ new: { id: 1, done: true }, old: { id: 1, done: false } });
    expect(events[3]).toMatchObject({ old: { id: 2, status: "paid" } });
    expect(typeof events[0]!.commit_timestamp).toBe("string");
    const filtered = await paid.until(1);
    expect(filtered.map((e) => (e.new as { id: number }).id)).toEqual([2]);
    await sb.removeChannel(channel);
  });

  it("broadcast: others receive, self:false is honoured, ack resolves ok, and the HTTP fallback works", async () => {
    const a = client(project, project.anonKey);
    const b = client(project, project.anonKey);
    const atA = collector<Record<string, unknown>>();
    const atB = collector<Record<string, unknown>>();
    const ca = a.channel("chat", { config: { broadcast: { self: false, ack: true } } });
    ca.on("broadcast", { event: "msg" }, (m) => atA.push(m));
    const cb = b.channel("chat", { config: { broadcast: { self: true } } });
    cb.on("broadcast", { event: "msg" }, (m) => atB.push(m));
    await subscribed(ca);
    await subscribed(cb);
    expect(await ca.send({ type: "broadcast", event: "msg", payload: { text: "hi" } })).toBe("ok");
    expect((await atB.until(1))[0]).toMatchObject({ event: "msg", payload: { text: "hi" } });
    expect(await cb.send({ type: "broadcast", event: "msg", payload: { text: "back" } })).toBe("ok");
    await atB.until(2);
    expect((await atA.until(1)).map((m) => (m.payload as { text: string }).text)).toEqual(["back"]);
    // Not joined: realtime-js posts to /realtime/v1/api/broadcast instead.
    const c = client(project, project.anonKey);
    const unjoined = c.channel("chat");
    expect(await unjoined.send({ type: "broadcast", event: "msg", payload: { text: "over http" } })).toBe(
      "ok",
    );
    await atA.until(2);
    expect((atA.items[1]!.payload as { text: string }).text).toBe("over http");
    await a.removeChannel(ca);
    await b.removeChannel(cb);
  });

  it("presence: sync, join and leave events with the tracked state", async () => {
    const a = client(project, project.anonKey);
    const b = client(project, project.anonKey);
    const ca = a.channel("lobby", { config: { presence: { key: "alice" } } });
    const joins = collector<{ key: string }>();
    const leaves = collector<{ key: string }>();
    ca.on("presence", { event: "join" }, (e) => joins.push(e))
      .on("presence", { event: "leave" }, (e) => leaves.push(e))
      .on("presence", { event: "sync" }, () => {});
    await subscribed(ca);
    expect(await ca.track({ mood: "happy" })).toBe("ok");
    const cb = b.channel("lobby", { config: { presence: { key: "bob" } } });
    cb.on("presence", { event: "sync" }, () => {});
    await subscribed(cb);
    expect(await cb.track({ mood: "curious" })).toBe("ok");
    await joins.until(2);
    expect(joins.items.map((j) => j.key).sort()).toEqual(["alice", "bob"]);
    const state = ca.presenceState() as Record<string, { mood: string }[]>;
    expect(state.bob?.[0]?.mood).toBe("curious");
    await b.removeChannel(cb);
    const left = await leaves.until(1);
    expect(left[0]!.key).toBe("bob");
    expect(Object.keys(ca.presenceState())).toEqual(["alice"]);
    await a.removeChannel(ca);
  });

  it("a signed-in user hears only about their own rows of an owner-policy table", async () => {
    const users = [0, 1].map(() => client(project, project.anonKey));
    const heard = [collector<Record<string, unknown>>(), collector<Record<string, unknown>>()];
    for (const [i, sb] of users.entries()) {
      const address = `rt-${i}-${crypto.randomUUID().slice(0, 8)}@example.test`;
      const up = await sb.auth.signUp({ email: address, password: "correct horse" });
      expect(up.error).toBeNull();
      // realtime-js joins with the session's access token once the client has one.
      sb.realtime.setAuth(up.data.session!.access_token);
      const ch = sb
        .channel(`notes-${i}`)
        .on("postgres_changes", { event: "*", schema: "public", table: "notes" }, (p) =>
          heard[i]!.push(p as never),
        );
      await subscribed(ch);
    }
    expect((await users[0]!.from("notes").insert({ id: 1, body: "mine" })).error).toBeNull();
    expect((await users[1]!.from("notes").insert({ id: 2, body: "theirs" })).error).toBeNull();
    expect((await users[0]!.from("notes").insert({ id: 3, body: "mine too" })).error).toBeNull();
    const first = await heard[0]!.until(2);
    expect(first.map((e) => (e.new as { id: number }).id)).toEqual([1, 3]);
    const second = await heard[1]!.until(1);
    expect(second.map((e) => (e.new as { id: number }).id)).toEqual([2]);
    // By the time user 0 heard about row 3, row 2 (committed before it) would have reached them.
    expect(heard[0]!.items).toHaveLength(2);
  });
});
