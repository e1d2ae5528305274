/**
 * `storage:<bucket>:read|write` scopes beside `db:` scopes: parsed at consent, shown on the
 * consent page, and applied to buckets (write implies read; no scope, no access).
 */
import { describe, expect, it } from "vitest";
import { storageScopeAllows, tryBucketAccess } from "../durable-objects/storage/access.ts";
import type { StorageCaller } from "../durable-objects/storage/types.ts";
import { parseScopes, rightsByTable } from "../workers/oauth/scopes.ts";

const TABLES = new Set(["com.example.notes"]);

describe("storage scopes", () => {
  it("accepts storage scopes for any valid bucket name, next to db scopes", () => {
    const r = parseScopes("storage:photos:read db:com.example.notes:write storage:docs-2:write", TABLES);
    expect(r).toEqual({
      ok: true,
      scopes: ["db:com.example.notes:write", "storage:docs-2:write", "storage:photos:read"],
    });
    expect(parseScopes("storage:photos:read", TABLES).ok).toBe(true);
  });

  it("refuses malformed storage scopes", () => {
    for (const bad of ["storage:../x:read", "storage:photos:delete", "storage::read", "storage:a/b:read"]) {
      const r = parseScopes(bad, TABLES);
      expect(r.ok, bad).toBe(false);
    }
  });

  it("lists files next to tables on the consent page", () => {
    const rights = rightsByTable([
      "storage:photos:read",
      "storage:photos:write",
      "db:com.example.notes:read",
    ]);
    expect([...rights]).toEqual([
      ["files in bucket photos", "write"],
      ["com.example.notes", "read"],
    ]);
  });

  it("gives an app only the buckets its scopes name, under the bucket's policy", () => {
    const app = (scopes: string[]): StorageCaller => ({
      kind: "principal",
      principal: { role: "app", projectId: "p", userId: "u", clientId: "c", grantId: "g", scopes },
    });
    const members = { id: "photos", read_policy: "members", write_policy: "members" };
    const owner = { id: "photos", read_policy: "owner", write_policy: "owner" };
    const service = { id: "photos", read_policy: "service", write_policy: "service" };
    expect(storageScopeAllows(["storage:photos:write"], "photos", false)).toBe(true);
    expect(storageScopeAllows(["storage:photos:read"], "photos", true)).toBe(false);
    expect(tryBucketAccess(app(["storage:photos:read"]), members, false)).toEqual({ kind: "all" });
    expect(tryBucketAccess(app(["storage:photos:read"]), members, true)).toBeNull();
    expect(tryBucketAccess(app(["storage:other:write"]), members, false)).toBeNull();
    expect(tryBucketAccess(app(["storage:photos:write"]), owner, true)).toEqual({
      kind: "own",
      ownerId: "u",
    });
    expect(tryBucketAccess(app(["storage:photos:write"]), service, false)).toBeNull();
    // A public URL reads public buckets only, and never writes.
    const pub: StorageCaller = { kind: "public", projectId: "p" };
    expect(tryBucketAccess(pub, { id: "x", read_policy: "public", write_policy: "public" }, false)).toEqual({
      kind: "all",
    });
    expect(tryBucketAccess(pub, { id: "x", read_policy: "public", write_policy: "public" }, true)).toBeNull();
    expect(tryBucketAccess(pub, members, false)).toBeNull();
  });
});
