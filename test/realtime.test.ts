import { describe, expect, it } from "vitest";
import { projectWithSchema, rest } from "./helpers/api.ts";
import { connectRealtime } from "./helpers/realtime.ts";

const SCHEMA = {
  tables: {
    todos: {
      columns: {
        id: { type: "integer", primaryKey: true },
        title: { type: "text" },
        status: { type: "text" },
        done: { type: "boolean", default: false },
      },
      policy: { read: "public", write: "public" },
    },
    notes: {
      columns: { id: { type: "integer", primaryKey: true }, body: { type: "text" } },
      policy: { read: "owner", write: "owner" },
    },
    secrets: {
      columns: { id: { type: "integer", primaryKey: true }, value: { type: "text" } },
      policy: { read: "service", write: "service" },
    },
  },
};

describe("realtime: postgres_changes", () => {
  it("delivers insert, update and delete with record, old_record, columns and LSN", async () => {
    const p = await projectWithSchema(SCHEMA);
    const c = await connectRealtime(p, p.serviceKey);
    const reply = await c.join("room", {
      postgres_changes: [{ event: "*", schema: "public", table: "todos" }],
    });
    expect(reply).toEqual({
      status: "ok",
      response: { postgres_changes: [{ id: 1, event: "*", schema: "public", table: "todos" }] },
    });
    expect((await rest(p, "/todos", { method: "POST", body: { id: 1, title: "Ada" } })).status).toBe(201);
    const ins = await c.waitFor((f) => f[3] === "postgres_changes");
    expect(ins[0]).toBeNull();
    const data = (ins[4] as { ids: number[]; data: Record<string, unknown> }).data;
    expect((ins[4] as { ids: number[] }).ids).toEqual([1]);
    expect(data.type).toBe("INSERT");
    expect(data.table).toBe("todos");
    expect(data.record).toMatchObject({ id: 1, title: "Ada" });
    expect(typeof data.lsn).toBe("number");
    expect(Array.isArray(data.columns)).toBe(true);
    c.close();
  });
});
