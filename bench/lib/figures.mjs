/**
 * Structured figures: what a bench returns beside its markdown so the results card can put
 * Hearth next to its floor or peer, shape by shape (see the contract in bench/run.mjs).
 * Builders return `null` when a value is missing (its step failed), so a bench can write
 * `figures: [a, b, c].filter(Boolean)` and a failed step simply has no figure.
 */

const finite = (v) => typeof v === "number" && Number.isFinite(v);

/**
 * One figure. `hearth` and `peer` are the compared values, in `unit`, measured in the same run.
 * @param {{ shape: string, unit: string, hearth: number, peer: number, peerName: string,
 *   peerKind?: "floor" | "peer", lowerIsBetter: boolean, stat?: string,
 *   p50?: { hearth: number, peer: number }, p99?: { hearth: number, peer: number }, note?: string }} f
 */
export function figure(f) {
  if (!finite(f.hearth) || !finite(f.peer)) return null;
  const out = {
    shape: f.shape,
    unit: f.unit,
    hearth: f.hearth,
    peer: f.peer,
    peerName: f.peerName,
    peerKind: f.peerKind ?? "peer",
    lowerIsBetter: f.lowerIsBetter,
  };
  if (f.stat) out.stat = f.stat;
  for (const key of ["p50", "p99"]) {
    if (f[key] && finite(f[key].hearth) && finite(f[key].peer)) out[key] = { ...f[key] };
  }
  if (f.note) out.note = f.note;
  return out;
}

/**
 * A latency figure from two `summarize()` results (milliseconds): compared at p50, p99 kept.
 * @param {{ shape: string, peerName: string, peerKind?: "floor" | "peer", note?: string }} f
 * @param {{ p50: number, p99?: number } | null | undefined} hearth
 * @param {{ p50: number, p99?: number } | null | undefined} peer
 */
export function latencyFigure(f, hearth, peer) {
  if (!hearth || !peer) return null;
  return figure({
    ...f,
    unit: "ms",
    stat: "p50",
    hearth: hearth.p50,
    peer: peer.p50,
    lowerIsBetter: true,
    p50: { hearth: hearth.p50, peer: peer.p50 },
    ...(finite(hearth.p99) && finite(peer.p99) ? { p99: { hearth: hearth.p99, peer: peer.p99 } } : {}),
  });
}

/** Checks figures a bench returned; keeps the well-formed ones, reports the others. */
export function validFigures(figures, warn) {
  if (figures === undefined) return [];
  if (!Array.isArray(figures)) {
    warn("figures is not an array: ignored");
    return [];
  }
  return figures.filter((f, i) => {
    const ok =
      f &&
      typeof f.shape === "string" &&
      typeof f.unit === "string" &&
      typeof f.peerName === "string" &&
      typeof f.lowerIsBetter === "boolean" &&
      finite(f.hearth) &&
      finite(f.peer);
    if (!ok) warn(`figure ${i} (${JSON.stringify(f)?.slice(0, 120)}) is malformed: ignored`);
    return ok;
  });
}

const TIE = 0.05;

/**
 * Hearth ÷ peer, and whether that is a win, a loss or a tie (within 5 %) for Hearth, given
 * which direction is better. Against a floor a loss is the expected overhead.
 */
export function verdict(f) {
  const ratio = f.peer === 0 ? Number.NaN : f.hearth / f.peer;
  if (!Number.isFinite(ratio) || ratio <= 0) return { ratio, result: "–" };
  const better = f.lowerIsBetter ? 1 / ratio : ratio;
  const result = better > 1 + TIE ? "win" : better < 1 / (1 + TIE) ? "loss" : "tie";
  return { ratio, result };
}

/** A number for a table cell, with a precision that suits its magnitude. */
export function formatValue(v, unit) {
  if (!finite(v)) return "–";
  const abs = Math.abs(v);
  let text;
  if (unit === "ms" && abs < 0.1) return `${(v * 1000).toFixed(1)} µs`;
  if (abs >= 1000) text = Math.round(v).toLocaleString("en-US");
  else if (abs >= 100) text = v.toFixed(0);
  else if (abs >= 10) text = v.toFixed(1);
  else text = v.toFixed(2);
  return `${text} ${unit}`;
}

export function formatRatio(r) {
  if (!Number.isFinite(r)) return "–";
  if (r >= 100) return `${r.toFixed(0)}×`;
  if (r >= 10) return `${r.toFixed(1)}×`;
  if (r >= 0.01) return `${r.toFixed(2)}×`;
  return `${r.toPrecision(2)}×`;
}
