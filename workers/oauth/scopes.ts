/**
 * Scopes name tables and rights: `db:<table>:read`, `db:<table>:write` (write implies read).
 * A request may only name tables the app declared in its schema. Files: `storage:<bucket>:read`
 * and `storage:<bucket>:write` name a bucket of the user's project (apps declare no buckets).
 */
export type Right = "read" | "write";

const SCOPE = /^db:([^:\s]+):(read|write)$/;
const STORAGE_SCOPE = /^storage:([A-Za-z0-9][A-Za-z0-9_.-]{0,62}):(read|write)$/;

export type ScopeParse = { ok: true; scopes: string[] } | { ok: false; description: string };

/** Space-separated scope string → sorted, de-duplicated list, or why it is invalid. */
export function parseScopes(scope: string | undefined, appTables: ReadonlySet<string>): ScopeParse {
  const items = (scope ?? "").split(" ").filter((s) => s !== "");
  if (items.length === 0) {
    return { ok: false, description: "scope is required, e.g. db:com.example.todos:write" };
  }
  const out = new Set<string>();
  for (const item of items) {
    if (STORAGE_SCOPE.test(item)) {
      out.add(item);
      continue;
    }
    const m = SCOPE.exec(item);
    if (!m)
      return {
        ok: false,
        description: `unknown scope "${item}": expected db:<table>:read|write or storage:<bucket>:read|write`,
      };
    if (!appTables.has(m[1]!)) {
      return { ok: false, description: `scope "${item}" names a table the app did not declare` };
    }
    out.add(item);
  }
  return { ok: true, scopes: [...out].sort() };
}

/** Table (or `storage:<bucket>` for files) → strongest right among `scopes`. */
export function rightsByTable(scopes: readonly string[]): Map<string, Right> {
  const rights = new Map<string, Right>();
  for (const s of scopes) {
    const f = STORAGE_SCOPE.exec(s);
    const m = f ? ([s, `files in bucket ${f[1]}`, f[2]] as const) : SCOPE.exec(s);
    if (!m) continue;
    if (m[2] === "write" || !rights.has(m[1]!)) rights.set(m[1]!, m[2] as Right);
  }
  return rights;
}

/** Union of two scope lists, sorted (a second consent adds to the grant, never removes). */
export function unionScopes(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}
