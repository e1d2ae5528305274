/**
 * Pushed mutations, applied exactly once. Each mutation becomes one REST request run as the
 * socket's principal through the HTTP write path (policies, app scopes, flushed-row
 * promotion, WAL triggers), so a push can do nothing an HTTP write could not. Its decision
 * is recorded in the ledger of its writer (ledger.ts: the principal's identity plus the
 * client id) inside the write's transaction; a mutation seen again is answered from the
 * ledger without writing, or "expired" when its record was pruned. The caller runs the
 * mutations of one writer one after another, in the order received.
 *
 * Conflicts: an update sends only the columns it changes (a PATCH), so concurrent updates
 * of different columns both survive and the same column keeps the value of the later commit
 * (last writer wins per column, in server commit order); an upsert merges only the columns
 * it sends (`resolution=merge-duplicates`). Rules in docs/sync.md.
 */
import { z } from "zod";
import { type ErrorBody, HearthError } from "../../shared/errors.ts";
import type { Principal } from "../../shared/principal.ts";
import type { SchemaIndex, TableInfo } from "../schema-index.ts";
import { fileTable } from "../storage/changes.ts";
import { clientState, type Decision, ensureLedger, lookupDecision, recordDecision } from "./ledger.ts";

export const MutationIdSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const Table = z.string().min(1).max(512);
const Row = z.record(z.string(), z.unknown());
const Key = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));

const MutationSchema = z.discriminatedUnion("op", [
  z.object({ id: MutationIdSchema, op: z.literal("insert"), table: Table, row: Row }),
  z.object({ id: MutationIdSchema, op: z.literal("upsert"), table: Table, row: Row }),
  z.object({ id: MutationIdSchema, op: z.literal("update"), table: Table, pk: Key, values: Row }),
  z.object({ id: MutationIdSchema, op: z.literal("delete"), table: Table, pk: Key }),
]);
type Mutation = z.infer<typeof MutationSchema>;

export interface PushResult {
  id: number;
  status: "applied" | "duplicate" | "rejected" | "expired";
  /** the LSN of the mutation's (last) change; null when it changed nothing */
  lsn?: number | null;
  error?: ErrorBody;
  /** the failure was the server's (5xx): nothing was recorded, the same id may be sent again */
  retryable?: true;
}

export interface MutationContext {
  sql: SqlStorage;
  schema: SchemaIndex | null;
  principal: Principal;
  /** the writer: ledger.ts ownerOf(principal) and the client id */
  owner: string;
  clientId: string;
  rest(principal: Principal, request: Request, inTransaction?: () => void): Promise<Response>;
}

function malformed(details: string): HearthError {
  return new HearthError("HEARTH_BAD_FRAME", "Malformed mutation", {
    details,
    hint: 'A mutation is {"id","op":"insert"|"upsert","table","row"}, {"id","op":"update","table","pk","values"} or {"id","op":"delete","table","pk"}.',
  });
}

function tableOf(schema: SchemaIndex | null, name: string): TableInfo {
  if (!schema) throw new HearthError("PGRST205", `Could not find the table '${name}' in the schema cache`);
  return schema.table(name);
}

/** `?c1=eq.v1&c2=eq.v2` for exactly the table's primary key. */
function keyParams(table: TableInfo, pk: Record<string, string | number | boolean>): string {
  const given = Object.keys(pk).sort();
  const want = [...table.primaryKey].sort();
  if (given.length !== want.length || given.some((c, i) => c !== want[i])) {
    throw malformed(`pk must name exactly the primary key of ${table.name}: ${table.primaryKey.join(", ")}`);
  }
  const params = new URLSearchParams();
  for (const c of table.primaryKey) params.set(c, `eq.${String(pk[c])}`);
  return params.toString();
}

function requestOf(ctx: MutationContext, m: Mutation): Request {
  if (fileTable(m.table)) {
    throw new HearthError("HEARTH_FORBIDDEN", `${m.table} is read-only over sync`, {
      hint: "File metadata follows the files: upload, move and remove them with the storage API ({url}/storage/v1).",
    });
  }
  const url = `http://hearth/p/${ctx.principal.projectId}/rest/v1/${encodeURIComponent(m.table)}`;
  const json = { "content-type": "application/json" };
  switch (m.op) {
    case "insert":
      return new Request(url, {
        method: "POST",
        headers: { ...json, prefer: "return=minimal" },
        body: JSON.stringify(m.row),
      });
    case "upsert":
      return new Request(url, {
        method: "POST",
        headers: { ...json, prefer: "resolution=merge-duplicates, return=minimal" },
        body: JSON.stringify(m.row),
      });
    case "update": {
      if (Object.keys(m.values).length === 0)
        throw malformed("an update needs at least one column in values");
      const q = keyParams(tableOf(ctx.schema, m.table), m.pk);
      return new Request(`${url}?${q}`, {
        method: "PATCH",
        headers: { ...json, prefer: "return=minimal" },
        body: JSON.stringify(m.values),
      });
    }
    case "delete":
      return new Request(`${url}?${keyParams(tableOf(ctx.schema, m.table), m.pk)}`, { method: "DELETE" });
  }
}

