/**
 * A page for browser benches: a browser entry bundled in memory by esbuild (browser platform,
 * ESM), served with a blank HTML page by a loopback HTTP server (127.0.0.1, port 0), opened in
 * Debian's chromium through playwright-core with the flags of test/e2e/pages.test.ts.
 *
 * The browser runs on a persistent profile in a temp dir, not in a `browser.newContext()`:
 * that context is incognito, where Chromium keeps IndexedDB in memory, and the point of the
 * browser bench is the IndexedDB that writes to disk. The page is cross-origin isolated
 * (COOP + COEP), which gives `performance.now()` 5 µs steps instead of 100 µs.
 *
 * Invariants: every server, browser and temp dir opened here is registered with the cleanup
 * registry; `close()` stops them in reverse order, each wait bounded.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from "../../scripts/chromium.mjs";
import { onCleanup } from "./cleanup.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CLOSE_MS = 15_000;

/** `promise`, or a rejection naming `what` after `ms`. */
function bounded(promise, ms, what) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Bundles `entry` (a path) for the browser; resolves `{ code, bytes, esbuildVersion }`. */
export async function bundleForBrowser(entry) {
  const esbuild = await import("esbuild");
  const out = await esbuild.build({
    entryPoints: [entry],
    absWorkingDir: ROOT,
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  const code = out.outputFiles[0].text;
  return { code, bytes: out.outputFiles[0].contents.byteLength, esbuildVersion: esbuild.version };
}

const PAGE =
  '<!doctype html><meta charset="utf-8"><title>bench</title><link rel="icon" href="data:,"><script type="module" src="/entry.js"></script>';
const ISOLATED = {
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-embedder-policy": "require-corp",
};

/** Serves `/` (the page) and `/entry.js` (`code`) on 127.0.0.1; resolves `{ url, close }`. */
function servePage(code) {
  const server = createServer((req, res) => {
    const headers = { ...ISOLATED, "cache-control": "no-store" };
    if (req.url === "/") {
      res.writeHead(200, { ...headers, "content-type": "text/html; charset=utf-8" });
      res.end(PAGE);
    } else if (req.url === "/entry.js") {
      res.writeHead(200, { ...headers, "content-type": "text/javascript; charset=utf-8" });
      res.end(code);
    } else {
      res.writeHead(404, headers);
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      const close = () =>
        bounded(
          new Promise((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
          CLOSE_MS,
          "closing the page server",
        );
      resolve({ url: `http://127.0.0.1:${port}/`, close });
    });
  });
}

/**
 * Serves `code` and opens it in headless chromium; resolves once the entry has set
 * `window[readyGlobal]`. Returns `{ page, chromiumVersion, errors, close }`; `errors` collects
 * uncaught page errors and console errors.
 */
export async function openBenchPage(code, { readyGlobal, timeoutMs = 60_000 }) {
  requireChromium();
  const { chromium } = await import("playwright-core");
  const stops = [];
  const close = async () => {
    while (stops.length > 0) {
      const { stop, unregister } = stops.pop();
      unregister();
      await stop();
    }
  };
  const track = (stop) => stops.push({ stop, unregister: onCleanup(stop) });
  try {
    const site = await servePage(code);
    track(site.close);
    const profile = await mkdtemp(path.join(os.tmpdir(), "hearth-bench-chromium-"));
    track(() => rm(profile, { recursive: true, force: true }));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      headless: true,
      timeout: timeoutMs,
    });
    track(() => bounded(context.close(), CLOSE_MS, "closing chromium"));
    const errors = [];
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (err) => errors.push(`page error: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
    });
    await page.goto(site.url, { timeout: timeoutMs });
    await page.waitForFunction((name) => Boolean(window[name]), readyGlobal, { timeout: timeoutMs });
    const chromiumVersion = context.browser()?.version() ?? (await page.evaluate(() => navigator.userAgent));
    return { page, chromiumVersion, errors, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * `page.evaluate` of `window[global][method](arg)`, bounded: a hang fails its step (the page
 * keeps running, and is closed with the browser).
 */
export function callPage(page, global, method, arg, timeoutMs = 300_000) {
  return bounded(
    page.evaluate(([g, m, a]) => window[g][m](a), [global, method, arg]),
    timeoutMs,
    `${global}.${method} in the page`,
  );
}
