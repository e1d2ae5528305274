/**
 * Named benchmark steps: a step that throws is recorded (its name in `failedSteps`, its
 * message logged) and the run goes on, so one failure shows in the results, not as a crash.
 */
export function stepRunner(log) {
  const failedSteps = [];
  const step = async (name, fn) => {
    log(`  ${name}...`);
    try {
      return { ok: true, value: await fn() };
    } catch (error) {
      failedSteps.push(name);
      log(`  ✗ ${name}: ${String(error?.message ?? error).split("\n")[0]}`);
      return { ok: false, error };
    }
  };
  return { step, failedSteps };
}
