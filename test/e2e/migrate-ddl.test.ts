/**
 * Runs the SQL that planMigration generates on a real SQLite (better-sqlite3, in Node: the
 * workerd test pool has no native modules). Foreign keys are on and every plan runs in one
 * transaction, as in the Durable Object, where foreign key enforcement cannot be turned off.
 */
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { type MigrationPlan, planMigration } from "../../durable-objects/migrate.ts";
import { HearthError } from "../../shared/errors.ts";
import { type ProjectSchema, parseProjectSchema } from "../../shared/schema.ts";
import { DESIGN_SCHEMA } from "../fixtures/design-schema.ts";

type Row = Record<string, unknown>;
interface Db {
  exec(sql: string): void;
  prepare(sql: string): {
    all(...p: unknown[]): Row[];
    get(...p: unknown[]): Row | undefined;
    run(...p: unknown[]): unknown;
  };
  pragma(s: string): unknown;
  transaction(fn: () => void): () => void;
}

/** A database plus the schema it was migrated to, like one project's DO. */
class Store {
  readonly db: Db = new (Database as unknown as new (f: string) => Db)(":memory:");
  schema: ProjectSchema | null = null;
  constructor() {
    this.db.pragma("foreign_keys = ON");
  }
  migrate(input: unknown): MigrationPlan {
    const next = parseProjectSchema(input);
    const plan = planMigration(this.schema, next);
    this.db.transaction(() => {
      for (const s of plan.statements) this.db.exec(s);
    })();
    expect(this.db.prepare("PRAGMA foreign_key_check").all()).toEqual([]);
    expect(this.db.prepare("PRAGMA integrity_check").get()).toEqual({ integrity_check: "ok" });
    this.schema = next;
    return plan;
  }
  columns(table: string): { name: string; type: string; notnull: number; pk: number }[] {
    return this.db.prepare('SELECT name, type, "notnull", pk FROM pragma_table_info(?)').all(table) as {
      name: string;
      type: string;
      notnull: number;
      pk: number;
    }[];
  }
  indexes(table: string): string[] {
    return (
      this.db.prepare("SELECT name FROM pragma_index_list(?) WHERE origin = 'c'").all(table) as {
        name: string;
      }[]
    )
      .map((r) => r.name)
      .sort();
  }
  rows(sql: string, ...params: unknown[]): Row[] {
    return this.db.prepare(sql).all(...params);
  }
  run(sql: string, ...params: unknown[]): void {
    this.db.prepare(sql).run(...params);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: tests edit loosely typed JSON
type Json = any;

/** DESIGN_SCHEMA with changes applied to a deep copy. */
function withChanges(edit: (s: Json) => void): unknown {
  const copy = structuredClone(DESIGN_SCHEMA) as Json;
  edit(copy);
  return copy;
}

function seeded(): Store {
  const s = new Store();
  s.migrate(DESIGN_SCHEMA);
  s.run("INSERT INTO authors (id, name) VALUES ('a1', 'Ada'), ('a2', 'Bob')");
  s.run(
    "INSERT INTO posts (author_id, title, score, published, owner_id) VALUES ('a1', 'one', 3.0, 1, 'u1')",
  );
  s.run(
    "INSERT INTO posts (author_id, title, score, published) VALUES ('a1', 'two', 4.5, 0), ('a2', 'three', NULL, 0)",
  );
  return s;
}

function expectCode(fn: () => unknown, code: string): HearthError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(HearthError);
    expect((e as HearthError).code).toBe(code);
    return e as HearthError;
  }
  throw new Error(`expected ${code}`);
}

