/** `Prefer`, `Range` and `Accept` request headers of the PostgREST dialect. */
import { HearthError } from "../errors.ts";
import type { Prefer, RangeRequest } from "./plan.ts";

const ONE_OF = {
  return: ["minimal", "representation", "headers-only"],
  count: ["exact", "planned", "estimated"],
  resolution: ["merge-duplicates", "ignore-duplicates"],
  missing: ["default"],
  handling: ["strict", "lenient"],
  tx: ["commit", "rollback"],
} as const;

type Category = keyof typeof ONE_OF;

function isCategory(name: string): name is Category {
  return Object.hasOwn(ONE_OF, name);
}

/**
 * Merges every `Prefer` header and comma-separated list; the first value of each category
 * wins (later ones are accepted and ignored). Anything unrecognised, including a known name
 * with an unknown value (`return=all`), lands in `invalid` as written.
 */
export function parsePrefer(headerValues: string[]): Prefer {
  const out: Prefer = { invalid: [] };
  for (const header of headerValues) {
    for (const part of header.split(",")) {
      const pref = part.trim();
      if (pref === "") continue;
      const eq = pref.indexOf("=");
      const name = (eq < 0 ? pref : pref.slice(0, eq)).trim();
      const value = eq < 0 ? "" : pref.slice(eq + 1).trim();
      if (isCategory(name)) {
        const allowed: readonly string[] = ONE_OF[name];
        if (!allowed.includes(value)) out.invalid.push(pref);
        else setFirst(out, name, value);
      } else if (name === "max-affected" && /^\d+$/.test(value)) {
        out.maxAffected ??= Math.min(Number(value), Number.MAX_SAFE_INTEGER);
      } else if (name === "timezone" && value !== "") {
        out.timezone ??= value;
      } else {
        out.invalid.push(pref);
      }
    }
  }
  return out;
}

function setFirst(out: Prefer, name: Category, value: string): void {
  if (out[name] !== undefined) return;
  // value was checked against ONE_OF[name]
  (out as Record<Category, string>)[name] = value;
}

/**
 * `Range: 0-9` → offset 0, limit 10; `Range: 10-` → offset 10. Other syntaxes (including
 * `items=0-9`) are ignored, as PostgREST does. `1-0` → 416 PGRST103.
 */
export function parseRange(header: string | null): RangeRequest | null {
  if (header === null) return null;
  const m = /^\s*(\d+)-(\d*)\s*$/.exec(header);
  if (m === null) return null;
  const lower = Number(m[1]);
  if (m[2] === undefined || m[2] === "") return { offset: lower };
  const upper = Number(m[2]);
  if (lower > upper) {
    throw new HearthError("PGRST103", "Requested range not satisfiable", {
      details: "The lower boundary must be lower than or equal to the upper boundary in the Range header.",
    });
  }
  return { offset: lower, limit: upper - lower + 1 };
}

export type AcceptFormat = "json" | "object" | "csv" | "openapi";

export interface AcceptMedia {
  format: AcceptFormat;
  /** `;nulls=stripped` on `vnd.pgrst.object` / `vnd.pgrst.array`: drop keys whose value is null */
  nullsStripped: boolean;
}

const MEDIA: Record<string, AcceptFormat> = {
  "*/*": "json",
  "application/*": "json",
  "application/json": "json",
  "application/vnd.pgrst.array": "json",
  "application/vnd.pgrst.array+json": "json",
  "application/vnd.pgrst.object": "object",
  "application/vnd.pgrst.object+json": "object",
  "text/csv": "csv",
  "application/openapi+json": "openapi",
};

/**
 * Content negotiation: the first producible media range in order of q-value (ties keep
 * header order; `q=0` excluded). Missing or blank → JSON; nothing producible → null (the
 * caller answers 406 PGRST107).
 */
export function parseAcceptMedia(header: string | null): AcceptMedia | null {
  if (header === null || header.trim() === "") return { format: "json", nullsStripped: false };
  const ranges = header
    .split(",")
    .map((entry, index) => {
      const [type = "", ...params] = entry.split(";").map((p) => p.trim());
      let q = 1;
      let nullsStripped = false;
      for (const param of params) {
        const eq = param.indexOf("=");
        const name = param
          .slice(0, eq < 0 ? param.length : eq)
          .trim()
          .toLowerCase();
        const value = eq < 0 ? "" : param.slice(eq + 1).trim();
        if (name === "q") {
          const n = Number(value);
          q = value !== "" && Number.isFinite(n) ? n : 1;
        } else if (name === "nulls" && value.toLowerCase() === "stripped") nullsStripped = true;
      }
      return { type: type.toLowerCase(), q, index, nullsStripped };
    })
    .filter((r) => r.type !== "" && r.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const r of ranges) {
    const format = MEDIA[r.type];
    if (format === undefined) continue;
    const strippable = r.type.startsWith("application/vnd.pgrst.");
    return { format, nullsStripped: strippable && r.nullsStripped };
  }
  return null;
}

export function parseAccept(header: string | null): AcceptFormat | null {
  return parseAcceptMedia(header)?.format ?? null;
}
