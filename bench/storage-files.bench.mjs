/**
 * Files (docs/storage.md) against `npm start`:
 * - upload and download throughput of one large file through `{url}/storage/v1`, against a
 *   floor measured in the same run: a bare Worker (Miniflare, the same local R2 simulator as
 *   wrangler dev) that only streams the request body into `R2.put` and `R2.get` back out;
 * - listing a folder of 10k objects (p50 of the first page, of the whole folder, and of the
 *   parent folder, which folds the 10k names into one entry);
 * - workerd's resident memory while the large upload streams (peak over the baseline).
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { Miniflare } from "miniflare";
import { onCleanup } from "./lib/cleanup.mjs";
import { figure } from "./lib/figures.mjs";
import { createProject, keyHeaders, startBenchHearth } from "./lib/hearth.mjs";
import { workerdRss } from "./lib/local-state.mjs";
import { table } from "./lib/markdown.mjs";
import { mb, ms, ratio, summarize } from "./lib/stats.mjs";

export const title = "Files: upload and download vs raw R2, listing, memory";

const CHUNK = 1024 * 1024;

/** Names the step in a network error ("socket hang up" alone says nothing). */
function step(what, promise) {
  return promise.catch((err) => {
    throw new Error(`${what}: ${err?.message ?? err}`);
  });
}

/** A deterministic body of `size` bytes, 1 MiB chunks, each tagged with its index. */
function* chunks(size, seed) {
  for (let sent = 0; sent < size; sent += CHUNK) {
    const c = Buffer.from(seed.subarray(0, Math.min(CHUNK, size - sent)));
    if (c.length >= 4) c.writeUInt32BE(sent / CHUNK, 0);
    yield c;
  }
}

/** Streams `size` bytes as the request body (with Content-Length); resolves status, body and ms. */
function streamUp(url, { method = "POST", headers = {}, size, seed }) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, {
      method,
      headers: { ...headers, "content-length": String(size), "content-type": "application/octet-stream" },
    });
    req.setTimeout(120_000, () => req.destroy(new Error("no progress for 120 s")));
    req.on("error", reject);
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode, body, ms: performance.now() - t0 }));
    });
    const it = chunks(size, seed);
    const pump = () => {
      for (;;) {
        const next = it.next();
        if (next.done) {
          req.end();
          return;
        }
        if (!req.write(next.value)) {
          req.once("drain", pump);
          return;
        }
      }
    };
    pump();
  });
}

/** Reads the whole response body; resolves status, bytes, sha256 and ms. */
function streamDown(url, headers = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(url, { headers }, (res) => {
      const hash = createHash("sha256");
      let bytes = 0;
      res.on("data", (d) => {
        hash.update(d);
        bytes += d.length;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode, bytes, sha256: hash.digest("hex"), ms: performance.now() - t0 }),
      );
      res.on("error", reject);
      res.on("aborted", () => reject(new Error("response aborted")));
    });
    req.setTimeout(120_000, () => req.destroy(new Error("no progress for 120 s")));
    req.on("error", reject);
    req.end();
  });
}

const FLOOR_WORKER = `
export default {
  async fetch(req, env) {
    const key = new URL(req.url).pathname.slice(1);
    if (req.method === "PUT") {
      await env.R.put(key, req.body);
      return new Response("ok");
    }
    const obj = await env.R.get(key);
    return obj ? new Response(obj.body) : new Response("missing", { status: 404 });
  },
};`;

async function startFloor() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "hearth-r2-floor-"));
  const mf = new Miniflare({
    modules: true,
    script: FLOOR_WORKER,
    r2Buckets: ["R"],
    r2Persist: dir,
    host: "127.0.0.1",
    port: 0,
  });
  const url = await mf.ready;
  const stop = async () => {
    await mf.dispose();
    await rm(dir, { recursive: true, force: true });
  };
  const unregister = onCleanup(stop);
  return {
    url: url.href.replace(/\/$/, ""),
    stop: async () => {
      unregister();
      await stop();
    },
  };
}

