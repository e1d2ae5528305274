/**
 * The replicas: what is committed is there after a reopen (a reload), all of a batch or none
 * of it, snapshot rows staged beside the current ones until the swap. The same behaviour is
 * checked on IndexedDbReplica (fake-indexeddb, a fresh factory per test) and on MemoryReplica
 * persisted through a load/save pair.
 */
import "fake-indexeddb/auto"; // the IDB classes `idb` recognises objects by
import { IDBFactory, IDBKeyRange } from "fake-indexeddb";
import { describe, expect, it } from "vitest";
import { IndexedDbReplica, ReplicaInUseError, type ReplicaLocks } from "../src/replica/indexeddb.ts";
import { MemoryReplica } from "../src/replica/memory.ts";
import type { QueuedMutation, Replica } from "../src/replica/types.ts";

/** A place that outlives replica instances: opening a new replica on it is a reload. */
interface Store {
  open(): Replica;
}

function idbStore(): Store {
  const indexedDB = new IDBFactory();
  return { open: () => new IndexedDbReplica({ name: "test", indexedDB, IDBKeyRange }) };
}

function fileStore(): Store & { saves: number } {
  const file = { text: null as string | null, saves: 0 };
  return {
    get saves() {
      return file.saves;
    },
    open: () =>
      new MemoryReplica({
        persist: {
          load: () => file.text,
          save: async (json) => {
            await new Promise((r) => setTimeout(r, 1));
            file.text = json;
            file.saves++;
          },
        },
      }),
  };
}

const mutation = (id: number, extra: Partial<QueuedMutation> = {}): QueuedMutation => ({
  id,
  op: "insert",
  table: "todos",
  row: { id: `r${id}`, title: `t${id}` },
  state: "pending",
  queuedAt: 1_700_000_000_000 + id,
  ...extra,
});

async function reopened(store: Store, replica: Replica): Promise<Replica> {
  await replica.close();
  const again = store.open();
  await again.open();
  return again;
}

describe.each([
  ["IndexedDbReplica", idbStore],
  ["MemoryReplica with a file", fileStore],
])("%s", (_name, makeStore) => {
  it("keeps rows, cursor, queue and client id across a reopen", async () => {
    const store = makeStore();
    const replica = store.open();
    const first = await replica.open();
    expect(first.meta).toMatchObject({ nextMutationId: 1, cursor: null, tables: [] });
    expect(first.meta.clientId).toMatch(/^[0-9a-f-]{36}$/);
    expect(first.mutations).toEqual([]);

    await replica.commit({
      rows: [
        { table: "todos", key: '["a"]', row: { id: "a", title: "milk", done: false } },
        { table: "todos", key: '["b"]', row: { id: "b", title: "eggs", done: true } },
        { table: "notes", key: '["a"]', row: { id: "a", body: "same key, other table" } },
      ],
      meta: { cursor: 41, tables: ["todos", "notes"] },
    });
    await replica.commit({
      putMutations: [mutation(1), mutation(2, { state: "applied", lsn: 44 })],
      meta: { nextMutationId: 3 },
    });

    const again = await reopened(store, replica);
    const contents = await again.open();
    expect(contents.meta).toEqual({
      clientId: first.meta.clientId,
      nextMutationId: 3,
      cursor: 41,
      tables: ["todos", "notes"],
    });
    expect(contents.mutations).toEqual([mutation(1), mutation(2, { state: "applied", lsn: 44 })]);
    expect(new Map(await again.rows("todos"))).toEqual(
      new Map([
        ['["a"]', { id: "a", title: "milk", done: false }],
        ['["b"]', { id: "b", title: "eggs", done: true }],
      ]),
    );
    expect(await again.rows("notes")).toEqual([['["a"]', { id: "a", body: "same key, other table" }]]);
    expect(await again.row("todos", '["b"]')).toEqual({ id: "b", title: "eggs", done: true });
    expect(await again.row("todos", '["zz"]')).toBeUndefined();
    await again.close();
  });

  it("applies a batch's row writes in order and removes mutations by id", async () => {
    const store = makeStore();
    const replica = store.open();
    await replica.open();
    await replica.commit({ putMutations: [mutation(1), mutation(2), mutation(3)] });
    await replica.commit({
      rows: [
        { table: "todos", key: '["a"]', row: { id: "a", title: "v1" } },
        { table: "todos", key: '["a"]', row: null },
        { table: "todos", key: '["b"]', row: { id: "b", title: "v1" } },
        { table: "todos", key: '["b"]', row: { id: "b", title: "v2" } },
      ],
      deleteMutations: [1, 3],
      putMutations: [mutation(2, { state: "applied", lsn: 9 })],
    });
    const again = await reopened(store, replica);
    expect(await again.rows("todos")).toEqual([['["b"]', { id: "b", title: "v2" }]]);
    expect((await again.open()).mutations).toEqual([mutation(2, { state: "applied", lsn: 9 })]);
    await again.close();
  });

  it("stages snapshot rows beside the current ones and swaps them in whole", async () => {
    const store = makeStore();
    const replica = store.open();
    await replica.open();
    await replica.commit({
      rows: [
        { table: "todos", key: '["old"]', row: { id: "old" } },
        { table: "notes", key: '["n"]', row: { id: "n" } },
      ],
      meta: { cursor: 5, tables: ["todos"] },
    });
    // An earlier snapshot that never finished left rows behind: a new one forgets them.
    await replica.commit({ staged: [{ table: "todos", key: '["stale"]', row: { id: "stale" } }] });
    await replica.commit({ clearStaged: true, meta: { cursor: null } });
    await replica.commit({
      staged: [
        { table: "todos", key: '["x"]', row: { id: "x" } },
        { table: "todos", key: '["y"]', row: { id: "y" } },
      ],
    });
    // Until the swap the current rows are what reads see.
    expect(await replica.rows("todos")).toEqual([['["old"]', { id: "old" }]]);
    await replica.commit({ swapStaged: ["todos"], meta: { cursor: 90, tables: ["todos"] } });
    expect(await replica.rows("todos")).toEqual([
      ['["x"]', { id: "x" }],
      ['["y"]', { id: "y" }],
    ]);
    // Tables outside the snapshot are left alone; the staging area is empty again.
    expect(await replica.rows("notes")).toEqual([['["n"]', { id: "n" }]]);
    await replica.commit({ swapStaged: ["todos"] });
    expect(await replica.rows("todos")).toEqual([]);
    const again = await reopened(store, replica);
    expect((await again.open()).meta.cursor).toBe(90);
    await again.close();
  });

  it("hands out copies: changing a row read or committed does not change the replica", async () => {
    const replica = makeStore().open();
    await replica.open();
    const row = { id: "a", tags: ["x"] };
    await replica.commit({ rows: [{ table: "todos", key: '["a"]', row }] });
    row.tags.push("changed after commit");
    const [[, read]] = (await replica.rows("todos")) as [[string, { tags: string[] }]];
    read.tags.push("changed after read");
    expect(await replica.row("todos", '["a"]')).toEqual({ id: "a", tags: ["x"] });
    await replica.close();
  });
});

