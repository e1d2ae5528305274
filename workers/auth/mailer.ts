/**
 * Outgoing mail. Locally (HEARTH_ENV development or test) messages land in the D1 `outbox`
 * table and are read at `GET /dev/mailbox`; a deployed Worker POSTs the message JSON to
 * HEARTH_EMAIL_WEBHOOK_URL (any mail service or relay that takes JSON), with
 * `Authorization: Bearer $HEARTH_EMAIL_WEBHOOK_SECRET` when that secret is set so the
 * receiver can tell Hearth's posts from anyone else's.
 */
import { desc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { Hono } from "hono";
import { HearthError } from "../../shared/errors.ts";
import { outbox } from "../catalog/schema.ts";
import type { AppEnv, Env } from "../env.ts";
import { AuthError, nowIso } from "./gotrue.ts";

export interface MailMessage {
  type: "magiclink";
  to: string;
  subject: string;
  text: string;
  /** The 6-digit code, for `verifyOtp({email, token, type: "email"})`. */
  otp: string;
  /** For `verifyOtp({token_hash, type: "magiclink"})`, e.g. from a link the app builds. */
  token_hash: string;
  expires_at: string;
}

function localMail(env: Env): boolean {
  return env.HEARTH_ENV === "development" || env.HEARTH_ENV === "test";
}

/** Throws 500 HEARTH_MISCONFIGURED when this deployment cannot send mail at all. */
export function assertMailConfigured(env: Env): void {
  if (localMail(env) || env.HEARTH_EMAIL_WEBHOOK_URL) return;
  throw new HearthError(
    "HEARTH_MISCONFIGURED",
    "Email is not configured on this deployment: set HEARTH_EMAIL_WEBHOOK_URL (a URL that receives each message as JSON) to send sign-in codes.",
  );
}

export async function sendMail(env: Env, message: MailMessage): Promise<void> {
  if (localMail(env)) {
    await drizzle(env.CATALOG)
      .insert(outbox)
      .values({
        id: crypto.randomUUID(),
        toEmail: message.to,
        message: JSON.stringify(message),
        createdAt: nowIso(),
      });
    return;
  }
  assertMailConfigured(env);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (env.HEARTH_EMAIL_WEBHOOK_SECRET) headers.authorization = `Bearer ${env.HEARTH_EMAIL_WEBHOOK_SECRET}`;
  let status: number;
  try {
    const res = await fetch(env.HEARTH_EMAIL_WEBHOOK_URL!, {
      method: "POST",
      headers,
      body: JSON.stringify(message),
    });
    status = res.status;
    await res.body?.cancel();
  } catch (err) {
    console.error("email webhook failed", err);
    status = 0;
  }
  if (status < 200 || status >= 300) {
    throw new AuthError(
      "email_send_failed",
      `Error sending the email: the webhook answered ${status || "nothing"}`,
    );
  }
}

/** `GET /dev/mailbox[?email=]`: newest first, at most 100; served only in development and test. */
export const mailboxRoutes = new Hono<AppEnv>();

mailboxRoutes.get("/", async (c) => {
  if (!localMail(c.env)) {
    throw new HearthError("HEARTH_NOT_FOUND", `No route for GET ${new URL(c.req.url).pathname}`);
  }
  const email = c.req.query("email")?.trim().toLowerCase();
  const db = drizzle(c.env.CATALOG);
  const query = db.select().from(outbox);
  const rows = await (email ? query.where(eq(outbox.toEmail, email)) : query)
    .orderBy(desc(outbox.createdAt))
    .limit(100);
  return c.json(
    rows.map((r) => ({ id: r.id, createdAt: r.createdAt, ...(JSON.parse(r.message) as MailMessage) })),
  );
});
