/**
 * Durability across a real `wrangler dev` crash: acknowledged writes survive SIGKILL of the
 * whole server process group and a restart on the same local state directory.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type HearthProcess, startHearth } from "../../scripts/server-process.mjs";

const SCHEMA = {
  tables: {
    events: {
      columns: {
        id: { type: "bigint", primaryKey: true, default: "increment" },
        n: { type: "integer", notNull: true },
      },
    },
  },
};

async function json(res: Response): Promise<unknown> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

describe("wrangler dev restart", () => {
  let stateDir = "";
  const servers: HearthProcess[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("keeps every acknowledged write after SIGKILL and restart", async () => {
    stateDir = await mkdtemp(path.join(os.tmpdir(), "hearth-restart-"));
    const first = await startHearth({ stateDir });
    servers.push(first);
    const admin = { authorization: `Bearer ${first.adminKey}`, "content-type": "application/json" };
    const project = (await json(
      await fetch(`${first.url}/v1/projects`, {
        method: "POST",
        headers: admin,
        body: JSON.stringify({ name: "crash" }),
      }),
    )) as { id: string; serviceKey: string };
    const key = { apikey: project.serviceKey, "content-type": "application/json" };
    const base = (url: string) => `${url}/p/${project.id}`;
    await json(
      await fetch(`${base(first.url)}/schema`, { method: "PUT", headers: key, body: JSON.stringify(SCHEMA) }),
    );

    // Acknowledged writes, then a hard kill while nothing is flushed anywhere else.
    let acknowledged = 0;
    for (let i = 0; i < 20; i++) {
      const rows = Array.from({ length: 50 }, (_, j) => ({ n: i * 50 + j }));
      const res = await fetch(`${base(first.url)}/rest/v1/events`, {
        method: "POST",
        headers: key,
        body: JSON.stringify(rows),
      });
      expect(res.status).toBe(201);
      acknowledged += rows.length;
    }
    const before = (await json(await fetch(`${base(first.url)}/admin/v1/stats`, { headers: key }))) as {
      wal: { last: number };
    };
    expect(first.pid).toBeGreaterThan(0);
    process.kill(-first.pid!, "SIGKILL");
    await first.stop(); // waits until the group is gone; the state dir is ours and stays

    const second = await startHearth({ stateDir });
    servers.push(second);
    const res = await fetch(`${base(second.url)}/rest/v1/events?select=n&order=n`, {
      headers: { ...key, prefer: "count=exact" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-range")).toBe(`0-${acknowledged - 1}/${acknowledged}`);
    const ns = ((await res.json()) as { n: number }[]).map((r) => r.n);
    expect(ns).toEqual(Array.from({ length: acknowledged }, (_, i) => i));

    // the WAL survived and keeps counting from where it was
    const after = (await json(await fetch(`${base(second.url)}/admin/v1/stats`, { headers: key }))) as {
      wal: { last: number; entries: number };
    };
    expect(after.wal.last).toBe(before.wal.last);
    expect(after.wal.entries).toBe(acknowledged);
    await json(
      await fetch(`${base(second.url)}/rest/v1/events`, {
        method: "POST",
        headers: key,
        body: JSON.stringify({ n: -1 }),
      }),
    );
    const last = (await json(await fetch(`${base(second.url)}/admin/v1/stats`, { headers: key }))) as {
      wal: { last: number };
    };
    expect(last.wal.last).toBe(before.wal.last + 1);
  }, 240_000);
});