/** Inside a write's transaction: the LSN of its last WAL entry, or null if it wrote none. */
function ownLsn(sql: SqlStorage): number | null {
  const tx = Number(sql.exec("SELECT tx FROM _hearth_state WHERE id = 1").one().tx);
  const last = sql.exec("SELECT lsn, tx FROM _hearth_wal ORDER BY lsn DESC LIMIT 1").toArray()[0];
  return last && Number(last.tx) === tx ? Number(last.lsn) : null;
}

function highWater(sql: SqlStorage): number {
  const r = sql.exec("SELECT seq FROM sqlite_sequence WHERE name = '_hearth_wal'").toArray()[0];
  return r ? Number(r.seq) : 0;
}

function rejected(id: number, err: HearthError): PushResult {
  return { id, status: "rejected", error: err.toBody() };
}

/** Decides one mutation (its id already validated): applied, duplicate, rejected or expired. */
export async function applyMutation(ctx: MutationContext, raw: unknown, id: number): Promise<PushResult> {
  const { sql, owner, clientId } = ctx;
  ensureLedger(sql);
  const prior = lookupDecision(sql, owner, clientId, id);
  if (prior) {
    return prior.status === "applied"
      ? { id, status: "duplicate", lsn: prior.lsn }
      : { id, status: "rejected", ...(prior.error ? { error: prior.error } : {}) };
  }
  const { lastId, prunedThrough } = clientState(sql, owner, clientId);
  if (id <= prunedThrough) {
    // Its record went with the WAL retention: it was decided (or refused) before, and
    // whether it was applied is no longer known here. Nothing is recorded.
    const err = new HearthError(
      "HEARTH_SYNC_MUTATION_EXPIRED",
      `Mutation ${id} of client ${clientId} was decided before, and its answer is no longer kept`,
      {
        details: `Answers of mutations ${prunedThrough} and below of this client have been pruned.`,
        hint: "It may have been applied: do not send it again as is. Pull (resync if needed), compare the rows with the change, and push what is still missing with a new id.",
      },
    );
    return { id, status: "expired", error: err.toBody() };
  }
  if (lastId !== null && id <= lastId) {
    // Every decided id above prunedThrough still has its record: this one never was. Not
    // recorded: the mutation was not decided now either.
    return rejected(
      id,
      new HearthError(
        "HEARTH_SYNC_MUTATION_ORDER",
        `Mutation ${id} of client ${clientId} comes after mutation ${lastId} and was never applied`,
        {
          hint: `Mutation ids of a client must increase. This one was not applied and no longer can be; send the change again with an id above ${lastId}.`,
        },
      ),
    );
  }
  const decide = (err: HearthError): PushResult => {
    const d: Decision = { status: "rejected", lsn: null, error: err.toBody() };
    recordDecision(sql, owner, clientId, id, d, highWater(sql));
    return rejected(id, err);
  };
  const parsed = MutationSchema.safeParse(raw);
  if (!parsed.success) {
    return decide(
      malformed(parsed.error.issues.map((i) => `${i.path.join(".") || "mutation"}: ${i.message}`).join("; ")),
    );
  }
  const m = parsed.data;
  const out: { lsn?: number | null } = {};
  try {
    const request = requestOf(ctx, m);
    const res = await ctx.rest(ctx.principal, request, () => {
      const lsn = ownLsn(sql);
      if (lsn === null && m.op === "update") {
        throw new HearthError("HEARTH_SYNC_ROW_NOT_FOUND", `No row of ${m.table} with this key to update`, {
          details: `pk ${JSON.stringify((m as { pk: unknown }).pk)}`,
          hint: "The row was deleted, or the caller may not write it. The client learns its current state from the feed.",
        });
      }
      recordDecision(sql, owner, clientId, id, { status: "applied", lsn, error: null }, highWater(sql));
      out.lsn = lsn;
    });
    await res.arrayBuffer();
  } catch (err) {
    if (err instanceof HearthError && err.status < 500) return decide(err);
    if (!(err instanceof HearthError)) console.error("sync mutation failed", err);
    const body =
      err instanceof HearthError
        ? err.toBody()
        : {
            code: "HEARTH_INTERNAL",
            message: "Internal error: the mutation was not applied.",
            details: null,
            hint: null,
          };
    return { id, status: "rejected", error: body, retryable: true };
  }
  if (out.lsn === undefined) throw new Error("the write path did not run the mutation's transaction hook");
  return { id, status: "applied", lsn: out.lsn };
}
