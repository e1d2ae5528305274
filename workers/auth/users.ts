/**
 * Accounts as GoTrue users: catalog rows → the user object supabase-js expects, and account
 * creation, which always comes with the account's personal project.
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { createProject } from "../admin/projects.ts";
import { accounts } from "../catalog/schema.ts";
import type { Env } from "../env.ts";
import { AuthError, nowIso } from "./gotrue.ts";

export type AccountRow = typeof accounts.$inferSelect;

function metadataOf(row: AccountRow): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(row.userMetadata);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** The user object of GoTrue (`/user`, and `user` in every session). */
export function userJson(row: AccountRow) {
  const confirmed = row.emailConfirmedAt;
  return {
    id: row.id,
    aud: "authenticated",
    role: "authenticated",
    email: row.email,
    email_confirmed_at: confirmed,
    phone: "",
    confirmed_at: confirmed,
    last_sign_in_at: row.lastSignInAt,
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: metadataOf(row),
    identities: [
      {
        identity_id: row.id,
        id: row.id,
        user_id: row.id,
        identity_data: {
          email: row.email,
          email_verified: confirmed !== null,
          phone_verified: false,
          sub: row.id,
        },
        provider: "email",
        last_sign_in_at: row.lastSignInAt,
        created_at: row.createdAt,
        updated_at: row.updatedAt,
        email: row.email,
      },
    ],
    factors: [],
    created_at: row.createdAt,
    updated_at: row.updatedAt,
    is_anonymous: false,
  };
}

export async function accountByEmail(db: D1Database, email: string): Promise<AccountRow | undefined> {
  const [row] = await drizzle(db).select().from(accounts).where(eq(accounts.email, email));
  return row;
}

export async function accountById(db: D1Database, id: string): Promise<AccountRow | undefined> {
  const [row] = await drizzle(db).select().from(accounts).where(eq(accounts.id, id));
  return row;
}

/** True for D1's "UNIQUE constraint failed", wherever drizzle wrapped it in the cause chain. */
export function isUniqueViolation(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e.message.includes("UNIQUE constraint failed")) return true;
  }
  return false;
}

/**
 * Creates a confirmed account and its personal project: the account row goes in the same D1
 * batch as the project's rows (it comes first: the project references it), so a failed
 * signup (a taken email, the catalog down) leaves neither behind and can be retried.
 */
export async function createAccount(
  env: Env,
  opts: { email: string; passwordHash: string | null; metadata: Record<string, unknown> },
): Promise<AccountRow> {
  const now = nowIso();
  const row: AccountRow = {
    id: crypto.randomUUID(),
    email: opts.email,
    passwordHash: opts.passwordHash,
    emailConfirmedAt: now,
    createdAt: now,
    updatedAt: now,
    userMetadata: JSON.stringify(opts.metadata),
    lastSignInAt: null,
  };
  const db = drizzle(env.CATALOG);
  try {
    await createProject(env, {
      name: "personal",
      ownerAccountId: row.id,
      personal: true,
      before: [db.insert(accounts).values(row)],
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new AuthError("user_already_exists", "User already registered");
    throw err;
  }
  return row;
}

/** GoTrue merges `data` into `user_metadata`; a `null` value removes the key. */
export function mergeMetadata(row: AccountRow, data: Record<string, unknown>): string {
  const merged = metadataOf(row);
  for (const [k, v] of Object.entries(data)) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  return JSON.stringify(merged);
}
