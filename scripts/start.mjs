#!/usr/bin/env node
/**
 * `npm start`: serves Hearth locally at http://127.0.0.1:8787 under `wrangler dev`.
 *
 * 1. applies the D1 catalog migrations to the local state (`wrangler d1 migrations apply --local`);
 * 2. runs `wrangler dev` on 127.0.0.1 with HEARTH_ENV=development (wrangler.toml says
 *    production, where the Worker refuses the dev admin key);
 * 3. prints one "Hearth is listening" line once `GET /health` answers.
 *
 * Environment: PORT (8787), HEARTH_ADMIN_KEY (dev-admin-key), HEARTH_JWT_SECRET (the dev
 * secret of workers/env.ts), HEARTH_STATE_DIR (default: wrangler's .wrangler/state; tests and
 * benchmarks pass a throwaway dir), HEARTH_START_TIMEOUT_MS (how long to wait for /health
 * before warning, 120000), HEARTH_PROJECT_RATE_LIMIT / HEARTH_PROJECT_RATE_BURST and
 * HEARTH_CLIENT_RATE_LIMIT / HEARTH_CLIENT_RATE_BURST (the per-project and per-client request
 * rate limits; off unless set here), HEARTH_DEV_PAUSE_AFTER (crash tests: pause each
 * flush at one step, durable-objects/cold/dev-pause.ts), HEARTH_INSPECTOR_PORT (wrangler's
 * --inspector-port, for CPU profiles). Non-interactive: needs no TTY, works with CI=true.
 * SIGINT/SIGTERM are forwarded to wrangler; this process exits with wrangler's exit code.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { constants as osConstants } from "node:os";
import path from "node:path";
import { DEFAULT_ADMIN_KEY, LOOPBACK, portIsFree, REPO_ROOT, waitForHealth } from "./server-process.mjs";

// Same value as DEV_JWT_SECRET in workers/env.ts (not imported: that file is TypeScript).
const DEV_JWT_SECRET = "dev-jwt-secret-do-not-use-in-production-0123456789";

function fail(message) {
  console.error(`hearth: ${message}`);
  process.exit(1);
}

const port = process.env.PORT ? Number(process.env.PORT) : 8787;
if (!Number.isInteger(port) || port < 1 || port > 65535)
  fail(`PORT must be a port number, got "${process.env.PORT}"`);
const adminKey = process.env.HEARTH_ADMIN_KEY || DEFAULT_ADMIN_KEY;
const jwtSecret = process.env.HEARTH_JWT_SECRET || DEV_JWT_SECRET;
const stateDir = process.env.HEARTH_STATE_DIR ? path.resolve(process.env.HEARTH_STATE_DIR) : null;
const readyTimeoutMs = Number(process.env.HEARTH_START_TIMEOUT_MS) || 120_000;

const wrangler = path.join(REPO_ROOT, "node_modules", ".bin", "wrangler");
if (!existsSync(wrangler)) fail(`${wrangler} is missing: run \`npm install\` first.`);

// Otherwise wrangler fails to bind while /health may answer from whatever holds the port.
if (!(await portIsFree(port))) {
  fail(`port ${port} on ${LOOPBACK} is already in use (another \`npm start\`?): stop it or set PORT.`);
}

const persist = stateDir ? ["--persist-to", stateDir] : [];
// No usage reporting (this machine may have no internet, and a dev server should not phone home).
const childEnv = { ...process.env, WRANGLER_SEND_METRICS: "false" };

let child = null;
let stopping = false;

function forward(signal) {
  stopping = true;
  if (child && child.exitCode === null && child.signalCode === null) {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  } else if (!child) {
    process.exit(128 + (osConstants.signals[signal] ?? 0));
  }
}
process.on("SIGINT", () => forward("SIGINT"));
process.on("SIGTERM", () => forward("SIGTERM"));

/** Runs wrangler with `args`; resolves its exit code (128+n for a signal). */
function runWrangler(args) {
  return new Promise((resolve) => {
    child = spawn(wrangler, args, { cwd: REPO_ROOT, env: childEnv, stdio: ["ignore", "inherit", "inherit"] });
    child.on("error", (err) => {
      console.error(`hearth: could not run wrangler: ${err.message}`);
      resolve(1);
    });
    child.on("exit", (code, signal) => {
      resolve(code ?? 128 + (osConstants.signals[signal] ?? 0));
    });
  });
}

const migrateCode = await runWrangler(["d1", "migrations", "apply", "hearth-catalog", "--local", ...persist]);
child = null;
if (migrateCode !== 0) {
  console.error(`hearth: applying the catalog migrations failed (exit code ${migrateCode})`);
  process.exit(migrateCode);
}
if (stopping) process.exit(0);

const devArgs = [
  "dev",
  "--ip",
  LOOPBACK,
  "--port",
  String(port),
  "--show-interactive-dev-session=false",
  "--var",
  "HEARTH_ENV:development",
  "--var",
  `HEARTH_ADMIN_KEY:${adminKey}`,
  "--var",
  `HEARTH_JWT_SECRET:${jwtSecret}`,
  // Off locally unless asked for, so benchmarks and load tests measure the database itself.
  "--var",
  `HEARTH_PROJECT_RATE_LIMIT:${process.env.HEARTH_PROJECT_RATE_LIMIT ?? "0"}`,
  ...(process.env.HEARTH_PROJECT_RATE_BURST
    ? ["--var", `HEARTH_PROJECT_RATE_BURST:${process.env.HEARTH_PROJECT_RATE_BURST}`]
    : []),
  "--var",
  `HEARTH_CLIENT_RATE_LIMIT:${process.env.HEARTH_CLIENT_RATE_LIMIT ?? "0"}`,
  ...(process.env.HEARTH_CLIENT_RATE_BURST
    ? ["--var", `HEARTH_CLIENT_RATE_BURST:${process.env.HEARTH_CLIENT_RATE_BURST}`]
    : []),
  // Profiling: the DevTools inspector on a port of your own (wrangler's default, 9229, goes
  // to whichever of several local servers starts first).
  ...(process.env.HEARTH_INSPECTOR_PORT ? ["--inspector-port", process.env.HEARTH_INSPECTOR_PORT] : []),
  // Crash tests only (durable-objects/cold/dev-pause.ts): pause every flush at one step.
  ...(process.env.HEARTH_DEV_PAUSE_AFTER
    ? ["--var", `HEARTH_DEV_PAUSE_AFTER:${process.env.HEARTH_DEV_PAUSE_AFTER}`]
    : []),
  ...persist,
];
const exitCode = runWrangler(devArgs);
const devChild = child;
const childExited = () =>
  devChild.exitCode !== null || devChild.signalCode !== null ? "wrangler dev exited" : null;

const url = `http://${LOOPBACK}:${port}`;
const health = await waitForHealth(url, { timeoutMs: readyTimeoutMs, abortReason: childExited });
if (health.ok) {
  console.log(`Hearth is listening on ${url} (admin key: ${adminKey})`);
} else if (!childExited() && !stopping) {
  console.error(`hearth: ${url}/health is not answering yet (${health.reason}); wrangler keeps running.`);
}

process.exit(await exitCode);
