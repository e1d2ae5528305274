/**
 * The engine and the device's network signals (sdk/src/sync/network.ts): offline, no socket is
 * opened and an open one is closed; writes queue; back online, it connects at once (no back-off
 * wait) and pushes the queue. The browser's `navigator.onLine` and window events are stubbed on
 * globalThis, so the default path (no `network` option) is what runs.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { MemoryReplica } from "../src/replica/memory.ts";
import type { SyncEngine } from "../src/sync/engine.ts";
import { platformNetwork } from "../src/sync/network.ts";
import { FakeSyncServer } from "./sync-fake-server.ts";
import { collect, engineFor, statusOf } from "./sync-helpers.ts";

/** A window-like global: `navigator.onLine` and `online`/`offline` events. */
function stubBrowser(online: boolean) {
  const target = new EventTarget();
  const navigator = { onLine: online };
  vi.stubGlobal("navigator", navigator);
  vi.stubGlobal("addEventListener", target.addEventListener.bind(target));
  vi.stubGlobal("removeEventListener", target.removeEventListener.bind(target));
  return {
    set(on: boolean) {
      navigator.onLine = on;
      target.dispatchEvent(new Event(on ? "online" : "offline"));
    },
  };
}

const engines: SyncEngine[] = [];
afterEach(async () => {
  await Promise.all(engines.splice(0).map((e) => e.close()));
  vi.unstubAllGlobals();
});

function start(server: FakeSyncServer): SyncEngine {
  // A long back-off: only the `online` event can bring the socket back within the test.
  const sync = engineFor(server, {
    replica: new MemoryReplica(),
    backoff: { initialMs: 60_000, maxMs: 60_000 },
  });
  engines.push(sync);
  return sync;
}

describe("sync engine: the device's network signals", () => {
  it("has none outside a browser", () => {
    expect(platformNetwork()).toBeNull();
  });

  it("opens no socket while the device is offline, and connects as soon as it is back", async () => {
    const device = stubBrowser(false);
    const server = new FakeSyncServer();
    server.write({ op: "insert", table: "todos", row: { id: "a", title: "from the server" } });
    const sync = start(server);
    await statusOf(sync, "offline");
    expect(server.sockets).toHaveLength(0);

    const write = sync.insert("todos", { id: "b", title: "written offline" });
    await write.queued;
    expect((await sync.query("todos")).map((r) => r.id)).toEqual(["b"]);

    device.set(true);
    await expect(write).resolves.toMatchObject({ status: "applied" });
    await sync.settled();
    expect(server.sockets).toHaveLength(1);
    expect((await sync.query("todos", { orderBy: "id" })).map((r) => r.id)).toEqual(["a", "b"]);
  });

  it("closes the socket when the device goes offline, queues, and pushes once back online", async () => {
    const device = stubBrowser(true);
    const server = new FakeSyncServer();
    const sync = start(server);
    await statusOf(sync, "live");
    const first = server.socket;
    const drops = collect(sync, "disconnected");

    device.set(false);
    await statusOf(sync, "offline");
    expect(first.open).toBe(false);
    expect(drops).toEqual([{ code: 1001, reason: "the device went offline", retryInMs: null }]);
    const write = sync.insert("todos", { id: "c", title: "queued" });
    await write.queued;
    expect(server.sockets).toHaveLength(1); // no reconnect attempt while offline
    expect(server.rows("todos")).toEqual([]);

    device.set(true);
    await expect(write).resolves.toMatchObject({ status: "applied" });
    expect(server.sockets).toHaveLength(2);
    expect(server.rows("todos")).toMatchObject([{ id: "c", title: "queued" }]);
  });

  it("takes the signals it is given instead of the platform's, or none with network: false", async () => {
    stubBrowser(false); // the platform says offline; the option wins
    const server = new FakeSyncServer();
    const ignoring = engineFor(server, { replica: new MemoryReplica(), network: false });
    engines.push(ignoring);
    await statusOf(ignoring, "live");

    let online = false;
    let notify: (on: boolean) => void = () => {};
    const own = engineFor(server, {
      replica: new MemoryReplica(),
      network: {
        online: () => online,
        subscribe: (listener) => {
          notify = listener;
          return () => {};
        },
      },
    });
    engines.push(own);
    await statusOf(own, "offline");
    online = true;
    notify(true);
    await statusOf(own, "live");
  });

  it("stops listening when stopped", async () => {
    const device = stubBrowser(false);
    const server = new FakeSyncServer();
    const sync = start(server);
    await statusOf(sync, "offline");
    sync.stop();
    device.set(true);
    await new Promise((r) => setTimeout(r, 20));
    expect(sync.status).toBe("stopped");
    expect(server.sockets).toHaveLength(0);
  });
});
