/**
 * ProjectDO: one per project (`idFromName(projectId)`), the single writer of its data.
 * Invariants:
 * - Who writes: only this object, one request at a time per transaction (`transactionSync`).
 * - What survives eviction: everything in its SQLite (tables, WAL, schema, key ids); the
 *   in-memory ProjectState is rebuilt from it at start-up.
 * - Where a write becomes durable: when its transaction commits; the output gate holds the
 *   response until then, so an acknowledged write is never lost.
 */
import { DurableObject } from "cloudflare:workers";
import { errorResponse, HearthError, REQUEST_ID_HEADER } from "../shared/errors.ts";
import { PRINCIPAL_HEADER, type Principal } from "../shared/principal.ts";
import { readJsonBody } from "../shared/rest/bodies.ts";
import type { TableDef } from "../shared/schema.ts";
import type { Env } from "../workers/env.ts";
import { exportFormat, exportProject, requireExportAccess } from "./export.ts";
import { importProject } from "./import.ts";
import { type MergeResult, mergeTables } from "./merge-tables.ts";
import { type KeyRecord, ProjectState } from "./project-state.ts";
import { handleRest } from "./rest-handler.ts";
import { JSON_TYPE, respond } from "./rest-response.ts";
import { walRange } from "./wal.ts";

const DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024;
const MAX_SCHEMA_BYTES = 1024 * 1024;

