import { describe, expect, it } from "vitest";
import { mergeTables } from "../durable-objects/merge-tables.ts";
import { planMigration } from "../durable-objects/migrate.ts";
import type { ProjectSchema, TableDef } from "../shared/schema.ts";
import { admin, workerApi } from "./helpers/api.ts";
import {
  type Api,
  authorize,
  connectApp,
  createOwnedProject,
  listGrants,
  pkce,
  registerApp,
  signup,
} from "./helpers/oauth.ts";

const TODOS = "com.example.todos";

/** The table as the first app declares it. */
const BASE: TableDef = {
  columns: {
    id: { type: "integer", primaryKey: true },
    title: { type: "text", notNull: true },
    list: { type: "text" },
  },
  indexes: [["list"]],
};

function project(tables: Record<string, TableDef>): ProjectSchema {
  return { tables };
}

/** BASE with `columns` replaced or added (a key set to undefined removes that column). */
function variant(
  columns: Record<string, TableDef["columns"][string] | undefined>,
  rest: Partial<TableDef> = {},
) {
  const merged = { ...BASE.columns, ...columns };
  const kept = Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined));
  return { ...BASE, ...rest, columns: kept as TableDef["columns"] };
}

describe("mergeTables", () => {
  it("adds a superset's new columns and indexes, keeps the project's, and plans only additions", () => {
    const current = project({
      [TODOS]: BASE,
      "org.other.notes": { columns: { id: { type: "uuid", primaryKey: true, default: "random" } } },
    });
    const app = variant(
      {
        done: { type: "boolean", default: false },
        priority: { type: "integer", notNull: true, default: 0 },
        due: { type: "timestamp", unique: true },
        list: undefined, // the app does not know this column
      },
      { indexes: [["due"], ["title", "done"]] },
    );
    const { schema, conflicts } = mergeTables(current, { [TODOS]: app });
    expect(conflicts).toEqual([]);
    expect(schema.tables[TODOS]).toEqual({
      columns: {
        ...BASE.columns,
        done: { type: "boolean", default: false },
        priority: { type: "integer", notNull: true, default: 0 },
        due: { type: "timestamp", unique: true },
      },
      indexes: [["list"], ["due"], ["title", "done"]],
    });
    expect(schema.tables["org.other.notes"]).toBe(current.tables["org.other.notes"]);
    const plan = planMigration(current, schema);
    expect(new Set(plan.steps.map((s) => s.op))).toEqual(new Set(["addColumn", "createIndex"]));
    expect(plan.summary).toContain("add column com.example.todos.done boolean");
    expect(plan.summary.join("\n")).not.toMatch(/drop|rebuild|retype/);
  });

  it("leaves the table as it is for a subset, the same declaration in another key order, or an app-only description", () => {
    const current = project({ [TODOS]: BASE });
    const subset = variant({ title: undefined, list: undefined }, { indexes: [] });
    const reordered: TableDef = {
      indexes: [["list"]],
      columns: {
        list: { type: "text" },
        title: { notNull: true, type: "text" },
        id: { primaryKey: true, type: "integer" },
      },
    };
    const described = variant({ title: { type: "text", notNull: true, description: "what to do" } });
    for (const app of [subset, reordered, described, BASE]) {
      const { schema, conflicts } = mergeTables(current, { [TODOS]: app });
      expect(conflicts).toEqual([]);
      expect(schema.tables[TODOS]).toEqual(BASE);
      expect(planMigration(current, schema).statements).toEqual([]);
    }
    // A primary key declared notNull or unique as well is the same primary key.
    const pk = variant({ id: { type: "integer", primaryKey: true, notNull: true, unique: true } });
    expect(mergeTables(current, { [TODOS]: pk }).conflicts).toEqual([]);
  });

  it("adds tables the project lacks as declared, and never touches tables the app does not declare", () => {
    const other: TableDef = {
      columns: { id: { type: "integer", primaryKey: true } },
      policy: { read: "owner" },
    };
    const { schema, conflicts } = mergeTables(project({ "org.other.t": other }), { [TODOS]: BASE });
    expect(conflicts).toEqual([]);
    expect(schema.tables).toEqual({ "org.other.t": other, [TODOS]: BASE });
    expect(mergeTables(null, { [TODOS]: BASE }).schema).toEqual({ tables: { [TODOS]: BASE } });
  });

  it("refuses a column both declare differently, naming the table and the column", () => {
    const current = project({
      [TODOS]: variant({
        parent: { type: "integer", references: `${TODOS}.id`, onDelete: "cascade" },
        secret: { type: "text", encrypted: true },
        tag: { type: "text", unique: true },
        state: { type: "text", default: "open" },
      }),
    });
    const cases: [Record<string, TableDef["columns"][string]>, string][] = [
      [{ title: { type: "json", notNull: true } }, "column title: type text in the project, json in the app"],
      [{ title: { type: "text" } }, "column title: notNull in the project, nullable in the app"],
      [{ list: { type: "text", notNull: true } }, "column list: nullable in the project, notNull in the app"],
      [{ tag: { type: "text" } }, "column tag: unique in the project, not unique in the app"],
      [{ list: { type: "text", unique: true } }, "column list: not unique in the project, unique in the app"],
      [
        { parent: { type: "integer" } },
        `column parent: references ${TODOS}.id on delete cascade in the project, no foreign key in the app`,
      ],
      [
        { parent: { type: "integer", references: `${TODOS}.id` } },
        `column parent: references ${TODOS}.id on delete cascade in the project, references ${TODOS}.id in the app`,
      ],
      [
        { state: { type: "text", default: "new" } },
        'column state: default "open" in the project, "new" in the app',
      ],
      [{ state: { type: "text" } }, 'column state: default "open" in the project, none in the app'],
      [{ secret: { type: "text" } }, "column secret: encrypted in the project, not encrypted in the app"],
    ];
    for (const [columns, why] of cases) {
      const app = { ...current.tables[TODOS]!, columns: { ...current.tables[TODOS]!.columns, ...columns } };
      const { conflicts } = mergeTables(current, { [TODOS]: app });
      expect(conflicts).toEqual([`${TODOS} (${why})`]);
    }
  });

  it("refuses another primary key, another policy, and a new column that existing rows cannot take", () => {
    const current = project({ [TODOS]: BASE });
    const conflict = (app: TableDef) => mergeTables(current, { [TODOS]: app }).conflicts;
    expect(conflict(variant({ rev: { type: "integer", primaryKey: true } }))).toEqual([
      `${TODOS} (primary key (id) in the project, (id, rev) in the app)`,
    ]);
    expect(conflict(variant({ id: { type: "integer" }, title: { type: "text", primaryKey: true } }))).toEqual(
      [
        `${TODOS} (primary key (id) in the project, (title) in the app; column id: notNull in the project, nullable in the app)`,
      ],
    );
    expect(conflict(variant({ id: { type: "integer", primaryKey: true, default: "increment" } }))).toEqual([
      `${TODOS} (column id: default none in the project, "increment" in the app)`,
    ]);
    expect(conflict(variant({}, { policy: { read: "public" } }))).toEqual([
      `${TODOS} (policy: read members, write members in the project, read public, write members in the app)`,
    ]);
    expect(conflict(variant({ due: { type: "date", notNull: true } }))).toEqual([
      `${TODOS} (column due: new in the app and notNull, but it has no default: the rows already stored would violate it)`,
    ]);
    expect(conflict(variant({ at: { type: "timestamp", notNull: true, default: "now" } }))[0]).toContain(
      'column at: new in the app and notNull, but its default "now" is computed per insert',
    );
    expect(
      conflict(variant({ up: { type: "integer", notNull: true, default: 0, references: `${TODOS}.id` } })),
    ).toEqual([
      `${TODOS} (column up: new in the app, notNull and references ${TODOS}.id: SQLite cannot add such a column to a table)`,
    ]);
    // Every problem of every table is reported, and the schema keeps the project's tables.
    const two = mergeTables(project({ [TODOS]: BASE, "a.b": BASE }), {
      [TODOS]: variant({ list: { type: "integer" } }),
      "a.b": variant({ title: { type: "bytes" }, list: { type: "json" } }),
    });
    expect(two.conflicts).toEqual([
      `${TODOS} (column list: type text in the project, integer in the app)`,
      "a.b (column title: type text in the project, bytes in the app, notNull in the project, nullable in the app; column list: type text in the project, json in the app)",
    ]);
    expect(two.schema.tables[TODOS]).toBe(BASE);
  });

  it("treats the owner_id of an owner policy like the server stores it", () => {
    const owned: TableDef = { ...BASE, policy: { read: "owner", write: "owner" } };
    const current = project({ [TODOS]: owned });
    const declared = { ...owned, columns: { ...owned.columns, owner_id: { type: "uuid" as const } } };
    const ok = mergeTables(current, { [TODOS]: declared });
    expect(ok.conflicts).toEqual([]);
    expect(ok.schema.tables[TODOS]).toEqual(owned);
    const wrong = { ...owned, columns: { ...owned.columns, owner_id: { type: "integer" as const } } };
    expect(mergeTables(current, { [TODOS]: wrong }).conflicts).toEqual([
      `${TODOS} (column owner_id: type text in the project, integer in the app)`,
    ]);
    // The app's owner policy on a members table is a policy conflict, not a new owner_id column.
    expect(mergeTables(project({ [TODOS]: BASE }), { [TODOS]: owned }).conflicts).toEqual([
      `${TODOS} (policy: read members, write members in the project, read owner, write owner in the app)`,
    ]);
  });
});

