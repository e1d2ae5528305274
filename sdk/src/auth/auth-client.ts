/**
 * `client.auth`: one session at a time (an account's or an app's), kept in pluggable storage,
 * refreshed silently before it expires, and announced to `onAuthStateChange` listeners.
 *
 * Invariants: refresh tokens rotate and a reused one revokes the whole session (docs/api.md),
 * so at most one refresh runs at a time (per client, and across tabs where Web Locks exist:
 * refresh-lock.ts), a refresh is never retried blindly, and a session another tab already
 * rotated (same storage) is adopted rather than refreshed again.
 */
import { HearthError } from "../errors.ts";
import { type AppSignIn, type PendingSignIn, pendingFromRedirect, startAppSignIn } from "./app-sign-in.ts";
import {
  type AuthTransport,
  logoutRequest,
  oauthRevokeRequest,
  oauthTokenRequest,
  signUpRequest,
  tokenRequest,
  userRequest,
} from "./endpoints.ts";
import { withRefreshLock } from "./refresh-lock.ts";
import { expiresWithin, RefreshTimer, USE_MARGIN_MS } from "./refresh-timer.ts";
import {
  type AccountSession,
  accountSessionFrom,
  appSessionFrom,
  parseStoredSession,
  type Session,
  type User,
} from "./session.ts";
import type { AuthStorage } from "./storage.ts";

export type AuthEvent = "INITIAL_SESSION" | "SIGNED_IN" | "SIGNED_OUT" | "TOKEN_REFRESHED";
export type AuthListener = (event: AuthEvent, session: Session | null) => void;

export interface AuthSettings {
  storage: AuthStorage;
  storageKey: string;
  autoRefresh: boolean;
  /** Refresh this long before the access token expires (ms). */
  refreshMarginMs: number;
}

function notSignedIn(what: string): HearthError {
  return new HearthError("HEARTH_NOT_SIGNED_IN", `${what} needs a signed-in session, and there is none`);
}

/** A refusal of the refresh token itself (used, revoked, unknown): the session is over. */
function sessionIsOver(err: unknown): boolean {
  return err instanceof HearthError && err.status >= 400 && err.status < 500 && err.status !== 429;
}

export class HearthAuth {
  /** Settles once the stored session (if any) is loaded; every method waits for it. */
  readonly ready: Promise<void>;
  private session: Session | null = null;
  private generation = 0;
  private refreshing: Promise<Session> | null = null;
  private readonly timer: RefreshTimer;
  private readonly listeners = new Set<AuthListener>();
  private autoRefresh: boolean;

  constructor(
    private readonly transport: AuthTransport,
    private readonly settings: AuthSettings,
  ) {
    this.autoRefresh = settings.autoRefresh;
    this.timer = new RefreshTimer(settings.refreshMarginMs, () => void this.onTimer());
    this.ready = this.load().then(
      (s) => {
        this.session = s;
        this.schedule();
      },
      () => {}, // unreadable storage: start signed out
    );
  }

  /**
   * The session now, without waiting for storage or refreshing (null before `ready`).
   *
   * @example
   * ```ts
   * await hearth.auth.ready;
   * const signedIn = hearth.auth.currentSession() !== null;
   * ```
   */
  currentSession(): Session | null {
    return this.session;
  }

  /**
   * The current session, refreshed first if its access token is about to expire.
   *
   * @example
   * ```ts
   * const session = await hearth.auth.getSession();
   * if (session?.kind === "app") console.log("granted", session.scope);
   * ```
   */
  async getSession(): Promise<Session | null> {
    await this.getAccessToken();
    return this.session;
  }

  /**
   * The bearer token to send now (refreshed when about to expire), or null when signed out.
   *
   * @example
   * ```ts
   * const token = await hearth.auth.getAccessToken();
   * const ws = new WebSocket(`${wsUrl}?access_token=${token}`);
   * ```
   */
  async getAccessToken(): Promise<string | null> {
    await this.ready;
    const s = this.session;
    if (!s) return null;
    if (!expiresWithin(s, USE_MARGIN_MS)) return s.access_token;
    try {
      return (await this.refreshOnce()).access_token;
    } catch (err) {
      if (this.session === null) return null; // the session ended: callers fall back to the key
      throw err;
    }
  }

  /**
   * Creates an account (auto-confirmed) and signs it in. Rejects with a `HearthError`
   * (`user_already_exists`, `weak_password`, ...).
   *
   * @example
   * ```ts
   * const session = await hearth.auth.signUp({ email: "ada@example.com", password: "correct horse" });
   * console.log(session.user.id);
   * ```
   */
  async signUp(p: {
    email: string;
    password: string;
    data?: Record<string, unknown>;
  }): Promise<AccountSession> {
    await this.ready;
    const body = await signUpRequest(this.transport, { ...p });
    return this.signedIn(accountSessionFrom(body));
  }

