/** Latency statistics and number formatting for the results tables. */

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** @param {number[]} samples milliseconds */
export function summarize(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((s, v) => s + v, 0);
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sorted.length ? sum / sorted.length : Number.NaN,
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** Milliseconds with a precision that suits the magnitude. */
export function ms(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return "–";
  if (v < 0.1) return `${(v * 1000).toFixed(1)} µs`;
  if (v < 10) return v.toFixed(2);
  return v.toFixed(1);
}

export function ratio(a, b) {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return "–";
  const r = a / b;
  if (r >= 100) return `${r.toFixed(0)}×`;
  if (r >= 10) return `${r.toFixed(1)}×`;
  if (r >= 0.01) return `${r.toFixed(2)}×`;
  return `${r.toPrecision(2)}×`;
}

export function int(v) {
  if (v === undefined || v === null || !Number.isFinite(v)) return "–";
  return Math.round(v).toLocaleString("en-US");
}

export function mb(bytes) {
  return Number.isFinite(bytes) ? (bytes / 1e6).toFixed(1) : "–";
}

/** Runs `fn` `warmup` times untimed, then `count` times timed; returns the latencies in ms. */
export async function timeSequential(fn, { count, warmup = 20 }) {
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`timeSequential needs a positive count, got ${count}`);
  for (let i = 0; i < warmup; i++) await fn(i);
  const samples = new Array(count);
  for (let i = 0; i < count; i++) {
    const t0 = process.hrtime.bigint();
    await fn(i);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1e6;
  }
  return samples;
}
