/**
 * The two halves of an app's authorization-code flow that need no session: building the
 * authorize URL (with a fresh PKCE verifier and `state`, kept until the redirect comes back),
 * and reading the redirect (checking `state` before anything else is trusted).
 */
import { HearthError } from "../errors.ts";
import { authorizeUrl } from "./endpoints.ts";
import { createPkcePair, randomString } from "./pkce.ts";

export interface AppSignIn {
  /** The app's `clientId` from `POST /v1/apps`. */
  clientId: string;
  /** One of the app's registered redirect URIs (matched exactly by the server). */
  redirectUri: string;
  /** `db:<table>:read` / `db:<table>:write` scopes, as a list or space-separated. */
  scopes: string[] | string;
  /** Grant on this project (which the user must own or administer) instead of their personal one. */
  projectId?: string;
  /** Only answer the URL, do not navigate (a browser navigates by default). */
  skipBrowserRedirect?: boolean;
}

/** What the client keeps between the redirect out and the redirect back. */
export interface PendingSignIn {
  state: string;
  verifier: string;
  clientId: string;
  redirectUri: string;
}

export async function startAppSignIn(
  platformUrl: string,
  opts: AppSignIn,
): Promise<{ url: string; pending: PendingSignIn }> {
  const scope = (Array.isArray(opts.scopes) ? opts.scopes : opts.scopes.split(" ")).filter((s) => s !== "");
  if (!opts.clientId || !opts.redirectUri || scope.length === 0) {
    throw new TypeError("Hearth: signInWithApp needs clientId, redirectUri and at least one scope");
  }
  const { verifier, challenge } = await createPkcePair();
  const pending: PendingSignIn = {
    state: randomString(32),
    verifier,
    clientId: opts.clientId,
    redirectUri: opts.redirectUri,
  };
  const url = authorizeUrl(platformUrl, {
    clientId: opts.clientId,
    redirectUri: opts.redirectUri,
    scope: scope.join(" "),
    state: pending.state,
    codeChallenge: challenge,
    ...(opts.projectId === undefined ? {} : { projectId: opts.projectId }),
  });
  return { url, pending };
}

function parsePending(text: string | null): PendingSignIn | null {
  if (text === null) return null;
  try {
    const p = JSON.parse(text) as Partial<PendingSignIn> | null;
    return p &&
      typeof p.state === "string" &&
      typeof p.verifier === "string" &&
      typeof p.clientId === "string" &&
      typeof p.redirectUri === "string"
      ? (p as PendingSignIn)
      : null;
  } catch {
    return null;
  }
}

/**
 * The pending sign-in a redirect answers, and its outcome: the code, or a `HearthError` with
 * the OAuth error code of an `error=` redirect (`access_denied`). Throws HEARTH_OAUTH_STATE for
 * a redirect whose `state` is not the pending one: it was not started by this client (login
 * CSRF) or was already handled; the pending sign-in is then kept for the real redirect.
 */
export function pendingFromRedirect(
  href: string,
  stored: string | null,
): { pending: PendingSignIn; outcome: string | HearthError } {
  const params = new URL(href).searchParams;
  const pending = parsePending(stored);
  const state = params.get("state");
  if (!pending) {
    throw new HearthError("HEARTH_OAUTH_STATE", "No app sign-in is pending in this client", {
      hint: "Call signInWithApp first, with the same storage as the client that handles the redirect.",
    });
  }
  if (state !== pending.state) {
    throw new HearthError("HEARTH_OAUTH_STATE", "The redirect's state is not the one this client sent", {
      hint: "The redirect was not started by this client, or it was already handled. Start the sign-in again.",
    });
  }
  const error = params.get("error");
  if (error !== null)
    return { pending, outcome: new HearthError(error, params.get("error_description") ?? error) };
  const code = params.get("code");
  if (!code) {
    return {
      pending,
      outcome: new HearthError("invalid_request", "The redirect carries neither a code nor an error"),
    };
  }
  return { pending, outcome: code };
}
