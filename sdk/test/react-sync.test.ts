// @vitest-environment happy-dom
/**
 * The React hooks on a real sync engine (MemoryReplica) and the scripted server of
 * sync-fake-server.ts: `useQuery` is live (local optimistic writes, remote changes) and
 * unsubscribes on unmount; `useMutation` is pending until the server answers, and a rejection
 * surfaces its code and rolls the row back out of `useQuery`.
 */
import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { createElement, type ReactNode } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { createClient } from "../src/client/client.ts";
import { HearthError } from "../src/errors.ts";
import { HearthProvider, useMutation, useQuery } from "../src/react/index.ts";
import { MemoryReplica } from "../src/replica/memory.ts";
import type { Row } from "../src/replica/types.ts";
import type { SyncEngine } from "../src/sync/engine.ts";
import { FakeSyncServer } from "./sync-fake-server.ts";
import { engineFor, TEST_URL } from "./sync-helpers.ts";

const engines: SyncEngine[] = [];

afterEach(async () => {
  cleanup();
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

function setup() {
  const server = new FakeSyncServer();
  server.write({ op: "insert", table: "todos", row: { id: "a", title: "first", done: false } });
  const sync = engineFor(server, { replica: new MemoryReplica() });
  engines.push(sync);
  // REST must not be used in sync mode: a fetch that fails the test if called.
  const client = createClient(TEST_URL, {
    key: "anon",
    auth: { storage: "memory" },
    fetch: async (url) => {
      throw new Error(`unexpected REST request ${url}`);
    },
  });
  const wrapper = ({ children }: { children: ReactNode }) =>
    createElement(HearthProvider, { client, sync }, children);
  return { server, sync, wrapper };
}

const ids = (rows: Row[] | null) => rows?.map((r) => String(r.id)) ?? null;

describe("useQuery with a sync engine", () => {
  it("renders the replica's rows, then local writes at once and the server's changes", async () => {
    const { server, sync, wrapper } = setup();
    const { result } = renderHook(() => useQuery("todos", { where: (t) => !t.done, orderBy: "id" }), {
      wrapper,
    });
    expect(result.current).toEqual({ data: null, loading: true, error: null });
    await waitFor(() => expect(ids(result.current.data)).toEqual(["a"]));
    expect(result.current.loading).toBe(false);

    // Optimistic: shown while the server holds the push unanswered.
    server.holdPushes = true;
    await act(async () => {
      await sync.insert("todos", { id: "b", title: "local", done: false }).queued;
    });
    await waitFor(() => expect(ids(result.current.data)).toEqual(["a", "b"]));
    expect(server.rows("todos").map((r) => r.id)).toEqual(["a"]);
    server.releasePushes();

    // Another client's write reaches the hook through the feed.
    await act(async () => {
      server.write({ op: "insert", table: "todos", row: { id: "c", title: "remote", done: false } });
    });
    await waitFor(() => expect(ids(result.current.data)).toEqual(["a", "b", "c"]));
    await act(async () => {
      server.write({ op: "update", table: "todos", pk: { id: "a" }, values: { done: true } });
    });
    await waitFor(() => expect(ids(result.current.data)).toEqual(["b", "c"]));
  });

  it("unsubscribes on unmount: later changes no longer reach it", async () => {
    const { server, sync, wrapper } = setup();
    const stops: string[] = [];
    let deliveries = 0;
    // Count what the hook's live query is told, and when it unsubscribes.
    const live = sync.live.bind(sync);
    sync.live = ((table: string, options: object, callback: (rows: Row[]) => void, more?: object) => {
      const stop = live(
        table,
        options,
        (rows) => {
          deliveries++;
          callback(rows);
        },
        more,
      );
      return () => {
        stops.push(table);
        stop();
      };
    }) as typeof sync.live;
    const { result, unmount } = renderHook(() => useQuery("todos"), { wrapper });
    await waitFor(() => expect(ids(result.current.data)).toEqual(["a"]));
    const before = deliveries;
    unmount();
    expect(stops).toEqual(["todos"]);

    // A live query made after it sees the change: by then the hook's would have too.
    sync.live = live;
    const seen: string[][] = [];
    const stop = sync.live("todos", { orderBy: "id" }, (rows) => seen.push(rows.map((r) => String(r.id))));
    server.write({ op: "insert", table: "todos", row: { id: "z", done: false } });
    await sync.insert("todos", { id: "y" }).queued;
    await waitFor(() => expect(seen.at(-1)).toEqual(["a", "y", "z"]));
    stop();
    expect(deliveries).toBe(before);
  });

  it("runs again when its options key changes, and reads the latest `where` through `deps`", async () => {
    const { sync, wrapper } = setup();
    await sync.insert("todos", { id: "b", title: "second", done: true }).queued;
    const { result, rerender } = renderHook(
      ({ done }: { done: boolean }) => useQuery("todos", { where: (t) => t.done === done, deps: [done] }),
      { wrapper, initialProps: { done: false } },
    );
    await waitFor(() => expect(ids(result.current.data)).toEqual(["a"]));
    rerender({ done: true });
    await waitFor(() => expect(ids(result.current.data)).toEqual(["b"]));
  });

  it("reports a `where` that throws as its error", async () => {
    const { wrapper } = setup();
    const bad = new Error("bad predicate");
    const { result } = renderHook(
      () =>
        useQuery("todos", {
          where: () => {
            throw bad;
          },
        }),
      { wrapper },
    );
    await waitFor(() => expect(result.current.error?.message).toBe("bad predicate"));
    expect(result.current.error).toMatchObject({ code: "HEARTH_SYNC_CLIENT", cause: bad });
    expect(result.current.loading).toBe(false);
  });

  it("a table the engine does not follow is an error at once, not a query loading forever", async () => {
    const { sync, wrapper } = setup();
    const engineErrors: unknown[] = [];
    sync.on("error", (e) => engineErrors.push(e));
    const { result } = renderHook(() => useQuery("todoz"), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.data).toBeNull();
    expect(result.current.error).toBeInstanceOf(HearthError);
    expect(result.current.error).toMatchObject({
      code: "HEARTH_SYNC_UNKNOWN_TABLE",
      message: "todoz is not one of the synced tables (todos, notes)",
    });
    expect(engineErrors).toEqual([]); // the hook's own error, not the engine's event
  });
});

describe("useMutation with a sync engine", () => {
  it("is pending until the server answers, and the row shows at once", async () => {
    const { server, wrapper } = setup();
    server.holdPushes = true;
    const { result } = renderHook(
      () => ({ q: useQuery("todos", { orderBy: "id" }), m: useMutation("todos") }),
      {
        wrapper,
      },
    );
    await waitFor(() => expect(ids(result.current.q.data)).toEqual(["a"]));
    expect(result.current.m.pending).toBe(false);

    let write!: Promise<void>;
    act(() => {
      write = result.current.m.insert({ id: "b", title: "mine" });
    });
    expect(result.current.m.pending).toBe(true);
    await waitFor(() => expect(ids(result.current.q.data)).toEqual(["a", "b"]));
    await server.until(() => server.pushes.length === 1, "the push");
    expect(result.current.m.pending).toBe(true);

    await act(async () => {
      server.releasePushes();
      await write;
    });
    expect(result.current.m.pending).toBe(false);
    expect(result.current.m.error).toBeNull();
    expect(server.rows("todos").map((r) => r.id)).toEqual(["a", "b"]);

    await act(() => result.current.m.update("b", { done: true }));
    expect(server.rows("todos").find((r) => r.id === "b")).toMatchObject({ done: true });
    await act(() => result.current.m.remove("a"));
    await waitFor(() => expect(ids(result.current.q.data)).toEqual(["b"]));
    expect(server.rows("todos").map((r) => r.id)).toEqual(["b"]);
  });

  it("a rejection lands in `error` with the server's code, and the row is rolled back", async () => {
    const { server, wrapper } = setup();
    server.holdPushes = true;
    server.decide = () => ({
      kind: "reject",
      error: { code: "42501", message: "no write access to todos", details: null, hint: null },
    });
    const { result } = renderHook(
      () => ({ q: useQuery("todos", { orderBy: "id" }), m: useMutation("todos") }),
      {
        wrapper,
      },
    );
    await waitFor(() => expect(ids(result.current.q.data)).toEqual(["a"]));

    // Not awaited: the rejection must not become an unhandled one.
    act(() => {
      void result.current.m.insert({ id: "b", title: "refused" });
    });
    await waitFor(() => expect(ids(result.current.q.data)).toEqual(["a", "b"]));
    act(() => server.releasePushes());
    await waitFor(() => expect(result.current.m.error).not.toBeNull());
    expect(result.current.m.error).toMatchObject({
      name: "SyncMutationError",
      outcome: "rejected",
      code: "42501",
      message: "no write access to todos",
    });
    expect(result.current.m.pending).toBe(false);
    await waitFor(() => expect(ids(result.current.q.data)).toEqual(["a"]));

    // An awaited call rejects with the same error; reset() clears it.
    await act(async () => {
      await expect(result.current.m.upsert({ id: "c" })).rejects.toMatchObject({ code: "42501" });
    });
    act(() => result.current.m.reset());
    expect(result.current.m.error).toBeNull();
  });
});
