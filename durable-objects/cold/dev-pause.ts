/**
 * A crash-test knob for `npm start` (never honoured in production): `HEARTH_DEV_PAUSE_AFTER`
 * = `<step>:<ms>` makes every flush or compaction of the server log one line when it reaches
 * the end of `<step>` (a FlushStep, e.g. `compact-manifest`), then wait `<ms>` before going
 * on. test/e2e/restart.test.ts waits for that line and SIGKILLs the server, so the kill
 * lands at a known point inside the flush's exclusive section instead of at a guessed time.
 */
import type { FlushHooks, FlushStep } from "./flush.ts";

const STEPS = new Set<FlushStep>([
  "segments",
  "manifest",
  "catalog",
  "drop",
  "compact-segments",
  "compact-manifest",
  "compact-catalog",
]);

/** The line logged on reaching the step (what the e2e test waits for). */
export function pauseLine(step: FlushStep): string {
  return `hearth-dev: paused after ${step}`;
}

export function devPauseHooks(env: {
  HEARTH_ENV?: string;
  HEARTH_DEV_PAUSE_AFTER?: string;
}): FlushHooks | undefined {
  const setting = env.HEARTH_DEV_PAUSE_AFTER;
  if (!setting || (env.HEARTH_ENV ?? "production") === "production") return undefined;
  const [step, ms] = setting.split(":");
  const wait = Number(ms);
  if (!STEPS.has(step as FlushStep) || !Number.isFinite(wait) || wait < 0) {
    console.error(`HEARTH_DEV_PAUSE_AFTER must be <step>:<ms>, got "${setting}"; ignored`);
    return undefined;
  }
  return {
    afterStep: async (s) => {
      if (s !== step) return;
      console.log(pauseLine(s));
      await new Promise((r) => setTimeout(r, wait));
    },
  };
}
