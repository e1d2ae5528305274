/**
 * The schema JSON validator and the migration planner, as pure functions. The SQL they
 * produce is run against a real SQLite in test/e2e/migrate-ddl.test.ts.
 */
import { describe, expect, it } from "vitest";
import { planMigration, quoteIdent, sqliteType } from "../durable-objects/migrate.ts";
import { indexName } from "../durable-objects/migrate-ddl.ts";
import { HearthError } from "../shared/errors.ts";
import { COLUMN_TYPES, type ProjectSchema, parseProjectSchema } from "../shared/schema.ts";
import { DESIGN_SCHEMA } from "./fixtures/design-schema.ts";
import { expectError } from "./helpers/errors.ts";

// biome-ignore lint/suspicious/noExplicitAny: tests edit loosely typed JSON
type Json = any;

/** A deep copy of `base` after `edit`, parsed. */
function schema(edit: (s: Json) => void = () => {}, base: unknown = DESIGN_SCHEMA): ProjectSchema {
  const copy = structuredClone(base) as Json;
  edit(copy);
  return parseProjectSchema(copy);
}

const DESIGN = schema();

const invalid = (input: unknown, ...fragments: string[]) =>
  expectError(() => parseProjectSchema(input), "HEARTH_SCHEMA_INVALID", ...fragments);

function table(columns: Json, extra: Json = {}): Json {
  return { columns: { id: { type: "integer", primaryKey: true }, ...columns }, ...extra };
}

describe("parseProjectSchema", () => {
  it("accepts the DESIGN.md example", () => {
    expect(Object.keys(DESIGN.tables)).toEqual(["authors", "posts"]);
    expect(DESIGN.tables.posts?.policy).toEqual({ read: "public", write: "owner" });
  });

  it("accepts namespaced tables and explicit migrations", () => {
    const s = parseProjectSchema({
      tables: { "com.example.todos": table({ title: { type: "text" } }) },
      migrations: [{ op: "dropColumn", table: "com.example.todos", column: "done" }],
    });
    expect(s.migrations).toHaveLength(1);
  });

  it("names the table and column of every problem", () => {
    invalid(
      { tables: { posts: table({ title: { type: "string" } }) } },
      "tables.posts.columns.title.type",
      "one of",
    );
    invalid(
      { tables: { posts: { columns: { title: { type: "text" } } } } },
      "tables.posts.columns",
      "primary key",
    );
    invalid(
      { tables: { posts: table({ n: { type: "integer", default: "x" } }) } },
      "posts.columns.n.default",
      "integer",
    );
    invalid(
      { tables: { posts: table({ n: { type: "integer", default: 1.5 } }) } },
      "posts.columns.n.default",
    );
    invalid(
      { tables: { posts: table({ at: { type: "timestamp", default: "random" } }) } },
      "posts.columns.at.default",
    );
    invalid(
      { tables: { posts: table({ ok: { type: "boolean", default: 1 } }) } },
      "posts.columns.ok.default",
    );
    invalid(
      { tables: { posts: table({ n: { type: "integer", default: "increment" } }) } },
      "posts.columns.n.default",
      "increment",
    );
    invalid(
      { tables: { posts: table({ a: { type: "text", references: "people.id" } }) } },
      "posts.columns.a.references",
      'unknown table "people"',
    );
    invalid(
      { tables: { a: table({}), posts: table({ a: { type: "integer", references: "a.nope" } }) } },
      "posts.columns.a.references",
      'unknown column "nope"',
    );
    invalid(
      { tables: { a: table({}), posts: table({ a: { type: "text", references: "a.id" } }) } },
      "posts.columns.a.references",
      "does not match",
    );
    invalid(
      { tables: { posts: table({ a: { type: "integer", references: "posts" } }) } },
      "posts.columns.a.references",
    );
    invalid(
      { tables: { posts: table({ a: { type: "integer", onDelete: "cascade" } }) } },
      "posts.columns.a.onDelete",
    );
    invalid(
      { tables: { posts: table({ title: { type: "text", colour: "red" } }) } },
      "tables.posts.columns.title",
      "colour",
    );
    invalid({ tables: { posts: table({}, { owner: "me" }) } }, "tables.posts", "owner");
    invalid({ tables: {}, extra: 1 }, "extra");
    invalid(
      { tables: { posts: table({ t: { type: "text" } }, { indexes: [["nope"]] }) } },
      "posts.indexes.0",
      '"nope"',
    );
    invalid(
      { tables: { posts: table({ t: { type: "text" } }, { indexes: [["t", "t"]] }) } },
      "posts.indexes.0",
      "twice",
    );
    invalid(
      { tables: { posts: { columns: { id: { type: "text", primaryKey: true, encrypted: true } } } } },
      "posts.columns.id.encrypted",
    );
    invalid(
      { tables: { posts: { columns: { id: { type: "json", primaryKey: true } } } } },
      "posts.columns.id.primaryKey",
    );
    invalid(
      { tables: { posts: table({ n: { type: "integer", encrypted: true } }) } },
      "posts.columns.n.encrypted",
    );
    invalid({ tables: { posts: table({ owner_id: { type: "integer" } }) } }, "posts.columns.owner_id");
    invalid({ tables: { posts: table({}, { policy: { read: "everyone" } }) } }, "posts.policy.read");
  });

  it("refuses bad and reserved names", () => {
    invalid({ tables: { "my posts": table({}) } }, "tables.my posts", "table name");
    invalid({ tables: { "1posts": table({}) } }, "tables.1posts");
    invalid({ tables: { "com..todos": table({}) } }, "tables.com..todos");
    invalid({ tables: { _hearth_wal: table({}) } }, "tables._hearth_wal");
    invalid({ tables: { sqlite_master: table({}) } }, "tables.sqlite_master", "reserved");
    invalid(
      { tables: { posts: table({ _secret: { type: "text" } }) } },
      "posts.columns._secret",
      "column name",
    );
    invalid(
      { tables: { posts: table({ sqlite_x: { type: "text" } }) } },
      "posts.columns.sqlite_x",
      "reserved",
    );
    invalid({ tables: { posts: table({ 'a"b': { type: "text" } }) } }, 'posts.columns.a"b');
    invalid({ tables: { posts: table({}), Posts: table({}) } }, "tables.Posts", "case-insensitive");
    invalid(
      { tables: { posts: table({ Title: { type: "text" }, title: { type: "text" } }) } },
      "posts.columns.title",
    );
    invalid(
      { tables: { posts: table({ Owner_Id: { type: "text" } }) } },
      "posts.columns.Owner_Id",
      "owner_id",
    );
  });

  it("lists every problem in details", () => {
    const err = invalid(
      { tables: { posts: table({ a: { type: "nope" }, b: { type: "nope" } }) } },
      "2 problems",
      "posts.columns.a.type",
      "posts.columns.b.type",
    );
    expect(err.status).toBe(400);
  });
});