const api: Api = workerApi;

interface HearthErrorBody {
  code: string;
  message: string;
  details: string;
  hint: string;
}

describe("apps sharing a table through consent", () => {
  it("grants an app that adds a nullable column: the column appears, the first app's rows stay readable by both", async () => {
    const dev = await signup(api, "share-dev");
    const user = await signup(api, "share-user");
    const p = await createOwnedProject(api, user.accessToken, "shared");
    const appA = await registerApp(api, dev.accessToken, "Todos A", {
      [TODOS]: {
        columns: { id: { type: "integer", primaryKey: true }, title: { type: "text", notNull: true } },
      },
    });
    const appB = await registerApp(api, dev.accessToken, "Todos B", {
      [TODOS]: {
        columns: {
          id: { type: "integer", primaryKey: true },
          title: { type: "text", notNull: true },
          done: { type: "boolean" },
        },
        indexes: [["done"]],
      },
    });
    const scope = `db:${TODOS}:write`;
    const a = await connectApp(api, user.accessToken, { clientId: appA.clientId, projectId: p.id, scope });
    const rows = `${p.url}/rest/v1/${TODOS}`;
    const as = (token: string, init: RequestInit = {}) =>
      api.fetch(rows, {
        ...init,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      });
    expect(
      (await as(a.access_token, { method: "POST", body: JSON.stringify({ id: 1, title: "milk" }) })).status,
    ).toBe(201);
    // The first row goes to R2 first, so the new column must also read from segments without it.
    expect(await admin(p, "flush")).toMatchObject({ flushed: true });

    const b = await connectApp(api, user.accessToken, { clientId: appB.clientId, projectId: p.id, scope });
    const schema = (await (
      await api.fetch(`${p.url}/schema`, { headers: { authorization: `Bearer ${p.serviceKey}` } })
    ).json()) as ProjectSchema;
    expect(schema.tables[TODOS]).toEqual({
      columns: {
        id: { type: "integer", primaryKey: true },
        title: { type: "text", notNull: true },
        done: { type: "boolean" },
      },
      indexes: [["done"]],
    });
    expect(await (await as(b.access_token)).json()).toEqual([{ id: 1, title: "milk", done: null }]);
    const put = { method: "POST", body: JSON.stringify({ id: 2, title: "eggs", done: true }) };
    expect((await as(b.access_token, put)).status).toBe(201);
    // App A, which does not know `done`, still reads and writes; it sees the new column too.
    expect(
      (await as(a.access_token, { method: "POST", body: JSON.stringify({ id: 3, title: "tea" }) })).status,
    ).toBe(201);
    const seen = [
      { id: 1, title: "milk", done: null },
      { id: 2, title: "eggs", done: true },
      { id: 3, title: "tea", done: null },
    ];
    expect(
      await (
        await api.fetch(`${rows}?order=id`, { headers: { authorization: `Bearer ${a.access_token}` } })
      ).json(),
    ).toEqual(seen);
    expect(
      await (
        await api.fetch(`${rows}?order=id`, { headers: { authorization: `Bearer ${b.access_token}` } })
      ).json(),
    ).toEqual(seen);

    // App A consenting again (now a subset of the table) changes nothing and is granted.
    const version = (await admin<{ schemaVersion: number }>(p, "stats")).schemaVersion;
    await connectApp(api, user.accessToken, { clientId: appA.clientId, projectId: p.id, scope });
    expect((await admin<{ schemaVersion: number }>(p, "stats")).schemaVersion).toBe(version);
  });

  it("grants an app that omits a column the table requires; its inserts then get 23502", async () => {
    const dev = await signup(api, "subset-dev");
    const user = await signup(api, "subset-user");
    const p = await createOwnedProject(api, user.accessToken, "subset");
    const id = { type: "integer", primaryKey: true };
    const full = await registerApp(api, dev.accessToken, "Full", {
      [TODOS]: { columns: { id, title: { type: "text", notNull: true } } },
    });
    const bare = await registerApp(api, dev.accessToken, "Bare", { [TODOS]: { columns: { id } } });
    const scope = `db:${TODOS}:write`;
    await connectApp(api, user.accessToken, { clientId: full.clientId, projectId: p.id, scope });
    const t = await connectApp(api, user.accessToken, { clientId: bare.clientId, projectId: p.id, scope });
    const res = await api.fetch(`${p.url}/rest/v1/${TODOS}`, {
      method: "POST",
      headers: { authorization: `Bearer ${t.access_token}`, "content-type": "application/json" },
      body: JSON.stringify({ id: 1 }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe("23502");
  });

  it("refuses an incompatible redeclaration with 409 naming the column, and changes nothing", async () => {
    const dev = await signup(api, "clash-dev");
    const user = await signup(api, "clash-user");
    const p = await createOwnedProject(api, user.accessToken, "clash");
    const columns = { id: { type: "integer", primaryKey: true }, title: { type: "text", notNull: true } };
    const appA = await registerApp(api, dev.accessToken, "Todos A", { [TODOS]: { columns } });
    const scope = `db:${TODOS}:write`;
    const a = await connectApp(api, user.accessToken, { clientId: appA.clientId, projectId: p.id, scope });
    const rows = `${p.url}/rest/v1/${TODOS}`;
    const auth = { authorization: `Bearer ${a.access_token}`, "content-type": "application/json" };
    expect(
      (
        await api.fetch(rows, {
          method: "POST",
          headers: auth,
          body: JSON.stringify([
            { id: 1, title: "milk" },
            { id: 2, title: "eggs" },
          ]),
        })
      ).status,
    ).toBe(201);
    const snapshot = async () => ({
      schema: await (
        await api.fetch(`${p.url}/schema`, { headers: { authorization: `Bearer ${p.serviceKey}` } })
      ).json(),
      version: (await admin<{ schemaVersion: number }>(p, "stats")).schemaVersion,
      rows: await (await api.fetch(rows, { headers: auth })).json(),
      grants: (await listGrants(api, user.accessToken)).map((g) => g.id),
    });
    const before = await snapshot();

    const clashes: [Record<string, unknown>, string][] = [
      [
        { ...columns, title: { type: "integer", notNull: true } },
        "column title: type text in the project, integer in the app",
      ],
      [
        { ...columns, due: { type: "date", notNull: true } },
        "column due: new in the app and notNull, but it has no default",
      ],
      [
        { ...columns, id: { type: "integer" }, title: { type: "text", primaryKey: true } },
        "primary key (id) in the project, (title) in the app",
      ],
      // Compatible on paper, refused by the rows: both would get the same "x".
      [
        { ...columns, code: { type: "text", notNull: true, unique: true, default: "x" } },
        "UNIQUE constraint failed",
      ],
    ];
    for (const [cols, why] of clashes) {
      const app = await registerApp(api, dev.accessToken, "Todos C", { [TODOS]: { columns: cols } });
      const res = await authorize(api, user.accessToken, {
        clientId: app.clientId,
        projectId: p.id,
        scope,
        challenge: (await pkce()).challenge,
      });
      const body = (await res.json()) as HearthErrorBody;
      expect(res.status, JSON.stringify(body)).toBe(409);
      expect(body.code).toBe("HEARTH_APP_TABLE_CONFLICT");
      expect(body.details).toContain(TODOS);
      expect(body.details).toContain(why);
      expect(await snapshot()).toEqual(before);
    }
    // A policy other than the project's is refused the same way.
    const owner = await registerApp(api, dev.accessToken, "Todos D", {
      [TODOS]: { columns, policy: { read: "owner", write: "owner" } },
    });
    const res = await authorize(api, user.accessToken, {
      clientId: owner.clientId,
      projectId: p.id,
      scope,
      challenge: (await pkce()).challenge,
    });
    expect(res.status).toBe(409);
    expect(((await res.json()) as HearthErrorBody).details).toContain(
      "policy: read members, write members in the project",
    );
    expect(await snapshot()).toEqual(before);
  });
});
