/**
 * Refuses a query that filters or orders on a column encrypted end-to-end, before it is sent:
 * the server only holds ciphertext (a fresh IV per value), so such a filter can never match
 * what the caller meant. Reads the query string postgrest-js built: plain filters
 * (`notes=eq.x`), logic trees (`or=(notes.eq.x,done.is.true)`, `not.and=(…)`) and `order`.
 * Filters on embedded tables (`author.name=…`) are checked against that table's name.
 */
import { assertNoEncryptedFilter, type EncryptionSchema } from "../crypto/rows.ts";

/** Query parameters that are not filters. */
const RESERVED = new Set(["select", "order", "limit", "offset", "on_conflict", "columns"]);
const LOGIC = /^(?:not\.)?(?:or|and)$/;
/** A column at the start of a condition inside a logic tree: `(notes.eq.x` or `,not.notes.is.null`. */
const TREE_COLUMN = /(?:^|[(,])\s*(?:not\.)?([^.,()\s]+)\.(?!(?:or|and)\()/g;

function treeColumns(value: string): string[] {
  const out: string[] = [];
  for (const m of value.matchAll(TREE_COLUMN)) {
    const name = m[1]!;
    if (name !== "or" && name !== "and" && name !== "not") out.push(name);
  }
  return out;
}

/** Throws `HEARTH_ENCRYPTED_FILTER` (a `HearthCryptoError`) for a filter or order on an encrypted column. */
export function checkEncryptedFilters(schema: EncryptionSchema, table: string, url: string): void {
  const params = new URL(url).searchParams;
  const byTable = new Map<string, string[]>();
  const add = (path: string, column: string) => {
    const list = byTable.get(path) ?? [];
    list.push(column);
    byTable.set(path, list);
  };
  for (const [key, value] of params) {
    if (RESERVED.has(key) && key !== "order") continue;
    // `author.name` filters the embedded `author`; `author.or` a tree on it.
    const dot = key.lastIndexOf(".");
    const last = key.slice(dot + 1);
    const prefix = dot > 0 && !LOGIC.test(key) ? key.slice(0, dot) : "";
    const logic = LOGIC.test(key) || LOGIC.test(last) || /\.not\.(?:or|and)$/.test(key);
    if (key === "order" || last === "order") {
      const embed = key === "order" ? "" : key.slice(0, dot);
      for (const term of value.split(",")) add(embed, term.split(".", 1)[0]!.trim());
    } else if (logic) {
      const embed = LOGIC.test(key) ? "" : key.slice(0, key.search(/\.(?:not\.)?(?:or|and)$/));
      for (const column of treeColumns(value)) add(embed, column);
    } else if (!RESERVED.has(last)) {
      add(prefix, prefix ? last : key);
    }
  }
  for (const [embed, columns] of byTable) {
    // An embed is named by its relation (or alias): only the top table is known for sure.
    assertNoEncryptedFilter(schema, embed === "" ? table : embed, columns);
  }
}
