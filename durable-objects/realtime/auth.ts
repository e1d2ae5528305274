/**
 * Tokens of realtime and sync sockets, checked when they arrive and again while the socket
 * lives: expiry and project keys on every event (no I/O), and the session, grant and
 * membership behind an account or app token at most every RECHECK_MS (D1), before the
 * next events are delivered. A revoked grant is also pushed here by the gateway at once.
 */
import { HearthError, hearthErrorIn } from "../../shared/errors.ts";
import { principalForToken } from "../../workers/auth/principal.ts";
import type { Env } from "../../workers/env.ts";
import type { SocketAuth } from "./sockets.ts";

export const RECHECK_MS = 5_000;
const RETRY_MS = 1_000;

export class Authenticator {
  constructor(
    private readonly env: Env,
    private readonly projectId: () => string,
    private readonly hasKey: (id: string) => boolean,
  ) {}

  /** Verifies a token for this project; throws a HearthError (401) otherwise. */
  async establish(token: string): Promise<SocketAuth> {
    const { principal, expiresAtMs } = await principalForToken(this.env, this.projectId(), token);
    if ((principal.role === "anon" || principal.role === "service") && !this.hasKey(principal.keyId)) {
      throw new HearthError("PGRST301", "This key has been revoked.");
    }
    return { token, principal, expiresAtMs, checkedAt: Date.now() };
  }

  /** Why `auth` may no longer be used, without I/O; null while it is fine. */
  invalidNow(auth: SocketAuth, now: number): string | null {
    if (auth.expiresAtMs !== null && auth.expiresAtMs <= now) return "Token has expired";
    const p = auth.principal;
    if ((p.role === "anon" || p.role === "service") && !this.hasKey(p.keyId))
      return "The key has been revoked";
    return null;
  }

  needsRecheck(auth: SocketAuth, now: number): boolean {
    return (
      auth.principal.role !== "anon" &&
      auth.principal.role !== "service" &&
      now - auth.checkedAt >= RECHECK_MS
    );
  }

  /**
   * The token checked again (session, grant, membership): the fresh auth, or why it failed.
   * When the check itself fails (D1 unreachable: 503 HEARTH_CATALOG_UNAVAILABLE, or anything
   * unexpected) the previous answer stands until the next
   * try, RETRY_MS later; the token's expiry and pushed revocations still apply meanwhile.
   */
  async recheck(auth: SocketAuth): Promise<SocketAuth | string> {
    try {
      return await this.establish(auth.token);
    } catch (err) {
      const known = hearthErrorIn(err);
      if (known && known.status !== 503) return known.message;
      console.error("realtime: token recheck failed, retrying soon", err);
      return { ...auth, checkedAt: Date.now() - RECHECK_MS + RETRY_MS };
    }
  }
}