async function storage(project, pathname, { method = "GET", body } = {}) {
  const res = await fetch(`${project.url}/storage/v1${pathname}`, {
    method,
    headers: { ...keyHeaders(project.serviceKey), "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (res.status !== 200)
    throw new Error(`${method} ${pathname} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

export default async function bench({ quick, log }) {
  const SIZE = (quick ? 32 : 200) * 1024 * 1024;
  const RUNS = quick ? 2 : 3;
  const LIST_OBJECTS = quick ? 1000 : 10_000;
  const LIST_RUNS = quick ? 10 : 30;
  const failedSteps = [];
  const seed = randomBytes(CHUNK);
  let expected = createHash("sha256");
  for (const c of chunks(SIZE, seed)) expected.update(c);
  expected = expected.digest("hex");

  const server = await startBenchHearth();
  const rows = [];
  const figures = [];
  let floorNote = "";
  const memory = [];
  let listing = [];
  try {
    const project = await createProject(server, "bench-files");
    await storage(project, "/bucket", { method: "POST", body: { id: "bench" } });
    const hearthUp = [];
    const hearthDown = [];
    const floorUp = [];
    const floorDown = [];
    let floorRetries = 0;
    for (let run = 0; run < RUNS; run++) {
      log(`storage-files: run ${run + 1}/${RUNS}, ${SIZE / 1024 / 1024} MiB`);
      // Floor: the same bytes into and out of R2 through a Worker that does nothing else. A
      // fresh Miniflare per attempt: its 200 MiB responses are sometimes cut off here
      // (ECONNRESET, socket hang up), so a failed floor run is retried (counted below).
      for (let attempt = 1; ; attempt++) {
        const floor = await startFloor();
        try {
          const fu = await step(
            "floor put",
            streamUp(`${floor.url}/big.bin`, { method: "PUT", size: SIZE, seed }),
          );
          if (fu.status !== 200) throw new Error(`floor put answered ${fu.status}: ${fu.body}`);
          const fd = await step("floor get", streamDown(`${floor.url}/big.bin`));
          if (fd.sha256 !== expected) throw new Error("floor get returned other bytes");
          floorUp.push(fu.ms);
          floorDown.push(fd.ms);
          break;
        } catch (err) {
          floorRetries++;
          log(`storage-files: floor attempt ${attempt} failed (${err.message})`);
          if (attempt >= 3) break; // this run has no floor sample; the ratio uses the others
        } finally {
          await floor.stop();
        }
      }

      // Hearth, with workerd's memory sampled while the upload streams.
      const base = (await workerdRss(server.pid)).total;
      let peak = base;
      const sampler = setInterval(() => {
        workerdRss(server.pid)
          .then((r) => {
            peak = Math.max(peak, r.total);
          })
          .catch(() => {});
      }, 50);
      const up = await step(
        "Hearth upload",
        streamUp(`${project.url}/storage/v1/object/bench/big-${run}.bin`, {
          headers: keyHeaders(project.serviceKey),
          size: SIZE,
          seed,
        }),
      );
      clearInterval(sampler);
      if (up.status !== 200) throw new Error(`upload answered ${up.status}: ${up.body}`);
      hearthUp.push(up.ms);
      memory.push({ base, peak });
      const down = await step(
        "Hearth download",
        streamDown(`${project.url}/storage/v1/object/bench/big-${run}.bin`, keyHeaders(project.serviceKey)),
      );
      if (down.sha256 !== expected) throw new Error("download returned other bytes");
      hearthDown.push(down.ms);
    }
    floorNote =
      floorRetries > 0
        ? `The floor needed ${floorRetries} retried attempt(s) (a cut-off 200 MiB response from Miniflare).`
        : "";
    const mbps = (samples) => SIZE / 1e6 / (summarize(samples).p50 / 1000);
    for (const [what, h, f] of [
      ["upload", hearthUp, floorUp],
      ["download", hearthDown, floorDown],
    ]) {
      figures.push(
        figure({
          shape: `${what} of one ${SIZE / 1024 / 1024} MiB file`,
          unit: "MB/s",
          hearth: mbps(h),
          peer: mbps(f),
          peerName: "bare Worker streaming into R2.put / out of R2.get (Miniflare)",
          peerKind: "floor",
          lowerIsBetter: false,
          stat: `p50 of ${RUNS}`,
        }),
      );
    }
    rows.push([
      "upload",
      mbps(hearthUp).toFixed(0),
      mbps(floorUp).toFixed(0),
      ratio(mbps(hearthUp), mbps(floorUp)),
    ]);
    rows.push([
      "download",
      mbps(hearthDown).toFixed(0),
      mbps(floorDown).toFixed(0),
      ratio(mbps(hearthDown), mbps(floorDown)),
    ]);

    log(`storage-files: uploading ${LIST_OBJECTS} small objects`);
    const small = Buffer.from("x");
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= LIST_OBJECTS) return;
        const res = await fetch(
          `${project.url}/storage/v1/object/bench/many/${String(i).padStart(6, "0")}.txt`,
          {
            method: "POST",
            headers: { ...keyHeaders(project.serviceKey), "content-type": "text/plain" },
            body: small,
          },
        );
        if (res.status !== 200) throw new Error(`small upload answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    const timeList = async (body, expect) => {
      const samples = [];
      for (let i = 0; i < LIST_RUNS; i++) {
        const t0 = performance.now();
        const got = await storage(project, "/object/list/bench", { method: "POST", body });
        samples.push(performance.now() - t0);
        if (got.length !== expect) throw new Error(`list returned ${got.length} entries, expected ${expect}`);
      }
      return summarize(samples);
    };
    listing = [
      ["first page (limit 100)", await timeList({ prefix: "many", limit: 100, offset: 0 }, 100)],
      [
        `whole folder (limit ${LIST_OBJECTS})`,
        await timeList({ prefix: "many", limit: LIST_OBJECTS, offset: 0 }, LIST_OBJECTS),
      ],
      [
        "page from the middle (offset 5000, limit 100)",
        await timeList({ prefix: "many", limit: 100, offset: Math.floor(LIST_OBJECTS / 2) }, 100),
      ],
      [
        "parent folder (10k names fold into 1 entry)",
        await timeList({ prefix: "", limit: 100, offset: 0 }, 1 + RUNS),
      ],
    ];
  } catch (err) {
    failedSteps.push(String(err?.message ?? err).split("\n")[0]);
    log(`storage-files: ${err?.stack ?? err}`);
  } finally {
    await server.stop();
  }

  const memRows = memory.map((m, i) => [String(i + 1), mb(m.base), mb(m.peak), mb(m.peak - m.base)]);
  const markdown = [
    "# Files (storage)",
    "",
    `One ${SIZE / 1024 / 1024} MiB file, streamed with Content-Length from Node over loopback, ${RUNS} runs (p50).`,
    "The floor is a bare Worker (Miniflare, the local R2 simulator wrangler dev uses) that only",
    "streams the request body into `R2.put`, and an `R2.get` back out: the same bytes, same run.",
    "",
    table(["", "Hearth MB/s", "floor MB/s", "Hearth ÷ floor"], rows),
    "",
    "A body with Content-Length up to 1 GiB is one native streamed `R2.put`; a body without a",
    "length (the e2e test's 200 MiB upload) is an R2 multipart upload in 8 MiB parts.",
    floorNote,
    "",
    "## Memory while the upload streams",
    "",
    "Resident memory of the server's workerd processes (sampled every 50 ms): before the upload,",
    `its peak during the upload, and the difference. A buffered upload would add ${SIZE / 1024 / 1024} MiB or more.`,
    "",
    table(["run", "before (MB)", "peak (MB)", "peak − before (MB)"], memRows),
    "",
    `## Listing a folder of ${LIST_OBJECTS} objects`,
    "",
    `\`POST /storage/v1/object/list/<bucket>\` with the service key, ${LIST_RUNS} calls each (ms).`,
    "",
    table(
      ["list", "p50", "p99"],
      listing.map(([name, s]) => [name, ms(s.p50), ms(s.p99)]),
    ),
    "",
    failedSteps.length > 0 ? `Failed: ${failedSteps.join("; ")}` : "",
  ].join("\n");
  return { markdown, failedSteps, figures: figures.filter(Boolean) };
}