export class ProjectDO extends DurableObject<Env> {
  private state!: ProjectState;
  private lastActivity = Date.now();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.blockConcurrencyWhile(async () => {
      this.state = new ProjectState(ctx.storage.sql, ctx.storage);
    });
  }

  /** Called by the gateway when the project is created. Idempotent. */
  async init(projectId: string, keys: KeyRecord[]): Promise<void> {
    this.state.init(projectId, keys);
  }

  /** Deletes every byte this object holds (project deletion). */
  async destroy(): Promise<void> {
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.state = new ProjectState(this.ctx.storage.sql, this.ctx.storage);
  }

  /**
   * OAuth consent: adds an app's tables to this project's schema (additive; identical tables
   * are shared, a differing one is a conflict). Returns a result instead of throwing because
   * a HearthError does not survive RPC as its class.
   */
  async mergeTables(tables: Record<string, TableDef>): Promise<MergeResult> {
    const { schema, conflicts } = mergeTables(this.state.schema?.schema ?? null, tables);
    if (conflicts.length > 0) {
      return {
        ok: false,
        code: "HEARTH_APP_TABLE_CONFLICT",
        message: `The project already has ${conflicts.length === 1 ? "a table" : "tables"} ${conflicts.join(", ")} with another definition than the app's`,
        details: `Conflicting tables: ${conflicts.join(", ")}. Tables shared by apps must be declared identically.`,
      };
    }
    try {
      const result = this.state.applySchema(schema);
      return { ok: true, applied: result.applied, version: result.version };
    } catch (err) {
      if (!(err instanceof HearthError)) throw err;
      return {
        ok: false,
        code: "HEARTH_APP_TABLE_CONFLICT",
        message: err.message,
        details: err.details ?? "",
      };
    }
  }

  /**
   * The gateway's entry point (Workers RPC): about 2 ms faster per request than `fetch`
   * under wrangler dev (bench/results/core.md), and the principal travels as a value.
   */
  async handle(request: Request, principal: Principal, requestId: string): Promise<Response> {
    try {
      this.lastActivity = Date.now();
      return await this.route(request, this.checkPrincipal(principal), requestId);
    } catch (err) {
      // Refused before the body was read: read it to the end (bounded) so the gateway's
      // stream into this request completes before the response is sent.
      if (request.body && !request.bodyUsed) await drain(request.body, this.maxBodyBytes());
      return errorResponse(err, requestId);
    }
  }

  /** HTTP entry point, kept for WebSocket upgrades: the principal comes in a header. */
  override async fetch(request: Request): Promise<Response> {
    const requestId = request.headers.get(REQUEST_ID_HEADER) ?? crypto.randomUUID();
    try {
      this.lastActivity = Date.now();
      const raw = request.headers.get(PRINCIPAL_HEADER);
      if (!raw) throw new HearthError("HEARTH_UNAUTHORIZED", "Missing credentials.");
      return await this.route(request, this.checkPrincipal(JSON.parse(raw) as Principal), requestId);
    } catch (err) {
      // Refused before the body was read: read it to the end (bounded) so the gateway's
      // stream into this request completes before the response is sent.
      if (request.body && !request.bodyUsed) await drain(request.body, this.maxBodyBytes());
      return errorResponse(err, requestId);
    }
  }

  private maxBodyBytes(): number {
    return Number(this.env.HEARTH_MAX_BODY_BYTES) || DEFAULT_MAX_BODY_BYTES;
  }

  private checkPrincipal(principal: Principal): Principal {
    if (this.state.projectId === null || principal.projectId !== this.state.projectId) {
      throw new HearthError("HEARTH_PROJECT_NOT_FOUND", `No project with id "${principal.projectId}".`);
    }
    if ((principal.role === "anon" || principal.role === "service") && !this.state.hasKey(principal.keyId)) {
      throw new HearthError("PGRST301", "This key has been revoked.");
    }
    return principal;
  }

  private async route(request: Request, principal: Principal, requestId: string): Promise<Response> {
    const url = new URL(request.url);
    const prefix = `/p/${principal.projectId}`;
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
    const method = request.method.toUpperCase();
    if (path === "/rest/v1" || path.startsWith("/rest/v1/")) {
      return handleRest(
        {
          sql: this.ctx.storage.sql,
          storage: this.ctx.storage,
          schema: this.state.requireSchema(),
          principal,
          requestId,
          maxBodyBytes: this.maxBodyBytes(),
          baseUrl: `${url.origin}${prefix}/rest/v1`,
        },
        request,
        path.slice("/rest/v1".length),
      );
    }
    if (path === "/schema") {
      requireService(principal);
      if (method === "GET") {
        const schema = this.state.schema?.schema ?? { tables: {} };
        return json({ ...schema }, 200, requestId, {
          "x-hearth-schema-version": String(this.state.schemaVersion),
        });
      }
      if (method === "PUT") {
        const body = await readJsonBody(request, MAX_SCHEMA_BYTES);
        if (body === undefined) {
          throw new HearthError(
            "HEARTH_SCHEMA_INVALID",
            'The schema must be a JSON object with a "tables" key.',
          );
        }
        const result = this.state.applySchema(body);
        return json(result, 200, requestId);
      }
      throw new HearthError(
        "HEARTH_METHOD_NOT_ALLOWED",
        `${method} is not allowed on /schema; use GET or PUT.`,
      );
    }
    if (path === "/export" && method === "GET") {
      requireExportAccess(principal);
      const format = exportFormat(url);
      const ctx = {
        sql: this.ctx.storage.sql,
        schema: this.state.schema,
        projectId: principal.projectId,
        requestId,
      };
      return exportProject(ctx, format);
    }
    if (path === "/import" && method === "POST") {
      requireService(principal);
      const ctx = {
        sql: this.ctx.storage.sql,
        storage: this.ctx.storage,
        state: this.state,
        reloadState: () => {
          this.state = new ProjectState(this.ctx.storage.sql, this.ctx.storage);
        },
        maxBodyBytes: this.maxBodyBytes(),
      };
      return json(await importProject(ctx, request), 200, requestId);
    }
    if (path === "/admin/v1/ping") {
      requireService(principal);
      return json({ ok: true }, 200, requestId);
    }
    if (path === "/admin/v1/stats") {
      requireService(principal);
      const range = walRange(this.ctx.storage.sql);
      let hotRows = 0;
      for (const t of this.state.schema?.tables.keys() ?? []) {
        hotRows += Number(
          this.ctx.storage.sql.exec(`SELECT count(*) AS n FROM "${t.replaceAll('"', '""')}"`).one().n,
        );
      }
      return json(
        {
          projectId: this.state.projectId,
          schemaVersion: this.state.schemaVersion,
          hotRows,
          segments: 0,
          r2Bytes: 0,
          doStorageBytes: this.ctx.storage.sql.databaseSize,
          wal: range,
          lastActivity: new Date(this.lastActivity).toISOString(),
        },
        200,
        requestId,
      );
    }
    throw new HearthError("HEARTH_NOT_FOUND", `No route for ${method} ${url.pathname}`);
  }
}

async function drain(body: ReadableStream<Uint8Array>, maxBytes: number): Promise<void> {
  const reader = body.getReader();
  let seen = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      seen += value.byteLength;
      if (seen > maxBytes) {
        await reader.cancel();
        return;
      }
    }
  } catch {
    // the client went away: nothing left to drain
  }
}

function requireService(principal: Principal): void {
  if (principal.role !== "service") {
    throw new HearthError("HEARTH_FORBIDDEN", "This endpoint needs the project's service key.");
  }
}

function json(
  body: unknown,
  status: number,
  requestId: string,
  headers: Record<string, string> = {},
): Response {
  return respond(status, JSON.stringify(body), { "content-type": JSON_TYPE, ...headers }, requestId);
}
