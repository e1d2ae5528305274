/**
 * text/csv request bodies (PostgREST dialect §5): header line, then one record per line.
 * Values stay strings, except an unquoted NULL; the caller casts per column type.
 */
import { bad, type HeaderRows } from "./bodies-common.ts";

const QUOTE = 34;
const COMMA = 44;
const LF = 10;
const CR = 13;

/**
 * RFC 4180 CSV with PostgREST's value rules. Hand-written rather than papaparse because
 * PostgREST semantics need to know whether a field was quoted (`NULL` → null, `"NULL"` →
 * the string) and errors must name the physical line, which papaparse reports as a record
 * index. Blank lines are skipped.
 */
export function parseCsv(text: string): HeaderRows {
  const n = text.length;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let header: string[] | null = null;
  let headerLine = 1;
  const rows: unknown[][] = [];
  while (i < n) {
    const c0 = text.charCodeAt(i);
    if (c0 === LF || c0 === CR) {
      i += c0 === CR && text.charCodeAt(i + 1) === LF ? 2 : 1;
      line++;
      continue;
    }
    const recordLine = line;
    const fields: unknown[] = [];
    for (;;) {
      if (text.charCodeAt(i) === QUOTE) {
        let value = "";
        let from = i + 1;
        for (;;) {
          const q = text.indexOf('"', from);
          if (q < 0) throw bad(`Unterminated quoted field in the CSV body, starting on line ${line}`);
          value += text.slice(from, q);
          if (text.charCodeAt(q + 1) !== QUOTE) {
            from = q + 1;
            break;
          }
          value += '"';
          from = q + 2;
        }
        for (let k = value.indexOf("\n"); k >= 0; k = value.indexOf("\n", k + 1)) line++;
        i = from;
        fields.push(value);
        const after = text.charCodeAt(i);
        if (i < n && after !== COMMA && after !== LF && after !== CR) {
          throw bad(
            `Unexpected character after the closing quote of field ${fields.length} on line ${line}`,
            {
              hint: 'Inside a quoted field write a double quote as "".',
            },
          );
        }
      } else {
        let j = i;
        while (j < n) {
          const c = text.charCodeAt(j);
          if (c === COMMA || c === LF || c === CR) break;
          j++;
        }
        const raw = text.slice(i, j);
        fields.push(raw === "NULL" ? null : raw);
        i = j;
      }
      const c = text.charCodeAt(i);
      if (c === COMMA) {
        i++;
        continue;
      }
      if (c === CR || c === LF) {
        i += c === CR && text.charCodeAt(i + 1) === LF ? 2 : 1;
        line++;
      }
      break;
    }
    if (!header) {
      header = fields.map((f) => (f === null ? "NULL" : (f as string)));
      headerLine = recordLine;
      const empty = header.indexOf("");
      if (empty >= 0) throw bad(`The CSV header names no column in field ${empty + 1}`);
    } else if (fields.length !== header.length) {
      throw bad("All lines must have same number of fields", {
        details: `Line ${recordLine} has ${fields.length} fields but the header (line ${headerLine}) has ${header.length}`,
      });
    } else rows.push(fields);
  }
  if (!header) throw bad("Empty CSV body", { hint: "The first line must name the columns: a,b,c" });
  return { columns: header, rows };
}