  /**
   * Signs an account in with its password. Rejects with `invalid_credentials` when either is wrong.
   *
   * @example
   * ```ts
   * await hearth.auth.signInWithPassword({ email: "ada@example.com", password: "correct horse" });
   * const { data } = await hearth.from("com.example.todos").select();
   * ```
   */
  async signInWithPassword(p: { email: string; password: string }): Promise<AccountSession> {
    await this.ready;
    const body = await tokenRequest(this.transport, "password", { email: p.email, password: p.password });
    return this.signedIn(accountSessionFrom(body));
  }

  /**
   * Starts an app's sign-in (OAuth 2.1 + PKCE S256): keeps a fresh verifier and `state` in
   * storage and answers the `/oauth/authorize` URL. In a browser it also navigates there,
   * unless `skipBrowserRedirect` is set. Finish with `handleRedirect` on the redirect URI.
   *
   * @example
   * ```ts
   * await hearth.auth.signInWithApp({
   *   clientId: "app_…",
   *   redirectUri: "https://todos.example/callback",
   *   scopes: ["db:com.example.todos:write"],
   * });
   * ```
   */
  async signInWithApp(opts: AppSignIn): Promise<{ url: string }> {
    await this.ready;
    const { url, pending } = await startAppSignIn(this.transport.platformUrl, opts);
    await this.settings.storage.setItem(this.pendingKey(), JSON.stringify(pending));
    const location = (globalThis as { location?: { assign?: (url: string) => void } }).location;
    if (!opts.skipBrowserRedirect && typeof location?.assign === "function") location.assign(url);
    return { url };
  }

  /**
   * Finishes an app's sign-in on the redirect URI: checks that `state` is the one this client
   * sent (else `HEARTH_OAUTH_STATE`, and nothing is exchanged), turns an `error=` redirect into
   * a `HearthError` with that code (`access_denied`), exchanges the code with the verifier,
   * and keeps the app session. The client then talks to the granted project (`project_url`).
   *
   * @example
   * ```ts
   * // on https://todos.example/callback?code=…&state=…
   * const session = await hearth.auth.handleRedirect(window.location.href);
   * const { data } = await hearth.from("com.example.todos").select();
   * ```
   */
  async handleRedirect(url?: string): Promise<Session> {
    await this.ready;
    const href = url ?? (globalThis as { location?: { href?: string } }).location?.href;
    if (href === undefined)
      throw new TypeError("Hearth: handleRedirect needs the redirect URL outside a browser");
    const stored = await this.settings.storage.getItem(this.pendingKey());
    const { pending, outcome } = pendingFromRedirect(href, stored);
    // The state matched: this sign-in is answered, whatever the outcome.
    await this.settings.storage.removeItem(this.pendingKey());
    if (outcome instanceof HearthError) throw outcome;
    const body = await oauthTokenRequest(this.transport, {
      grant_type: "authorization_code",
      code: outcome,
      redirect_uri: pending.redirectUri,
      client_id: pending.clientId,
      code_verifier: pending.verifier,
    });
    return this.signedIn(appSessionFrom(body, pending.clientId));
  }

  /**
   * Gets a new access token now with the refresh token (rotating it). When the server refuses
   * the refresh token (used, revoked), the session is over: it is cleared and `SIGNED_OUT` fires.
   *
   * @example
   * ```ts
   * const session = await hearth.auth.refreshSession();
   * ```
   */
  async refreshSession(): Promise<Session> {
    await this.ready;
    if (!this.session) throw notSignedIn("refreshSession");
    return this.refreshOnce();
  }

  /**
   * The signed-in account. For an account session this asks `GET /auth/v1/user`; an app
   * session knows only the account id (`{ id }`), since app tokens cannot read profiles.
   *
   * @example
   * ```ts
   * const user = await hearth.auth.getUser();
   * console.log(user.email);
   * ```
   */
  async getUser(): Promise<User> {
    const token = await this.getAccessToken();
    const s = this.session;
    if (!s || token === null) throw notSignedIn("getUser");
    if (s.kind === "app") return { ...s.user };
    const user = (await userRequest(this.transport, token)) as User;
    if (this.session === s) await this.store({ ...s, user });
    return user;
  }

  /**
   * Signs out: clears the local session at once (`SIGNED_OUT`), then ends it on the server:
   * an account's `POST /auth/v1/logout` (`scope` `global` by default, `local`, or `others`, which
   * keeps this session), an app's refresh token revoked with `POST /oauth/revoke`. A refusal
   * because the session had already ended is ignored; a network failure rejects, after the
   * local sign-out.
   *
   * @example
   * ```ts
   * await hearth.auth.signOut({ scope: "local" });
   * ```
   */
  async signOut(opts: { scope?: "global" | "local" | "others" } = {}): Promise<void> {
    await this.ready;
    const scope = opts.scope ?? "global";
    const s = this.session;
    if (!s) return;
    let token = s.access_token;
    if (s.kind === "account") {
      // The logout needs a live access token: refresh an expired one first. A refused refresh
      // means the session had already ended (and SIGNED_OUT fired).
      token = (await this.getAccessToken().catch(() => null)) ?? s.access_token;
      if (this.session === null) return;
    }
    const current = this.session ?? s;
    if (scope !== "others") await this.signedOut();
    try {
      if (current.kind === "app") {
        await oauthRevokeRequest(this.transport, {
          token: current.refresh_token,
          client_id: current.client_id,
        });
      } else {
        await logoutRequest(this.transport, token, scope);
      }
    } catch (err) {
      if (!(err instanceof HearthError) || err.status === 0 || err.status >= 500) throw err;
    }
  }

