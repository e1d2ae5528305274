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