describe("create from nothing", () => {
  it("creates the DESIGN.md schema with types, keys, owner_id and indexes", () => {
    const s = new Store();
    s.migrate(DESIGN_SCHEMA);
    expect(s.columns("posts")).toEqual([
      { name: "id", type: "INTEGER", notnull: 0, pk: 1 },
      { name: "author_id", type: "TEXT", notnull: 0, pk: 0 },
      { name: "title", type: "TEXT", notnull: 1, pk: 0 },
      { name: "body", type: "TEXT", notnull: 0, pk: 0 },
      { name: "score", type: "REAL", notnull: 0, pk: 0 },
      { name: "published", type: "INTEGER", notnull: 0, pk: 0 },
      { name: "meta", type: "TEXT", notnull: 0, pk: 0 },
      { name: "created_at", type: "TEXT", notnull: 0, pk: 0 },
      { name: "owner_id", type: "TEXT", notnull: 0, pk: 0 },
    ]);
    expect(s.columns("authors")).toEqual([
      { name: "id", type: "TEXT", notnull: 1, pk: 1 },
      { name: "name", type: "TEXT", notnull: 1, pk: 0 },
    ]);
    expect(s.indexes("posts")).toEqual([
      "posts__author_id_idx",
      "posts__created_at_idx",
      "posts__owner_id_idx",
    ]);
    const sql = String(s.rows("SELECT sql FROM sqlite_master WHERE name = 'posts'")[0]?.sql);
    expect(sql).toContain("STRICT");
    expect(sql).toContain('"id" INTEGER PRIMARY KEY AUTOINCREMENT');
  });

  it("enforces foreign keys, NOT NULL, STRICT types and AUTOINCREMENT", () => {
    const s = seeded();
    expect(() => s.run("INSERT INTO posts (author_id, title) VALUES ('nobody', 'x')")).toThrow(/FOREIGN KEY/);
    expect(() => s.run("INSERT INTO posts (title) VALUES (NULL)")).toThrow(/NOT NULL/);
    expect(() => s.run("INSERT INTO posts (title, score) VALUES ('x', 'high')")).toThrow(/REAL/);
    expect(() => s.run("DELETE FROM authors WHERE id = 'a1'")).toThrow(/FOREIGN KEY/);
    expect(s.rows("SELECT id FROM posts ORDER BY id").map((r) => r.id)).toEqual([1, 2, 3]);
  });

  it("creates a namespaced table and its index, quoted", () => {
    const s = new Store();
    const plan = s.migrate({
      tables: {
        "com.example.todos": {
          columns: { id: { type: "uuid", primaryKey: true }, done: { type: "boolean" } },
          indexes: [["done"]],
        },
      },
    });
    expect(plan.statements[0]).toMatch(/^CREATE TABLE "com\.example\.todos" \(/);
    s.run('INSERT INTO "com.example.todos" (id, done) VALUES (?, ?)', "t1", 1);
    expect(s.columns("com.example.todos").map((c) => c.name)).toEqual(["id", "done"]);
    expect(s.indexes("com.example.todos")).toEqual(["com.example.todos__done_idx"]);
  });

  it("creates referenced tables first whatever the declaration order", () => {
    const s = new Store();
    s.migrate({
      tables: {
        comments: {
          columns: {
            id: { type: "integer", primaryKey: true },
            post: { type: "integer", references: "posts.id" },
          },
        },
        posts: {
          columns: {
            id: { type: "integer", primaryKey: true },
            user: { type: "text", references: "users.id" },
          },
        },
        users: { columns: { id: { type: "text", primaryKey: true } } },
      },
    });
    s.run("INSERT INTO users VALUES ('u')");
    s.run("INSERT INTO posts VALUES (1, 'u')");
    s.run("INSERT INTO comments VALUES (1, 1)");
    expect(() => s.run("INSERT INTO comments VALUES (2, 9)")).toThrow(/FOREIGN KEY/);
  });
});

describe("additive migrations keep the data", () => {
  it("adds nullable columns, notNull columns with literal defaults, a table and an index", () => {
    const s = seeded();
    s.migrate(
      withChanges((x) => {
        Object.assign(x.tables.posts.columns, {
          slug: { type: "text", unique: true },
          lang: { type: "text", notNull: true, default: "it's" },
          views: { type: "integer", notNull: true, default: -7 },
          ratio: { type: "float", notNull: true, default: 0.25 },
          pinned: { type: "boolean", notNull: true, default: true },
          extra: { type: "json", notNull: true, default: { a: "b'c" } },
          day: { type: "date", notNull: true, default: "2024-01-01" },
        });
        x.tables.posts.indexes.push(["title", "score"]);
        x.tables.tags = {
          columns: {
            id: { type: "integer", primaryKey: true },
            post_id: { type: "bigint", references: "posts.id", onDelete: "cascade" },
          },
        };
      }),
    );
    const rows = s.rows("SELECT title, lang, views, ratio, pinned, extra, day, slug FROM posts ORDER BY id");
    expect(rows[0]).toEqual({
      title: "one",
      lang: "it's",
      views: -7,
      ratio: 0.25,
      pinned: 1,
      extra: '{"a":"b\'c"}',
      day: "2024-01-01",
      slug: null,
    });
    expect(rows).toHaveLength(3);
    expect(s.indexes("posts")).toContain("posts__title__score_idx");
    s.run("UPDATE posts SET slug = 'x' WHERE id = 1");
    expect(() => s.run("UPDATE posts SET slug = 'x' WHERE id = 2")).toThrow(/UNIQUE/);
    s.run("INSERT INTO tags VALUES (1, 1)");
    s.run("DELETE FROM posts WHERE id = 1");
    expect(s.rows("SELECT * FROM tags")).toEqual([]);
  });

  it("adds owner_id and its index when an owner policy is added", () => {
    const s = new Store();
    const base = {
      tables: { notes: { columns: { id: { type: "integer", primaryKey: true }, t: { type: "text" } } } },
    };
    s.migrate(base);
    s.run("INSERT INTO notes VALUES (1, 'kept')");
    const plan = s.migrate({ tables: { notes: { ...base.tables.notes, policy: { read: "owner" } } } });
    expect(plan.summary).toContain("add column notes.owner_id (server-managed owner of each row)");
    expect(s.columns("notes").map((c) => c.name)).toEqual(["id", "t", "owner_id"]);
    expect(s.indexes("notes")).toEqual(["notes__owner_id_idx"]);
    expect(s.rows("SELECT * FROM notes")).toEqual([{ id: 1, t: "kept", owner_id: null }]);
  });

  it("runs nothing when the schema is unchanged", () => {
    const s = seeded();
    expect(s.migrate(DESIGN_SCHEMA).statements).toEqual([]);
  });
});

describe("retype rebuilds the table", () => {
  it("converts values, keeps rows, indexes, child rows and the AUTOINCREMENT high-water mark", () => {
    const s = seeded();
    s.run("INSERT INTO posts (title) VALUES ('four')");
    s.run("DELETE FROM posts WHERE id = 4");
    const plan = s.migrate(
      withChanges((x) => {
        x.tables.posts.columns.score = { type: "text" };
        x.migrations = [{ op: "retypeColumn", table: "posts", column: "score", type: "text" }];
      }),
    );
    expect(plan.summary).toContain("retype column posts.score float → text");
    expect(s.columns("posts").find((c) => c.name === "score")?.type).toBe("TEXT");
    expect(s.rows("SELECT id, score FROM posts ORDER BY id")).toEqual([
      { id: 1, score: "3.0" },
      { id: 2, score: "4.5" },
      { id: 3, score: null },
    ]);
    expect(s.indexes("posts")).toEqual([
      "posts__author_id_idx",
      "posts__created_at_idx",
      "posts__owner_id_idx",
    ]);
    s.run("INSERT INTO posts (title) VALUES ('five')");
    expect(s.rows("SELECT max(id) AS m FROM posts")[0]?.m).toBe(5);
    expect(() => s.run("INSERT INTO posts (author_id, title) VALUES ('zz', 'x')")).toThrow(/FOREIGN KEY/);
  });

  it("rebuilds a parent without cascading into its children", () => {
    const s = new Store();
    const schema = (nameType: string, migrations?: unknown[]) => ({
      tables: {
        authors: { columns: { id: { type: "text", primaryKey: true }, age: { type: nameType } } },
        posts: {
          columns: {
            id: { type: "integer", primaryKey: true },
            a: { type: "text", references: "authors.id", onDelete: "cascade" },
          },
        },
        likes: {
          columns: {
            id: { type: "integer", primaryKey: true },
            p: { type: "integer", references: "posts.id", onDelete: "set null" },
          },
        },
        ...(migrations ? {} : {}),
      },
      ...(migrations ? { migrations } : {}),
    });
    s.migrate(schema("text"));
    s.run("INSERT INTO authors VALUES ('a', '42'), ('b', NULL)");
    s.run("INSERT INTO posts VALUES (1, 'a'), (2, 'b')");
    s.run("INSERT INTO likes VALUES (1, 1), (2, 2)");
    const plan = s.migrate(
      schema("integer", [{ op: "retypeColumn", table: "authors", column: "age", type: "integer" }]),
    );
    expect(plan.summary.filter((l) => l.startsWith("rebuild"))).toHaveLength(3);
    expect(s.rows("SELECT * FROM authors ORDER BY id")).toEqual([
      { id: "a", age: 42 },
      { id: "b", age: null },
    ]);
    expect(s.rows("SELECT * FROM posts ORDER BY id")).toEqual([
      { id: 1, a: "a" },
      { id: 2, a: "b" },
    ]);
    expect(s.rows("SELECT * FROM likes ORDER BY id")).toEqual([
      { id: 1, p: 1 },
      { id: 2, p: 2 },
    ]);
    s.run("DELETE FROM authors WHERE id = 'a'");
    expect(s.rows("SELECT * FROM likes ORDER BY id")).toEqual([
      { id: 1, p: null },
      { id: 2, p: 2 },
    ]);
  });

  it("fails and rolls back when a value cannot be converted", () => {
    const s = seeded();
    s.migrate(withChanges((x) => Object.assign(x.tables.posts.columns, { code: { type: "text" } })));
    s.run("UPDATE posts SET code = '12' WHERE id = 1");
    s.run("UPDATE posts SET code = 'abc' WHERE id = 2");
    const next = parseProjectSchema(
      withChanges((x) => {
        Object.assign(x.tables.posts.columns, { code: { type: "integer" } });
        x.migrations = [{ op: "retypeColumn", table: "posts", column: "code", type: "integer" }];
      }),
    );
    const plan = planMigration(s.schema, next);
    const run = s.db.transaction(() => {
      for (const st of plan.statements) s.db.exec(st);
    });
    expect(run).toThrow(/INTEGER/);
    expect(s.rows("SELECT code FROM posts ORDER BY id").map((r) => r.code)).toEqual(["12", "abc", null]);
    expect(s.columns("posts").find((c) => c.name === "code")?.type).toBe("TEXT");
  });

  it("makes a column notNull through retypeColumn, and relaxes it again", () => {
    const s = seeded();
    s.run("UPDATE posts SET score = 0 WHERE score IS NULL");
    s.migrate(
      withChanges((x) => {
        x.tables.posts.columns.score = { type: "float", notNull: true };
        x.migrations = [{ op: "retypeColumn", table: "posts", column: "score", type: "float" }];
      }),
    );
    expect(s.columns("posts").find((c) => c.name === "score")?.notnull).toBe(1);
    expect(() => s.run("UPDATE posts SET score = NULL")).toThrow(/NOT NULL/);
    const plan = s.migrate(DESIGN_SCHEMA);
    expect(plan.summary).toContain("rebuild table posts (score no longer notNull)");
    s.run("UPDATE posts SET score = NULL");
  });

  it("rebuilds a self-referencing table and one that references a new table", () => {
    const s = new Store();
    const base = {
      nodes: {
        columns: {
          id: { type: "integer", primaryKey: true },
          parent: { type: "integer", references: "nodes.id" },
          v: { type: "integer" },
        },
      },
    };
    s.migrate({ tables: base });
    s.run("INSERT INTO nodes VALUES (1, NULL, 1), (2, 1, 2)");
    s.migrate({
      tables: {
        nodes: {
          columns: {
            ...base.nodes.columns,
            v: { type: "float" },
            kind: { type: "text", references: "kinds.id" },
          },
        },
        kinds: { columns: { id: { type: "text", primaryKey: true } } },
        extras: { columns: { id: { type: "integer", primaryKey: true, references: "nodes.id" } } },
      },
      migrations: [{ op: "retypeColumn", table: "nodes", column: "v", type: "float" }],
    });
    expect(s.rows("SELECT id, parent, v, typeof(v) AS t, kind FROM nodes ORDER BY id")).toEqual([
      { id: 1, parent: null, v: 1, t: "real", kind: null },
      { id: 2, parent: 1, v: 2, t: "real", kind: null },
    ]);
    expect(() => s.run("INSERT INTO nodes VALUES (3, 99, 1, NULL)")).toThrow(/FOREIGN KEY/);
    expect(() => s.run("INSERT INTO extras VALUES (99)")).toThrow(/FOREIGN KEY/);
    s.run("INSERT INTO kinds VALUES ('k')");
    s.run("INSERT INTO nodes VALUES (3, 1, 1, 'k')");
  });
});

describe("constraint changes", () => {
  const base = {
    tables: {
      p: { columns: { id: { type: "integer", primaryKey: true } } },
      c: {
        columns: {
          id: { type: "integer", primaryKey: true },
          code: { type: "text" },
          p: { type: "integer" },
        },
      },
    },
  };
  const change = (edit: (c: Json) => void, migrations?: unknown[]) => {
    const copy = structuredClone(base) as Json;
    edit(copy.tables.c.columns);
    if (migrations) copy.migrations = migrations;
    return copy;
  };

  it("adds a unique index to an existing column and drops it with a rebuild", () => {
    const s = new Store();
    s.migrate(base);
    s.run("INSERT INTO c VALUES (1, 'a', NULL), (2, 'b', NULL)");
    s.migrate(change((c) => (c.code.unique = true)));
    expect(() => s.run("INSERT INTO c VALUES (3, 'a', NULL)")).toThrow(/UNIQUE/);
    const plan = s.migrate(base);
    expect(plan.summary).toContain("rebuild table c (code no longer unique)");
    s.run("INSERT INTO c VALUES (3, 'a', NULL)");
  });

  it("adds a reference through retypeColumn, failing on orphans", () => {
    const s = new Store();
    s.migrate(base);
    s.run("INSERT INTO p VALUES (1)");
    s.run("INSERT INTO c VALUES (1, 'a', 1), (2, 'b', 9)");
    const ref = change(
      (c) => Object.assign(c.p, { references: "p.id", onDelete: "cascade" }),
      [{ op: "retypeColumn", table: "c", column: "p", type: "integer" }],
    );
    expect(() => s.migrate(ref)).toThrow(/FOREIGN KEY/);
    expect(s.rows("SELECT count(*) AS n FROM c")[0]?.n).toBe(2);
    s.run("DELETE FROM c WHERE id = 2");
    s.migrate(ref);
    s.run("DELETE FROM p");
    expect(s.rows("SELECT * FROM c")).toEqual([]);
  });

  it("changes onDelete with a rebuild", () => {
    const s = new Store();
    const restrict = change((c) => Object.assign(c.p, { references: "p.id", onDelete: "restrict" }));
    s.migrate(restrict);
    s.run("INSERT INTO p VALUES (1)");
    s.run("INSERT INTO c VALUES (1, 'a', 1)");
    expect(() => s.run("DELETE FROM p")).toThrow(/FOREIGN KEY/);
    const plan = s.migrate(change((c) => Object.assign(c.p, { references: "p.id", onDelete: "set null" })));
    expect(plan.summary).toContain("rebuild table c (p onDelete set null)");
    s.run("DELETE FROM p");
    expect(s.rows("SELECT * FROM c")).toEqual([{ id: 1, code: "a", p: null }]);
  });

  it("refuses to make a column notNull while it holds NULLs", () => {
    const s = new Store();
    s.migrate(base);
    s.run("INSERT INTO c VALUES (1, NULL, NULL)");
    const notNull = change(
      (c) => (c.code.notNull = true),
      [{ op: "retypeColumn", table: "c", column: "code", type: "text" }],
    );
    expect(() => s.migrate(notNull)).toThrow(/NOT NULL/);
    s.run("UPDATE c SET code = 'x'");
    s.migrate(notNull);
    expect(s.columns("c").find((c) => c.name === "code")?.notnull).toBe(1);
  });
});

describe("explicit destructive steps", () => {
  it("drops a plain column, a unique column and a foreign key column", () => {
    const s = seeded();
    s.migrate(
      withChanges((x) => Object.assign(x.tables.posts.columns, { slug: { type: "text", unique: true } })),
    );
    const plan = s.migrate(
      withChanges((x) => {
        delete x.tables.posts.columns.body;
        delete x.tables.posts.columns.author_id;
        x.tables.posts.indexes = [["created_at"]];
        x.migrations = [
          { op: "dropIndex", table: "posts", columns: ["author_id"] },
          { op: "dropColumn", table: "posts", column: "author_id" },
          { op: "dropColumn", table: "posts", column: "body" },
          { op: "dropColumn", table: "posts", column: "slug" },
        ];
      }),
    );
    expect(plan.summary).toEqual(
      expect.arrayContaining(["drop column posts.body", "drop index on posts(author_id)"]),
    );
    expect(s.columns("posts").map((c) => c.name)).toEqual([
      "id",
      "title",
      "score",
      "published",
      "meta",
      "created_at",
      "owner_id",
    ]);
    expect(s.rows("SELECT title FROM posts ORDER BY id").map((r) => r.title)).toEqual([
      "one",
      "two",
      "three",
    ]);
    s.run("DELETE FROM authors");
  });

  it("drops a parent table after rebuilding the child that referenced it", () => {
    const s = seeded();
    const plan = s.migrate(
      withChanges((x) => {
        delete x.tables.authors;
        x.tables.posts.columns.author_id = { type: "uuid" };
        x.migrations = [{ op: "dropTable", table: "authors" }];
      }),
    );
    expect(plan.summary).toContain("drop table authors");
    expect(s.rows("SELECT author_id FROM posts ORDER BY id").map((r) => r.author_id)).toEqual([
      "a1",
      "a1",
      "a2",
    ]);
    expect(s.rows("SELECT name FROM sqlite_master WHERE name = 'authors'")).toEqual([]);
  });

  it("drops a child table that references a rebuilt parent, even with RESTRICT", () => {
    const s = new Store();
    const p = { id: { type: "integer", primaryKey: true, default: "increment" }, v: { type: "text" } };
    s.migrate({
      tables: {
        p: { columns: p },
        c: {
          columns: {
            id: { type: "integer", primaryKey: true },
            p: { type: "integer", references: "p.id", onDelete: "restrict" },
          },
        },
      },
    });
    s.run("INSERT INTO p (v) VALUES ('1')");
    s.run("INSERT INTO c VALUES (1, 1)");
    s.migrate({
      tables: { p: { columns: { ...p, v: { type: "integer" } } } },
      migrations: [
        { op: "dropTable", table: "c" },
        { op: "retypeColumn", table: "p", column: "v", type: "integer" },
      ],
    });
    expect(s.rows("SELECT * FROM p")).toEqual([{ id: 1, v: 1 }]);
  });

  it("refuses a destructive change before touching the database", () => {
    const s = seeded();
    expectCode(
      () =>
        s.migrate(
          withChanges((x) => {
            delete x.tables.posts.columns.body;
          }),
        ),
      "HEARTH_SCHEMA_DESTRUCTIVE",
    );
    expect(s.rows("SELECT count(*) AS n FROM posts")[0]?.n).toBe(3);
  });
});
