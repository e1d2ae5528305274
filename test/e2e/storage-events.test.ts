/**
 * File events against the real `npm start` server: an unmodified supabase-js subscribed to
 * `postgres_changes` on `storage.objects` (with a bucket filter) hears uploads, upserts,
 * moves, copies and removes, and an anon subscriber hears only public buckets; the SDK's
 * sync engine follows `storage.objects` into a replica whose live query tracks the files,
 * and refuses writes to it. Waiting is on callbacks and promises, never on sleeps.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import WebSocket from "ws";
import { MemoryReplica } from "../../sdk/src/replica/memory.ts";
import { createSync, type SyncEngine } from "../../sdk/src/sync/engine.ts";
import { SyncError } from "../../sdk/src/sync/errors.ts";
import type { FileTables, StorageObjectRow } from "../../sdk/src/sync/files.ts";
import { collector, subscribed } from "./realtime-wait.ts";
import { createProject, type Project, type Server } from "./server.ts";

const server: Server = { url: inject("hearthUrl"), adminKey: inject("hearthAdminKey") };

const clients: SupabaseClient[] = [];
const engines: Pick<SyncEngine, "close">[] = [];

function client(project: Project, key: string): SupabaseClient {
  const sb = createClient(project.url, key, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: WebSocket as never },
  });
  clients.push(sb);
  return sb;
}

type Payload = {
  eventType: string;
  schema: string;
  table: string;
  new: Record<string, unknown>;
  old: Record<string, unknown>;
};

let project: Project;
let service: SupabaseClient;

beforeAll(async () => {
  project = await createProject(server, "storage-events-e2e");
  service = client(project, project.serviceKey);
  expect((await service.storage.createBucket("avatars", { public: true })).error).toBeNull();
  expect((await service.storage.createBucket("private")).error).toBeNull();
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.removeAllChannels()));
  await Promise.all(engines.map((e) => e.close()));
});

const text = (s: string) => new Blob([s], { type: "text/plain" });

describe("file events over supabase-js realtime", () => {
  it("hears uploads, upserts, moves, copies and removes on storage.objects, filtered by bucket", async () => {
    const sb = client(project, project.serviceKey);
    const avatars = collector<Payload>();
    const channel = sb
      .channel("files")
      .on(
        "postgres_changes",
        { event: "*", schema: "storage", table: "objects", filter: "bucket_id=eq.avatars" },
        (p) => avatars.push(p as never),
      );
    await subscribed(channel);
    const bucket = service.storage.from("avatars");
    expect((await bucket.upload("me.png", text("one"))).error).toBeNull();
    expect((await bucket.upload("me.png", text("two!"), { upsert: true })).error).toBeNull();
    expect((await service.storage.from("private").upload("other.txt", text("x"))).error).toBeNull();
    expect((await bucket.move("me.png", "you.png")).error).toBeNull();
    expect((await bucket.copy("you.png", "copy.png")).error).toBeNull();
    expect((await bucket.remove(["you.png", "copy.png"])).error).toBeNull();
    const events = await avatars.until(6);
    const name = (e: Payload) => (e.eventType === "DELETE" ? e.old : e.new).name;
    expect(events.map((e) => `${e.eventType} ${name(e)}`)).toEqual([
      "INSERT me.png",
      "UPDATE me.png",
      "UPDATE you.png",
      "INSERT copy.png",
      "DELETE you.png",
      "DELETE copy.png",
    ]);
    const [ins, upsert, moved] = events as [Payload, Payload, Payload];
    expect(ins).toMatchObject({ schema: "storage", table: "objects" });
    // jsonb metadata arrives as an object, as from info() and list().
    expect(ins.new).toMatchObject({
      bucket_id: "avatars",
      name: "me.png",
      metadata: { size: 3, mimetype: "text/plain" },
    });
    expect(upsert.new.id).toBe(ins.new.id);
    expect(moved.old).toMatchObject({ id: ins.new.id, name: "me.png" });
    expect(moved.new).toMatchObject({ id: ins.new.id, name: "you.png", metadata: { size: 4 } });
    await sb.removeChannel(channel);
  });

  it("an anon subscriber hears public buckets only", async () => {
    const anon = client(project, project.anonKey);
    const heard = collector<Payload>();
    const channel = anon
      .channel("anon-files")
      .on("postgres_changes", { event: "INSERT", schema: "storage", table: "objects" }, (p) =>
        heard.push(p as never),
      );
    await subscribed(channel);
    expect((await service.storage.from("private").upload("secret.txt", text("s"))).error).toBeNull();
    expect((await service.storage.from("avatars").upload("public.txt", text("p"))).error).toBeNull();
    const events = await heard.until(1);
    // Delivery is in order: the private upload came first and was not sent.
    expect(events.map((e) => `${e.new.bucket_id}/${e.new.name}`)).toEqual(["avatars/public.txt"]);
    await anon.removeChannel(channel);
  });
});

describe("file metadata in the SDK's sync engine", () => {
  it("keeps a live replica of the files the credential may read, and refuses writes to it", async () => {
    type DB = FileTables;
    const sync = createSync<DB>({
      url: project.url,
      token: project.anonKey,
      tables: ["storage.objects"],
      replica: new MemoryReplica(),
      WebSocket: WebSocket as never,
    });
    engines.push(sync);
    await sync.settled();
    const names = (rows: StorageObjectRow[]) => rows.map((r) => `${r.bucket_id}/${r.name}`);
    const seen: string[][] = [];
    let wake: (() => void) | null = null;
    const stop = sync.live(
      "storage.objects",
      { where: (f) => f.bucket_id === "avatars", orderBy: "name" },
      (rows) => {
        seen.push(names(rows));
        wake?.();
      },
    );
    const until = (want: string[]) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`last answer ${JSON.stringify(seen.at(-1))}`)), 20_000);
        const check = () => {
          if (JSON.stringify(seen.at(-1)) === JSON.stringify(want)) {
            clearTimeout(t);
            wake = null;
            resolve();
          } else wake = check;
        };
        check();
      });
    await until(["avatars/public.txt"]);
    const bucket = service.storage.from("avatars");
    expect((await bucket.upload("b.txt", text("b"))).error).toBeNull();
    await until(["avatars/b.txt", "avatars/public.txt"]);
    expect((await bucket.move("b.txt", "c.txt")).error).toBeNull();
    await until(["avatars/c.txt", "avatars/public.txt"]);
    expect((await bucket.remove(["public.txt"])).error).toBeNull();
    await until(["avatars/c.txt"]);
    // The private bucket's files never reach an anon replica.
    expect(names(await sync.query("storage.objects"))).toEqual(["avatars/c.txt"]);
    const [row] = await sync.query("storage.objects");
    expect(row!.metadata.size).toBe(1);
    stop();

    // Read-only: typed away, and refused at run time for untyped callers.
    // @ts-expect-error storage.objects takes no writes
    const write = sync.insert("storage.objects", { name: "x" });
    await expect(write).rejects.toBeInstanceOf(SyncError);
    await expect(write).rejects.toMatchObject({ code: "HEARTH_SYNC_READ_ONLY" });
    expect(sync.pendingCount).toBe(0);
  });
});
