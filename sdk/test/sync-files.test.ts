/**
 * File metadata in the sync engine against the scripted server (sync-fake-server.ts):
 * `storage.objects` is followed like a table keyed by `id` (a move is an update of `name`),
 * typed by `FileTables`, and read-only: writes reject with HEARTH_SYNC_READ_ONLY before
 * anything is queued or pushed.
 */
import "fake-indexeddb/auto";
import { IDBFactory } from "fake-indexeddb";
import { afterEach, describe, expect, it } from "vitest";
import { createSync, type SyncEngine } from "../src/sync/engine.ts";
import { SyncError } from "../src/sync/errors.ts";
import type { FileTables, StorageObjectRow } from "../src/sync/files.ts";
import { FakeSyncServer } from "./sync-fake-server.ts";
import { idbReplica, statusOf, TEST_URL } from "./sync-helpers.ts";

const engines: Pick<SyncEngine, "close">[] = [];

afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

function object(id: string, name: string, size: number): StorageObjectRow {
  const at = "2026-11-23T06:00:00.000Z";
  return {
    id,
    bucket_id: "avatars",
    name,
    owner: null,
    owner_id: null,
    version: `v-${id}-${size}`,
    metadata: {
      eTag: '"0"',
      size,
      mimetype: "image/png",
      cacheControl: "max-age=3600",
      lastModified: at,
      contentLength: size,
      httpStatusCode: 200,
    },
    user_metadata: null,
    created_at: at,
    updated_at: at,
    last_accessed_at: at,
  };
}

describe("sync engine: file metadata", () => {
  it("follows storage.objects by id, and refuses writes to it before queueing", async () => {
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "storage.objects", row: object("f1", "me.png", 10) });
    const sync = createSync<{ todos: { id: string; title: string } } & FileTables>({
      url: TEST_URL,
      token: "anon-key",
      tables: ["todos", "storage.objects"],
      replica: idbReplica(new IDBFactory()),
      WebSocket: server.WebSocket,
      backoff: { initialMs: 5, maxMs: 40 },
      pingIntervalMs: 60_000,
    });
    engines.push(sync);
    await statusOf(sync, "live");
    await server.until(() => server.caughtUp(), "caught up");
    const files = await sync.query("storage.objects", { orderBy: "name" });
    expect(files.map((f) => [f.name, f.metadata.size])).toEqual([["me.png", 10]]);
    // A move: the same id, a new name.
    server.write({ op: "upsert", table: "storage.objects", row: object("f1", "you.png", 10) });
    await server.until(() => server.caughtUp(), "caught up");
    expect((await sync.query("storage.objects")).map((f) => f.name)).toEqual(["you.png"]);

    const attempts = [
      // @ts-expect-error storage.objects takes no writes
      sync.insert("storage.objects", { id: "x" }),
      // @ts-expect-error storage.objects takes no writes
      sync.delete("storage.objects", "f1"),
      // @ts-expect-error storage.buckets takes no writes
      sync.upsert("storage.buckets", { id: "b" }),
    ];
    for (const write of attempts) {
      await expect(write).rejects.toBeInstanceOf(SyncError);
      await expect(write).rejects.toMatchObject({ code: "HEARTH_SYNC_READ_ONLY" });
    }
    // Writes to the other tables still go.
    await sync.insert("todos", { id: "t1", title: "milk" });
    expect(sync.pendingCount).toBe(0);
    expect(server.socket.received.filter((f) => f.type === "push")).toHaveLength(1);
  });
});
