/**
 * Merge-on-read in SQL: a statement of the read path is run with a WITH clause that shadows
 * each table it names by a CTE of the same name, holding the table's hot rows (from
 * `main."t"`) UNION ALL its live cold rows (bound as JSON and read with json_each). Filters,
 * embeds, ordering, counts and aggregates then run unchanged over hot ∪ cold, so the answer
 * is the one the same rows would give if they were all hot.
 *
 * A statement can carry about 90 MiB of cold rows (bound values are cut at 1 MiB, a
 * statement binds at most 100, the chunks are rows of one VALUES list); callers narrow the rows first (statistics, key lookups,
 * the JS filter evaluator), and the aggregate fast path never comes here.
 */
import { HearthError } from "../../shared/errors.ts";
import { quoteIdent } from "../migrate.ts";
import type { TableInfo } from "../schema-index.ts";
import type { ColdView } from "./cold-store.ts";

export type SqlExec = Pick<SqlStorage, "exec">;

const CHUNK_BYTES = 1024 * 1024;
const MAX_PARAMS = 100;

function chunks(rows: unknown[][]): string[] {
  const out: string[] = [];
  let parts: string[] = [];
  let size = 2;
  for (const row of rows) {
    const json = JSON.stringify(row);
    if (parts.length > 0 && size + json.length + 1 > CHUNK_BYTES) {
      out.push(`[${parts.join(",")}]`);
      parts = [];
      size = 2;
    }
    parts.push(json);
    size += json.length + 1;
  }
  if (parts.length > 0) out.push(`[${parts.join(",")}]`);
  return out;
}

/**
 * A cold value as SQLite holds it in the table: JSON has no REAL/INTEGER distinction
 * (`2.0` arrives as 2), so floats are cast back, and bytes travel as hex.
 */
export function valueSql(type: string, expr: string): string {
  if (type === "bytes" || type === "vector") return `unhex(${expr})`;
  if (type === "float") return `CAST(${expr} AS REAL)`;
  return expr;
}

export type ColdRowsFor = (table: TableInfo) => unknown[][];

/** An `exec` that sees hot ∪ cold (or, for a snapshot view, only the snapshot's rows). */
export function overlaySql(sql: SqlStorage, view: ColdView, rowsFor: ColdRowsFor): SqlExec {
  const memo = new Map<string, string[]>();
  const chunksOf = (table: TableInfo): string[] => {
    let c = memo.get(table.name);
    if (!c) {
      c = chunks(rowsFor(table));
      memo.set(table.name, c);
    }
    return c;
  };
  return {
    exec(text: string, ...values: unknown[]) {
      const params = [...values];
      const ctes: string[] = [];
      for (const table of view.schema.tables.values()) {
        const name = quoteIdent(table.name);
        if (!text.includes(name)) continue;
        if (view.includeHot && !view.hasCold(table.name)) continue;
        const parts = chunksOf(table);
        if (view.includeHot && parts.length === 0) continue;
        const columns = [...table.columns.values()];
        const names = columns.map((c) => quoteIdent(c.name));
        const exprs = columns.map((c, j) => `${valueSql(c.type, `j.value ->> ${j}`)} AS ${names[j]}`);
        const marks: string[] = [];
        for (const part of parts) {
          if (params.length >= MAX_PARAMS) {
            throw new HearthError(
              "HEARTH_COLD_SCAN_TOO_LARGE",
              `This query would merge more flushed rows of '${table.name}' than one statement can carry`,
              {
                hint: "Add a filter on the table's own columns (or a limit with an order on them) so fewer flushed rows match.",
              },
            );
          }
          params.push(part);
          marks.push(`(?${params.length})`);
        }
        // One compound term per source: a DO's SQLite allows 5 terms in a compound SELECT,
        // so the chunks are rows of a VALUES list (exempt from that limit), each expanded
        // by json_each.
        const cold =
          marks.length > 0
            ? `SELECT ${exprs.join(", ")} FROM (VALUES ${marks.join(", ")}) AS ch, json_each(ch.column1) AS j`
            : `SELECT ${names.map((n) => `NULL AS ${n}`).join(", ")} WHERE 0`;
        // A snapshot never reads main."t": the table (or a column) may have been dropped since.
        const body = view.includeHot
          ? `SELECT ${names.join(", ")} FROM main.${name} UNION ALL ${cold}`
          : cold;
        ctes.push(`${name} AS (${body})`);
      }
      if (ctes.length === 0) return sql.exec(text, ...values);
      return sql.exec(`WITH ${ctes.join(", ")} ${text}`, ...params);
    },
  };
}
