/**
 * Error mapping: every failure of a query is a `HearthError` carrying the server's stable code
 * and the HTTP status (or a client code with status 0), whether it is returned in `{ error }`
 * or thrown by `.throwOnError()`; and each body shape the server uses (PostgREST, GoTrue,
 * OAuth) maps to the same fields.
 */
import { describe, expect, it } from "vitest";
import { errorFromBody, errorFromThrown } from "../src/errors.ts";
import { createClient, HearthError } from "../src/index.ts";
import { fakeFetch, json, networkError, PROJECT } from "./fixtures/fake-fetch.ts";

const DUPLICATE = {
  code: "23505",
  message: 'duplicate key value violates unique constraint "settings_key_key"',
  details: "Key (key)=(theme) already exists.",
  hint: null,
};

describe("query errors", () => {
  it("a PostgREST error body becomes a HearthError with code, status, details, hint and request id", async () => {
    const f = fakeFetch(json(409, DUPLICATE, { "x-request-id": "req-1" }));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch });
    const res = await hearth.from("settings").insert({ key: "theme" });
    expect(res.data).toBeNull();
    expect(res.status).toBe(409);
    expect(res.error).toBeInstanceOf(Error);
    // postgrest-js types `error` as its PostgrestError; instanceof narrows it to ours.
    if (!(res.error instanceof HearthError)) throw new Error("not a HearthError");
    expect(res.error.toJSON()).toEqual({ ...DUPLICATE, status: 409 });
    expect(res.error.requestId).toBe("req-1");
  });

  it(".throwOnError() rejects with the same HearthError", async () => {
    const f = fakeFetch(
      json(404, {
        code: "PGRST205",
        message: "Could not find the table 'nope' in the schema cache",
        details: null,
        hint: null,
      }),
    );
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch });
    const err = await hearth
      .from("nope")
      .select()
      .throwOnError()
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(HearthError);
    expect(err).toMatchObject({ code: "PGRST205", status: 404, details: null, hint: null });
  });

  it("a network failure is HEARTH_NETWORK with status 0, in { error } and thrown", async () => {
    const f = fakeFetch({ throws: networkError() }, { throws: networkError() });
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, retry: false });
    const res = await hearth.from("t").select();
    expect(res.error).toBeInstanceOf(HearthError);
    expect(res.error).toMatchObject({ code: "HEARTH_NETWORK", status: 0 });
    expect(res.status).toBe(0);
    await expect(hearth.from("t").select().throwOnError()).rejects.toMatchObject({ code: "HEARTH_NETWORK" });
  });

  it("an answer that is not a Hearth error body is HEARTH_BAD_RESPONSE with the status kept", async () => {
    const f = fakeFetch(json(502, "<html>Bad gateway</html>"));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch, retry: false });
    const { error } = await hearth.from("t").select();
    expect(error).toMatchObject({
      code: "HEARTH_BAD_RESPONSE",
      status: 502,
      details: "<html>Bad gateway</html>",
    });
  });

  it("an aborted query is HEARTH_ABORTED", async () => {
    const controller = new AbortController();
    controller.abort();
    const f = fakeFetch((call) => {
      throw new DOMException(`aborted ${call.url}`, "AbortError");
    });
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch });
    const { error } = await hearth.from("t").select().abortSignal(controller.signal);
    expect(error).toMatchObject({ code: "HEARTH_ABORTED", status: 0 });
    expect(f.calls).toHaveLength(1);
  });

  it("maybeSingle's client-side PGRST116 is a HearthError too", async () => {
    const f = fakeFetch(json(200, [{ id: 1 }, { id: 2 }]));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch });
    const { error } = await hearth.from("t").select().maybeSingle();
    expect(error).toBeInstanceOf(HearthError);
    expect(error).toMatchObject({ code: "PGRST116", status: 406 });
  });

  it("a success is untouched: data, count and status as postgrest-js reads them", async () => {
    const f = fakeFetch(json(206, [{ id: 3 }], { "content-range": "2-2/6" }));
    const hearth = createClient(PROJECT, { key: "anon", fetch: f.fetch });
    const res = await hearth.from("t").select("id", { count: "exact" }).range(2, 2);
    expect(res).toMatchObject({ data: [{ id: 3 }], error: null, count: 6, status: 206 });
  });
});

describe("errorFromBody", () => {
  it("reads GoTrue's {code, error_code, msg}", () => {
    const err = errorFromBody(422, {
      code: "weak_password",
      error_code: "weak_password",
      msg: "Password should be at least 8 characters.",
      weak_password: { reasons: ["length"] },
    });
    expect(err.toJSON()).toEqual({
      code: "weak_password",
      message: "Password should be at least 8 characters.",
      details: '{"reasons":["length"]}',
      hint: null,
      status: 422,
    });
  });

  it("reads OAuth's {error, error_description}", () => {
    expect(
      errorFromBody(400, {
        error: "invalid_grant",
        error_description: "The refresh token was already used",
      }).toJSON(),
    ).toEqual({
      code: "invalid_grant",
      message: "The refresh token was already used",
      details: null,
      hint: null,
      status: 400,
    });
  });

  it("keeps a HearthError thrown below as it is", () => {
    const original = new HearthError("HEARTH_ENCRYPTED_FILTER", "no");
    expect(errorFromThrown(original)).toBe(original);
  });
});
