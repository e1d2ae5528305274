/** Response shaping shared by REST reads and writes: formats, Content-Range, singular. */
import { HearthError, REQUEST_ID_HEADER } from "../shared/errors.ts";
import { toCsv } from "../shared/rest/csv.ts";
import type { AcceptMedia } from "../shared/rest/parse-headers.ts";
import type { Row } from "./read.ts";

export const JSON_TYPE = "application/json; charset=utf-8";

export function singular(rows: Row[]): Row {
  if (rows.length !== 1) {
    throw new HearthError("PGRST116", "Cannot coerce the result to a single JSON object", {
      details: `The result contains ${rows.length} rows`,
    });
  }
  return rows[0]!;
}

function stripNulls(row: Row): Row {
  return Object.fromEntries(Object.entries(row).filter(([, v]) => v !== null));
}

export function formatBody(
  rows: Row[],
  accept: AcceptMedia,
  columns: string[],
): { body: string; type: string } {
  switch (accept.format) {
    case "csv":
      return {
        body: toCsv(rows.length > 0 ? Object.keys(rows[0]!) : columns, rows),
        type: "text/csv; charset=utf-8",
      };
    case "object": {
      const row = singular(rows);
      return {
        body: JSON.stringify(accept.nullsStripped ? stripNulls(row) : row),
        type: "application/vnd.pgrst.object+json; charset=utf-8",
      };
    }
    default:
      return { body: JSON.stringify(accept.nullsStripped ? rows.map(stripNulls) : rows), type: JSON_TYPE };
  }
}

/** PostgREST's Content-Range for reads: `first-last/total`, `*` when unknown or empty. */
export function contentRange(offset: number, returned: number, total: number | null): string {
  const range = returned > 0 ? `${offset}-${offset + returned - 1}` : "*";
  return `${range}/${total ?? "*"}`;
}

export function respond(
  status: number,
  body: string | null,
  headers: Record<string, string>,
  requestId: string,
): Response {
  return new Response(status === 204 ? null : body, {
    status,
    headers: { ...headers, [REQUEST_ID_HEADER]: requestId },
  });
}
