/**
 * Section 1 of the storage bench, the idle cost card: N small projects are created, flushed
 * and frozen on a server of their own; what each frozen project costs is read from the state
 * dir and /proc (a stats call would wake the project), as (total − baseline) ÷ N.
 */
import { setTimeout as delay } from "node:timers/promises";
import { createProject, expectStatus, keyHeaders, putSchema, startBenchHearth } from "./hearth.mjs";
import {
  d1Bytes,
  durableObjectContents,
  durableObjectStorage,
  r2Objects,
  workerdRss,
} from "./local-state.mjs";
import { errorBlock, errorCell, table } from "./markdown.mjs";
import { int, mb, ms, summarize } from "./stats.mjs";
import {
  adminCall,
  call,
  elapsed,
  HEARTH_ENV,
  KiB,
  kib,
  pool,
  waitEvicted,
  withServerContext,
} from "./storage-hearth.mjs";

const NOTES_SCHEMA = {
  tables: {
    notes: {
      columns: {
        id: { type: "bigint", primaryKey: true },
        title: { type: "text" },
        body: { type: "text" },
        done: { type: "boolean" },
        created_at: { type: "timestamp" },
      },
      policy: { read: "public", write: "public" },
    },
  },
};
const NOTES_ROWS = Array.from({ length: 20 }, (_, i) => ({
  id: i + 1,
  title: `note ${i + 1}`,
  body: `Remember item ${i + 1}: ${"lorem ipsum ".repeat(3)}`,
  done: i % 3 === 0,
  created_at: new Date(Date.UTC(2024, 0, 1) + i * 3_600_000).toISOString(),
}));

