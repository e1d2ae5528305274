/**
 * Email one-time codes and magic links (`POST /otp`, `POST /verify`). One request makes both a
 * 6-digit code and a random `token_hash`, valid one hour, for one use; a newer request
 * replaces any outstanding one for the same email. Only hashes are stored: SHA-256 of the
 * token_hash (32 random bytes), and an HMAC keyed with the server secret of the code, because
 * a plain hash of 6 digits would be reversed by trying all million of them.
 */
import { and, eq, gt, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { oneTimeTokens } from "../catalog/schema.ts";
import { readConfig } from "../config.ts";
import type { Env } from "../env.ts";
import { AuthError, nowIso } from "./gotrue.ts";
import { sha256Hex } from "./keys.ts";
import { sendMail } from "./mailer.ts";

const OTP_TTL_MS = 60 * 60 * 1000;
const encoder = new TextEncoder();

const hmacKeys = new Map<string, Promise<CryptoKey>>();
function hmacKey(secret: string): Promise<CryptoKey> {
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey(
      "raw",
      encoder.encode(`otp:${secret}`),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    hmacKeys.set(secret, key);
  }
  return key;
}

async function codeHash(env: Env, email: string, code: string): Promise<string> {
  const mac = await crypto.subtle.sign(
    "HMAC",
    await hmacKey(readConfig(env).jwtSecret),
    encoder.encode(`${email}:${code}`),
  );
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A uniform 6-digit code (rejection sampling: no modulo bias). */
function sixDigits(): string {
  const limit = Math.floor(0x1_0000_0000 / 1_000_000) * 1_000_000;
  for (;;) {
    const [n] = crypto.getRandomValues(new Uint32Array(1));
    if (n! < limit) return String(n! % 1_000_000).padStart(6, "0");
  }
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/** Creates and mails a code + token_hash for `email`. */
export async function issueOtp(
  env: Env,
  email: string,
  metadata: Record<string, unknown> | null,
): Promise<void> {
  const db = drizzle(env.CATALOG);
  const code = sixDigits();
  const tokenHash = randomHex(32);
  const id = crypto.randomUUID();
  const expiresAt = Date.now() + OTP_TTL_MS;
  await db.batch([
    db.delete(oneTimeTokens).where(eq(oneTimeTokens.email, email)),
    db.insert(oneTimeTokens).values({
      id,
      email,
      codeHash: await codeHash(env, email, code),
      linkHash: await sha256Hex(tokenHash),
      userMetadata: metadata === null ? null : JSON.stringify(metadata),
      createdAt: nowIso(),
      expiresAt,
    }),
  ]);
  try {
    await sendMail(env, {
      type: "magiclink",
      to: email,
      subject: "Your sign-in code",
      text: `Your sign-in code is ${code}. It is valid for one hour and can be used once.\n\nIf you did not ask for it, ignore this message.`,
      otp: code,
      token_hash: tokenHash,
      expires_at: new Date(expiresAt).toISOString(),
    });
  } catch (err) {
    // An undelivered code must not stay valid (nor block a retry from replacing it).
    await db.delete(oneTimeTokens).where(eq(oneTimeTokens.id, id));
    throw err;
  }
}

export type OtpProof = { email: string; token: string } | { tokenHash: string };

const expired = () => new AuthError("otp_expired", "Token has expired or is invalid");

/**
 * Consumes the one-time token matching `proof`; returns its email and signup metadata.
 * Wrong, expired and already used tokens all answer 403 `otp_expired`.
 */
export async function consumeOtp(
  env: Env,
  proof: OtpProof,
): Promise<{ email: string; metadata: Record<string, unknown> }> {
  const db = drizzle(env.CATALOG);
  const live = and(isNull(oneTimeTokens.usedAt), gt(oneTimeTokens.expiresAt, Date.now()));
  let match: typeof oneTimeTokens.$inferSelect | undefined;
  if ("tokenHash" in proof) {
    [match] = await db
      .select()
      .from(oneTimeTokens)
      .where(and(eq(oneTimeTokens.linkHash, await sha256Hex(proof.tokenHash)), live));
  } else {
    if (!/^\d{6}$/.test(proof.token)) throw expired();
    const wanted = await codeHash(env, proof.email, proof.token);
    const rows = await db
      .select()
      .from(oneTimeTokens)
      .where(and(eq(oneTimeTokens.email, proof.email), live));
    const a = encoder.encode(wanted);
    match = rows.find((r) => {
      const b = encoder.encode(r.codeHash);
      return a.length === b.length && crypto.subtle.timingSafeEqual(a, b);
    });
  }
  if (!match) throw expired();
  // Only one of two concurrent verifications can claim the token.
  const claimed = await db
    .update(oneTimeTokens)
    .set({ usedAt: nowIso() })
    .where(and(eq(oneTimeTokens.id, match.id), isNull(oneTimeTokens.usedAt)))
    .returning({ id: oneTimeTokens.id });
  if (claimed.length === 0) throw expired();
  let metadata: Record<string, unknown> = {};
  if (match.userMetadata) metadata = JSON.parse(match.userMetadata) as Record<string, unknown>;
  return { email: match.email, metadata };
}
