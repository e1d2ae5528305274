/**
 * The GoTrue subset supabase-js calls, served at `/auth/v1` and at every project's
 * `{url}/auth/v1` over one global account pool (see shared/reference/supabase-js-wire.md §2).
 * Signup auto-confirms: it answers a session, and creates the account's personal project.
 */
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type Context, Hono } from "hono";
import { z } from "zod";
import { accounts } from "../catalog/schema.ts";
import type { AppEnv } from "../env.ts";
import { checkProjectAccess, userCaller } from "./caller.ts";
import {
  API_VERSION,
  API_VERSION_HEADER,
  AuthError,
  authErrorResponse,
  clientIp,
  nowIso,
  parseBody,
  readBody,
} from "./gotrue.ts";
import { assertMailConfigured } from "./mailer.ts";
import { consumeOtp, issueOtp, type OtpProof } from "./otp.ts";
import {
  hashPassword,
  MAX_PASSWORD_LENGTH,
  passwordMatches,
  verifyPassword,
  weaknessReasons,
} from "./passwords.ts";
import { checkRateLimit } from "./rate-limit.ts";
import { refreshSession, revokeSessions, startSession } from "./sessions.ts";
import { accountByEmail, createAccount, isUniqueViolation, mergeMetadata, userJson } from "./users.ts";

const Email = z
  .string({ error: "An email address is required" })
  .trim()
  .toLowerCase()
  .max(254, "Email address is too long")
  .pipe(z.email({ error: "Unable to validate email address: invalid format" }));
const Password = z
  .string({ error: "A password is required" })
  .max(MAX_PASSWORD_LENGTH, `Password must be at most ${MAX_PASSWORD_LENGTH} characters`);
const Metadata = z.record(z.string(), z.unknown(), { error: "data must be a JSON object" }).nullish();

// Non-strict objects: supabase-js adds gotrue_meta_security, code_challenge, ... which GoTrue ignores too.
const SignupBody = z.object({ email: Email, password: Password, data: Metadata });
const PasswordGrantBody = z.object({
  email: z
    .string({ error: "An email address is required" })
    .trim()
    .toLowerCase()
    .max(254, "Email address is too long"),
  password: Password,
});
const RefreshGrantBody = z.object({
  refresh_token: z.string({ error: "refresh_token is required" }).min(1, "refresh_token is required"),
});
const OtpBody = z.object({ email: Email, create_user: z.boolean().default(true), data: Metadata });
const VerifyBody = z.object({
  type: z.enum(["email", "magiclink", "signup"], {
    error: "type must be email, magiclink or signup (recovery, invite and email_change are not supported)",
  }),
  email: Email.optional(),
  token: z.string().trim().optional(),
  token_hash: z.string().trim().min(1).optional(),
});
const UpdateUserBody = z.object({
  email: Email.optional(),
  password: Password.optional(),
  data: Metadata,
  phone: z.string().optional(),
});
const LogoutScope = z.enum(["global", "local", "others"], { error: "scope must be global, local or others" });

function refuseWeak(password: string): void {
  const reasons = weaknessReasons(password);
  if (reasons.length > 0) {
    throw new AuthError("weak_password", "Password should be at least 8 characters.", {
      weak_password: { reasons },
    });
  }
}

/** Phone sign-in is not offered: say so instead of "email is required". */
function refusePhone(body: unknown): void {
  const b = body as { phone?: unknown; email?: unknown } | null;
  if (b && typeof b === "object" && typeof b.phone === "string" && b.phone !== "" && b.email === undefined) {
    throw new AuthError("phone_provider_disabled", "Phone sign-in is not supported: use an email address");
  }
}

function clientOf(c: Context<AppEnv>) {
  return { ip: clientIp(c.req.raw.headers), userAgent: c.req.header("user-agent") ?? null };
}

