import { beforeAll, describe, expect, it } from "vitest";
import { projectWithSchema, rest, type TestProject } from "./helpers/api.ts";

const SCHEMA = {
  tables: {
    customers: { columns: { id: { type: "integer", primaryKey: true }, name: { type: "text" } } },
    orders: {
      columns: {
        id: { type: "integer", primaryKey: true },
        customer_id: { type: "integer", references: "customers.id" },
        status: { type: "text" },
        amount: { type: "float" },
        qty: { type: "integer" },
      },
    },
  },
};

describe("aggregates in select (PostgREST 12), hot tier", () => {
  let p: TestProject;
  beforeAll(async () => {
    p = await projectWithSchema(SCHEMA);
    await rest(p, "/customers", {
      method: "POST",
      body: [
        { id: 1, name: "A" },
        { id: 2, name: "B" },
        { id: 3, name: "C" },
      ],
    });
    await rest(p, "/orders", {
      method: "POST",
      body: [
        { id: 1, customer_id: 1, status: "paid", amount: 10, qty: 1 },
        { id: 2, customer_id: 1, status: "paid", amount: 5.5, qty: 2 },
        { id: 3, customer_id: 2, status: "open", amount: 7, qty: 3 },
        { id: 4, customer_id: 2, status: "paid", amount: null, qty: 4 },
      ],
    });
  });

  async function get(q: string): Promise<unknown> {
    const res = await rest(p, q);
    expect(res.status, q).toBe(200);
    return res.json();
  }

  it("groups by the plain columns", async () => {
    expect(await get("/orders?select=status,amount.sum(),count()&order=status")).toEqual([
      { status: "open", sum: 7, count: 1 },
      { status: "paid", sum: 15.5, count: 3 },
    ]);
  });

  it("aggregates the whole table without plain columns, with aliases and casts", async () => {
    expect(
      await get(
        "/orders?select=total:amount.sum(),n:count(),avg_qty:qty.avg(),lo:amount.min(),hi:amount.max(),amount.count()",
      ),
    ).toEqual([{ total: 22.5, n: 4, avg_qty: 2.5, lo: 5.5, hi: 10, count: 3 }]);
    expect(await get("/orders?select=qty.sum()::text")).toEqual([{ sum: "10" }]);
  });

  it("applies filters before grouping", async () => {
    expect(await get("/orders?select=customer_id,qty.sum()&status=eq.paid&order=customer_id")).toEqual([
      { customer_id: 1, sum: 3 },
      { customer_id: 2, sum: 4 },
    ]);
  });

  it("answers count() on an empty result as one row, grouped as none", async () => {
    expect(await get("/orders?select=count()&status=eq.none")).toEqual([{ count: 0 }]);
    expect(await get("/orders?select=status,count()&status=eq.none")).toEqual([]);
  });

  it("counts per parent in an embedded resource", async () => {
    expect(await get("/customers?select=name,orders(count())&order=id")).toEqual([
      { name: "A", orders: [{ count: 2 }] },
      { name: "B", orders: [{ count: 2 }] },
      { name: "C", orders: [] },
    ]);
  });

  it("counts groups with count=exact", async () => {
    const res = await rest(p, "/orders?select=status,count()", { headers: { prefer: "count=exact" } });
    expect(res.headers.get("content-range")).toBe("0-1/2");
  });
});
