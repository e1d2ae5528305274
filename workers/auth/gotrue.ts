/**
 * GoTrue wire conventions of the auth routes: errors as `{code, error_code, msg}` with the
 * `X-Supabase-Api-Version` header (supabase-js reads `code` only when that header is present,
 * older clients read `error_code`), and request bodies validated with zod into clear 4xx.
 */
import type { z } from "zod";
import { hearthErrorIn, REQUEST_ID_HEADER, retryAfterOf } from "../../shared/errors.ts";

export const API_VERSION_HEADER = "X-Supabase-Api-Version";
export const API_VERSION = "2024-01-01";

/** GoTrue error codes Hearth answers, with their status (supabase/auth `internal/api/errorcodes.go`). */
export const AUTH_ERROR_STATUS = {
  bad_json: 400,
  validation_failed: 400,
  invalid_credentials: 400,
  email_not_confirmed: 400,
  refresh_token_not_found: 400,
  refresh_token_already_used: 400,
  unsupported_grant_type: 400,
  no_authorization: 401,
  invalid_api_key: 401,
  bad_jwt: 403,
  session_not_found: 403,
  user_not_found: 403,
  otp_expired: 403,
  not_found: 404,
  method_not_allowed: 405,
  request_too_large: 413,
  user_already_exists: 422,
  email_exists: 422,
  weak_password: 422,
  same_password: 422,
  otp_disabled: 422,
  phone_provider_disabled: 422,
  over_request_rate_limit: 429,
  email_send_failed: 500,
} as const;
export type AuthErrorCode = keyof typeof AUTH_ERROR_STATUS;

export class AuthError extends Error {
  override readonly name = "AuthError";
  readonly status: number;
  constructor(
    readonly code: AuthErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = AUTH_ERROR_STATUS[code];
  }
}

/**
 * Any error thrown under `/auth/v1` in GoTrue's shape. HearthErrors (misconfiguration, a bad
 * project id) keep their code and status; anything else is a logged 500 with a generic message.
 */
export function authErrorResponse(err: unknown, requestId: string): Response {
  let status = 500;
  let code = "unexpected_failure";
  let msg = "Internal error: the request could not be completed. It has been logged.";
  let extra: Record<string, unknown> = {};
  const headers: Record<string, string> = {
    "content-type": "application/json; charset=utf-8",
    [API_VERSION_HEADER]: API_VERSION,
    [REQUEST_ID_HEADER]: requestId,
  };
  if (err instanceof AuthError) {
    ({ status, code, extra } = err);
    msg = err.message;
    Object.assign(headers, err.headers);
  } else if (hearthErrorIn(err)) {
    const known = hearthErrorIn(err)!;
    ({ status, code } = known);
    msg = known.message;
    Object.assign(headers, retryAfterOf(known));
  } else {
    console.error(`[${requestId}] unexpected error`, err);
  }
  return new Response(JSON.stringify({ code, error_code: code, msg, ...extra }), { status, headers });
}

const MAX_BODY_BYTES = 64 * 1024;

/** The JSON body of an auth request; an empty body reads as `{}` (`/logout` sends none). */
export async function readBody(req: Request): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) {
    throw new AuthError("request_too_large", `Request body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  const text = await req.text();
  if (text.length > MAX_BODY_BYTES) {
    throw new AuthError("request_too_large", `Request body is larger than ${MAX_BODY_BYTES} bytes`);
  }
  if (text.trim() === "") return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new AuthError("bad_json", "Could not parse request body as JSON");
  }
}

/** zod `safeParse` → the data, or 400 `validation_failed` naming the first bad field. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new AuthError("bad_json", "The request body must be a JSON object");
  }
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const where = issue.path.join(".");
  throw new AuthError("validation_failed", where ? `${where}: ${issue.message}` : issue.message);
}

/** The client's address for rate limits: Cloudflare's header, a proxy's, else "local". */
export function clientIp(headers: Headers): string {
  const cf = headers.get("cf-connecting-ip")?.trim();
  if (cf) return cf;
  const forwarded = headers.get("x-forwarded-for")?.split(",")[0]?.trim();
  return forwarded || "local";
}

export function nowIso(): string {
  return new Date().toISOString();
}
