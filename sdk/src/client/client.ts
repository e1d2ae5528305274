/**
 * `createClient(url, options)`: a project's REST API through postgrest-js's query builder,
 * account and app sign-in (`client.auth`), and a `fetch` for the project's other endpoints.
 * Credentials are read per request, so a refreshed or new session applies to queries built
 * before it; so does the project of an app session (its `project_url`).
 */

import { PostgrestClient } from "@supabase/postgrest-js";
import { type AuthSettings, HearthAuth } from "../auth/auth-client.ts";
import type { AuthTransport } from "../auth/endpoints.ts";
import { resolveStorage, type StorageOption } from "../auth/storage.ts";
import type { EncryptionSchema } from "../crypto/rows.ts";
import { HearthError } from "../errors.ts";
import { checkEncryptedFilters } from "./encrypted-filter.ts";
import { withNearest } from "./nearest.ts";
import { withHearth } from "./query.ts";
import { fetchWithRetry, type RetryOptions, type RetryPolicy, resolveRetry } from "./retry.ts";
import { parseHearthUrl, rebase } from "./url.ts";

export interface AuthOptions {
  /** Where the session is kept: `localStorage` by default in browsers, memory elsewhere, or your own. */
  storage?: StorageOption;
  /** Storage key of the session (default `hearth.auth:<url>`); the pending PKCE sign-in adds `.pkce`. */
  storageKey?: string;
  /** Refresh the access token in the background before it expires (default true). */
  autoRefresh?: boolean;
  /** How long before expiry the background refresh runs, in ms (default 60,000). */
  refreshMarginMs?: number;
}

export interface ClientOptions {
  /**
   * A project key (`anonKey`, or `serviceKey` on servers only), sent as `apikey`, and as the
   * bearer token while no one is signed in.
   */
  key?: string;
  auth?: AuthOptions;
  /** Retries of reads (and, with `writes: true`, of writes) on 5xx, 429 and network errors; `false` turns them off. */
  retry?: RetryOptions | false;
  /** The `fetch` to use (default: the global one). */
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** Headers added to every request (REST, auth, OAuth). */
  headers?: Record<string, string>;
  /**
   * The schema JSON (the project's, or the tables the app declares): a query that filters or
   * orders on a column marked `encrypted` is refused before it is sent, with
   * `HEARTH_ENCRYPTED_FILTER` (the server only holds ciphertext, so it could never match).
   */
  schema?: EncryptionSchema;
}

const NO_RETRY: RetryPolicy = { ...resolveRetry(false) };

/**
 * A Hearth project client. Make one with `createClient`.
 *
 * @example
 * ```ts
 * const hearth = createClient<Database>("http://127.0.0.1:8787/p/3qb96oryowdm3x7bddzd", { key: ANON });
 * const { data, error } = await hearth.from("posts").select("id,title").eq("published", true);
 * ```
 */
// biome-ignore lint/suspicious/noExplicitAny: as postgrest-js's default: untyped tables without a Database type
export class HearthClient<DB = any> {
  readonly auth: HearthAuth;
  /** The platform root (accounts, apps, OAuth). */
  readonly platformUrl: string;
  private readonly givenProjectUrl: string | null;
  private readonly key: string | null;
  private readonly policy: RetryPolicy;
  private readonly baseFetch: (url: string, init: RequestInit) => Promise<Response>;
  private readonly extraHeaders: Record<string, string>;
  private readonly restBase: string;
  private readonly postgrest: PostgrestClient<DB>;
  private readonly schema: EncryptionSchema | null;

  constructor(url: string, options: ClientOptions = {}) {
    const { platformUrl, projectUrl } = parseHearthUrl(url);
    if (options.key !== undefined && (typeof options.key !== "string" || options.key === "")) {
      throw new TypeError("Hearth: key must be a non-empty string");
    }
    this.platformUrl = platformUrl;
    this.givenProjectUrl = projectUrl;
    this.key = options.key ?? null;
    this.policy = resolveRetry(options.retry);
    const f = options.fetch;
    this.baseFetch = f ? (u, i) => f(u, i) : (u, i) => fetch(u, i);
    this.extraHeaders = { ...options.headers };
    this.schema = options.schema ?? null;
    // Queries are built against this base and re-based at send time to the current project.
    this.restBase = `${projectUrl ?? `${platformUrl}/p/-`}/rest/v1`;
    // postgrest-js's retry stays "on" here only so that `.retry(false)` on a query can be told
    // apart: query.ts turns postgrest-js's own loop off for every request and runs ours.
    this.postgrest = new PostgrestClient<DB>(this.restBase);
    this.auth = new HearthAuth(this.authTransport(), this.authSettings(url, options.auth));
  }

  /**
   * The project that queries go to: an app session's `project_url`, else the URL given to
   * `createClient`; null for a client made with the platform root before an app signs in.
   *
   * @example
   * ```ts
   * await hearth.auth.handleRedirect(location.href);
   * console.log(hearth.projectUrl); // the user's project, from the grant
   * ```
   */
  get projectUrl(): string | null {
    const s = this.auth.currentSession();
    return s?.kind === "app" ? s.project_url : this.givenProjectUrl;
  }

