import { describe, expect, it } from "vitest";
import { parseFilter, parseFilterParam, parseLogic } from "../shared/rest/parse-filter.ts";
import { parseAccept, parseAcceptMedia, parsePrefer, parseRange } from "../shared/rest/parse-headers.ts";
import { parseOrder } from "../shared/rest/parse-order.ts";
import { parseColumnList, parseQuery } from "../shared/rest/parse-query.ts";
import { parseSelect } from "../shared/rest/parse-select.ts";
import type { FieldRef, Filter, JsonPathStep, SelectItem } from "../shared/rest/plan.ts";
import { expectError } from "./helpers/errors.ts";

// ---------- helpers ----------

const col = (column: string): FieldRef => ({ column, path: [], asText: false });
const key = (k: string): JsonPathStep => ({ kind: "key", key: k });
const idx = (index: number): JsonPathStep => ({ kind: "index", index });
const json = (column: string, asText: boolean, ...path: JsonPathStep[]): FieldRef => ({
  column,
  path,
  asText,
});
const fld = (column: string, extra: Partial<Extract<SelectItem, { type: "field" }>> = {}): SelectItem => ({
  type: "field",
  field: col(column),
  ...extra,
});
const STAR: SelectItem = { type: "star" };

// ---------- select ----------

describe("parseSelect", () => {
  const cases: [string, SelectItem[]][] = [
    ["", [STAR]],
    ["   ", [STAR]],
    ["*", [STAR]],
    ["id,name", [fld("id"), fld("name")]],
    [" id ,  name ", [fld("id"), fld("name")]],
    ["*,id", [STAR, fld("id")]],
    ["n:name", [fld("name", { alias: "n" })]],
    ["id::text", [fld("id", { cast: "text" })]],
    ["n:id::text", [fld("id", { alias: "n", cast: "text" })]],
    ["t:ts::timestamp with time zone", [fld("ts", { alias: "t", cast: "timestamp with time zone" })]],
    ["ids::int[]", [fld("ids", { cast: "int[]" })]],
    ["first name", [fld("first name")]],
    ['"a,b"', [fld("a,b")]],
    ['"a.b:c(d)"', [fld("a.b:c(d)")]],
    ['"a\\"b"', [fld('a"b')]],
    ['"my alias":"my col"', [fld("my col", { alias: "my alias" })]],
    ["data->a->>b", [{ type: "field", field: json("data", true, key("a"), key("b")) }]],
    ["data->a->b", [{ type: "field", field: json("data", false, key("a"), key("b")) }]],
    ["data->0", [{ type: "field", field: json("data", false, idx(0)) }]],
    ["data->-1", [{ type: "field", field: json("data", false, idx(-1)) }]],
    ["data->>0", [{ type: "field", field: json("data", true, idx(0)) }]],
    ["data->0a", [{ type: "field", field: json("data", false, key("0a")) }]],
    ['data->"0"', [{ type: "field", field: json("data", false, key("0")) }]],
    ['data->"a,b"->>c', [{ type: "field", field: json("data", true, key("a,b"), key("c")) }]],
    ["my-col", [fld("my-col")]],
    ["x:data->a::int", [{ type: "field", field: json("data", false, key("a")), alias: "x", cast: "int" }]],
    ["count()", [{ type: "count" }]],
    ["n:count()", [{ type: "count", alias: "n" }]],
    ["count()::text", [{ type: "count", aggregateCast: "text" }]],
    ["amount.count()", [fld("amount", { aggregate: "count" })]],
    ["amount.sum()", [fld("amount", { aggregate: "sum" })]],
    [
      "amount.avg(),amount.min(),amount.max()",
      ["avg", "min", "max"].map((a) => fld("amount", { aggregate: a as "avg" })),
    ],
    [
      "total:amount.sum()::text",
      [fld("amount", { alias: "total", aggregate: "sum", aggregateCast: "text" })],
    ],
    ["amount::int.sum()", [fld("amount", { cast: "int", aggregate: "sum" })]],
    [
      "x->>k::int.sum()::text",
      [
        {
          type: "field",
          field: json("x", true, key("k")),
          cast: "int",
          aggregate: "sum",
          aggregateCast: "text",
        },
      ],
    ],
    ["posts(*)", [{ type: "embed", relation: "posts", inner: false, spread: false, select: [STAR] }]],
    ["posts()", [{ type: "embed", relation: "posts", inner: false, spread: false, select: [] }]],
    ["posts( )", [{ type: "embed", relation: "posts", inner: false, spread: false, select: [] }]],
    [
      "p:posts(id)",
      [{ type: "embed", relation: "posts", alias: "p", inner: false, spread: false, select: [fld("id")] }],
    ],
    [
      "posts!fk(id)",
      [{ type: "embed", relation: "posts", hint: "fk", inner: false, spread: false, select: [fld("id")] }],
    ],
    [
      "posts!inner(id)",
      [{ type: "embed", relation: "posts", inner: true, spread: false, select: [fld("id")] }],
    ],
    [
      "posts!left(id)",
      [{ type: "embed", relation: "posts", inner: false, spread: false, select: [fld("id")] }],
    ],
    [
      "a:posts!posts_author_fkey!inner(*)",
      [
        {
          type: "embed",
          relation: "posts",
          alias: "a",
          hint: "posts_author_fkey",
          inner: true,
          spread: false,
          select: [STAR],
        },
      ],
    ],
    ["client_id(*)", [{ type: "embed", relation: "client_id", inner: false, spread: false, select: [STAR] }]],
    [
      '"com.example.todos"(id)',
      [{ type: "embed", relation: "com.example.todos", inner: false, spread: false, select: [fld("id")] }],
    ],
    [
      "...client(name)",
      [{ type: "embed", relation: "client", inner: false, spread: true, select: [fld("name")] }],
    ],
    [
      "...client!fk!inner(name)",
      [{ type: "embed", relation: "client", hint: "fk", inner: true, spread: true, select: [fld("name")] }],
    ],
    [
      "name,projects(count)",
      [
        fld("name"),
        { type: "embed", relation: "projects", inner: false, spread: false, select: [fld("count")] },
      ],
    ],
    [
      "name,projects(count())",
      [
        fld("name"),
        { type: "embed", relation: "projects", inner: false, spread: false, select: [{ type: "count" }] },
      ],
    ],
    [
      "id, posts ( id , comments(text,author:users!inner(name)) )",
      [
        fld("id"),
        {
          type: "embed",
          relation: "posts",
          inner: false,
          spread: false,
          select: [
            fld("id"),
            {
              type: "embed",
              relation: "comments",
              inner: false,
              spread: false,
              select: [
                fld("text"),
                {
                  type: "embed",
                  relation: "users",
                  alias: "author",
                  inner: true,
                  spread: false,
                  select: [fld("name")],
                },
              ],
            },
          ],
        },
      ],
    ],
  ];
  it.each(cases)("select=%s", (input, expected) => {
    expect(parseSelect(input)).toEqual(expected);
  });

  const errors: [string, string][] = [
    ["a,(b", 'unexpected "("'],
    ["posts(id", 'expecting "," or ")"'],
    ["posts(id))", 'unexpected ")" at column 10 expecting "," or end of input'],
    ["a)", 'unexpected ")"'],
    ["a,,b", 'unexpected "," at column 3'],
    ["a,", "unexpected end of input"],
    [",a", 'unexpected ","'],
    [":a", 'unexpected ":"'],
    ["a:", "unexpected end of input"],
    ['""', "empty name"],
    ['"abc', "closing quote"],
    ["a::", "a type name after ::"],
    ["a.foo()", 'unexpected "foo"'],
    ["a.sum", '"()" after the aggregate sum'],
    ["a.sum()x", 'unexpected "x"'],
    ["a b(c", 'expecting "," or ")"'],
    ["rel!a!b(x)", "at most rel!hint!inner"],
    ["rel!inner!hint(x)", "at most rel!hint!inner"],
    ["rel!(x)", "a hint, inner or left after !"],
    ["rel!hint", '"(" to open the columns'],
    ["...rel", '"(" to open the columns'],
    ["...", "the name of the resource to spread"],
    ["data->", "a JSON key or array index"],
    ["data->>a->b", "->> must be the last arrow"],
    ["*x", 'unexpected "x"'],
    ['a"b"', "unexpected"],
    ["a::int::text", 'unexpected ":"'],
    [`${"a(".repeat(40)}b${")".repeat(40)}`, "levels of embedding"],
  ];
  it.each(errors)("select=%s → PGRST100", (input, fragment) => {
    const err = expectError(
      () => parseSelect(input),
      "PGRST100",
      "failed to parse select parameter",
      fragment,
    );
    expect(err.message).toBe(`failed to parse select parameter (${input})`);
    expect(err.status).toBe(400);
  });
});

