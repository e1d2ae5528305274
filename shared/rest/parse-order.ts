/**
 * `order=` parser: `a.desc.nullslast,b,data->>k.asc,client(name).desc`.
 * Each term is a column (with an optional JSON path) or `relation(column)` for an embedded
 * to-one resource, then optionally `.asc`/`.desc`, then optionally `.nullsfirst`/`.nullslast`.
 */

import { Scanner } from "./parse-select.ts";
import type { OrderTerm } from "./plan.ts";

export function parseOrder(value: string): OrderTerm[] {
  const s = new Scanner(value, "order");
  const terms: OrderTerm[] = [];
  do {
    terms.push(parseTerm(s));
    s.spaces();
  } while (s.eat(","));
  if (!s.done) s.fail('"," or end of input');
  return terms;
}

function parseTerm(s: Scanner): OrderTerm {
  const first = s.requireName("a column name");
  let term: OrderTerm;
  if (s.at("(")) {
    s.pos++;
    const field = s.field("a column of the embedded resource");
    s.spaces();
    s.expect(")", '")" to close relation(column)');
    term = { field, relation: first.text, direction: "asc" };
  } else {
    term = { field: s.jsonPath(first.text), direction: "asc" };
  }
  let directionSeen = false;
  while (s.at(".")) {
    s.pos++;
    const start = s.pos;
    const word = s.name();
    const text = word !== null && !word.quoted ? word.text : "";
    if (!directionSeen && term.nulls === undefined && (text === "asc" || text === "desc")) {
      term.direction = text;
      directionSeen = true;
    } else if (term.nulls === undefined && (text === "nullsfirst" || text === "nullslast")) {
      term.nulls = text === "nullsfirst" ? "first" : "last";
    } else {
      const expecting =
        term.nulls !== undefined
          ? '"," or end of input'
          : directionSeen
            ? '"nullsfirst" or "nullslast"'
            : '"asc", "desc", "nullsfirst" or "nullslast"';
      s.fail(expecting, word === null ? undefined : JSON.stringify(word.text), start);
    }
  }
  return term;
}