  /**
   * Calls `listener` on every change of session: `INITIAL_SESSION` once the stored session is
   * loaded, then `SIGNED_IN`, `TOKEN_REFRESHED`, `SIGNED_OUT`.
   *
   * @example
   * ```ts
   * const { unsubscribe } = hearth.auth.onAuthStateChange((event, session) => {
   *   console.log(event, session?.user.id);
   * });
   * ```
   */
  onAuthStateChange(listener: AuthListener): { unsubscribe: () => void } {
    this.listeners.add(listener);
    void this.ready.then(() => {
      if (this.listeners.has(listener)) call(listener, "INITIAL_SESSION", this.session);
    });
    return { unsubscribe: () => this.listeners.delete(listener) };
  }

  /**
   * Resumes refreshing tokens in the background (on by default unless `autoRefresh: false`).
   *
   * @example
   * ```ts
   * document.addEventListener("visibilitychange", () =>
   *   document.hidden ? hearth.auth.stopAutoRefresh() : hearth.auth.startAutoRefresh());
   * ```
   */
  startAutoRefresh(): void {
    this.autoRefresh = true;
    this.schedule();
  }

  /**
   * Stops the background refresh timer (tokens are still refreshed on use when about to expire).
   *
   * @example
   * ```ts
   * hearth.auth.stopAutoRefresh();
   * ```
   */
  stopAutoRefresh(): void {
    this.autoRefresh = false;
    this.timer.clear();
  }

  private pendingKey(): string {
    return `${this.settings.storageKey}.pkce`;
  }

  private async load(): Promise<Session | null> {
    return parseStoredSession(await this.settings.storage.getItem(this.settings.storageKey));
  }

  private async store(s: Session): Promise<void> {
    this.session = s;
    await this.settings.storage.setItem(this.settings.storageKey, JSON.stringify(s));
    this.schedule();
  }

  private async signedIn<S extends Session>(s: S): Promise<S> {
    this.generation++;
    await this.store(s);
    this.emit("SIGNED_IN");
    return s;
  }

  private async signedOut(): Promise<void> {
    this.generation++;
    this.session = null;
    this.timer.clear();
    await this.settings.storage.removeItem(this.settings.storageKey);
    this.emit("SIGNED_OUT");
  }

  private emit(event: AuthEvent): void {
    for (const listener of [...this.listeners]) call(listener, event, this.session);
  }

  private refreshOnce(): Promise<Session> {
    // Under the cross-tab lock: refresh() reads the stored session only once it holds it.
    this.refreshing ??= withRefreshLock(this.settings.storageKey, () => this.refresh()).finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async refresh(): Promise<Session> {
    const generation = this.generation;
    let base = this.session;
    if (!base) throw notSignedIn("refresh");
    // Another tab sharing this storage may have rotated the token already (while this one waited
    // for the lock, or without locks): reusing ours would revoke the session, so take theirs
    // (and refresh it only if it is about to expire too).
    const stored = await this.load().catch(() => null);
    if (stored && stored.refresh_token !== base.refresh_token) {
      await this.store(stored);
      this.emit("TOKEN_REFRESHED");
      if (!expiresWithin(stored, USE_MARGIN_MS)) return stored;
      base = stored;
    }
    let next: Session;
    try {
      next =
        base.kind === "account"
          ? accountSessionFrom(
              await tokenRequest(this.transport, "refresh_token", { refresh_token: base.refresh_token }),
            )
          : appSessionFrom(
              await oauthTokenRequest(this.transport, {
                grant_type: "refresh_token",
                refresh_token: base.refresh_token,
                client_id: base.client_id,
              }),
              base.client_id,
            );
    } catch (err) {
      if (sessionIsOver(err) && this.generation === generation) await this.signedOut();
      throw err;
    }
    if (this.generation !== generation) throw notSignedIn("The refreshed session (signed out meanwhile)");
    await this.store(next);
    this.emit("TOKEN_REFRESHED");
    return next;
  }

  private schedule(): void {
    this.timer.scheduleFor(this.autoRefresh ? this.session : null);
  }

  private async onTimer(): Promise<void> {
    const s = this.session;
    if (!s || !this.autoRefresh) return;
    if (!this.timer.due(s)) {
      this.schedule(); // the delay was capped at setTimeout's longest
      return;
    }
    try {
      await this.refreshOnce();
    } catch {
      // Transient failure (network, 5xx): try again while the session lasts. A refused
      // refresh token has already signed us out.
      if (this.session && this.autoRefresh) this.timer.retrySoon();
    }
  }
}

function call(listener: AuthListener, event: AuthEvent, session: Session | null): void {
  try {
    listener(event, session);
  } catch (err) {
    console.error("Hearth: an onAuthStateChange listener threw", err);
  }
}

export type { AppSignIn, PendingSignIn };
