/**
 * Bucket policies in the words of table policies (public / members / owner / service, see
 * durable-objects/policy.ts), and app scopes `storage:<bucket>:read|write` (write implies
 * read). A signed URL carries the right it was signed with; a public URL only reads buckets
 * whose read policy is `public`.
 */
import type { Principal } from "../../shared/principal.ts";
import type { Policy } from "../../shared/schema.ts";
import { type Access, decide } from "../policy.ts";
import { fault } from "./errors.ts";
import type { StorageCaller } from "./types.ts";

export interface BucketPolicy {
  id: string;
  read_policy: string;
  write_policy: string;
}

export function storageScopeAllows(scopes: readonly string[], bucket: string, write: boolean): boolean {
  return scopes.includes(`storage:${bucket}:write`) || (!write && scopes.includes(`storage:${bucket}:read`));
}

/** Who may create, change, empty and delete buckets: the service key, the owner and admins. */
export function canManageBuckets(caller: StorageCaller): boolean {
  if (caller.kind !== "principal") return false;
  const p = caller.principal;
  if (p.role === "service") return true;
  return p.role === "authenticated" && (p.membership === "owner" || p.membership === "admin");
}

/** The access, or null when the caller may not even see the bucket. */
export function tryBucketAccess(caller: StorageCaller, bucket: BucketPolicy, write: boolean): Access | null {
  if (caller.kind === "signed") return { kind: "all" };
  if (caller.kind === "public") return !write && bucket.read_policy === "public" ? { kind: "all" } : null;
  const p: Principal = caller.principal;
  if (p.role === "app" && !storageScopeAllows(p.scopes, bucket.id, write)) return null;
  return decide(p, (write ? bucket.write_policy : bucket.read_policy) as Policy, write);
}

export function bucketAccess(caller: StorageCaller, bucket: BucketPolicy, write: boolean): Access {
  const access = tryBucketAccess(caller, bucket, write);
  if (access) return access;
  const right = write ? "write" : "read";
  if (caller.kind === "principal" && caller.principal.role === "app") {
    throw fault(
      "HEARTH_STORAGE_DENIED",
      `The app's grant does not include storage:${bucket.id}:${right}; ask the user to approve that scope`,
    );
  }
  throw fault(
    "HEARTH_STORAGE_DENIED",
    `permission denied for bucket ${bucket.id}: its ${right} policy is "${write ? bucket.write_policy : bucket.read_policy}"`,
  );
}

/** The account new objects are stamped with (null for keys and public callers). */
export function ownerOf(caller: StorageCaller): string | null {
  if (caller.kind === "signed") return caller.owner;
  if (caller.kind === "public") return null;
  const p = caller.principal;
  return p.role === "authenticated" || p.role === "app" ? p.userId : null;
}