// ---------- filters ----------

const F = (op: Filter["op"], value: string, extra: Partial<Filter> = {}, field = col("c")): Filter => ({
  type: "filter",
  field,
  op,
  negate: false,
  value,
  ...extra,
});

describe("parseFilter", () => {
  const cases: [string, string, Filter][] = [
    ["c", "eq.5", F("eq", "5")],
    ...(
      [
        "neq",
        "gt",
        "gte",
        "lt",
        "lte",
        "match",
        "imatch",
        "isdistinct",
        "cs",
        "cd",
        "ov",
        "sl",
        "sr",
        "nxr",
        "nxl",
        "adj",
      ] as const
    ).map((op): [string, string, Filter] => ["c", `${op}.v`, F(op, "v")]),
    ["c", "eq.", F("eq", "")],
    ["c", "eq.a,b", F("eq", "a,b")],
    ["c", 'eq."x"', F("eq", '"x"')],
    ["c", "eq.a\\b", F("eq", "a\\b")],
    ["c", "eq.(a)", F("eq", "(a)")],
    ["c", "eq. spaced ", F("eq", " spaced ")],
    ["c", "eq.a.b.c", F("eq", "a.b.c")],
    ["c", "not.eq.5", F("eq", "5", { negate: true })],
    ["c", "ilike.*smi*", F("ilike", "*smi*")],
    ["c", "like.a_b*", F("like", "a_b*")],
    ["c", "not.like.*x*", F("like", "*x*", { negate: true })],
    ["c", "match.^A", F("match", "^A")],
    ["c", "cs.{a,b}", F("cs", "{a,b}")],
    ["c", "adj.(3,10]", F("adj", "(3,10]")],
    ["c", 'cs.{"a":1}', F("cs", '{"a":1}')],
    ["c", "in.(1,2)", F("in", "(1,2)", { values: ["1", "2"] })],
    ["c", "not.in.(1,2)", F("in", "(1,2)", { negate: true, values: ["1", "2"] })],
    ["c", "in.()", F("in", "()", { values: [] })],
    ["c", "in.( )", F("in", "( )", { values: [] })],
    ["c", "not.in.()", F("in", "()", { negate: true, values: [] })],
    ["c", "in.( ,3)", F("in", "( ,3)", { values: ["", "3"] })],
    ["c", "in.(a, b)", F("in", "(a, b)", { values: ["a", " b"] })],
    ["c", "in.(a ,b )", F("in", "(a ,b )", { values: ["a ", "b "] })],
    ["c", 'in.("a,b",c)', F("in", '("a,b",c)', { values: ["a,b", "c"] })],
    [
      "c",
      'in.("a\\"b","c\\\\d","\\x")',
      F("in", '("a\\"b","c\\\\d","\\x")', { values: ['a"b', "c\\d", "x"] }),
    ],
    ["c", 'in.("(x)",")")', F("in", '("(x)",")")', { values: ["(x)", ")"] })],
    ["c", 'in.("a"b,c)', F("in", '("a"b,c)', { values: ['"a"b', "c"] })],
    ["c", 'in.("")', F("in", '("")', { values: [""] })],
    ["c", 'in.("a)', F("in", '("a)', { values: ['"a'] })],
    ["c", "in.(1 2,3)", F("in", "(1 2,3)", { values: ["1 2", "3"] })],
    ["c", "is.null", F("is", "null")],
    ["c", "is.NULL", F("is", "null")],
    ["c", "is.Not_Null", F("is", "not_null")],
    ["c", "not.is.null", F("is", "null", { negate: true })],
    ["c", "is.TRUE", F("is", "true")],
    ["c", "is.false", F("is", "false")],
    ["c", "is.Unknown", F("is", "unknown")],
    ["c", "fts.cat", F("fts", "cat")],
    ["c", "wfts(english).cat -dog", F("wfts", "cat -dog", { language: "english" })],
    ["c", "plfts(simple).a b", F("plfts", "a b", { language: "simple" })],
    ["c", "not.phfts(english).a b", F("phfts", "a b", { negate: true, language: "english" })],
    ["c", "like(any).{O*,P*}", F("like", "{O*,P*}", { quantifier: "any", values: ["O*", "P*"] })],
    ["c", "eq(all).{1, 2}", F("eq", "{1, 2}", { quantifier: "all", values: ["1", "2"] })],
    ["c", 'ilike(any).{"a,b",c}', F("ilike", '{"a,b",c}', { quantifier: "any", values: ["a,b", "c"] })],
    ["c", "gt(any).{}", F("gt", "{}", { quantifier: "any", values: [] })],
    ["data->a->>b", "eq.x", F("eq", "x", {}, json("data", true, key("a"), key("b")))],
    ["data->a", 'eq.{"b":2}', F("eq", '{"b":2}', {}, json("data", false, key("a")))],
    ["data->0", "eq.1", F("eq", "1", {}, json("data", false, idx(0)))],
    ['"my col"', "eq.1", F("eq", "1", {}, col("my col"))],
    ['"a.b"', "eq.1", F("eq", "1", {}, col("a.b"))],
    ['data->"a.b"', "eq.1", F("eq", "1", {}, json("data", false, key("a.b")))],
  ];
  it.each(cases)("%s=%s", (k, v, expected) => {
    expect(parseFilter(k, v)).toEqual(expected);
  });

  it("returns the embed path of dotted keys", () => {
    expect(parseFilterParam("posts.comments.id", "gt.1")).toEqual({
      path: ["posts", "comments"],
      filter: F("gt", "1", {}, col("id")),
    });
    expect(parseFilterParam('"my.rel".data->>k', "eq.1").path).toEqual(["my.rel"]);
  });

  it("a key without operator gives PostgREST's error", () => {
    const err = expectError(() => parseFilter("id", "5"), "PGRST100");
    expect(err.message).toBe("failed to parse filter (id=5)");
    expect(err.details).toBe('unexpected "5" expecting "not" or operator (eq, gt, ...)');
    expect(err.status).toBe(400);
  });

  const errors: [string, string, string][] = [
    ["id", "", 'unexpected end of input expecting "not" or operator'],
    ["id", "foo.5", 'unexpected "foo" expecting "not" or operator (eq, gt, ...)'],
    ["id", "EQ.5", 'unexpected "EQ"'],
    ["id", "eq", 'expecting "." and a value after eq'],
    ["id", "not.5", 'unexpected "5" at column 5 expecting operator'],
    ["id", "not.not.eq.5", 'unexpected "not"'],
    ["done", "is.maybe", 'unexpected "maybe" at column 4 expecting null, not_null or trilean value'],
    ["done", "is.nullx", 'unexpected "nullx"'],
    ["done", "is.", "unexpected"],
    ["id", "neq(any).{1}", 'unexpected "(any)" at column 4 expecting "." after neq (only eq, gt, gte, lt'],
    ["id", "in(any).{1}", "take (any)/(all)"],
    ["id", "eq(some).{1}", 'unexpected "(some)" at column 3 expecting (any) or (all)'],
    ["t", "fts().x", "a text search configuration"],
    ["t", "eq(english).x", 'unexpected "(english)"'],
    ["t", "fts(english.x", 'expecting ")"'],
    ["id", "in.1,2", 'unexpected "1" at column 4 expecting "(" (in takes a list'],
    ["id", "in.(1,2", 'expecting "," or ")" to close the list'],
    ["id", "in.(1,2)x", 'unexpected "x" at column 9 expecting end of input after the list'],
    ["data->a.b", "eq.1", 'quote JSON keys that contain "."'],
    ["", "eq.1", "a column name"],
    ["data->", "eq.1", "a JSON key or array index"],
    ["data->>a->b", "eq.1", "->> must be the last arrow"],
    ["a b(c)", "eq.1", 'unexpected "("'],
  ];
  it.each(errors)("%s=%s → PGRST100", (k, v, fragment) => {
    const err = expectError(() => parseFilter(k, v), "PGRST100", fragment);
    expect(err.message).toBe(`failed to parse filter (${k}=${v})`);
  });

  it("quantified values must be array literals (22P02, as PostgreSQL)", () => {
    expectError(
      () => parseFilter("n", "like(any).abc"),
      "22P02",
      "malformed array literal",
      'must start with "{"',
    );
    expectError(() => parseFilter("n", "eq(all).{1,2}x"), "22P02", "Junk after closing right brace");
    expectError(() => parseFilter("n", "eq(any).{1,{2}}"), "22P02", "Unexpected array element");
    expectError(() => parseFilter("n", "eq(any).{1,}"), "22P02", "Unexpected array element");
  });
});