  /**
   * A query on `table` (namespaced names as they are: `"com.example.todos"`), with
   * postgrest-js's builder: `select`, `insert`, `upsert`, `update`, `delete`, filters,
   * `order`, `range`, `single`... Resolves to `{ data, error, count, status }`, where `error`
   * is a `HearthError`; `.throwOnError()` rejects with it instead.
   *
   * @example
   * ```ts
   * const { data, error } = await hearth
   *   .from("com.example.todos")
   *   .select("id,title")
   *   .eq("done", false)
   *   .order("created_at", { ascending: false })
   *   .limit(20);
   * ```
   */
  from: PostgrestClient<DB>["from"] = ((relation: string) =>
    withNearest(
      withHearth(this.postgrest.from(relation as never), async (url, init, retry) => {
        if (this.schema) checkEncryptedFilters(this.schema, relation, url);
        await this.auth.ready; // the stored session may name the project
        return this.send(rebase(url, this.restBase, `${this.currentProject()}/rest/v1`), init, retry);
      }),
      relation,
      async (init) => {
        await this.auth.ready;
        return this.send(`${this.currentProject()}/rest/v1/rpc/vector_search`, init, true);
      },
    )) as unknown as PostgrestClient<DB>["from"];

  /**
   * `fetch` on the current project, with the client's credentials and retry policy: a path
   * (`"/schema"`, `"/export"`) or an absolute URL under the project. Answers the raw
   * `Response`; rejects with `HEARTH_NETWORK` when no answer came.
   *
   * @example
   * ```ts
   * const res = await hearth.fetch("/schema");
   * const schema = await res.json();
   * ```
   */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    await this.auth.ready;
    const project = this.currentProject();
    const url = path.startsWith("/") ? project + path : path;
    const rest = url.startsWith(project) ? url.slice(project.length) : null;
    if (rest === null || !(rest === "" || rest.startsWith("/") || rest.startsWith("?"))) {
      throw new TypeError(`Hearth: client.fetch only reaches the current project (${project}), not ${url}`);
    }
    return this.send(url, init, true);
  }

  /**
   * The credential headers a request to the current project carries now (`apikey`,
   * `authorization`), e.g. for a WebSocket or a request made with another library.
   *
   * @example
   * ```ts
   * const headers = await hearth.authHeaders();
   * await fetch(`${hearth.projectUrl}/export`, { headers });
   * ```
   */
  async authHeaders(): Promise<Record<string, string>> {
    await this.auth.ready;
    const project = this.currentProject();
    const headers: Record<string, string> = {};
    const token = await this.auth.getAccessToken();
    // A project key belongs to the project given to createClient, never to an app's project.
    const key = project === this.givenProjectUrl ? this.key : null;
    if (key) headers.apikey = key;
    const bearer = token ?? key;
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    return headers;
  }

  private currentProject(): string {
    const project = this.projectUrl;
    if (project === null) {
      throw new HearthError("HEARTH_NO_PROJECT", "This client has no project yet", {
        hint: "Create the client with a project URL (…/p/<projectId>), or sign an app in with signInWithApp.",
      });
    }
    return project;
  }

  private async send(url: string, init: RequestInit, retry: boolean): Promise<Response> {
    await this.auth.ready;
    const headers = new Headers(init.headers);
    for (const [name, value] of Object.entries(this.extraHeaders))
      if (!headers.has(name)) headers.set(name, value);
    for (const [name, value] of Object.entries(await this.authHeaders())) {
      // A header the query set itself (postgrest-js's setHeader) wins.
      if (!headers.has(name)) headers.set(name, value);
    }
    return fetchWithRetry(this.baseFetch, url, { ...init, headers }, retry ? this.policy : NO_RETRY);
  }

  private authTransport(): AuthTransport {
    const projectAuth = this.givenProjectUrl !== null && this.key !== null;
    // Sign-in calls are not idempotent (refresh tokens rotate): only reads are retried.
    const policy: RetryPolicy = { ...this.policy, writes: false };
    return {
      platformUrl: this.platformUrl,
      authUrl: projectAuth ? `${this.givenProjectUrl}/auth/v1` : `${this.platformUrl}/auth/v1`,
      apikey: projectAuth ? this.key : null,
      fetch: (url, init) => {
        const headers = new Headers(init.headers);
        for (const [name, value] of Object.entries(this.extraHeaders)) {
          if (!headers.has(name)) headers.set(name, value);
        }
        return fetchWithRetry(this.baseFetch, url, { ...init, headers }, policy);
      },
    };
  }

  private authSettings(url: string, opts: AuthOptions = {}): AuthSettings {
    return {
      storage: resolveStorage(opts.storage),
      storageKey: opts.storageKey ?? `hearth.auth:${url.replace(/\/+$/, "")}`,
      autoRefresh: opts.autoRefresh ?? true,
      refreshMarginMs: opts.refreshMarginMs ?? 60_000,
    };
  }
}

/**
 * A client for the Hearth project at `url` (`http://host/p/<projectId>`), or for the platform
 * root when an app signs in first and learns its project from the grant. Pass a project key,
 * or sign in through `client.auth`, or both (the session's token wins while signed in).
 *
 * @example
 * ```ts
 * import { createClient } from "@hearth/sdk";
 * import type { Database } from "./database.ts"; // npx hearth types --url … --key … --out database.ts
 *
 * const hearth = createClient<Database>(PROJECT_URL, { key: ANON_KEY });
 * await hearth.auth.signInWithPassword({ email, password });
 * const { data } = await hearth.from("com.example.todos").select("id,title,done");
 * ```
 */
// biome-ignore lint/suspicious/noExplicitAny: as postgrest-js's default: untyped tables without a Database type
export function createClient<DB = any>(url: string, options: ClientOptions = {}): HearthClient<DB> {
  return new HearthClient<DB>(url, options);
}