export async function idleSection({ cfg, step }) {
  const n = cfg.idle;
  const out = [`## 1. Idle cost of a frozen project (${int(n)} projects)`, ""];
  const started = await step("start Hearth (idle card)", () => startBenchHearth({ env: HEARTH_ENV }));
  if (!started.ok) return [...out, errorBlock("Starting Hearth", started.error), ""];
  const server = started.value;
  const serverStep = (name, fn) => step(name, () => withServerContext(server, fn));
  const measure = async () => {
    const m = {
      rss: await workerdRss(server.pid),
      dos: durableObjectStorage(server.stateDir),
      d1: d1Bytes(server.stateDir),
    };
    // Copying the databases is synchronous and takes seconds for 1,000 objects: let undici
    // see the kept-alive sockets the server closed meanwhile, or the next POST goes out on
    // one of them and fails (UND_ERR_SOCKET).
    await delay(500);
    return m;
  };
  const newProject = async (i) => {
    const project = await createProject(server, `idle-${i}`);
    await putSchema(project, NOTES_SCHEMA);
    const res = await call(`${project.url}/rest/v1/notes`, {
      method: "POST",
      headers: {
        ...keyHeaders(project.serviceKey),
        "content-type": "application/json",
        prefer: "return=minimal",
      },
      body: JSON.stringify(NOTES_ROWS),
    });
    expectStatus(res, 201, `POST 20 notes into project ${i}`);
    return project;
  };
  const freeze = async (project) => {
    const flushed = await adminCall(project, "flush");
    const t0 = process.hrtime.bigint();
    const frozen = await adminCall(project, "freeze");
    if (!frozen.frozen) throw new Error(`freeze of ${project.id} answered ${JSON.stringify(frozen)}`);
    return { flushed, freezeMs: elapsed(t0) };
  };
  try {
    const base = await serverStep("idle: baseline (one project created, frozen, evicted)", async () => {
      await freeze(await newProject(0));
      await waitEvicted(server.stateDir);
      return measure();
    });
    if (!base.ok) return [...out, errorBlock("The baseline", base.error), ""];
    const created = await serverStep(`idle: create ${n} projects with 20 rows each`, async () => {
      const t0 = process.hrtime.bigint();
      const projects = await pool(
        Array.from({ length: n }, (_, i) => i + 1),
        4,
        newProject,
      );
      const hotStats = await adminCall(projects[0], "stats");
      return { projects, seconds: elapsed(t0) / 1000, hot: await measure(), hotStats };
    });
    if (!created.ok) return [...out, errorBlock("Creating the projects", created.error), ""];
    const { projects } = created.value;
    const frozen = await serverStep(`idle: flush and freeze ${n} projects`, async () => {
      const t0 = process.hrtime.bigint();
      const results = await pool(projects, 4, freeze);
      const seconds = elapsed(t0) / 1000;
      const atFreeze = await measure();
      const waitedMs = await waitEvicted(server.stateDir);
      return { results, seconds, atFreeze, waitedMs, idle: await measure() };
    });
    if (!frozen.ok) return [...out, errorBlock("Freezing the projects", frozen.error), ""];
    const { results, atFreeze, idle, waitedMs } = frozen.value;
    const { hot } = created.value;
    const r2 = await serverStep("idle: R2 objects of the frozen projects", () => {
      const ids = new Set(projects.map((p) => p.id));
      const objects = r2Objects(server.stateDir, "projects/").filter((o) => ids.has(o.key.split("/")[1]));
      return { objects, bytes: objects.reduce((s, o) => s + o.size, 0) };
    });
    const contents = await serverStep("idle: what a frozen project's DO database holds", () => {
      // Every object, the baseline's too, is frozen and evicted: any one of them will do.
      return durableObjectContents(server.stateDir, { limit: 1 })[0];
    });
    const wakes = await serverStep("idle: first read of a frozen, evicted project (cold wake)", async () => {
      const samples = [];
      for (const project of projects.slice(0, Math.min(20, n))) {
        const res = await call(`${project.url}/rest/v1/notes?id=eq.7`, {
          headers: keyHeaders(project.anonKey),
        });
        expectStatus(res, 200, "cold read of note 7");
        if (JSON.parse(res.body)[0]?.title !== "note 7")
          throw new Error(`note 7 came back as ${res.body.slice(0, 200)}`);
        samples.push(res.ms);
      }
      return summarize(samples);
    });

    const per = (a, b) => (a - b) / n;
    const freezeMs = summarize(results.map((r) => r.freezeMs));
    const segBytes = results.reduce((s, r) => s + r.flushed.bytes, 0) / n;
    const doFrozen = per(idle.dos.logical, base.value.dos.logical);
    const rssFrozen = per(atFreeze.rss.total, base.value.rss.total);
    const rssIdle = per(idle.rss.total, base.value.rss.total);
    const rows = [
      [
        "DO storage (SQLite, logical) per project",
        kib(per(hot.dos.logical, base.value.dos.logical)),
        kib(per(atFreeze.dos.logical, base.value.dos.logical)),
        `${kib(doFrozen)} (each ${int(idle.dos.min)}–${int(idle.dos.max)} B)`,
        doFrozen < 4 * KiB
          ? "< 4 KiB: met"
          : doFrozen === 4 * KiB
            ? "< 4 KiB: at the floor (4,096 B is one empty SQLite page)"
            : "< 4 KiB: **missed**",
      ],
      [
        "DO files on disk (`.sqlite` + `-wal` + `-shm`) per project",
        kib(per(hot.dos.onDisk, base.value.dos.onDisk)),
        kib(per(atFreeze.dos.onDisk, base.value.dos.onDisk)),
        kib(per(idle.dos.onDisk, base.value.dos.onDisk)),
        "local workerd artefact",
      ],
      [
        "DO databases still open (`-wal` present)",
        int(hot.dos.open),
        int(atFreeze.dos.open),
        int(idle.dos.open),
        `evicted ${(waitedMs / 1000).toFixed(0)} s after the last freeze`,
      ],
      [
        "workerd RSS, all workerd processes, per project",
        kib(per(hot.rss.total, base.value.rss.total)),
        kib(rssFrozen),
        kib(rssIdle),
        "0 resident (anchor: Basin ~2 KiB): see below",
      ],
      [
        "R2 per project: segments (flush `bytes`)",
        "–",
        "–",
        r2.ok ? `${kib(segBytes)}` : errorCell(r2.error),
        "",
      ],
      [
        "R2 per project: all objects (segment, bloom, manifest)",
        "–",
        "–",
        r2.ok
          ? `${kib(r2.value.bytes / n)} in ${(r2.value.objects.length / n).toFixed(1)} objects`
          : errorCell(r2.error),
        "",
      ],
      [
        "D1 catalog (logical) per project (project, keys, manifest, segment rows)",
        kib(per(hot.d1, base.value.d1)),
        kib(per(atFreeze.d1, base.value.d1)),
        kib(per(idle.d1, base.value.d1)),
        "",
      ],
    ];
    out.push(
      `Each project: \`PUT /schema\` (one table \`notes\`, 5 columns), 20 rows in one \`POST\`, then \`POST /admin/v1/flush\` and \`POST /admin/v1/freeze\` (4 projects at a time). Created in ${created.value.seconds.toFixed(0)} s, flushed and frozen in ${frozen.value.seconds.toFixed(0)} s; freeze call p50 ${ms(freezeMs.p50)} ms, p99 ${ms(freezeMs.p99)} ms. Per-project figures are (total − baseline) ÷ ${int(n)}; the baseline is a fresh server with one project created, frozen and evicted.`,
      "",
      table(
        ["Per project", "hot (20 rows, before freeze)", "just frozen", "frozen and evicted", "target"],
        rows,
      ),
      "",
      `workerd RSS: baseline ${mb(base.value.rss.total)} MB (${base.value.rss.procs.length} processes), ${mb(hot.rss.total)} MB with ${int(n)} hot projects, ${mb(atFreeze.rss.total)} MB just after freezing them, ${mb(idle.rss.total)} MB once every object was evicted. workerd runs all the ProjectDO instances in one isolate and does not hand freed heap back to the OS, so this delta is what the runtime kept after serving ${int(n)} projects (isolate heap, SQLite page caches), an upper bound, not memory held per frozen project: a frozen project has no live object at all (its database is closed, counted above), so its resident memory is zero by construction, in production as here.`,
      "",
    );
    if (created.value.hotStats) {
      out.push(
        `For comparison, \`GET /admin/v1/stats\` of a hot project: \`doStorageBytes\` ${int(created.value.hotStats.doStorageBytes)} (${int(created.value.hotStats.hotRows)} hot rows, ${int(created.value.hotStats.wal?.entries)} WAL entries).`,
        "",
      );
    }
    if (contents.ok && contents.value) {
      const t =
        contents.value.tables.map((x) => `\`${x.name}\` (${x.rows} rows)`).join(", ") ||
        "no table at all (an empty SQLite database)";
      out.push(
        `What a frozen, evicted project's DO database holds (${kib(contents.value.bytes)}): ${t}.`,
        "",
      );
    }
    out.push(
      `First read of a frozen, evicted project (\`GET /rest/v1/notes?id=eq.7\`, anon key; wakes it from D1 + R2), ${wakes.ok ? `${wakes.value.n} projects: p50 ${ms(wakes.value.p50)} ms, max ${ms(wakes.value.max)} ms` : errorCell(wakes.error)}.`,
      "",
    );
    return out;
  } finally {
    await server.stop();
  }
}
