/**
 * Starts `node scripts/start.mjs` (the `npm start` server) as a child in its own process group
 * on a free loopback port with a throwaway state directory, from a snapshot of the sources
 * (wrangler dev restarts the Worker whenever a watched file changes), waits for `GET /health`,
 * and stops it by process group. Shared by the e2e tests (test/e2e/server.ts) and the benchmarks
 * (bench/lib/hearth.mjs), so both exercise exactly what `npm start` runs.
 *
 * Invariants: every process this module starts is killed by its process-group id (never by
 * name); every wait has a deadline; the state directory it created is removed on stop.
 */
import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { cp, mkdtemp, readdir, readFile, rm, symlink } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const START_SCRIPT = path.join(REPO_ROOT, "scripts", "start.mjs");
export const DEFAULT_ADMIN_KEY = "dev-admin-key";
export const LOOPBACK = "127.0.0.1";

const OUTPUT_TAIL_CHARS = 16_000;

/** A port that was free a moment ago on 127.0.0.1 (bind port 0, read it, release it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, LOOPBACK, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("could not read the bound port"))));
    });
  });
}

/** Whether nothing listens on 127.0.0.1:`port` (tries to bind it, then releases it). */
export function portIsFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, LOOPBACK, () => srv.close(() => resolve(true)));
  });
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `GET <baseUrl>/health` until it answers 200 `{"status":"ok"}` or the deadline passes.
 * `abortReason()` is checked between attempts: a non-null string stops the wait early (the
 * server died). Resolves `{ ok: true }` or `{ ok: false, reason }`; never throws.
 */
export async function waitForHealth(baseUrl, { timeoutMs = 120_000, intervalMs = 250, abortReason } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    const why = abortReason?.();
    if (why) return { ok: false, reason: why };
    try {
      const res = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(5_000) });
      const text = await res.text();
      if (res.status === 200) {
        try {
          if (JSON.parse(text)?.status === "ok") return { ok: true };
        } catch {
          // fall through: not JSON yet
        }
      }
      last = `GET /health answered ${res.status} ${text.slice(0, 200)}`;
    } catch (err) {
      last = `GET /health failed: ${err?.cause?.code ?? err?.message ?? err}`;
    }
    await delay(intervalMs);
  }
  return { ok: false, reason: `no healthy answer within ${Math.round(timeoutMs / 1000)} s (last: ${last})` };
}

/**
 * Process ids of the live (non-zombie) members of a process group. Reads /proc on Linux; where
 * /proc is missing, falls back to `kill(-pgid, 0)`, which cannot tell zombies apart.
 */
