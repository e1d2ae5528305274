/**
 * A real `wrangler dev` SIGKILLed while compaction runs, at each of its steps: after its new
 * segments are written (nothing committed), after its manifest is put (the catalog not yet),
 * and after its catalog commit (the object's own version not yet). The server pauses there
 * (HEARTH_DEV_PAUSE_AFTER, durable-objects/cold/dev-pause.ts) and logs a line; the test kills
 * the whole process group when it sees that line, so the kill lands inside compaction every
 * time, with no timing guess. After each restart on the same state: every acknowledged row
 * exactly once with its value, every deleted row gone, the project readable and writable, no
 * flush left pending, and the manifest in force is the one the step implies (a compaction
 * killed before its manifest is forgotten, one killed after is finished by recovery).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
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

/** The kill points, one per round, and what the restarted project holds after each. */
const ROUNDS = [
  // killed before the compaction's marker: the flush's manifest (2 segments) stays in force
  { step: "compact-segments", segments: 2, version: 2 },
  // manifest put: recovery commits it (the 3 small segments become 1)
  { step: "compact-manifest", segments: 1, version: 4 },
  // catalog committed: recovery installs it locally
  { step: "compact-catalog", segments: 1, version: 6 },
] as const;

const PAUSE_MS = 20_000; // under the 30 s a blockConcurrencyWhile may last

interface Stats {
  hotRows: number;
  coldRows: number;
  segments: number;
  manifestVersion: number;
  flushPending: boolean;
}