describe("IndexedDbReplica", () => {
  it("commits a batch all or nothing: a failing write leaves the cursor, rows and queue as they were", async () => {
    const store = idbStore();
    const replica = store.open();
    await replica.open();
    await replica.commit({
      rows: [{ table: "todos", key: '["a"]', row: { id: "a" } }],
      meta: { cursor: 3, tables: ["todos"] },
    });
    const unstorable = { id: "b", f: () => 1 }; // functions cannot be cloned into IndexedDB
    await expect(
      replica.commit({
        rows: [
          { table: "todos", key: '["a"]', row: null },
          { table: "todos", key: '["b"]', row: unstorable },
        ],
        putMutations: [mutation(1)],
        meta: { cursor: 4, nextMutationId: 2 },
      }),
    ).rejects.toThrow();
    const again = await reopened(store, replica);
    const contents = await again.open();
    expect(contents.meta).toMatchObject({ cursor: 3, nextMutationId: 1 });
    expect(contents.mutations).toEqual([]);
    expect(await again.rows("todos")).toEqual([['["a"]', { id: "a" }]]);
    await again.close();
  });

  it("is opened by one engine at a time where Web Locks exist (two would hand out the same ids)", async () => {
    // Web Locks as browsers grant them: exclusive by name, held until the callback's promise settles.
    const held = new Set<string>();
    const locks: ReplicaLocks = {
      async request(name, _options, callback) {
        if (held.has(name)) return callback(null);
        held.add(name);
        void Promise.resolve(callback({ name })).finally(() => held.delete(name));
      },
    };
    const indexedDB = new IDBFactory();
    const open = (name: string) => new IndexedDbReplica({ name, indexedDB, IDBKeyRange, locks });
    const first = open("shared");
    await first.open();
    const second = open("shared");
    await expect(second.open()).rejects.toBeInstanceOf(ReplicaInUseError);
    await expect(second.open()).rejects.toMatchObject({ code: "HEARTH_REPLICA_IN_USE", status: 0 });
    const other = open("another");
    await other.open();
    await first.close();
    await second.open();
    await Promise.all([second.close(), other.close()]);
  });

  it("needs an IndexedDB: a clear error where there is none", () => {
    const saved = globalThis.indexedDB;
    try {
      (globalThis as { indexedDB?: unknown }).indexedDB = undefined;
      expect(() => new IndexedDbReplica()).toThrow(/needs IndexedDB/);
    } finally {
      (globalThis as { indexedDB?: unknown }).indexedDB = saved;
    }
  });
});

describe("MemoryReplica", () => {
  it("resolves a commit only after a save that holds it, sharing saves between concurrent commits", async () => {
    const store = fileStore();
    const replica = store.open();
    await replica.open();
    const before = store.saves;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => replica.commit({ putMutations: [mutation(i + 1)] })),
    );
    // Each resolved commit is on "disk": a reload sees all twenty.
    const again = store.open();
    expect((await again.open()).mutations.map((m) => m.id)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    // Commits made while a save ran waited for one more save instead of one each.
    expect(store.saves - before).toBeLessThan(20);
    expect(store.saves - before).toBeGreaterThanOrEqual(1);
  });

  it("rejects a commit whose save failed, and saves it with the next one", async () => {
    let fail = true;
    let text: string | null = null;
    const persist = {
      load: () => text,
      save: (json: string) => {
        if (fail) throw new Error("disk full");
        text = json;
      },
    };
    const failing = new MemoryReplica({ persist });
    fail = false;
    await failing.open();
    fail = true;
    await expect(failing.commit({ putMutations: [mutation(1)] })).rejects.toThrow("disk full");
    fail = false;
    await failing.commit({ putMutations: [mutation(2)] });
    const reloaded = new MemoryReplica({ persist });
    expect((await reloaded.open()).mutations.map((m) => m.id)).toEqual([1, 2]);
  });

  it("works without persistence (a Worker's or a test's memory)", async () => {
    const replica = new MemoryReplica();
    const { meta } = await replica.open();
    await replica.commit({ meta: { cursor: 7, tables: ["todos"] } });
    expect((await replica.open()).meta).toEqual({ ...meta, cursor: 7, tables: ["todos"] });
  });
});
