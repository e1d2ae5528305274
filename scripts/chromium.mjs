/**
 * Debian's chromium as the browser tests and benchmarks launch it (playwright-core never
 * downloads a browser here). No downloads, updates, sync or QUIC: this machine reaches only
 * loopback and the package registries; and no sandbox: it needs user namespaces that
 * containers running as root lack (docs/gotchas.md, "Pages and browser tests").
 */
import { existsSync } from "node:fs";

export const CHROMIUM = "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Throws with the command to run when chromium is not installed (tests fail, never skip). */
export function requireChromium() {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: run \`apt-get install -y chromium\` (Debian's package; playwright never downloads a browser here).`,
    );
  }
}
