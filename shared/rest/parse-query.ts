/**
 * The whole query string → `QueryPlan`, without knowing the schema.
 *
 * Reserved keys: `select`, `columns`, `on_conflict` (root only) and `order`, `limit`,
 * `offset`, `and`, `or`, `not.and`, `not.or`, also as the last dotted segment
 * (`posts.order=`, `posts.comments.not.or=`), which puts them on that embed path. Every other
 * key is a filter (`posts.title=eq.x` filters the embedded `posts`); filters AND together.
 */
import { HearthError } from "../errors.ts";
import { parseFilterParam, parseLogic } from "./parse-filter.ts";
import { parseOrder } from "./parse-order.ts";
import { parseSelect, Scanner } from "./parse-select.ts";
import type { Modifiers, QueryPlan } from "./plan.ts";

const MODIFIERS = new Set(["order", "limit", "offset", "and", "or"]);

export function parseQuery(params: URLSearchParams): QueryPlan {
  const plan: QueryPlan = { select: [{ type: "star" }], where: [], order: [], embedded: {} };
  let selectSeen = false;
  for (const [key, value] of params) {
    if (key === "select") {
      // PostgREST looks the parameter up once: the first one counts.
      if (!selectSeen) plan.select = parseSelect(value);
      selectSeen = true;
      continue;
    }
    if (key === "columns") {
      plan.columns ??= parseColumnList(value, "columns parameter", key);
      continue;
    }
    if (key === "on_conflict") {
      plan.onConflict ??= parseColumnList(value, "on_conflict parameter", key);
      continue;
    }
    const segments = splitDots(key);
    const last = segments[segments.length - 1] ?? "";
    if (!MODIFIERS.has(last)) {
      const { path, filter } = parseFilterParam(key, value);
      modifiersAt(plan, path).where.push(filter);
      continue;
    }
    const negated = (last === "and" || last === "or") && segments[segments.length - 2] === "not";
    const path = embedPath(segments.slice(0, negated ? -2 : -1), key, value);
    // Looked up only when something is set: an ignored `posts.limit=abc` adds no embed entry.
    const target = () => modifiersAt(plan, path);
    switch (last) {
      case "order":
        target().order = parseOrder(value);
        break;
      case "limit": {
        const n = parseInteger(value);
        if (n !== null && n < 0) {
          throw new HearthError("PGRST103", "Requested range not satisfiable", {
            details: `Limit should be greater than or equal to zero (${key}=${value}).`,
          });
        }
        if (n !== null) target().limit = n;
        break;
      }
      case "offset": {
        const n = parseInteger(value);
        if (n !== null && n >= 0) target().offset = n;
        break;
      }
      default: {
        const logicKey = `${negated ? "not." : ""}${last}` as "and" | "or" | "not.and" | "not.or";
        target().where.push(parseLogic(logicKey, value));
      }
    }
  }
  return plan;
}

function modifiersAt(plan: QueryPlan, path: string[]): Modifiers {
  if (path.length === 0) return plan;
  const key = path.join(".");
  let mods = plan.embedded[key];
  if (mods === undefined) {
    mods = { where: [], order: [] };
    plan.embedded[key] = mods;
  }
  return mods;
}

/** Splits a key on dots outside double quotes; quotes are kept (see `embedPath`). */
function splitDots(key: string): string[] {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < key.length; i++) {
    const c = key[i] ?? "";
    if (quoted && c === "\\") {
      current += c + (key[i + 1] ?? "");
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === "." && !quoted) {
      out.push(current);
      current = "";
    } else current += c;
  }
  out.push(current);
  return out;
}

/** Each segment must be exactly one (optionally quoted) embed name or alias. */
function embedPath(segments: string[], key: string, value: string): string[] {
  let offset = 0;
  return segments.map((segment) => {
    const s = new Scanner(segment, "embedded resource path", `${key}=${value}`);
    const name = s.requireName("the name of an embedded resource");
    if (!s.done) s.fail('"." (an embedded resource path is rel.rel2.order)', undefined, offset + s.pos);
    offset += segment.length + 1;
    return name.text;
  });
}

/** PostgREST reads limit/offset with `readMaybe`: anything but an integer is ignored. */
function parseInteger(value: string): number | null {
  if (!/^\s*-?\d+\s*$/.test(value)) return null;
  const n = Number(value);
  return Math.max(Math.min(n, Number.MAX_SAFE_INTEGER), Number.MIN_SAFE_INTEGER);
}

/** `a,b`, `"a","b"`: one or more column names; blank → PGRST100. */
export function parseColumnList(value: string, what = "columns parameter", key = "columns"): string[] {
  const s = new Scanner(value, what, `${key}=${value}`);
  const out: string[] = [];
  do {
    out.push(s.requireName("a column name").text);
    s.spaces();
  } while (s.eat(","));
  if (!s.done) s.fail('"," or end of input');
  return out;
}