// ---------- logic trees ----------

describe("parseLogic", () => {
  it("parses the nested example", () => {
    expect(parseLogic("or", '(a.eq.1,b.gt.2,and(c.lt.1,not.or(d.is.null,e.in.("x,y",z))))')).toEqual({
      type: "or",
      negate: false,
      children: [
        F("eq", "1", {}, col("a")),
        F("gt", "2", {}, col("b")),
        {
          type: "and",
          negate: false,
          children: [
            F("lt", "1", {}, col("c")),
            {
              type: "or",
              negate: true,
              children: [
                F("is", "null", {}, col("d")),
                F("in", '("x,y",z)', { values: ["x,y", "z"] }, col("e")),
              ],
            },
          ],
        },
      ],
    });
  });

  const single: [string, Filter][] = [
    ["(c.eq.1)", F("eq", "1")],
    ["(c.eq.)", F("eq", "")],
    ["(c.eq. 1)", F("eq", " 1")],
    ["(c.eq.1 )", F("eq", "1 ")],
    ['(c.eq."a,b")', F("eq", "a,b")],
    ['(c.eq."x\\"y\\\\z")', F("eq", 'x"y\\z')],
    ['(c.eq."(a)")', F("eq", "(a)")],
    ['(c.eq."x"y)', F("eq", '"x"y')],
    ["(c.eq.(a)", F("eq", "(a")],
    ["(c.cs.{1,2})", F("cs", "{1,2}")],
    ["(c.like(any).{a*,b*})", F("like", "{a*,b*}", { quantifier: "any", values: ["a*", "b*"] })],
    ["(c.not.eq.1)", F("eq", "1", { negate: true })],
    ["(c.is.NULL)", F("is", "null")],
    ["(c.in.())", F("in", "()", { values: [] })],
    ["(c.not.in.(1, 2))", F("in", "(1, 2)", { negate: true, values: ["1", " 2"] })],
    ["(c.fts(english).cat)", F("fts", "cat", { language: "english" })],
    ["(data->>k.eq.x)", F("eq", "x", {}, json("data", true, key("k")))],
    ['("my col".eq.1)', F("eq", "1", {}, col("my col"))],
    ["(rel.not.is.null)", F("is", "null", { negate: true }, col("rel"))],
    ["(not.eq.1)", F("eq", "1", {}, col("not"))],
    ["(and.eq.1)", F("eq", "1", {}, col("and"))],
  ];
  it.each(single)("or=%s", (value, expected) => {
    expect(parseLogic("or", value)).toEqual({ type: "or", negate: false, children: [expected] });
  });

  it("handles keys, spaces and negation", () => {
    expect(parseLogic("not.and", " ( a.eq.1 , b.eq.2)")).toEqual({
      type: "and",
      negate: true,
      children: [F("eq", "1 ", {}, col("a")), F("eq", "2", {}, col("b"))],
    });
    expect(parseLogic("and", "(or (a.eq.1),b.eq.2)").children[0]).toEqual({
      type: "or",
      negate: false,
      children: [F("eq", "1", {}, col("a"))],
    });
    expect(parseLogic("not.or", "(a.eq.1)").negate).toBe(true);
  });

  const errors: [string, string][] = [
    ["()", 'unexpected ")" at column 2 expecting a filter (col.op.value) or a nested and(...) / or(...)'],
    ["a.eq.1", 'unexpected "a" expecting "(" (a logic tree looks like'],
    ["", 'unexpected end of input expecting "("'],
    ["(a.eq.1", 'expecting "," or ")"'],
    ["(a.eq.1))", 'unexpected ")" at column 9 expecting end of input'],
    ["(a.eq.1,)", 'unexpected ")" at column 9'],
    ["(a.eq.1,,b.eq.2)", 'unexpected ","'],
    ["(a.foo.1)", 'unexpected "foo" at column 4 expecting "not" or operator'],
    ["(a)", '"." and an operator after the column'],
    ["(a.eq)", 'expecting "." and a value after eq'],
    ["(a.is.maybe)", 'unexpected "maybe"'],
    ["(a.in.1)", 'expecting "(" (in takes a list'],
    ["(and())", 'unexpected ")" at column 6'],
    ["(a.cs.{1,2}x)", 'unexpected "x"'],
    [`${"(and".repeat(40)}(a.eq.1${")".repeat(41)}`, "levels of nested and/or"],
  ];
  it.each(errors)("or=%s → PGRST100", (value, fragment) => {
    const err = expectError(() => parseLogic("or", value), "PGRST100", fragment);
    expect(err.message).toBe(`failed to parse logic tree (or=${value})`);
  });
});

