/**
 * Consent applies an app's tables to the user's project as an additive migration: tables
 * the project lacks are added, tables it already has must be declared identically (that is
 * how two apps share `com.example.todos`), anything else is a conflict. Other tables of the
 * project — other apps' data — are carried over untouched.
 */
import type { ProjectSchema, TableDef } from "../shared/schema.ts";

export type MergeResult =
  | { ok: true; applied: string[]; version: number }
  | {
      ok: false;
      code: "HEARTH_APP_TABLE_CONFLICT" | "HEARTH_PROJECT_NOT_FOUND";
      message: string;
      details: string;
    };

/** JSON with object keys sorted, so two equal definitions compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/** The merged schema, or the names of the tables whose existing definition differs. */
export function mergeTables(
  current: ProjectSchema | null,
  tables: Record<string, TableDef>,
): { schema: ProjectSchema; conflicts: string[] } {
  const merged: Record<string, TableDef> = { ...(current?.tables ?? {}) };
  const conflicts: string[] = [];
  for (const [name, def] of Object.entries(tables)) {
    const existing = merged[name];
    if (existing === undefined) merged[name] = def;
    else if (canonical(existing) !== canonical(def)) conflicts.push(name);
  }
  return { schema: { tables: merged }, conflicts };
}
