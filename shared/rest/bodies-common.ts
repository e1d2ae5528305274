/**
 * What the body readers (bodies.ts, bodies-csv.ts, bodies-arrow.ts) share. It sits apart so
 * that the format parsers need not import bodies.ts, which imports them.
 */
import { HearthError } from "../errors.ts";

/** A body parsed into a header and rows, before it is projected onto `?columns=`. */
export interface HeaderRows {
  columns: string[];
  rows: unknown[][];
}

/** PGRST102, PostgREST's code for a body that cannot be read. */
export function bad(message: string, extra: { details?: string; hint?: string } = {}): HearthError {
  return new HearthError("PGRST102", message, extra);
}
