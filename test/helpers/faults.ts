/**
 * Reaching into a project's Durable Object and breaking what it depends on, for the fault
 * tests: the object's stub, an R2 bucket whose puts or gets fail, a D1 catalog whose every
 * call fails (set them as `instance.bucketOverride` / `instance.catalogOverride`).
 */
import { env } from "cloudflare:workers";
import type { ProjectDO } from "../../durable-objects/project-do.ts";
import type { TestProject } from "./api.ts";

const testEnv = env as unknown as { PROJECT: DurableObjectNamespace<ProjectDO> };

/** The project's Durable Object, for `runInDurableObject` and friends. */
export function stubOf(p: TestProject): DurableObjectStub<ProjectDO> {
  return testEnv.PROJECT.get(testEnv.PROJECT.idFromName(p.id));
}

/** `real`, except that `put` and/or `get` fail. */
export function faultyBucket(real: R2Bucket, fail: { put?: boolean; get?: boolean }): R2Bucket {
  return {
    put: (...args: Parameters<R2Bucket["put"]>) =>
      fail.put ? Promise.reject(new Error("injected put failure")) : real.put(...args),
    get: (...args: Parameters<R2Bucket["get"]>) =>
      fail.get ? Promise.reject(new Error("injected get failure")) : real.get(...args),
    head: (key: string) => real.head(key),
    list: (opts?: R2ListOptions) => real.list(opts),
    delete: (keys: string | string[]) => real.delete(keys),
  } as unknown as R2Bucket;
}

/** A catalog (D1) whose every call fails. */
export function catalogDown(): D1Database {
  const fail = () => Promise.reject(new Error("injected D1 failure"));
  const statement = { bind: () => statement, run: fail, all: fail, first: fail, raw: fail };
  return { prepare: () => statement, batch: fail, exec: fail } as unknown as D1Database;
}

/**
 * `real`, except that every call after the first `ok` fails (run, all, first, raw, batch,
 * exec each count one): sweeping `ok` from 0 up makes D1 fail at each call a request makes.
 */
export function catalogFailingAfter(real: D1Database, ok: number): D1Database {
  let calls = 0;
  const gate = <T>(op: () => Promise<T>): Promise<T> =>
    calls++ < ok ? op() : Promise.reject(new Error("injected D1 failure"));
  const inner = new WeakMap<object, D1PreparedStatement>();
  const wrap = (s: D1PreparedStatement): D1PreparedStatement => {
    const w = {
      bind: (...values: unknown[]) => wrap(s.bind(...values)),
      run: () => gate(() => s.run()),
      all: () => gate(() => s.all()),
      first: (column?: string) => gate(() => (column === undefined ? s.first() : s.first(column))),
      raw: (opts?: { columnNames: true }) => gate(() => (opts ? s.raw(opts) : s.raw())),
    } as unknown as D1PreparedStatement;
    inner.set(w, s);
    return w;
  };
  return {
    prepare: (query: string) => wrap(real.prepare(query)),
    batch: (statements: D1PreparedStatement[]) =>
      gate(() => real.batch(statements.map((s) => inner.get(s) ?? s))),
    exec: (query: string) => gate(() => real.exec(query)),
  } as unknown as D1Database;
}
