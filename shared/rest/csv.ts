/**
 * `Accept: text/csv` responses, byte for byte as PostgREST writes them (dialect §6).
 * PostgREST renders each row with PostgreSQL's composite-value text output
 * (`row::text` minus the parentheses), so the quoting rule is record_out's, not RFC 4180's:
 * a value is quoted when it is empty or holds `,` `"` `\` `(` `)` or whitespace, and inside
 * the quotes both `"` and `\` are doubled. NULL is an empty, unquoted field, which is how
 * NULL and the empty string (`""`) stay distinct.
 */

// record_out quotes on scanner_isspace (space, \t, \n, \r, \f) besides the punctuation.
const NEEDS_QUOTES = /[,"\\() \t\n\r\f]/;

/**
 * `columns` gives the header and the field order; a row lacking a key gets an empty field.
 *
 * No rows → the body is exactly "\n". PostgREST builds the header line from the keys of the
 * first row (`json_object_keys` of `row_to_json` ... `limit 1`) and joins it to the body with
 * `'\n'`; with no row the header is empty too, hence the reference's "no rows → body `\n`".
 * We reproduce that rather than print a header-only body, so that clients written against
 * PostgREST see the same bytes.
 */
export function toCsv(columns: string[], rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return "\n";
  const lines = new Array<string>(rows.length + 1);
  lines[0] = columns.map(headerField).join(",");
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    let line = "";
    for (let j = 0; j < columns.length; j++) {
      if (j > 0) line += ",";
      line += csvField(row[columns[j]!]);
    }
    lines[i + 1] = line;
  }
  return lines.join("\n");
}

/** One value as PostgREST prints it (the quoting rule above). */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = csvText(value);
  return text === "" || NEEDS_QUOTES.test(text) ? `"${text.replace(/["\\]/g, "$&$&")}"` : text;
}

function csvText(value: unknown): string {
  switch (typeof value) {
    case "string":
      return value;
    case "number":
    case "bigint":
      return String(value); // NaN, Infinity, -Infinity print as PostgreSQL's float8 does
    case "boolean":
      // PostgreSQL itself prints t/f here; Hearth answers true/false, which every CSV
      // consumer (and Hearth's own CSV import) reads back as a boolean.
      return value ? "true" : "false";
    default:
      if (value instanceof Uint8Array) return byteaHex(value);
      if (value instanceof Date) return value.toISOString();
      return JSON.stringify(value); // json columns: objects, arrays
  }
}

/** bytea's text form `\x0a0b`, as PostgreSQL prints bytes (then quoted: it holds `\`). */
function byteaHex(bytes: Uint8Array): string {
  let hex = "\\x";
  for (const b of bytes) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/**
 * PostgREST prints header names raw (`string_agg(key, ',')`). Hearth column names are plain
 * identifiers, so that is what happens here too; only a name that would break the line
 * structure (a select alias holding `,` `"` or a newline) is RFC 4180-quoted.
 */
function headerField(name: string): string {
  return /[,"\r\n]/.test(name) ? `"${name.replace(/"/g, '""')}"` : name;
}