/** `scope` says where the routes are mounted: the platform root, or under `/p/:projectId`. */
export function authRoutes(scope: "platform" | "project"): Hono<AppEnv> {
  const auth = new Hono<AppEnv>();
  auth.onError((err, c) => authErrorResponse(err, c.get("requestId") ?? crypto.randomUUID()));
  auth.use("*", async (c, next) => {
    c.header(API_VERSION_HEADER, API_VERSION);
    if (scope === "project") {
      const path = new URL(c.req.url).pathname;
      await checkProjectAccess(c, /\/auth\/v1\/(user|logout)\/?$/.test(path));
    }
    await next();
  });

  auth.post("/signup", async (c) => {
    const body = await readBody(c.req.raw);
    refusePhone(body);
    const input = parseBody(SignupBody, body);
    refuseWeak(input.password);
    const client = clientOf(c);
    await checkRateLimit(c.env.CATALOG, "signup", { email: input.email, ip: client.ip });
    if (await accountByEmail(c.env.CATALOG, input.email)) {
      throw new AuthError("user_already_exists", "User already registered");
    }
    const account = await createAccount(c.env, {
      email: input.email,
      passwordHash: await hashPassword(input.password),
      metadata: input.data ?? {},
    });
    return c.json(await startSession(c.env, account, client));
  });

  auth.post("/token", async (c) => {
    const grant = c.req.query("grant_type");
    const body = await readBody(c.req.raw);
    if (grant === "refresh_token") {
      const input = parseBody(RefreshGrantBody, body);
      return c.json(await refreshSession(c.env, input.refresh_token));
    }
    if (grant !== "password") {
      throw new AuthError(
        "unsupported_grant_type",
        `Unsupported grant_type ${JSON.stringify(grant ?? "")}: use password or refresh_token`,
      );
    }
    refusePhone(body);
    const input = parseBody(PasswordGrantBody, body);
    const client = clientOf(c);
    await checkRateLimit(c.env.CATALOG, "signin", { email: input.email, ip: client.ip });
    const account = await accountByEmail(c.env.CATALOG, input.email);
    const ok = await passwordMatches(input.password, account?.passwordHash);
    if (!account || !ok) throw new AuthError("invalid_credentials", "Invalid login credentials");
    if (account.emailConfirmedAt === null) throw new AuthError("email_not_confirmed", "Email not confirmed");
    return c.json(await startSession(c.env, account, client));
  });

  auth.post("/otp", async (c) => {
    const body = await readBody(c.req.raw);
    refusePhone(body);
    const input = parseBody(OtpBody, body);
    assertMailConfigured(c.env);
    await checkRateLimit(c.env.CATALOG, "otp", { email: input.email, ip: clientIp(c.req.raw.headers) });
    const account = await accountByEmail(c.env.CATALOG, input.email);
    if (!account && !input.create_user) throw new AuthError("otp_disabled", "Signups not allowed for otp");
    await issueOtp(c.env, input.email, account ? null : (input.data ?? {}));
    return c.json({});
  });

  auth.post("/verify", async (c) => {
    const input = parseBody(VerifyBody, await readBody(c.req.raw));
    let proof: OtpProof;
    if (input.token_hash !== undefined) proof = { tokenHash: input.token_hash };
    else if (input.email !== undefined && input.token) proof = { email: input.email, token: input.token };
    else {
      throw new AuthError(
        "validation_failed",
        "Verify requires either a token_hash, or an email and a token",
      );
    }
    const client = clientOf(c);
    await checkRateLimit(c.env.CATALOG, "verify", {
      ...(input.email === undefined ? {} : { email: input.email }),
      ip: client.ip,
    });
    const { email, metadata } = await consumeOtp(c.env, proof);
    let account = await accountByEmail(c.env.CATALOG, email);
    if (!account) {
      try {
        account = await createAccount(c.env, { email, passwordHash: null, metadata });
      } catch (err) {
        // A signup of the same email won the race: sign in to that account instead.
        if (!(err instanceof AuthError && err.code === "user_already_exists")) throw err;
        account = await accountByEmail(c.env.CATALOG, email);
        if (!account) throw err;
      }
    } else if (account.emailConfirmedAt === null) {
      // Receiving the code proves the address.
      const now = nowIso();
      await drizzle(c.env.CATALOG)
        .update(accounts)
        .set({ emailConfirmedAt: now, updatedAt: now })
        .where(eq(accounts.id, account.id));
      account = { ...account, emailConfirmedAt: now, updatedAt: now };
    }
    return c.json(await startSession(c.env, account, client));
  });

  auth.get("/user", async (c) => {
    const { account } = await userCaller(c);
    return c.json(userJson(account));
  });

  auth.put("/user", async (c) => {
    const { account, sessionId } = await userCaller(c);
    const body = await readBody(c.req.raw);
    const input = parseBody(UpdateUserBody, body);
    if (input.phone) throw new AuthError("phone_provider_disabled", "Phone numbers are not supported");
    const changes: Partial<typeof accounts.$inferInsert> = {};
    if (input.password !== undefined) {
      refuseWeak(input.password);
      if (account.passwordHash && (await verifyPassword(input.password, account.passwordHash))) {
        throw new AuthError("same_password", "New password should be different from the old password.");
      }
      changes.passwordHash = await hashPassword(input.password);
    }
    if (input.email !== undefined && input.email !== account.email) {
      if (await accountByEmail(c.env.CATALOG, input.email)) {
        throw new AuthError("email_exists", "A user with this email address has already been registered");
      }
      // Auto-confirm mode, as for signup: the new address is used at once.
      changes.email = input.email;
      changes.emailConfirmedAt = nowIso();
    }
    if (input.data) changes.userMetadata = mergeMetadata(account, input.data);
    if (Object.keys(changes).length === 0) return c.json(userJson(account));
    changes.updatedAt = nowIso();
    const db = drizzle(c.env.CATALOG);
    let updated: (typeof accounts.$inferSelect)[];
    try {
      updated = await db.update(accounts).set(changes).where(eq(accounts.id, account.id)).returning();
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new AuthError("email_exists", "A user with this email address has already been registered");
      }
      throw err;
    }
    // A new password ends every other session: whoever knew the old one is signed out.
    if (changes.passwordHash !== undefined) {
      await revokeSessions(c.env, {
        accountId: account.id,
        ...(sessionId === undefined ? {} : { except: sessionId }),
      });
    }
    return c.json(userJson(updated[0] ?? account));
  });

  auth.post("/logout", async (c) => {
    const { account, sessionId } = await userCaller(c);
    const parsed = LogoutScope.safeParse(c.req.query("scope") ?? "global");
    if (!parsed.success) throw new AuthError("validation_failed", "scope must be global, local or others");
    const scope = parsed.data;
    // A token without a session (none is issued here) has only "other" sessions.
    if (scope === "local") {
      if (sessionId !== undefined) await revokeSessions(c.env, { sessionId });
    } else {
      const except = scope === "others" ? sessionId : undefined;
      await revokeSessions(c.env, { accountId: account.id, ...(except === undefined ? {} : { except }) });
    }
    return c.body(null, 204);
  });

  auth.all("*", (c) => {
    throw new AuthError("not_found", `No auth route for ${c.req.method} ${new URL(c.req.url).pathname}`);
  });
  return auth;
}
