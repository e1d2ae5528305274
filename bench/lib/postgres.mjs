/**
 * A throwaway PostgreSQL for peer measurements: Debian's server binaries, `initdb` into a temp
 * dir under /tmp owned by the `postgres` user, started with `pg_ctl` on a free loopback port
 * (via `runuser -u postgres --` when running as root), stopped with `pg_ctl stop` and the dir
 * removed at the end, on failure too (the stop is registered with the cleanup registry).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { freePort, LOOPBACK } from "../../scripts/server-process.mjs";
import { onCleanup } from "./cleanup.mjs";

const PG_ROOT = "/usr/lib/postgresql";

/** The newest `/usr/lib/postgresql/<version>/bin` holding a `postgres` binary, or null. */
export function findPostgresBin() {
  if (!existsSync(PG_ROOT)) return null;
  const versions = readdirSync(PG_ROOT)
    .filter((v) => existsSync(path.join(PG_ROOT, v, "bin", "postgres")))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? path.join(PG_ROOT, versions[0], "bin") : null;
}

const isRoot = () => process.getuid?.() === 0;

function run(cmd, args, { timeoutMs = 120_000, env } = {}) {
  const res = spawnSync(cmd, args, {
    encoding: "utf8",
    timeout: timeoutMs,
    stdio: ["ignore", "pipe", "pipe"],
    env: env ? { ...process.env, ...env } : process.env,
  });
  if (res.error || res.status !== 0) {
    const why = res.error ? res.error.message : `exit code ${res.status}`;
    throw new Error(`${cmd} ${args.join(" ")} failed (${why}):\n${res.stdout ?? ""}${res.stderr ?? ""}`);
  }
  return res.stdout;
}

/** Installs Debian's postgresql when missing (root only); otherwise says how. */
function ensureInstalled(log) {
  let bin = findPostgresBin();
  if (bin) return bin;
  if (!isRoot()) {
    throw new Error(
      `PostgreSQL server binaries not found under ${PG_ROOT}/*/bin. Install them with: sudo apt-get update && sudo apt-get install -y postgresql`,
    );
  }
  log("PostgreSQL not found: installing Debian's postgresql package (apt-get)...");
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  run("apt-get", ["update"], { timeoutMs: 600_000, env });
  run("apt-get", ["install", "-y", "postgresql"], { timeoutMs: 900_000, env });
  bin = findPostgresBin();
  if (!bin)
    throw new Error(`apt-get install postgresql succeeded but ${PG_ROOT}/*/bin/postgres is still missing`);
  return bin;
}

function postgresIds() {
  const uid = Number(run("id", ["-u", "postgres"]).trim());
  const gid = Number(run("id", ["-g", "postgres"]).trim());
  return { uid, gid };
}

/**
 * Starts a fresh cluster. Resolves `{ port, client(), copyFromRows(), version, stop() }`.
 * `stop()` is idempotent and also registered with the cleanup registry.
 */
export async function startPostgres({ log = () => {} } = {}) {
  const bin = ensureInstalled(log);
  const root = await mkdtemp("/tmp/hearth-bench-pg-");
  const dataDir = path.join(root, "data");
  const ids = isRoot() ? postgresIds() : null;
  if (ids) await chown(root, ids.uid, ids.gid);
  const asPostgres = (cmd, args) => (ids ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args]);

  let started = false;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    unregister();
    if (started) {
      try {
        run(
          ...asPostgres(path.join(bin, "pg_ctl"), ["-D", dataDir, "-m", "fast", "-w", "-t", "30", "stop"]),
          {
            timeoutMs: 45_000,
          },
        );
      } catch (err) {
        // pg_ctl could not stop it: signal the postmaster we started, by the pid it wrote.
        const pidFile = path.join(dataDir, "postmaster.pid");
        const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, "utf8").split("\n")[0]) : 0;
        if (pid > 0) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
        log(`pg_ctl stop failed, killed postmaster ${pid || "(no pid file)"}: ${err.message}`);
      }
    }
    await rm(root, { recursive: true, force: true });
  };
  const unregister = onCleanup(stop);

  try {
    run(
      ...asPostgres(path.join(bin, "initdb"), [
        "-D",
        dataDir,
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
      ]),
    );
    const port = await freePort();
    const serverOptions = `-p ${port} -c listen_addresses=${LOOPBACK} -c unix_socket_directories=${root}`;
    run(
      ...asPostgres(path.join(bin, "pg_ctl"), [
        "-D",
        dataDir,
        "-l",
        path.join(root, "server.log"),
        "-o",
        serverOptions,
        "-w",
        "-t",
        "60",
        "start",
      ]),
      { timeoutMs: 90_000 },
    );
    started = true;

    const config = { host: LOOPBACK, port, user: "postgres", database: "postgres" };
    const client = async () => {
      const c = new pg.Client(config);
      await c.connect();
      return c;
    };
    const probe = await client();
    const version = (await probe.query("SHOW server_version")).rows[0].server_version;
    await probe.end();

    /** Writes CSV text to a file the server can read (for `COPY ... FROM '<file>'`). */
    const writeServerFile = async (name, text) => {
      const file = path.join(root, name);
      await writeFile(file, text);
      if (ids) await chown(file, ids.uid, ids.gid);
      return file;
    };

    return { port, version, config, client, writeServerFile, stop };
  } catch (err) {
    let serverLog = "";
    try {
      serverLog = readFileSync(path.join(root, "server.log"), "utf8").slice(-3000);
    } catch {
      // no log yet
    }
    await stop();
    throw serverLog ? new Error(`${err.message}\n--- PostgreSQL log ---\n${serverLog}`) : err;
  }
}