// ---------- order ----------

describe("parseOrder", () => {
  it("parses every term form", () => {
    expect(parseOrder("a.desc.nullslast,b,data->>k.asc,client(name).desc")).toEqual([
      { field: col("a"), direction: "desc", nulls: "last" },
      { field: col("b"), direction: "asc" },
      { field: json("data", true, key("k")), direction: "asc" },
      { field: col("name"), relation: "client", direction: "desc" },
    ]);
  });
  const cases: [string, unknown][] = [
    ["a", [{ field: col("a"), direction: "asc" }]],
    ["a.asc.nullsfirst", [{ field: col("a"), direction: "asc", nulls: "first" }]],
    ["a.nullsfirst", [{ field: col("a"), direction: "asc", nulls: "first" }]],
    ['"my col".desc', [{ field: col("my col"), direction: "desc" }]],
    [
      " a , b.desc ",
      [
        { field: col("a"), direction: "asc" },
        { field: col("b"), direction: "desc" },
      ],
    ],
    ["client(data->0).asc", [{ field: json("data", false, idx(0)), relation: "client", direction: "asc" }]],
  ];
  it.each(cases)("order=%s", (value, expected) => {
    expect(parseOrder(value)).toEqual(expected);
  });
  const errors: [string, string][] = [
    ["a.up", 'unexpected "up" at column 3 expecting "asc", "desc", "nullsfirst" or "nullslast"'],
    ["a.desc.asc", 'unexpected "asc" at column 8 expecting "nullsfirst" or "nullslast"'],
    ["a.nullslast.desc", 'unexpected "desc" at column 13 expecting "," or end of input'],
    ["a..desc", "unexpected"],
    ["a,", "unexpected end of input"],
    ["", "unexpected end of input expecting a column name"],
    ["client(name", '")" to close relation(column)'],
    ["client()", "a column of the embedded resource"],
    ["a b(c)x", 'unexpected "x"'],
  ];
  it.each(errors)("order=%s → PGRST100", (value, fragment) => {
    const err = expectError(() => parseOrder(value), "PGRST100", fragment);
    expect(err.message).toBe(`failed to parse order (${value})`);
  });
});

