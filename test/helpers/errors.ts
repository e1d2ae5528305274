import { expect } from "vitest";
import { HearthError } from "../../shared/errors.ts";

/** Runs fn, asserts it throws a HearthError with `code` whose message and details contain every fragment. */
export function expectError(fn: () => unknown, code: string, ...fragments: string[]): HearthError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, "expected a HearthError").toBeInstanceOf(HearthError);
  const err = caught as HearthError;
  expect(err.code).toBe(code);
  const text = `${err.message} | ${err.details ?? ""}`;
  for (const fragment of fragments) expect(text).toContain(fragment);
  return err;
}
