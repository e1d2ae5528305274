/**
 * Applying the pull side of the feed to the replica (docs/sync.md, Pull). Each frame is one
 * replica commit: the rows of a `changes` frame with its cursor; `resync` forgets the stored
 * cursor (a reload mid-snapshot pulls a new one) and starts staging; `snapshot` pages are
 * staged beside the current rows, which stay readable; `snapshot_end` swaps them in with its
 * cursor, in one commit. Applied mutations whose change the new cursor covers leave the
 * overlay in that same commit, so the optimistic value gives way to the server's row without
 * a moment in between.
 */
import type { ReplicaBatch, Row, RowWrite } from "../replica/types.ts";
import type { Local } from "./local.ts";
import type { Change } from "./protocol.ts";
import type { RowCodec } from "./types.ts";

export interface PullContext {
  local: Local;
  codec: RowCodec | null;
  report(err: unknown): void;
}

/**
 * The row as the codec decrypts it. One it cannot decrypt (tampered, another key) is stored as
 * it came and reported: refusing the frame would only bring it back on every reconnect.
 */
async function decoded(ctx: PullContext, table: string, row: Row): Promise<Row> {
  if (!ctx.codec) return row;
  try {
    return await ctx.codec.decrypt(table, row);
  } catch (err) {
    ctx.report(err);
    return row;
  }
}

/** Commits `batch` with the cursor; returns the tables whose view may have changed. */
async function commitAt(ctx: PullContext, batch: ReplicaBatch, cursor: number, tables: Set<string>) {
  const { local } = ctx;
  const settled = local.settledBy(cursor);
  await local.replica.commit({
    ...batch,
    deleteMutations: settled.map((m) => m.id),
    meta: { cursor, tables: local.followed },
  });
  local.meta = { ...local.meta, cursor, tables: [...local.followed] };
  local.remove(settled.map((m) => m.id));
  for (const m of settled) tables.add(m.table);
  return tables;
}

export async function applyChanges(
  ctx: PullContext,
  changes: Change[],
  cursor: number,
): Promise<Set<string>> {
  const rows: RowWrite[] = [];
  const tables = new Set<string>();
  for (const c of changes) {
    const keys = ctx.local.keys.get(c.table);
    if (!keys) continue;
    const key = keys.ofPk(c.pk);
    rows.push({ table: c.table, key, row: c.op === "delete" ? null : await decoded(ctx, c.table, c.row!) });
    tables.add(c.table);
  }
  return commitAt(ctx, { rows }, cursor, tables);
}

/** `live` or `pong`: every change through `cursor` has been applied. */
export async function storeCursor(ctx: PullContext, cursor: number): Promise<Set<string>> {
  const current = ctx.local.cursor();
  if (current !== null && cursor <= current) return new Set();
  return commitAt(ctx, {}, cursor, new Set());
}

export async function startSnapshot(ctx: PullContext): Promise<void> {
  await ctx.local.replica.commit({ clearStaged: true, meta: { cursor: null } });
  ctx.local.meta = { ...ctx.local.meta, cursor: null };
}

export async function stageSnapshot(ctx: PullContext, table: string, rows: Row[]): Promise<void> {
  const keys = ctx.local.keys.get(table);
  if (!keys) return;
  const staged: RowWrite[] = [];
  for (const raw of rows) {
    const row = await decoded(ctx, table, raw);
    staged.push({ table, key: keys.ofServerRow(row), row });
  }
  await ctx.local.replica.commit({ staged });
}

export async function endSnapshot(ctx: PullContext, cursor: number): Promise<Set<string>> {
  const tables = ctx.local.followed;
  return commitAt(ctx, { swapStaged: tables }, cursor, new Set(tables));
}