// ---------- whole query ----------

const q = (qs: string) => parseQuery(new URLSearchParams(qs));

describe("parseQuery", () => {
  it("defaults", () => {
    expect(q("")).toEqual({ select: [STAR], where: [], order: [], embedded: {} });
  });

  it("walks select, filters, order, paging and embedded modifiers", () => {
    const plan = q(
      "select=id,posts(title,comments(id))&id=gt.1&id=lt.5&order=id.desc&limit=10&offset=20" +
        "&posts.title=eq.x&posts.order=id.desc&posts.limit=2&posts.offset=1&posts.or=(a.eq.1,b.eq.2)" +
        "&posts.comments.id=gt.1&posts.comments.limit=3&or=(id.eq.1,id.eq.2)&not.and=(id.gt.0)",
    );
    expect(plan.select).toHaveLength(2);
    expect(plan.where).toEqual([
      F("gt", "1", {}, col("id")),
      F("lt", "5", {}, col("id")),
      { type: "or", negate: false, children: [F("eq", "1", {}, col("id")), F("eq", "2", {}, col("id"))] },
      { type: "and", negate: true, children: [F("gt", "0", {}, col("id"))] },
    ]);
    expect(plan.order).toEqual([{ field: col("id"), direction: "desc" }]);
    expect(plan.limit).toBe(10);
    expect(plan.offset).toBe(20);
    expect(plan.embedded).toEqual({
      posts: {
        where: [
          F("eq", "x", {}, col("title")),
          { type: "or", negate: false, children: [F("eq", "1", {}, col("a")), F("eq", "2", {}, col("b"))] },
        ],
        order: [{ field: col("id"), direction: "desc" }],
        limit: 2,
        offset: 1,
      },
      "posts.comments": { where: [F("gt", "1", {}, col("id"))], order: [], limit: 3 },
    });
  });

  it("negated logic on embeds, quoted embed names, JSON filters", () => {
    const plan = q('posts.not.or=(a.eq.1)&"my.rel".limit=2&posts."a.b"=eq.1&data->a->>b=eq.x');
    expect(plan.embedded.posts?.where).toEqual([
      { type: "or", negate: true, children: [F("eq", "1", {}, col("a"))] },
      F("eq", "1", {}, col("a.b")),
    ]);
    expect(plan.embedded["my.rel"]).toEqual({ where: [], order: [], limit: 2 });
    expect(plan.where).toEqual([F("eq", "x", {}, json("data", true, key("a"), key("b")))]);
  });

  it("URL decoding happens before parsing (+ is a space, %2C a comma)", () => {
    expect(q("name=eq.a%2Cb").where).toEqual([F("eq", "a,b", {}, col("name"))]);
    expect(q("t=wfts(english).cat+-dog").where).toEqual([
      F("wfts", "cat -dog", { language: "english" }, col("t")),
    ]);
    expect(q("select=id,%20name").select).toEqual([fld("id"), fld("name")]);
  });

  it("paging rules", () => {
    expect(q("limit=abc&offset=-1")).toEqual({ select: [STAR], where: [], order: [], embedded: {} });
    expect(q("limit=1.5").limit).toBeUndefined();
    expect(q("limit=0").limit).toBe(0);
    expect(q("offset=0").offset).toBe(0);
    expect(q("limit=5&limit=7").limit).toBe(7);
    const err = expectError(
      () => q("limit=-1"),
      "PGRST103",
      "Requested range not satisfiable",
      "Limit should be",
    );
    expect(err.status).toBe(416);
    expectError(() => q("posts.limit=-1"), "PGRST103");
    expect(q("posts.limit=x&posts.offset=-2").embedded).toEqual({});
  });

  it("select: first wins; empty means *", () => {
    expect(q("select=a&select=b").select).toEqual([fld("a")]);
    expect(q("select=").select).toEqual([STAR]);
  });

  it("columns and on_conflict", () => {
    expect(q('columns="a","b c"&on_conflict=x, y')).toMatchObject({
      columns: ["a", "b c"],
      onConflict: ["x", "y"],
    });
    expect(parseColumnList("a,b")).toEqual(["a", "b"]);
    expectError(
      () => q("columns="),
      "PGRST100",
      "failed to parse columns parameter (columns=)",
      "end of input",
    );
    expectError(() => q("columns=a,,b"), "PGRST100", 'unexpected ","');
    expectError(() => q("on_conflict="), "PGRST100", "on_conflict");
  });

  const errors: [string, string][] = [
    ["id=5", 'unexpected "5" expecting "not" or operator (eq, gt, ...)'],
    ["data->a.b=eq.1", 'quote JSON keys that contain "."'],
    [".limit=1", "the name of an embedded resource"],
    ["data->a.limit=1", "embedded resource path"],
    ["or=()", "failed to parse logic tree (or=())"],
    ["posts.or=(a.eq.1", "failed to parse logic tree (or=(a.eq.1)"],
    ["order=a.up", "failed to parse order (a.up)"],
    ["posts.order=x.y", "failed to parse order (x.y)"],
    ["select=a(", "failed to parse select parameter (a()"],
    ["apikey=abc", "failed to parse filter (apikey=abc)"],
  ];
  it.each(errors)("?%s → PGRST100", (qs, fragment) => {
    expectError(() => q(qs), "PGRST100", fragment);
  });
});

