/**
 * Per-request check of an app token's grant: not revoked, and the account still owns (or
 * administers) the project. The answer is cached per isolate for a few seconds, so a
 * revocation takes effect at once in the isolate that served it and within GRANT_CACHE_MS
 * elsewhere. `last_used_at` is written at most once a minute per grant.
 */
import { HearthError } from "../../shared/errors.ts";
import type { AppClaims } from "../auth/keys.ts";
import type { Env } from "../env.ts";

export const GRANT_CACHE_MS = 5_000;
const LAST_USED_EVERY_MS = 60_000;
const CACHE_MAX = 4096;

const cache = new Map<string, { live: boolean; checkedAt: number; lastUsedAt: number }>();

/** Called when a grant is revoked in this isolate, so its tokens fail on the next request. */
export function forgetGrant(grantId: string): void {
  cache.delete(grantId);
}

function revoked(): HearthError {
  return new HearthError("PGRST301", "The app's access has been revoked by the user.", {
    hint: "The app must ask the user for consent again (/oauth/authorize).",
  });
}

export async function requireLiveGrant(env: Env, claims: AppClaims): Promise<void> {
  const now = Date.now();
  let entry = cache.get(claims.grant_id);
  if (!entry || now - entry.checkedAt > GRANT_CACHE_MS) {
    const row = await env.CATALOG.prepare(
      `SELECT g.revoked_at, g.last_used_at,
              (p.owner_account_id = g.account_id OR EXISTS (
                 SELECT 1 FROM project_members m
                 WHERE m.project_id = g.project_id AND m.account_id = g.account_id AND m.role = 'admin'
              )) AS allowed
       FROM grants g JOIN projects p ON p.id = g.project_id
       WHERE g.id = ? AND g.project_id = ? AND g.client_id = ? AND g.account_id = ?`,
    )
      .bind(claims.grant_id, claims.ref, claims.client_id, claims.sub)
      .first<{ revoked_at: string | null; last_used_at: string | null; allowed: number }>();
    entry = {
      live: row !== null && row.revoked_at === null && row.allowed === 1,
      checkedAt: now,
      lastUsedAt: row?.last_used_at ? Date.parse(row.last_used_at) : 0,
    };
    if (cache.size >= CACHE_MAX) cache.clear();
    cache.set(claims.grant_id, entry);
  }
  if (!entry.live) throw revoked();
  if (now - entry.lastUsedAt >= LAST_USED_EVERY_MS) {
    entry.lastUsedAt = now;
    // The WHERE keeps other isolates from writing more than about once a minute too. Only a
    // figure for the user's grants page: a catalog outage does not refuse the request for it.
    await env.CATALOG.prepare(
      "UPDATE grants SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
    )
      .bind(new Date(now).toISOString(), claims.grant_id, new Date(now - LAST_USED_EVERY_MS).toISOString())
      .run()
      .catch((err) => console.error("grant last_used_at not updated", err));
  }
}
