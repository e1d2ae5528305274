/**
 * The catalog (D1) as the request path sees it: a call that fails because D1 is unreachable,
 * overloaded or reset becomes 503 HEARTH_CATALOG_UNAVAILABLE with `retry-after`, instead of a
 * 500. Failures that are the statement's own (a constraint, a missing table, bad SQL) pass
 * through unchanged: callers turn the first into 4xx answers (a taken email) and the others
 * are bugs.
 *
 * A D1 call either commits or not (a batch is one transaction), so a request refused this way
 * changed nothing in D1 itself; the callers keep several calls in the right order, or in one
 * batch, so that a failure between two of them leaves nothing half-done (docs/operations.md,
 * "When the catalog is down").
 */
import { HearthError } from "../../shared/errors.ts";

export const CATALOG_RETRY_AFTER_SECONDS = 5;

/** 503 with `retry-after` (errorResponse reads `retryAfterSeconds`). */
export class CatalogUnavailableError extends HearthError {
  readonly retryAfterSeconds = CATALOG_RETRY_AFTER_SECONDS;
  constructor(cause: unknown) {
    super("HEARTH_CATALOG_UNAVAILABLE", "The catalog (D1) is unavailable: the request was not carried out", {
      details: "Accounts, keys, grants and the segment index live in the catalog; nothing was changed.",
      hint: `Retry in ${CATALOG_RETRY_AFTER_SECONDS} s.`,
    });
    this.cause = cause;
  }
}

// SQLite's own verdicts on a statement: not an outage.
const STATEMENT_ERROR =
  /constraint failed|SQLITE_CONSTRAINT|no such (table|column|function)|syntax error|too many SQL variables|datatype mismatch|SQLITE_ERROR|SQLITE_MISMATCH|SQLITE_RANGE/i;

/**
 * `err` as the request path reports it: an outage becomes CatalogUnavailableError, a
 * statement's own failure (or a HearthError) is returned unchanged. For D1 calls that do not
 * go through `guardCatalog` (a flush's catalog commit).
 */
export function catalogFailure(err: unknown): unknown {
  return translate(err);
}

function translate(err: unknown): unknown {
  if (err instanceof HearthError) return err;
  const text = err instanceof Error ? `${err.message} ${String(err.cause ?? "")}` : String(err);
  if (STATEMENT_ERROR.test(text)) return err;
  console.error("catalog (D1) call failed; answering 503 HEARTH_CATALOG_UNAVAILABLE", err);
  return new CatalogUnavailableError(err);
}

function guarded<T>(p: Promise<T>): Promise<T> {
  return p.catch((err) => {
    throw translate(err);
  });
}

const inner = new WeakMap<object, D1PreparedStatement>();
const wrapped = new WeakMap<D1Database, D1Database>();
const guardedDbs = new WeakSet<D1Database>();

function wrapStatement(s: D1PreparedStatement): D1PreparedStatement {
  const w = {
    bind: (...values: unknown[]) => wrapStatement(s.bind(...values)),
    first: (column?: string) => guarded(column === undefined ? s.first() : s.first(column)),
    run: () => guarded(s.run()),
    all: () => guarded(s.all()),
    raw: (opts?: { columnNames?: boolean }) => guarded(opts ? s.raw(opts as { columnNames: true }) : s.raw()),
  } as unknown as D1PreparedStatement;
  inner.set(w, s);
  return w;
}

/** `db` with its outages turned into CatalogUnavailableError (one wrapper per binding). */
export function guardCatalog(db: D1Database): D1Database {
  if (guardedDbs.has(db)) return db;
  const known = wrapped.get(db);
  if (known) return known;
  const w = {
    prepare: (query: string) => wrapStatement(db.prepare(query)),
    batch: (statements: D1PreparedStatement[]) =>
      guarded(db.batch(statements.map((s) => inner.get(s as object) ?? s))),
    exec: (query: string) => guarded(db.exec(query)),
  } as unknown as D1Database;
  guardedDbs.add(w);
  wrapped.set(db, w);
  return w;
}

/** The gateway's env with a guarded catalog, one per env object. */
const envs = new WeakMap<object, object>();
export function withGuardedCatalog<E extends { CATALOG: D1Database }>(env: E): E {
  const known = envs.get(env);
  if (known) return known as E;
  const out = { ...env, CATALOG: guardCatalog(env.CATALOG) };
  envs.set(env, out);
  return out;
}