// ---------- headers ----------

describe("parsePrefer", () => {
  it("merges headers and lists; first value per category wins", () => {
    expect(parsePrefer(["return=representation, count=exact", "return=minimal,count=planned"])).toEqual({
      return: "representation",
      count: "exact",
      invalid: [],
    });
  });
  it("reads every preference", () => {
    expect(
      parsePrefer([
        "resolution=merge-duplicates,missing=default,handling=strict,max-affected=5,tx=rollback,timezone=America/Los_Angeles",
        "return=headers-only",
      ]),
    ).toEqual({
      resolution: "merge-duplicates",
      missing: "default",
      handling: "strict",
      maxAffected: 5,
      tx: "rollback",
      timezone: "America/Los_Angeles",
      return: "headers-only",
      invalid: [],
    });
    expect(
      parsePrefer(["count=estimated , resolution=ignore-duplicates,handling=lenient,tx=commit"]),
    ).toEqual({
      count: "estimated",
      resolution: "ignore-duplicates",
      handling: "lenient",
      tx: "commit",
      invalid: [],
    });
  });
  it("collects unknown preferences", () => {
    expect(parsePrefer(["foo, return=all,max-affected=x", "params=single-object,timezone=", ""])).toEqual({
      invalid: ["foo", "return=all", "max-affected=x", "params=single-object", "timezone="],
    });
    expect(parsePrefer([])).toEqual({ invalid: [] });
  });
});

