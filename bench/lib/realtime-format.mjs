/** Number formats shared by the realtime bench's results sections. */
import { summarize } from "./stats.mjs";

/** Milliseconds that may be negative (a receipt before the write's ack). */
export function sms(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return "–";
  return Math.abs(v) < 10 ? v.toFixed(2) : v.toFixed(1);
}

export const kib = (bytes) => (Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(1)}` : "–");
export const pct = (cpuMs, wallMs) =>
  wallMs > 0 && Number.isFinite(cpuMs) ? `${((100 * cpuMs) / wallMs).toFixed(0)} %` : "–";
export const usPer = (cpuMs, frames) =>
  frames > 0 && Number.isFinite(cpuMs) ? ((1000 * cpuMs) / frames).toFixed(1) : "–";
export const p = (samples) => summarize(samples);
