/**
 * Table policies (DESIGN.md): who may read and who may write a table, for the principal
 * the gateway established. `own` means "only rows whose owner_id is the caller".
 */
import { HearthError } from "../shared/errors.ts";
import type { Principal } from "../shared/principal.ts";
import type { Policy } from "../shared/schema.ts";
import type { TableInfo } from "./schema-index.ts";

export type Access = { kind: "all" } | { kind: "own"; ownerId: string };

/** The policy words applied to a principal (tables here, buckets in storage/access.ts). */
export function decide(principal: Principal, policy: Policy, write: boolean): Access | null {
  if (principal.role === "service") return { kind: "all" };
  if (policy === "public") return { kind: "all" };
  if (principal.role !== "authenticated" && principal.role !== "app") return null;
  switch (policy) {
    case "service":
      return null;
    case "owner":
      return { kind: "own", ownerId: principal.userId };
    case "members":
      // An app passes `members` on the tables it was granted (the scope check came first).
      if (principal.role === "app") return { kind: "all" };
      if (principal.membership === null) return null;
      if (write && principal.membership === "reader") return null;
      return { kind: "all" };
  }
}

function denied(principal: Principal, table: TableInfo, write: boolean): HearthError {
  // PostgREST: 42501 is 401 for the anonymous role, 403 for any other.
  return new HearthError("42501", `permission denied for table ${table.name}`, {
    status: principal.role === "anon" ? 401 : 403,
    details: `The table's ${write ? "write" : "read"} policy is "${write ? table.policy.write : table.policy.read}".`,
    hint:
      principal.role === "anon"
        ? "The anon key reaches only tables whose policy is public; use a service key or an account token."
        : null,
  });
}

/** `db:T:write` implies `db:T:read` (DESIGN.md, scopes). */
function scopeAllows(scopes: readonly string[], table: string, write: boolean): boolean {
  return scopes.includes(`db:${table}:write`) || (!write && scopes.includes(`db:${table}:read`));
}

function outOfScope(table: TableInfo, write: boolean): HearthError {
  return new HearthError("42501", `permission denied for table ${table.name}`, {
    details: `The app's grant does not include db:${table.name}:${write ? "write" : "read"}.`,
    hint: "Ask the user to approve the scope again with this table and right.",
  });
}

export function readAccess(principal: Principal, table: TableInfo): Access {
  if (principal.role === "app" && !scopeAllows(principal.scopes, table.name, false)) {
    throw outOfScope(table, false);
  }
  const access = decide(principal, table.policy.read, false);
  if (!access) throw denied(principal, table, false);
  return access;
}

export function writeAccess(principal: Principal, table: TableInfo): Access {
  if (principal.role === "app" && !scopeAllows(principal.scopes, table.name, true)) {
    throw outOfScope(table, true);
  }
  const access = decide(principal, table.policy.write, true);
  if (!access) throw denied(principal, table, true);
  return access;
}
