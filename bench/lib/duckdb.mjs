/**
 * The DuckDB peer (bench/lib/duckdb_scan.py) run by Python with `duckdb` and `pyarrow`:
 * `$HEARTH_BENCH_PYTHON` or `python3`. The job goes in as JSON on stdin, the answer comes back
 * as JSON on stdout; the run is bounded by a deadline.
 */
import { spawn, spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "duckdb_scan.py");
const PYTHON = process.env.HEARTH_BENCH_PYTHON || "python3";
const INSTALL_HINT = "pip install --no-index --find-links /opt/pypi/files pyarrow duckdb";

/** `{ python, duckdb, pyarrow }` versions, or throws saying how to install what is missing. */
export function duckdbVersions() {
  const res = spawnSync(
    PYTHON,
    [
      "-c",
      "import sys, duckdb, pyarrow; print(sys.version.split()[0], duckdb.__version__, pyarrow.__version__)",
    ],
    { encoding: "utf8", timeout: 60_000 },
  );
  if (res.error || res.status !== 0) {
    throw new Error(
      `${PYTHON} cannot import duckdb and pyarrow (${res.error?.message ?? res.stderr.trim().split("\n").pop()}); install them with: ${INSTALL_HINT}`,
    );
  }
  const [python, duckdb, pyarrow] = res.stdout.trim().split(" ");
  return { python, duckdb, pyarrow };
}

/** Runs the scan job; resolves the script's JSON answer. */
export function runDuckdbScan(job, { timeoutMs = 600_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [SCRIPT], { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`duckdb_scan.py did not finish within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    child.stdout.on("data", (c) => {
      out += c;
    });
    child.stderr.on("data", (c) => {
      err += c;
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`duckdb_scan.py exited with ${code}: ${err.slice(-2000)}`));
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`duckdb_scan.py printed no JSON: ${out.slice(0, 500)} ${err.slice(-1000)}`));
      }
    });
    child.stdin.end(JSON.stringify(job));
  });
}
