/**
 * Stop-on-exit registry: whatever a benchmark starts (Hearth, PostgreSQL, temp dirs) registers
 * its stop function here, so an error or Ctrl-C still stops it. Functions run newest first.
 */
const tasks = [];

/** Registers `fn`; returns a function that unregisters it (call it after stopping normally). */
export function onCleanup(fn) {
  tasks.push(fn);
  return () => {
    const i = tasks.indexOf(fn);
    if (i >= 0) tasks.splice(i, 1);
  };
}

/** Runs and forgets every registered function; errors are printed, not thrown. */
export async function runCleanup() {
  while (tasks.length > 0) {
    const fn = tasks.pop();
    try {
      await fn();
    } catch (err) {
      console.error(`cleanup failed: ${err?.stack ?? err}`);
    }
  }
}

let installed = false;
/** On SIGINT/SIGTERM: clean up, then exit 130/143. */
export function installSignalCleanup() {
  if (installed) return;
  installed = true;
  for (const [sig, code] of [
    ["SIGINT", 130],
    ["SIGTERM", 143],
  ]) {
    process.once(sig, () => {
      console.error(`\n${sig}: stopping what the benchmark started...`);
      runCleanup().finally(() => process.exit(code));
    });
  }
}