export async function processGroupMembers(pgid) {
  let entries;
  try {
    entries = await readdir("/proc");
  } catch {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch (err) {
      return err?.code === "EPERM" ? [pgid] : [];
    }
  }
  const members = [];
  for (const name of entries) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = await readFile(`/proc/${name}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] !== "Z" && Number(fields[2]) === pgid) members.push(Number(name));
  }
  return members;
}

/**
 * Sends SIGTERM to the process group `pgid`, waits up to `graceMs` for it to empty, then
 * SIGKILLs what is left and waits up to `killMs` more. Resolves the ids still alive (normally
 * none). Never signals anything outside the group.
 */
export async function stopProcessGroup(pgid, { graceMs = 10_000, killMs = 5_000 } = {}) {
  const signal = (sig) => {
    try {
      process.kill(-pgid, sig);
    } catch {
      // ESRCH: the group is already gone
    }
  };
  const waitEmpty = async (ms) => {
    const deadline = Date.now() + ms;
    let members = await processGroupMembers(pgid);
    while (members.length > 0 && Date.now() < deadline) {
      await delay(100);
      members = await processGroupMembers(pgid);
    }
    return members;
  };
  if ((await processGroupMembers(pgid)).length === 0) return [];
  signal("SIGTERM");
  let left = await waitEmpty(graceMs);
  if (left.length > 0) {
    signal("SIGKILL");
    left = await waitEmpty(killMs);
  }
  return left;
}

// Left out of a source snapshot; node_modules is symlinked instead of copied.
const SNAPSHOT_SKIP = new Set(["node_modules", ".git", ".wrangler", ".hearth-bench", "dist"]);
const BENCH_RESULTS = path.join(REPO_ROOT, "bench", "results");

/**
 * Copies the checkout (minus node_modules, .git, .wrangler) to a temp dir and links its
 * node_modules. `wrangler dev` watches its sources and restarts the Worker when one changes
 * ("Your worker restarted mid-request", 503): run from a snapshot, tests and benchmarks see
 * one version of the code even while someone edits the checkout.
 */
export async function snapshotSource() {
  const dir = await mkdtemp(path.join(os.tmpdir(), "hearth-src-"));
  for (const entry of await readdir(REPO_ROOT)) {
    if (SNAPSHOT_SKIP.has(entry)) continue;
    await cp(path.join(REPO_ROOT, entry), path.join(dir, entry), {
      recursive: true,
      filter: (src) => src !== BENCH_RESULTS,
    });
  }
  await symlink(path.join(REPO_ROOT, "node_modules"), path.join(dir, "node_modules"), "dir");
  return dir;
}

/**
 * Starts Hearth via `node scripts/start.mjs` in a new process group.
 *
 * @param {object} [opts]
 * @param {number} [opts.port] default: a free port
 * @param {string} [opts.adminKey] default: dev-admin-key
 * @param {string} [opts.jwtSecret] default: start.mjs's default
 * @param {string} [opts.stateDir] default: a fresh temp dir, removed on stop()
 * @param {number} [opts.timeoutMs] how long to wait for /health (default 120 s)
 * @param {Record<string,string>} [opts.env] extra environment
 * @param {(chunk: string) => void} [opts.onOutput] sees the server's stdout and stderr
 * @param {boolean} [opts.snapshot] run from a copy of the sources (default true, see snapshotSource)
 */
export async function startHearth(opts = {}) {
  const port = opts.port ?? (await freePort());
  const adminKey = opts.adminKey ?? DEFAULT_ADMIN_KEY;
  const ownsStateDir = !opts.stateDir;
  const stateDir = opts.stateDir ?? (await mkdtemp(path.join(os.tmpdir(), "hearth-state-")));
  const srcDir = opts.snapshot === false ? null : await snapshotSource();
  const root = srcDir ?? REPO_ROOT;
  const url = `http://${LOOPBACK}:${port}`;

  const env = {
    ...process.env,
    NO_COLOR: "1", // the output is captured for error messages, not shown on a terminal
    FORCE_COLOR: "0",
    ...opts.env,
    PORT: String(port),
    HEARTH_ADMIN_KEY: adminKey,
    HEARTH_STATE_DIR: stateDir,
  };
  if (opts.jwtSecret) env.HEARTH_JWT_SECRET = opts.jwtSecret;

  let tail = "";
  const record = (chunk) => {
    const text = chunk.toString();
    tail = (tail + text).slice(-OUTPUT_TAIL_CHARS);
    opts.onOutput?.(text);
  };

  const child = spawn(process.execPath, [path.join(root, "scripts", "start.mjs")], {
    cwd: root,
    env,
    detached: true, // own process group: stop() signals -pid and reaches wrangler and workerd too
    stdio: ["ignore", "pipe", "pipe"],
  });
  const pgid = child.pid;
  let exited = null;
  child.on("exit", (code, sig) => {
    exited = { code, signal: sig };
  });
  child.on("error", (err) => {
    exited = { code: null, signal: null, error: err };
  });
  child.stdout.on("data", record);
  child.stderr.on("data", record);
  // "close" comes after both pipes are drained, which needs the whole group (workerd inherits them) gone.
  const closed = new Promise((resolve) => child.on("close", resolve));

  // If this process exits without stop() (a crash, process.exit), take the group down with it.
  const onParentExit = () => {
    if (pgid) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    try {
      if (ownsStateDir) rmSync(stateDir, { recursive: true, force: true, maxRetries: 3 });
      if (srcDir) rmSync(srcDir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort while exiting
    }
  };
  process.on("exit", onParentExit);

  let stopping = null;
  const stop = () => {
    stopping ??= (async () => {
      const left = pgid ? await stopProcessGroup(pgid) : [];
      process.off("exit", onParentExit);
      if (ownsStateDir) await rm(stateDir, { recursive: true, force: true });
      if (srcDir) await rm(srcDir, { recursive: true, force: true });
      if (left.length > 0) {
        throw new Error(`Hearth process group ${pgid} still has live processes ${left.join(", ")}`);
      }
    })();
    return stopping;
  };

  const describeExit = () =>
    exited &&
    (exited.error
      ? `could not start node: ${exited.error.message}`
      : `server exited early with ${exited.signal ? `signal ${exited.signal}` : `code ${exited.code}`}`);

  const health = await waitForHealth(url, {
    timeoutMs: opts.timeoutMs ?? 120_000,
    abortReason: describeExit,
  });
  if (!health.ok) {
    await stop().catch(() => {});
    await Promise.race([closed, delay(2_000)]); // let the last output in, bounded
    throw new Error(
      `Hearth did not become healthy at ${url}: ${health.reason}\n--- server output (tail) ---\n${tail}`,
    );
  }

  return {
    url,
    port,
    adminKey,
    stateDir,
    pid: pgid,
    /** The last characters the server printed (stdout and stderr interleaved). */
    output: () => tail,
    /** The source tree the server runs from (a snapshot unless `snapshot: false`). */
    srcDir: root,
    /** Whether the start.mjs process has exited. */
    exited: () => exited,
    stop,
  };
}