describe("parseRange", () => {
  const cases: [string | null, unknown][] = [
    [null, null],
    ["0-9", { offset: 0, limit: 10 }],
    ["10-", { offset: 10 }],
    ["5-5", { offset: 5, limit: 1 }],
    [" 0-24 ", { offset: 0, limit: 25 }],
    ["items=0-9", null],
    ["abc", null],
    ["-5", null],
    ["", null],
  ];
  it.each(cases)("Range: %s", (header, expected) => {
    expect(parseRange(header)).toEqual(expected);
  });
  it("1-0 is 416 PGRST103", () => {
    const err = expectError(
      () => parseRange("1-0"),
      "PGRST103",
      "Requested range not satisfiable",
      "lower boundary",
    );
    expect(err.status).toBe(416);
  });
});

describe("parseAccept", () => {
  const cases: [string | null, ReturnType<typeof parseAccept>][] = [
    [null, "json"],
    ["", "json"],
    ["*/*", "json"],
    ["application/json", "json"],
    ["APPLICATION/JSON; charset=utf-8", "json"],
    ["application/vnd.pgrst.object+json", "object"],
    ["application/vnd.pgrst.object", "object"],
    ["application/vnd.pgrst.object;nulls=stripped", "object"],
    ["application/vnd.pgrst.array+json;nulls=stripped", "json"],
    ["text/csv", "csv"],
    ["application/openapi+json", "openapi"],
    ["text/x", null],
    ["text/html, */*;q=0.8", "json"],
    ["text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "json"],
    ["text/csv;q=0.5, application/json", "json"],
    ["application/json;q=0.5, text/csv", "csv"],
    ["text/html, text/csv", "csv"],
    ["text/csv;q=0", null],
    ["text/csv;q=0, */*;q=0.1", "json"],
  ];
  it.each(cases)("Accept: %s", (header, expected) => {
    expect(parseAccept(header)).toBe(expected);
  });
  it("reports nulls=stripped", () => {
    expect(parseAcceptMedia("application/vnd.pgrst.object+json; nulls=stripped")).toEqual({
      format: "object",
      nullsStripped: true,
    });
    expect(parseAcceptMedia("application/json;nulls=stripped")).toEqual({
      format: "json",
      nullsStripped: false,
    });
  });
});
