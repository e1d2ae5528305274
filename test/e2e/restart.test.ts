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

  it("keeps every acknowledged write exactly once when killed during writes and a flush, three times over", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "hearth-restart-flush-"));
    let server = await startHearth({ stateDir: dir });
    servers.push(server);
    try {
      const admin = { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" };
      const project = (await json(
        await fetch(`${server.url}/v1/projects`, {
          method: "POST",
          headers: admin,
          body: JSON.stringify({ name: "kill" }),
        }),
      )) as { id: string; serviceKey: string };
      const key = { apikey: project.serviceKey, "content-type": "application/json" };
      const base = () => `${server.url}/p/${project.id}`;
      await json(
        await fetch(`${base()}/schema`, { method: "PUT", headers: key, body: JSON.stringify(SCHEMA) }),
      );
      const acked = new Set<number>();
      let next = 0;
      const counts = { kills: 0, acked: 0, unanswered: 0, flushesAnswered: 0 };
      for (let round = 0; round < 3; round++) {
        // Writers in a loop, a flush sent among them, and a SIGKILL of the whole group
        // a few milliseconds later (before, during or after the flush: each is fine).
        let stop = false;
        const writer = async () => {
          while (!stop) {
            const rows = Array.from({ length: 20 }, () => ({ n: next++ }));
            try {
              const res = await fetch(`${base()}/rest/v1/events`, {
                method: "POST",
                headers: key,
                body: JSON.stringify(rows),
              });
              if (res.status === 201) for (const r of rows) acked.add(r.n);
              else await res.body?.cancel();
            } catch {
              counts.unanswered++;
              return; // the server is gone
            }
          }
        };
        const writers = [writer(), writer(), writer()];
        await new Promise((r) => setTimeout(r, 300));
        const flush = fetch(`${base()}/admin/v1/flush`, { method: "POST", headers: key }).then(
          (r) => {
            counts.flushesAnswered++;
            return r.body?.cancel();
          },
          () => {},
        );
        await new Promise((r) => setTimeout(r, 5 + round * 20));
        process.kill(-server.pid!, "SIGKILL");
        counts.kills++;
        stop = true;
        await Promise.all([...writers, flush]);
        await server.stop();
        server = await startHearth({ stateDir: dir });
        servers.push(server);

        // Every acknowledged row is there exactly once; rows whose answer was lost may be too.
        const res = await fetch(`${base()}/rest/v1/events?select=n&order=n`, { headers: key });
        expect(res.status).toBe(200);
        const ns = ((await res.json()) as { n: number }[]).map((r) => r.n);
        expect(new Set(ns).size, "a row is doubled").toBe(ns.length);
        const present = new Set(ns);
        const lost = [...acked].filter((n) => !present.has(n));
        expect(lost, "acknowledged rows lost").toEqual([]);
        counts.acked = acked.size;
        // Not stuck: it flushes and takes writes again.
        expect((await fetch(`${base()}/admin/v1/flush`, { method: "POST", headers: key })).status).toBe(200);
      }
      console.log(`restart: ${JSON.stringify(counts)}`);
    } finally {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
