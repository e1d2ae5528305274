/**
 * `GET {url}/rest/v1/`: the API description. PostgREST answers Swagger 2.0 (dialect §8);
 * Hearth's product spec asks for OpenAPI 3, so this is an OpenAPI 3.0.3 document carrying
 * PostgREST's content: the same paths, the same parameter set per verb (`rowFilter` per
 * column, select, order, Range, Range-Unit, offset, limit, Prefer), one schema per table
 * whose properties note `<pk/>` and `<fk table='x' column='y'/>` exactly as PostgREST does
 * (tools such as supabase's type generators parse those notes).
 */
import type { ColumnDef, ProjectSchema, TableDef } from "../schema.ts";
import { splitReference, tablePolicy } from "../schema.ts";

type Json = Record<string, unknown>;

export interface OpenApiOptions {
  /** The REST base URL, e.g. `http://127.0.0.1:8787/p/<id>/rest/v1`. */
  serverUrl: string;
  /** Tables to describe, in order: the caller lists only those the requester may use. */
  tables: string[];
}

export function buildOpenApi(schema: ProjectSchema, opts: OpenApiOptions): Json {
  const paths: Json = {
    "/": {
      get: {
        tags: ["Introspection"],
        summary: "OpenAPI description (this document)",
        responses: { "200": { description: "OK" } },
      },
    },
  };
  const parameters: Json = { ...COMMON_PARAMETERS };
  const schemas: Json = {};
  const requestBodies: Json = {};
  for (const name of opts.tables) {
    const table = schema.tables[name];
    if (!table) continue; // the caller's list may be wider than the schema: describe what exists
    const filters: Json[] = [];
    for (const [col, def] of Object.entries(table.columns)) {
      const key = `rowFilter.${name}.${col}`;
      parameters[key] = {
        name: col,
        in: "query",
        required: false,
        description: def.encrypted
          ? "PostgREST filter, e.g. eq.1 (encrypted column: holds ciphertext, only is.null / not.is.null are meaningful)"
          : "PostgREST filter, e.g. eq.1",
        schema: { type: "string", format: def.type },
      };
      filters.push(ref("parameters", key));
    }
    schemas[name] = tableSchema(name, table);
    requestBodies[name] = bodyFor(name);
    paths[`/${name}`] = tablePath(name, table, filters);
  }
  return {
    openapi: "3.0.3",
    info: {
      title: "Hearth REST API",
      description:
        "PostgREST-compatible REST API of one Hearth project. Filters, select, order and paging follow PostgREST.",
      version: "0.1.0",
    },
    externalDocs: {
      description: "PostgREST API reference",
      url: "https://postgrest.org/en/stable/references/api.html",
    },
    servers: [{ url: opts.serverUrl }],
    paths,
    components: {
      parameters,
      requestBodies,
      schemas,
      securitySchemes: {
        apikey: { type: "apiKey", in: "header", name: "apikey" },
        bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
      },
    },
    security: [{ apikey: [] }, { bearer: [] }],
  };
}

function ref(kind: string, name: string): Json {
  return { $ref: `#/components/${kind}/${name}` };
}

function preferParam(values: string[]): Json {
  return {
    name: "Prefer",
    in: "header",
    required: false,
    description: "Preference",
    schema: { type: "string", enum: values },
  };
}

function stringParam(name: string, where: "query" | "header", description: string, extra: Json = {}): Json {
  return { name, in: where, required: false, description, schema: { type: "string", ...extra } };
}

// Named like PostgREST's own `parameters` section so that generated clients look familiar.
const COMMON_PARAMETERS: Json = {
  select: stringParam("select", "query", "Filtering Columns"),
  order: stringParam("order", "query", "Ordering"),
  limit: stringParam("limit", "query", "Limiting and Pagination"),
  offset: stringParam("offset", "query", "Limiting and Pagination"),
  range: stringParam("Range", "header", "Limiting and Pagination"),
  rangeUnit: stringParam("Range-Unit", "header", "Limiting and Pagination", { default: "items" }),
  on_conflict: stringParam("on_conflict", "query", "On Conflict"),
  columns: stringParam("columns", "query", "Columns to insert or update; other body keys are ignored"),
  preferCount: preferParam(["count=exact", "count=planned", "count=estimated"]),
  preferReturn: preferParam(["return=representation", "return=minimal"]),
  preferPost: preferParam([
    "return=representation",
    "return=minimal",
    "resolution=ignore-duplicates",
    "resolution=merge-duplicates",
    "missing=default",
  ]),
};

function rowsContent(name: string): Json {
  const array = { type: "array", items: ref("schemas", name) };
  return {
    "application/json": { schema: array },
    "application/vnd.pgrst.object+json": { schema: ref("schemas", name) },
    "text/csv": { schema: { type: "string" } },
  };
}

