/**
 * One joined channel of a realtime socket: its topic, the token it joined with, its
 * postgres_changes bindings (filters parsed by the REST filter code), broadcast flags and
 * the presence it tracks. Plain data, stored as JSON in `_hearth_sockets`; filters are
 * parsed again when a socket is restored.
 */
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";
import type { Condition } from "../../shared/rest/plan.ts";
import { readAccess } from "../policy.ts";
import type { SchemaIndex, TableInfo } from "../schema-index.ts";
import { fileTable } from "../storage/changes.ts";
import { parseRealtimeFilter } from "./changes.ts";
import type { SocketAuth } from "./sockets.ts";

export const MAX_BINDINGS_PER_CHANNEL = 100;

const EVENTS = ["*", "INSERT", "UPDATE", "DELETE"] as const;

/** Exactly as the client sent it: realtime-js matches the reply to its listeners by equality. */
export const BindingRequestSchema = z.object({
  event: z.string(),
  schema: z.string().nullish(),
  table: z.string().nullish(),
  filter: z.string().nullish(),
});
export type BindingRequest = z.infer<typeof BindingRequestSchema>;

export const JoinPayloadSchema = z.object({
  config: z
    .object({
      broadcast: z.object({ ack: z.boolean().optional(), self: z.boolean().optional() }).partial().nullish(),
      presence: z.object({ key: z.string().max(256).optional(), enabled: z.boolean().optional() }).nullish(),
      private: z.boolean().nullish(),
      postgres_changes: z.array(BindingRequestSchema).max(MAX_BINDINGS_PER_CHANNEL).nullish(),
    })
    .nullish(),
  access_token: z.string().max(8192).nullish(),
});
export type JoinPayload = z.infer<typeof JoinPayloadSchema>;

export interface Binding {
  id: number;
  request: BindingRequest;
  /** "public": schema tables; "storage": file events (storage.objects, storage.buckets) */
  schema: "public" | "storage";
  /** null: every table of the schema (`table` absent or "*"); else a schema table or storage.objects / storage.buckets */
  table: string | null;
  event: (typeof EVENTS)[number];
  conditions: Condition[];
}

export interface Tracked {
  key: string;
  ref: string;
  meta: Record<string, unknown>;
}

export interface ChannelState {
  topic: string;
  joinRef: string | null;
  auth: SocketAuth;
  bindings: BindingRequest[];
  self: boolean;
  ack: boolean;
  presenceKey: string;
  presence: boolean;
  private: boolean;
  tracked: Tracked | null;
}

export interface Channel extends ChannelState {
  compiled: Binding[];
}

function bindingTable(schema: SchemaIndex, req: BindingRequest): TableInfo | null {
  if (req.schema !== undefined && req.schema !== null && req.schema !== "public" && req.schema !== "*") {
    throw new HearthError(
      "HEARTH_BAD_REQUEST",
      `Unknown schema "${req.schema}": Hearth tables are in "public", file events in "storage"`,
    );
  }
  if (req.table === undefined || req.table === null || req.table === "*") return null;
  return schema.table(req.table);
}

function eventOf(req: BindingRequest): Binding["event"] {
  const event = req.event.toUpperCase();
  if (!(EVENTS as readonly string[]).includes(event)) {
    throw new HearthError("HEARTH_BAD_REQUEST", `Unknown postgres_changes event "${req.event}"`, {
      hint: 'Use "*", "INSERT", "UPDATE" or "DELETE".',
    });
  }
  return event as Binding["event"];
}

/**
 * A binding on schema "storage": file events. No refusal at the join: each event goes only
 * to subscribers that could read the object (or see the bucket) when it is sent
 * (storage/changes.ts), as Supabase's RLS on storage.objects decides per row.
 */
function fileBinding(req: BindingRequest, id: number, event: Binding["event"]): Binding {
  const all = req.table === undefined || req.table === null || req.table === "*";
  const table = all ? null : fileTable(`storage.${req.table}`);
  if (!all && !table) {
    throw new HearthError(
      "HEARTH_BAD_REQUEST",
      `Unknown table "storage.${req.table}": the storage schema has "objects" and "buckets"`,
    );
  }
  if (!table && req.filter) {
    throw new HearthError("HEARTH_BAD_FILTER", "A filter needs a table: it cannot apply to every table");
  }
  return {
    id,
    request: req,
    schema: "storage",
    table: table?.name ?? null,
    event,
    conditions: table && req.filter ? parseRealtimeFilter(table, req.filter) : [],
  };
}

/** Parses and authorizes the bindings; throws a HearthError the join reply carries. */
export function compileBindings(schema: SchemaIndex | null, state: ChannelState): Binding[] {
  return state.bindings.map((req, i) => {
    const event = eventOf(req);
    // Stable across rejoins and restores: realtime-js only needs them unique per channel.
    const id = i + 1;
    if (req.schema === "storage") return fileBinding(req, id, event);
    if (!schema) throw new HearthError("HEARTH_SCHEMA_MISSING", "The project has no schema yet");
    const table = bindingTable(schema, req);
    // The same refusal as a REST read of the table (42501: 401 for the anon key, 403 otherwise).
    if (table) readAccess(state.auth.principal, table);
    if (!table && req.filter) {
      throw new HearthError("HEARTH_BAD_FILTER", "A filter needs a table: it cannot apply to every table");
    }
    return {
      id,
      request: req,
      schema: "public",
      table: table?.name ?? null,
      event,
      conditions: table && req.filter ? parseRealtimeFilter(table, req.filter) : [],
    };
  });
}

/** Private channels (broadcast and presence behind a login): service key or a project member. */
export function mayJoinPrivate(auth: SocketAuth): boolean {
  const p = auth.principal;
  return p.role === "service" || (p.role === "authenticated" && p.membership !== null);
}
