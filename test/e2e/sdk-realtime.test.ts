/**
 * The SDK's realtime helpers (sdk/src/realtime) against the real `npm start` server: table
 * changes with a filter, broadcast and presence. Waiting is by promise, never by sleeping.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import ws from "ws";
import { createRealtime, type Realtime, type TableChange } from "../../sdk/src/realtime/index.ts";
import { createProject, type Project, putSchema, type Server } from "./server.ts";

const server: Server = { url: inject("hearthUrl"), adminKey: inject("hearthAdminKey") };

const SCHEMA = {
  tables: {
    todos: {
      columns: {
        id: { type: "integer", primaryKey: true },
        title: { type: "text" },
        status: { type: "text" },
      },
      policy: { read: "public", write: "public" },
    },
  },
};

/** Resolves with the first `n` values pushed, or rejects after `ms`. */
function collect<T>(n: number, ms = 10_000) {
  const items: T[] = [];
  let done: (v: T[]) => void = () => {};
  const all = new Promise<T[]>((resolve, reject) => {
    done = resolve;
    setTimeout(() => reject(new Error(`got ${items.length} of ${n}: ${JSON.stringify(items)}`)), ms);
  });
  return {
    items,
    all,
    push(x: T) {
      items.push(x);
      if (items.length === n) done(items);
    },
  };
}

let project: Project;
const open: Realtime[] = [];
const realtime = () => {
  const rt = createRealtime(project.url, { key: project.anonKey, WebSocket: ws });
  open.push(rt);
  return rt;
};

beforeAll(async () => {
  project = await createProject(server, "sdk-realtime");
  await putSchema(project, SCHEMA);
});

afterAll(async () => {
  await Promise.all(open.map((rt) => rt.close()));
});

async function insert(row: Record<string, unknown>): Promise<void> {
  const res = await fetch(`${project.url}/rest/v1/todos`, {
    method: "POST",
    headers: { authorization: `Bearer ${project.serviceKey}`, "content-type": "application/json" },
    body: JSON.stringify(row),
  });
  expect(res.status).toBe(201);
}

describe("SDK realtime helpers against npm start", () => {
  it("onTableChange delivers the changes a filter selects, and stops after unsubscribing", async () => {
    const rt = realtime();
    const paid = collect<TableChange>(2);
    const stop = await rt.onTableChange("todos", { event: "INSERT", filter: "status=eq.paid" }, (c) =>
      paid.push(c),
    );
    await insert({ id: 1, title: "a", status: "open" });
    await insert({ id: 2, title: "b", status: "paid" });
    await insert({ id: 3, title: "c", status: "paid" });
    const got = await paid.all;
    expect(got.map((c) => [c.type, c.new.id])).toEqual([
      ["INSERT", 2],
      ["INSERT", 3],
    ]);
    expect(typeof got[0]!.commitTimestamp).toBe("string");
    await stop();
  });

  it("broadcast reaches the other client and not the sender", async () => {
    const a = await realtime().broadcast<{ text: string }>("chat");
    const b = await realtime().broadcast<{ text: string }>("chat");
    const atB = collect<[string, { text: string }]>(1);
    const atA: unknown[] = [];
    a.on((e, p) => atA.push([e, p]));
    b.on((e, p) => atB.push([e, p]));
    await a.send("msg", { text: "hi" });
    expect(await atB.all).toEqual([["msg", { text: "hi" }]]);
    // b's reply reaches a; a's own message never came back to it.
    const back = collect<unknown>(1);
    a.on((e, p) => back.push([e, p]));
    await b.send("msg", { text: "back" });
    await back.all;
    expect(atA).toEqual([["msg", { text: "back" }]]);
  });

  it("presence shows who is in a room and drops those who leave", async () => {
    const alice = await realtime().presence("lobby", "alice", { mood: "happy" });
    const bob = await realtime().presence("lobby", "bob", { mood: "curious" });
    const seesBoth = new Promise<void>((resolve) => {
      const check = (s: Record<string, unknown[]>) => {
        if (s.alice && s.bob) resolve();
      };
      check(alice.state());
      alice.onChange(check);
    });
    await seesBoth;
    expect(alice.state().bob).toEqual([{ mood: "curious" }]);
    const bobGone = new Promise<void>((resolve) => {
      alice.onChange((s) => {
        if (!s.bob) resolve();
      });
    });
    await bob.leave();
    await bobGone;
    expect(Object.keys(alice.state())).toEqual(["alice"]);
  });
});