function bodyFor(name: string): Json {
  const one = ref("schemas", name);
  return {
    description: name,
    required: false,
    content: {
      "application/json": { schema: { oneOf: [one, { type: "array", items: one }] } },
      "application/x-ndjson": { schema: { type: "string", description: "One JSON object per line" } },
      "text/csv": {
        schema: { type: "string", description: "Header line, then one record per line; NULL is null" },
      },
      "application/x-www-form-urlencoded": { schema: one },
      "application/vnd.apache.arrow.stream": { schema: { type: "string", format: "binary" } },
    },
  };
}

function tablePath(name: string, table: TableDef, filters: Json[]): Json {
  const tags = [name];
  const summary = table.description;
  const common = { tags, ...(summary === undefined ? {} : { summary }) };
  const p = (key: string) => ref("parameters", key);
  const representation = { description: "OK", content: rowsContent(name) };
  return {
    get: {
      ...common,
      parameters: [
        ...filters,
        p("select"),
        p("order"),
        p("range"),
        p("rangeUnit"),
        p("offset"),
        p("limit"),
        p("preferCount"),
      ],
      responses: {
        "200": representation,
        "206": { description: "Partial Content", content: rowsContent(name) },
      },
    },
    post: {
      ...common,
      parameters: [p("select"), p("columns"), p("on_conflict"), p("preferPost")],
      requestBody: ref("requestBodies", name),
      responses: { "201": { description: "Created", content: rowsContent(name) } },
    },
    patch: {
      ...common,
      parameters: [...filters, p("select"), p("columns"), p("preferReturn")],
      requestBody: ref("requestBodies", name),
      responses: { "200": representation, "204": { description: "No Content" } },
    },
    delete: {
      ...common,
      parameters: [...filters, p("select"), p("preferReturn")],
      responses: { "200": representation, "204": { description: "No Content" } },
    },
  };
}

const TYPES: Record<ColumnDef["type"], Json> = {
  text: { type: "string" },
  uuid: { type: "string", format: "uuid" },
  integer: { type: "integer", format: "int32" },
  bigint: { type: "integer", format: "int64" },
  float: { type: "number", format: "double" },
  boolean: { type: "boolean" },
  timestamp: { type: "string", format: "date-time" },
  date: { type: "string", format: "date" },
  json: {}, // any JSON value
  vector: { type: "array", items: { type: "number", format: "float" } },
  bytes: { type: "string", format: "byte" },
};

const DEFAULT_KEYWORDS = new Set(["random", "increment", "now"]);

function tableSchema(name: string, table: TableDef): Json {
  const properties: Json = {};
  const required: string[] = [];
  for (const [col, def] of Object.entries(table.columns)) {
    properties[col] = columnSchema(def);
    if (def.notNull || (def.primaryKey && def.default === undefined)) required.push(col);
  }
  return {
    type: "object",
    ...(table.description === undefined ? {} : { description: table.description }),
    ...(required.length > 0 ? { required } : {}),
    properties,
    "x-hearth-table": name,
    "x-hearth-policy": tablePolicy(table),
  };
}

function columnSchema(def: ColumnDef): Json {
  const out: Json = { ...TYPES[def.type] };
  // PostgREST's description: the column comment, then "Note:" lines ending in machine-readable tags.
  const notes: string[] = [];
  if (def.type === "bytes") notes.push("hex-encoded, \\x prefix");
  if (def.encrypted) notes.push("Client-side ciphertext: the server never sees the plaintext.");
  const tags = ["Note:"];
  if (def.primaryKey) tags.push("This is a Primary Key.<pk/>");
  if (def.references !== undefined) {
    const { table, column } = splitReference(def.references);
    tags.push(`This is a Foreign Key to \`${table}.${column}\`.<fk table='${table}' column='${column}'/>`);
  }
  const comment = [def.description, ...notes].filter((s) => s !== undefined).join("\n");
  const description =
    tags.length > 1
      ? (comment === "" ? "" : `${comment}\n\n`) + tags.join("\n")
      : comment === ""
        ? undefined
        : comment;
  if (description !== undefined) out.description = description;
  if (def.default !== undefined) {
    if (typeof def.default === "string" && DEFAULT_KEYWORDS.has(def.default))
      out["x-hearth-default"] = def.default;
    else out.default = def.default;
  }
  if (!def.notNull && !def.primaryKey && def.type !== "json") out.nullable = true;
  if (def.unique) out["x-hearth-unique"] = true;
  if (def.encrypted) out["x-hearth-encrypted"] = true;
  return out;
}
