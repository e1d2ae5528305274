/**
 * `POST /oauth/token` (RFC 6749 §3.2, OAuth 2.1): `authorization_code` with PKCE, and
 * rotating `refresh_token`. Every check happens before anything is written, so a refused
 * exchange leaves the code usable by its rightful holder (except on replay, below).
 */
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { Context } from "hono";
import { type App, loadApp } from "../apps/store.ts";
import { sha256Hex } from "../auth/keys.ts";
import { oauthCodes, oauthRefreshTokens } from "../catalog/oauth-schema.ts";
import type { AppEnv, Env } from "../env.ts";
import { type Grant, loadGrant, prepareTokens, revokeRefreshTokens } from "./grants.ts";
import { asOAuthError, OAuthError, oauthErrorResponse } from "./oauth-error.ts";
import { CODE_VERIFIER, s256, sameHash } from "./tokens.ts";

export type Form = Record<string, string>;

/** Form body of an OAuth endpoint; RFC 6749 requires application/x-www-form-urlencoded. */
export async function readForm(c: Context<AppEnv>): Promise<Form> {
  const type = (c.req.header("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/x-www-form-urlencoded") {
    throw new OAuthError("invalid_request", "The body must be application/x-www-form-urlencoded");
  }
  // Decoded by hand: workerd warns when .text() reads a body whose type is not text/*.
  const text = new TextDecoder().decode(await c.req.arrayBuffer());
  if (text.length > 16 * 1024) throw new OAuthError("invalid_request", "The body is too large");
  const form: Form = {};
  for (const [k, v] of new URLSearchParams(text)) {
    // RFC 6749 §3.2: parameters must not be repeated.
    if (k in form) throw new OAuthError("invalid_request", `Parameter ${k} is repeated`);
    form[k] = v;
  }
  return form;
}

/**
 * Client authentication (RFC 6749 §2.3): `client_id` in the body (public clients), plus
 * `client_secret` in the body or HTTP Basic for confidential ones.
 */
export async function authenticateClient(env: Env, headers: Headers, form: Form): Promise<App> {
  let clientId = form.client_id;
  let secret = form.client_secret;
  const basic = /^basic\s+(.+)$/i.exec(headers.get("authorization") ?? "");
  if (basic) {
    let decoded = "";
    try {
      decoded = atob(basic[1]!.trim());
    } catch {
      throw new OAuthError("invalid_client", "Malformed HTTP Basic credentials");
    }
    const colon = decoded.indexOf(":");
    clientId = decodeURIComponent(decoded.slice(0, colon < 0 ? undefined : colon));
    secret = colon < 0 ? undefined : decodeURIComponent(decoded.slice(colon + 1));
  }
  if (!clientId) throw new OAuthError("invalid_client", "client_id is required");
  const app = await loadApp(env, clientId);
  if (!app) throw new OAuthError("invalid_client", "Unknown client_id");
  if (app.confidential) {
    const ok =
      secret !== undefined &&
      app.clientSecretHash !== null &&
      (await sameHash(await sha256Hex(secret), app.clientSecretHash));
    if (!ok)
      throw new OAuthError(
        "invalid_client",
        "This confidential client must authenticate with its client_secret",
      );
  }
  return app;
}

function required(form: Form, name: string): string {
  const v = form[name];
  if (!v) throw new OAuthError("invalid_request", `${name} is required`);
  return v;
}

async function liveGrant(env: Env, id: string): Promise<Grant> {
  const grant = await loadGrant(env, id);
  if (!grant || grant.revokedAt !== null) throw new OAuthError("invalid_grant", "The grant has been revoked");
  return grant;
}

async function exchangeCode(env: Env, origin: string, app: App, form: Form) {
  const code = required(form, "code");
  const redirectUri = required(form, "redirect_uri");
  const verifier = required(form, "code_verifier");
  const codeHash = await sha256Hex(code);
  const db = drizzle(env.CATALOG);
  const [row] = await db.select().from(oauthCodes).where(eq(oauthCodes.codeHash, codeHash));
  if (!row) throw new OAuthError("invalid_grant", "The authorization code is invalid");
  if (row.usedAt !== null) {
    // A replayed code may have been stolen: revoke what was issued from it (RFC 6749 §4.1.2).
    await revokeRefreshTokens(env, { family: codeHash });
    throw new OAuthError("invalid_grant", "The authorization code has already been used");
  }
  if (row.expiresAt <= Date.now())
    throw new OAuthError("invalid_grant", "The authorization code has expired");
  if (row.clientId !== app.clientId)
    throw new OAuthError("invalid_grant", "The authorization code was issued to another client");
  if (row.redirectUri !== redirectUri)
    throw new OAuthError("invalid_grant", "redirect_uri differs from the authorization request's");
  if (!CODE_VERIFIER.test(verifier))
    throw new OAuthError("invalid_grant", "code_verifier must be 43-128 unreserved characters");
  if ((await s256(verifier)) !== row.codeChallenge)
    throw new OAuthError("invalid_grant", "code_verifier does not match the code_challenge");
  const grant = await liveGrant(env, row.grantId);
  const tokens = await prepareTokens(env, origin, grant, row.scopes.split(" "), codeHash);
  // Consume atomically: of two concurrent exchanges, only one sees used_at still null. The
  // refresh token is written in the same batch: both happen, or (D1 down) neither.
  const [consumed] = await db.batch([
    db
      .update(oauthCodes)
      .set({ usedAt: new Date().toISOString() })
      .where(and(eq(oauthCodes.codeHash, codeHash), isNull(oauthCodes.usedAt)))
      .returning({ codeHash: oauthCodes.codeHash }),
    tokens.insert,
  ]);
  if (consumed.length === 0) {
    await forgetRefreshToken(env, tokens.tokenHash);
    throw new OAuthError("invalid_grant", "The authorization code has already been used");
  }
  return tokens.response;
}

/** The refresh token of a lost race: nobody was given it; removed so it cannot linger. */
async function forgetRefreshToken(env: Env, tokenHash: string): Promise<void> {
  await drizzle(env.CATALOG)
    .delete(oauthRefreshTokens)
    .where(eq(oauthRefreshTokens.tokenHash, tokenHash))
    .catch((err) => console.error("an unused refresh token was not removed", err));
}

async function refresh(env: Env, origin: string, app: App, form: Form) {
  const presented = required(form, "refresh_token");
  const tokenHash = await sha256Hex(presented);
  const db = drizzle(env.CATALOG);
  const [row] = await db.select().from(oauthRefreshTokens).where(eq(oauthRefreshTokens.tokenHash, tokenHash));
  if (!row || row.clientId !== app.clientId)
    throw new OAuthError("invalid_grant", "The refresh token is invalid");
  if (row.revokedAt !== null) throw new OAuthError("invalid_grant", "The refresh token has been revoked");
  if (row.rotatedAt !== null) {
    // Reuse of a rotated token: one of the two holders is not the app (OAuth 2.1 §4.3.1).
    await revokeRefreshTokens(env, { grantId: row.grantId });
    throw new OAuthError(
      "invalid_grant",
      "The refresh token was already used; the grant's refresh tokens are revoked",
    );
  }
  if (row.expiresAt <= Date.now()) throw new OAuthError("invalid_grant", "The refresh token has expired");
  let scopes = row.scopes.split(" ");
  if (form.scope !== undefined) {
    // RFC 6749 §6: a refresh may narrow the scope, never widen it.
    const asked = form.scope.split(" ").filter((s) => s !== "");
    if (asked.length === 0 || asked.some((s) => !scopes.includes(s))) {
      throw new OAuthError("invalid_scope", "scope must be a subset of the refresh token's scope");
    }
    scopes = [...new Set(asked)].sort();
  }
  const grant = await liveGrant(env, row.grantId);
  const tokens = await prepareTokens(env, origin, grant, scopes, row.family);
  // Rotation and the new token in one batch: a D1 failure leaves the presented token usable.
  const [rotated] = await db.batch([
    db
      .update(oauthRefreshTokens)
      .set({ rotatedAt: new Date().toISOString() })
      .where(
        and(
          eq(oauthRefreshTokens.tokenHash, tokenHash),
          isNull(oauthRefreshTokens.rotatedAt),
          isNull(oauthRefreshTokens.revokedAt),
        ),
      )
      .returning({ tokenHash: oauthRefreshTokens.tokenHash }),
    tokens.insert,
  ]);
  if (rotated.length === 0) {
    await forgetRefreshToken(env, tokens.tokenHash);
    throw new OAuthError("invalid_grant", "The refresh token was already used");
  }
  return tokens.response;
}

export async function tokenEndpoint(c: Context<AppEnv>): Promise<Response> {
  try {
    const form = await readForm(c);
    const grantType = form.grant_type;
    if (grantType !== "authorization_code" && grantType !== "refresh_token") {
      throw new OAuthError(
        grantType ? "unsupported_grant_type" : "invalid_request",
        grantType ? `grant_type ${grantType} is not supported` : "grant_type is required",
      );
    }
    const app = await authenticateClient(c.env, c.req.raw.headers, form);
    const origin = new URL(c.req.url).origin;
    const body =
      grantType === "authorization_code"
        ? await exchangeCode(c.env, origin, app, form)
        : await refresh(c.env, origin, app, form);
    return c.json(body, 200, { "cache-control": "no-store", pragma: "no-cache" });
  } catch (err) {
    const oauth = asOAuthError(err);
    if (oauth) return oauthErrorResponse(oauth, c.get("requestId"));
    throw err;
  }
}

/** `POST /oauth/revoke` (RFC 7009): 200 whatever the token, so it reveals nothing. */
export async function revokeEndpoint(c: Context<AppEnv>): Promise<Response> {
  try {
    const form = await readForm(c);
    const token = form.token;
    if (token) {
      // A refresh token is itself the secret: whoever holds it may use it, so revoking it with
      // no further client authentication gives nothing away. Its whole chain goes with it.
      const [row] = await drizzle(c.env.CATALOG)
        .select()
        .from(oauthRefreshTokens)
        .where(eq(oauthRefreshTokens.tokenHash, await sha256Hex(token)));
      if (row && (form.client_id === undefined || form.client_id === row.clientId)) {
        await revokeRefreshTokens(c.env, { family: row.family });
      }
      // Access tokens are JWTs that expire within the hour; the user revokes them all at once
      // with DELETE /account/grants/<id>.
    }
    return c.body(null, 200, { "cache-control": "no-store" });
  } catch (err) {
    const oauth = asOAuthError(err);
    if (oauth) return oauthErrorResponse(oauth, c.get("requestId"));
    throw err;
  }
}