async function json<T>(res: Response): Promise<T> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${res.status} ${text}`);
  return (text ? JSON.parse(text) : null) as T;
}

describe("wrangler dev killed during compaction", () => {
  it("loses, doubles and half-applies nothing when the kill lands at each step of a compaction", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "hearth-restart-compact-"));
    /** resolves when the running server logs that it paused at its step */
    let paused: Promise<void> = Promise.resolve();
    let server: HearthProcess;
    const servers: HearthProcess[] = [];
    const start = async (step: string | null): Promise<HearthProcess> => {
      let seen: () => void = () => {};
      paused = new Promise<void>((resolve) => {
        seen = resolve;
      });
      let out = "";
      const s = await startHearth({
        stateDir: dir,
        env: step ? { HEARTH_DEV_PAUSE_AFTER: `${step}:${PAUSE_MS}` } : {},
        onOutput: (chunk: string) => {
          out = (out + chunk).slice(-4096);
          if (step && out.includes(`hearth-dev: paused after ${step}`)) seen();
        },
      });
      servers.push(s);
      return s;
    };
    server = await start(ROUNDS[0].step);
    try {
      const admin = { authorization: `Bearer ${server.adminKey}`, "content-type": "application/json" };
      const project = await json<{ id: string; serviceKey: string }>(
        await fetch(`${server.url}/v1/projects`, {
          method: "POST",
          headers: admin,
          body: JSON.stringify({ name: "compact-kill" }),
        }),
      );
      const key = { apikey: project.serviceKey, "content-type": "application/json" };
      const base = () => `${server.url}/p/${project.id}`;
      const stats = async () => json<Stats>(await fetch(`${base()}/admin/v1/stats`, { headers: key }));
      await json(
        await fetch(`${base()}/schema`, { method: "PUT", headers: key, body: JSON.stringify(SCHEMA) }),
      );

      /** the oracle: acknowledged live rows (id → n); ids whose answer was lost */
      const live = new Map<number, number>();
      const deleted = new Set<number>();
      const unsure = new Set<number>();
      let nextN = 0;
      const counts = { kills: 0, liveRows: 0, deletedRows: 0, unanswered: 0, compactionsFinished: 0 };
      const insert = async (rows: number): Promise<boolean> => {
        const body = Array.from({ length: rows }, () => ({ n: nextN++ }));
        let res: Response;
        try {
          res = await fetch(`${base()}/rest/v1/events?select=id,n`, {
            method: "POST",
            headers: { ...key, prefer: "return=representation" },
            body: JSON.stringify(body),
          });
        } catch {
          counts.unanswered++;
          for (const r of body) unsure.add(r.n);
          return false; // the server is gone
        }
        if (res.status !== 201) {
          await res.body?.cancel();
          return false;
        }
        for (const r of (await res.json()) as { id: number; n: number }[]) live.set(r.id, r.n);
        return true;
      };
      /** deletes about 40% of the live rows (tombstones in the flushed segments) */
      const deleteSome = async () => {
        const doomed = [...live.keys()].filter((id) => id % 5 < 2).slice(0, 80);
        for (let i = 0; i < doomed.length; i += 20) {
          const ids = doomed.slice(i, i + 20);
          const res = await fetch(`${base()}/rest/v1/events?id=in.(${ids.join(",")})`, {
            method: "DELETE",
            headers: key,
          });
          expect(res.status).toBe(204);
          for (const id of ids) {
            live.delete(id);
            deleted.add(id);
          }
        }
      };
      const check = async (round: (typeof ROUNDS)[number] | null) => {
        const res = await fetch(`${base()}/rest/v1/events?select=id,n&order=id`, { headers: key });
        expect(res.status).toBe(200);
        const rows = (await res.json()) as { id: number; n: number }[];
        const ids = rows.map((r) => r.id);
        expect(new Set(ids).size, "a row is doubled").toBe(ids.length);
        const got = new Map(rows.map((r) => [r.id, r.n]));
        const lost = [...live].filter(([id, n]) => got.get(id) !== n);
        expect(lost, "acknowledged rows lost or changed").toEqual([]);
        expect(
          ids.filter((id) => deleted.has(id)),
          "deleted rows back",
        ).toEqual([]);
        // Rows not in the oracle may only be writes whose answer the kill swallowed.
        const strangers = rows.filter((r) => !live.has(r.id) && !unsure.has(r.n));
        expect(strangers, "rows nobody wrote").toEqual([]);
        for (const r of rows) if (!live.has(r.id)) live.set(r.id, r.n); // present now: kept from here on
        const s = await stats();
        expect(s.flushPending, "a flush left pending").toBe(false);
        expect(s.hotRows + s.coldRows).toBe(rows.length);
        if (round) {
          expect({ segments: s.segments, version: s.manifestVersion }).toEqual({
            segments: round.segments,
            version: round.version,
          });
          if (round.step !== "compact-segments") counts.compactionsFinished++;
        }
      };

      // v1: one small segment (a single one is not worth compacting: no pause yet).
      expect(await insert(100)).toBe(true);
      expect((await fetch(`${base()}/admin/v1/flush`, { method: "POST", headers: key })).status).toBe(200);

      for (let r = 0; r < ROUNDS.length; r++) {
        const round = ROUNDS[r]!;
        expect(await insert(60)).toBe(true);
        await deleteSome();
        // Writers keep going; the flush writes a segment, compaction then pauses at the step.
        let stop = false;
        const writer = async () => {
          while (!stop && (await insert(10)));
        };
        const writers = [writer(), writer()];
        const flush = fetch(`${base()}/admin/v1/flush`, { method: "POST", headers: key }).then(
          (res) => res.body?.cancel(),
          () => {},
        );
        await paused;
        process.kill(-server.pid!, "SIGKILL");
        counts.kills++;
        stop = true;
        await Promise.all([...writers, flush]);
        await server.stop();
        server = await start(ROUNDS[r + 1]?.step ?? null);
        await check(round);
      }

      // Writable, and the next flush compacts everything into one segment.
      expect(await insert(5)).toBe(true);
      expect((await fetch(`${base()}/admin/v1/flush`, { method: "POST", headers: key })).status).toBe(200);
      await check(null);
      const s = await stats();
      expect(s).toMatchObject({ hotRows: 0, coldRows: live.size, segments: 1, flushPending: false });
      counts.liveRows = live.size;
      counts.deletedRows = deleted.size;
      console.log(
        `restart during compaction: ${JSON.stringify(counts)}, 0 lost, 0 doubled, 0 deleted rows back`,
      );
    } finally {
      for (const s of servers) await s.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