describe("quoteIdent and sqliteType", () => {
  it("double-quotes identifiers and refuses NUL", () => {
    expect(quoteIdent("com.example.todos")).toBe('"com.example.todos"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(() => quoteIdent("a\0b")).toThrow(HearthError);
  });

  it("maps every column type", () => {
    const mapped = Object.fromEntries(COLUMN_TYPES.map((t) => [t, sqliteType(t)]));
    expect(mapped).toEqual({
      text: "TEXT",
      integer: "INTEGER",
      bigint: "INTEGER",
      float: "REAL",
      boolean: "INTEGER",
      timestamp: "TEXT",
      date: "TEXT",
      uuid: "TEXT",
      json: "TEXT",
      bytes: "BLOB",
      vector: "BLOB",
    });
  });

  it("names indexes deterministically, hashing ambiguous or long names", () => {
    expect(indexName("posts", ["a", "b"], "idx")).toBe("posts__a__b_idx");
    const hashed = indexName("a__b", ["c"], "idx");
    expect(hashed).toMatch(/^a__b___[0-9a-f]{8}_idx$/);
    expect(indexName("a__b", ["c"], "idx")).toBe(hashed);
    expect(indexName("a", ["b__c"], "idx")).not.toBe(hashed);
    expect(indexName("t", ["c".repeat(63), "d".repeat(63)], "idx").length).toBeLessThan(70);
  });
});

describe("planMigration: additive", () => {
  it("creates everything from nothing, referenced tables first", () => {
    const plan = planMigration(null, DESIGN);
    expect(plan.statements).toEqual([
      'CREATE TABLE "authors" ("id" TEXT NOT NULL, "name" TEXT NOT NULL, PRIMARY KEY ("id")) STRICT',
      'CREATE TABLE "posts" ("id" INTEGER PRIMARY KEY AUTOINCREMENT, "author_id" TEXT REFERENCES "authors"("id"), ' +
        '"title" TEXT NOT NULL, "body" TEXT, "score" REAL, "published" INTEGER, "meta" TEXT, "created_at" TEXT, ' +
        '"owner_id" TEXT) STRICT',
      'CREATE INDEX IF NOT EXISTS "posts__author_id_idx" ON "posts" ("author_id")',
      'CREATE INDEX IF NOT EXISTS "posts__created_at_idx" ON "posts" ("created_at")',
      'CREATE INDEX IF NOT EXISTS "posts__owner_id_idx" ON "posts" ("owner_id")',
    ]);
    expect(plan.summary).toEqual(["create table authors", "create table posts"]);
    expect(plan.steps).toEqual([
      { op: "createTable", table: "authors" },
      { op: "createTable", table: "posts" },
    ]);
  });

  it("orders new tables by their foreign keys and refuses a cycle", () => {
    const s = schema((x) => {
      x.tables = {
        c: table({ b: { type: "integer", references: "b.id" } }),
        b: table({ a: { type: "integer", references: "a.id" }, me: { type: "integer", references: "b.id" } }),
        a: table({}),
      };
    });
    expect(planMigration(null, s).summary).toEqual(["create table a", "create table b", "create table c"]);
    const cyclic = schema((x) => {
      x.tables = {
        a: table({ b: { type: "integer", references: "b.id" } }),
        b: table({ a: { type: "integer", references: "a.id" } }),
      };
    });
    expectError(() => planMigration(null, cyclic), "HEARTH_SCHEMA_INVALID", "a, b", "cycle");
  });

  it("adds a nullable column, a table and an index", () => {
    const next = schema((x) => {
      x.tables.posts.columns.rating = { type: "float" };
      x.tables.posts.indexes.push(["title", "rating"]);
      x.tables.tags = table({ post_id: { type: "bigint", references: "posts.id", onDelete: "cascade" } });
    });
    const plan = planMigration(DESIGN, next);
    expect(plan.statements).toEqual([
      'CREATE TABLE "tags" ("id" INTEGER NOT NULL, "post_id" INTEGER REFERENCES "posts"("id") ON DELETE CASCADE, PRIMARY KEY ("id")) STRICT',
      'ALTER TABLE "posts" ADD COLUMN "rating" REAL',
      'CREATE INDEX IF NOT EXISTS "posts__title__rating_idx" ON "posts" ("title", "rating")',
    ]);
    expect(plan.summary).toEqual([
      "create table tags",
      "add column posts.rating float",
      "create index on posts(title, rating)",
    ]);
  });

  it("writes a literal DEFAULT only for a new notNull column", () => {
    const next = schema((x) => {
      Object.assign(x.tables.posts.columns, {
        s: { type: "text", notNull: true, default: "it's" },
        n: { type: "integer", notNull: true, default: -3 },
        f: { type: "float", notNull: true, default: 0.5 },
        b: { type: "boolean", notNull: true, default: true },
        j: { type: "json", notNull: true, default: { k: "v'" } },
        u: { type: "text", unique: true },
      });
    });
    expect(planMigration(DESIGN, next).statements).toEqual([
      `ALTER TABLE "posts" ADD COLUMN "s" TEXT NOT NULL DEFAULT 'it''s'`,
      `ALTER TABLE "posts" ADD COLUMN "n" INTEGER NOT NULL DEFAULT -3`,
      `ALTER TABLE "posts" ADD COLUMN "f" REAL NOT NULL DEFAULT 0.5`,
      `ALTER TABLE "posts" ADD COLUMN "b" INTEGER NOT NULL DEFAULT 1`,
      `ALTER TABLE "posts" ADD COLUMN "j" TEXT NOT NULL DEFAULT '{"k":"v''"}'`,
      `ALTER TABLE "posts" ADD COLUMN "u" TEXT`,
      `CREATE UNIQUE INDEX IF NOT EXISTS "posts__u_key" ON "posts" ("u")`,
    ]);
    // Defaults of new tables are applied by the DO, never in DDL.
    expect(planMigration(null, DESIGN).statements.join(" ")).not.toContain("DEFAULT");
  });

  it("refuses a new notNull column the existing rows cannot fill", () => {
    const add = (col: Json) => schema((x) => Object.assign(x.tables.posts.columns, { extra: col }));
    expectError(
      () => planMigration(DESIGN, add({ type: "text", notNull: true })),
      "HEARTH_SCHEMA_INVALID",
      "posts.extra",
      "default",
    );
    expectError(
      () => planMigration(DESIGN, add({ type: "timestamp", notNull: true, default: "now" })),
      "HEARTH_SCHEMA_INVALID",
      "posts.extra",
      '"now"',
    );
    expectError(
      () =>
        planMigration(DESIGN, add({ type: "uuid", notNull: true, default: "x", references: "authors.id" })),
      "HEARTH_SCHEMA_INVALID",
      "posts.extra",
      "nullable",
    );
  });

  it("changes policies and descriptions without DDL", () => {
    const next = schema((x) => {
      x.tables.authors.description = "people";
      x.tables.authors.columns.name.description = "full name";
      x.tables.authors.policy = { read: "public" };
    });
    const plan = planMigration(DESIGN, next);
    expect(plan.statements).toEqual([]);
    expect(plan.steps).toEqual([{ op: "setPolicy", table: "authors", read: "public", write: "members" }]);
    expect(plan.summary).toEqual([
      "update column authors.name (description)",
      "set policy of authors: read public, write members",
      "update description of authors",
    ]);
  });

  it("is a no-op when nothing changed, even with the same migrations sent again", () => {
    expect(planMigration(DESIGN, DESIGN)).toEqual({ steps: [], statements: [], summary: [] });
    const dropped = schema((x) => {
      delete x.tables.posts.columns.body;
      x.migrations = [{ op: "dropColumn", table: "posts", column: "body" }];
    });
    expect(planMigration(dropped, dropped).statements).toEqual([]);
  });
});

describe("planMigration: owner_id", () => {
  const notes = { tables: { notes: table({ t: { type: "text" } }) } };

  it("adds owner_id and its index when an owner policy is added", () => {
    const next = schema((x) => {
      x.tables.notes.policy = { read: "owner" };
    }, notes);
    const plan = planMigration(
      schema(() => {}, notes),
      next,
    );
    expect(plan.statements).toEqual([
      'ALTER TABLE "notes" ADD COLUMN "owner_id" TEXT',
      'CREATE INDEX IF NOT EXISTS "notes__owner_id_idx" ON "notes" ("owner_id")',
    ]);
    expect(plan.steps[0]).toEqual({
      op: "addColumn",
      table: "notes",
      column: "owner_id",
      type: "text",
      managed: true,
    });
  });

  it("uses a declared owner_id and keeps it when the policy goes", () => {
    const declared = schema((x) => {
      x.tables.notes.columns.owner_id = { type: "uuid" };
      x.tables.notes.policy = { write: "owner" };
    }, notes);
    expect(planMigration(null, declared).statements[0]).toContain('"owner_id" TEXT');
    const off = schema((x) => {
      x.tables.notes.columns.owner_id = { type: "uuid" };
    }, notes);
    expect(planMigration(declared, off).statements).toEqual([]);
  });

  it("refuses to drop a server-managed owner_id silently", () => {
    const owned = schema((x) => {
      x.tables.notes.policy = { write: "owner" };
    }, notes);
    const plain = schema(() => {}, notes);
    expectError(() => planMigration(owned, plain), "HEARTH_SCHEMA_DESTRUCTIVE", "notes.owner_id", "declare");
    const dropping = schema((x) => {
      x.migrations = [{ op: "dropColumn", table: "notes", column: "owner_id" }];
    }, notes);
    expect(planMigration(owned, dropping).statements).toEqual([
      'DROP INDEX IF EXISTS "notes__owner_id_idx"',
      'ALTER TABLE "notes" DROP COLUMN "owner_id"',
    ]);
  });
});

describe("planMigration: destructive changes", () => {
  const refused = (next: ProjectSchema, ...fragments: string[]) =>
    expectError(() => planMigration(DESIGN, next), "HEARTH_SCHEMA_DESTRUCTIVE", ...fragments);

  it("refuses each destructive change with a hint showing the step", () => {
    let err = refused(
      schema((x) => {
        delete x.tables.posts.columns.body;
      }),
      "column posts.body would be dropped",
    );
    expect(err.hint).toBe(
      'add an explicit step to "migrations", e.g. {"op":"dropColumn","table":"posts","column":"body"}',
    );
    expect(err.status).toBe(409);
    err = refused(
      schema((x) => {
        x.tables = { authors: x.tables.authors };
      }),
      "table posts would be dropped",
    );
    expect(err.hint).toContain('{"op":"dropTable","table":"posts"}');
    err = refused(
      schema((x) => {
        x.tables.posts.columns.score.type = "integer";
      }),
      "posts.score",
      "float → integer",
    );
    expect(err.hint).toContain('{"op":"retypeColumn","table":"posts","column":"score","type":"integer"}');
    refused(
      schema((x) => {
        x.tables.posts.columns.body.notNull = true;
      }),
      "posts.body",
      "notNull",
    );
    refused(
      schema((x) => {
        x.tables.authors.columns.key = { type: "uuid", unique: true };
        x.tables.posts.columns.author_id.references = "authors.key";
      }),
      "posts.author_id",
      "references authors.key instead of authors.id",
    );
    err = refused(
      schema((x) => {
        x.tables.posts.indexes = [["created_at"]];
      }),
      "index on posts(author_id)",
    );
    expect(err.hint).toContain('{"op":"dropIndex","table":"posts","columns":["author_id"]}');
  });

  it("refuses primary key changes even with a step", () => {
    refused(
      schema((x) => {
        x.tables.authors.columns.name.primaryKey = true;
      }),
      "primary key of table authors",
      "(id) to (id, name)",
    );
    refused(
      schema((x) => {
        delete x.tables.posts.columns.id.default;
      }),
      "primary key of table posts",
      "increment",
    );
    const plain = schema(() => {}, { tables: { t: table({}) } });
    const retyped = schema(
      (x) => {
        x.tables.t.columns.id.type = "text";
        x.migrations = [{ op: "retypeColumn", table: "t", column: "id", type: "text" }];
      },
      { tables: { t: table({}) } },
    );
    const err = expectError(
      () => planMigration(plain, retyped),
      "HEARTH_SCHEMA_DESTRUCTIVE",
      "primary-key column t.id cannot be retyped (integer → text)",
    );
    expect(err.hint).toContain("cannot change in place");
  });

  it("refuses to drop a column still in an index unless the index goes too", () => {
    refused(
      schema((x) => {
        delete x.tables.posts.columns.created_at;
        x.tables.posts.indexes = [["author_id"]];
        x.migrations = [{ op: "dropColumn", table: "posts", column: "created_at" }];
      }),
      "index on posts(created_at)",
      "before column posts.created_at",
    );
  });

  it("lists every refused change in details", () => {
    const err = refused(
      schema((x) => {
        delete x.tables.posts.columns.body;
        delete x.tables.posts.columns.meta;
      }),
      "2 changes",
      "posts.body",
      "posts.meta",
    );
    expect(err.details).toContain("posts.meta");
  });
});

describe("planMigration: explicit steps", () => {
  it("drops a column and an index", () => {
    const next = schema((x) => {
      delete x.tables.posts.columns.body;
      delete x.tables.posts.columns.created_at;
      x.tables.posts.indexes = [["author_id"]];
      x.migrations = [
        { op: "dropColumn", table: "posts", column: "body" },
        { op: "dropColumn", table: "posts", column: "created_at" },
        { op: "dropIndex", table: "posts", columns: ["created_at"] },
      ];
    });
    const plan = planMigration(DESIGN, next);
    expect(plan.statements).toEqual([
      'DROP INDEX IF EXISTS "posts__created_at_idx"',
      'ALTER TABLE "posts" DROP COLUMN "body"',
      'ALTER TABLE "posts" DROP COLUMN "created_at"',
    ]);
    expect(plan.summary).toEqual([
      "drop index on posts(created_at)",
      "drop column posts.body",
      "drop column posts.created_at",
    ]);
  });

  it("drops a table after rebuilding the child that referenced it", () => {
    const next = schema((x) => {
      x.tables.posts.columns.author_id = { type: "uuid" };
      delete x.tables.authors;
      delete x.tables.posts.columns.body;
      x.migrations = [
        { op: "dropTable", table: "authors" },
        { op: "dropColumn", table: "posts", column: "body" },
      ];
    });
    const plan = planMigration(DESIGN, next);
    const s = plan.statements;
    expect(s[0]).toBe("PRAGMA defer_foreign_keys = ON");
    expect(s.indexOf('ALTER TABLE "posts" RENAME TO "_hearth_tmp_0"')).toBeLessThan(
      s.indexOf('DROP TABLE "authors"'),
    );
    expect(s.at(-1)).toBe('DROP TABLE "authors"');
    // The rebuilt posts simply leaves body out: no separate DROP COLUMN.
    expect(s.join("\n")).not.toContain("DROP COLUMN");
    expect(s.find((x) => x.startsWith('CREATE TABLE "posts"'))).not.toContain('"body"');
    expect(plan.summary).toEqual([
      "rebuild table posts (author_id no longer references authors.id)",
      "drop table authors",
      "drop column posts.body",
    ]);
  });

  it("retypes by rebuilding the table, casting to TEXT and keeping the sequence", () => {
    const next = schema((x) => {
      x.tables.posts.columns.score.type = "text";
      x.migrations = [{ op: "retypeColumn", table: "posts", column: "score", type: "text" }];
    });
    const plan = planMigration(DESIGN, next);
    expect(plan.statements).toContain('ALTER TABLE "posts" RENAME TO "_hearth_tmp_0"');
    expect(plan.statements).toContain(
      "UPDATE sqlite_sequence SET name = 'posts' WHERE name = '_hearth_tmp_0'",
    );
    expect(plan.statements).toContain(
      'INSERT INTO "posts" ("id", "author_id", "title", "body", "score", "published", "meta", "created_at", "owner_id") ' +
        'SELECT "id", "author_id", "title", "body", CAST("score" AS TEXT), "published", "meta", "created_at", "owner_id" FROM "_hearth_tmp_0"',
    );
    expect(plan.statements).toContain('DROP TABLE "_hearth_tmp_0"');
    expect(plan.steps).toContainEqual({
      op: "retypeColumn",
      table: "posts",
      column: "score",
      from: "float",
      to: "text",
    });
  });

  it("rebuilds the children of a rebuilt table", () => {
    const next = schema((x) => {
      x.tables.authors.columns.name.notNull = false;
    });
    const plan = planMigration(DESIGN, next);
    expect(plan.summary).toEqual([
      "rebuild table authors (name no longer notNull)",
      "rebuild table posts (it references a rebuilt table)",
    ]);
  });

  it("needs no rebuild for a retype that keeps the storage class", () => {
    const next = schema((x) => {
      x.tables.posts.columns.body = { type: "uuid" };
      x.migrations = [{ op: "retypeColumn", table: "posts", column: "body", type: "uuid" }];
    });
    const plan = planMigration(DESIGN, next);
    expect(plan.statements).toEqual([]);
    expect(plan.summary).toEqual([
      "retype column posts.body text → uuid",
      "update column posts.body (encrypted)",
    ]);
  });

  it("refuses steps that contradict the new schema", () => {
    const bad = (migrations: unknown[], ...fragments: string[]) =>
      expectError(
        () =>
          planMigration(
            DESIGN,
            schema((x) => (x.migrations = migrations)),
          ),
        "HEARTH_SCHEMA_INVALID",
        ...fragments,
      );
    bad(
      [{ op: "dropColumn", table: "posts", column: "body" }],
      "migrations.0",
      "posts.body is still in the new schema",
    );
    bad([{ op: "dropTable", table: "posts" }], "migrations.0", "table posts is still");
    bad([{ op: "dropIndex", table: "posts", columns: ["author_id"] }], "posts(author_id) is still");
    bad(
      [{ op: "retypeColumn", table: "posts", column: "score", type: "integer" }],
      "says integer",
      "posts.score as float",
    );
    bad([{ op: "dropColumn", table: "posts" }], "migrations.0");
  });

  it("quotes a namespaced table everywhere", () => {
    const base = {
      tables: {
        "com.example.lists": { columns: { id: { type: "uuid", primaryKey: true } } },
        "com.example.todos": table(
          { list: { type: "uuid", references: "com.example.lists.id" } },
          { indexes: [["list"]] },
        ),
      },
    };
    const plan = planMigration(
      null,
      schema(() => {}, base),
    );
    expect(plan.statements).toEqual([
      'CREATE TABLE "com.example.lists" ("id" TEXT NOT NULL, PRIMARY KEY ("id")) STRICT',
      'CREATE TABLE "com.example.todos" ("id" INTEGER NOT NULL, "list" TEXT REFERENCES "com.example.lists"("id"), PRIMARY KEY ("id")) STRICT',
      'CREATE INDEX IF NOT EXISTS "com.example.todos__list_idx" ON "com.example.todos" ("list")',
    ]);
    const retyped = schema((x) => {
      x.tables["com.example.todos"].columns.n = { type: "integer" };
    }, base);
    expect(
      planMigration(
        schema(() => {}, base),
        retyped,
      ).statements,
    ).toEqual(['ALTER TABLE "com.example.todos" ADD COLUMN "n" INTEGER']);
  });

  it("refuses a table whose name is taken by an index", () => {
    const next = schema((x) => {
      x.tables.posts__author_id_idx = table({});
    });
    expectError(
      () => planMigration(DESIGN, next),
      "HEARTH_SCHEMA_INVALID",
      "posts__author_id_idx",
      "index on posts(author_id)",
    );
  });
});
