/**
 * SQLite constraint failures → PostgreSQL's SQLSTATEs and messages, as PostgREST would
 * report them. Anything else is not the client's doing and stays an internal error.
 */
import { HearthError } from "../shared/errors.ts";

function splitQualified(q: string): { table: string; column: string } {
  const dot = q.lastIndexOf(".");
  return { table: q.slice(0, dot), column: q.slice(dot + 1) };
}

export function mapSqliteError(err: unknown): unknown {
  if (err instanceof HearthError || !(err instanceof Error)) return err;
  const msg = err.message;
  let m = /UNIQUE constraint failed: ([^\s,:]+)/.exec(msg);
  if (m) {
    const { table, column } = splitQualified(m[1]!);
    return new HearthError(
      "23505",
      `duplicate key value violates unique constraint "${table}_${column}_key"`,
      {
        details: `Key (${column}) already exists.`,
      },
    );
  }
  m = /NOT NULL constraint failed: ([^\s,:]+)/.exec(msg);
  if (m) {
    const { table, column } = splitQualified(m[1]!);
    return new HearthError(
      "23502",
      `null value in column "${column}" of relation "${table}" violates not-null constraint`,
      {
        details: "Failing row contains a null in a column declared notNull.",
      },
    );
  }
  if (/FOREIGN KEY constraint failed/.test(msg)) {
    return new HearthError("23503", "insert or update violates a foreign key constraint", {
      details: "A referenced row does not exist, or a row that others reference would be removed.",
    });
  }
  m = /cannot store (\w+) value in (\w+) column ([^\s,:]+)/.exec(msg);
  if (m) {
    const { column } = splitQualified(m[3]!);
    return new HearthError(
      "22P02",
      `invalid input for column "${column}": a ${m[1]!.toLowerCase()} value is not a ${m[2]!.toLowerCase()}`,
    );
  }
  if (/ON CONFLICT clause does not match any PRIMARY KEY or UNIQUE constraint/.test(msg)) {
    return new HearthError(
      "42P10",
      "there is no unique or exclusion constraint matching the ON CONFLICT specification",
      {
        hint: "on_conflict must name the primary key or a column declared unique.",
      },
    );
  }
  if (/SQLITE_TOOBIG|string or blob too big/i.test(msg)) {
    return new HearthError("HEARTH_PAYLOAD_TOO_LARGE", "A value is too large to store", {
      details: "One row or value exceeds the storage engine's limit of about 2 MB.",
      hint: "Store large content as a file, or split it.",
    });
  }
  if (/CHECK constraint failed/.test(msg)) {
    return new HearthError("23514", "new row violates a check constraint");
  }
  return err;
}
