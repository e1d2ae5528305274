// @vitest-environment happy-dom
/**
 * The hooks without a sync engine: `useQuery` is one REST query (select, filter, order, limit
 * on the wire; a server error in `error`), `useMutation` writes through REST with the
 * server's error code; and the provider's absence is a clear error.
 */
import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { createElement, type ReactNode } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { createClient } from "../src/client/client.ts";
import { HearthError } from "../src/errors.ts";
import { HearthProvider, useHearth, useMutation, useQuery } from "../src/react/index.ts";
import { fakeFetch, json, PROJECT, type Step } from "./fixtures/fake-fetch.ts";

afterEach(cleanup);

function setup(...steps: Step[]) {
  const f = fakeFetch(...steps);
  const client = createClient(PROJECT, { key: "anon", fetch: f.fetch, auth: { storage: "memory" } });
  const wrapper = ({ children }: { children: ReactNode }) =>
    createElement(HearthProvider, { client }, children);
  return { f, client, wrapper };
}

describe("useQuery over REST", () => {
  it("sends one select with the filter, order and limit, and renders its rows", async () => {
    const rows = [{ id: 1, title: "b" }];
    const { f, wrapper } = setup(json(200, rows));
    const { result } = renderHook(
      () =>
        useQuery("com.example.todos", {
          select: "id,title",
          filter: (q) => q.eq("done", false),
          orderBy: [{ column: "title", ascending: false }, "id"],
          limit: 20,
        }),
      { wrapper },
    );
    expect(result.current.loading).toBe(true);
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current).toEqual({ data: rows, loading: false, error: null });
    expect(f.calls).toHaveLength(1);
    const url = new URL(f.calls[0]!.url);
    expect(url.pathname).toBe("/p/abcdefghij0123456789/rest/v1/com.example.todos");
    expect(url.searchParams.get("select")).toBe("id,title");
    expect(url.searchParams.get("done")).toBe("eq.false");
    expect(url.searchParams.get("order")).toBe("title.desc,id.asc");
    expect(url.searchParams.get("limit")).toBe("20");
  });

  it("is not live: a re-render with the same options sends nothing; new options query again", async () => {
    const { f, wrapper } = setup(json(200, [{ id: 1 }]), json(200, [{ id: 2 }]));
    const { result, rerender } = renderHook(({ limit }: { limit: number }) => useQuery("todos", { limit }), {
      wrapper,
      initialProps: { limit: 1 },
    });
    await waitFor(() => expect(result.current.data).toEqual([{ id: 1 }]));
    rerender({ limit: 1 });
    expect(f.calls).toHaveLength(1);
    rerender({ limit: 2 });
    await waitFor(() => expect(result.current.data).toEqual([{ id: 2 }]));
    expect(f.calls).toHaveLength(2);
  });

  it("puts the server's error in `error`", async () => {
    const { wrapper } = setup(
      json(404, { code: "PGRST205", message: "Could not find the table 'nope'", details: null, hint: null }),
    );
    const { result } = renderHook(() => useQuery("nope"), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.data).toBeNull();
    expect(result.current.error).toBeInstanceOf(HearthError);
    expect(result.current.error).toMatchObject({ code: "PGRST205", status: 404 });
  });

  it("refuses a replica predicate (`where`) it cannot send, instead of answering unfiltered rows", async () => {
    const { f, wrapper } = setup();
    const { result } = renderHook(() => useQuery("todos", { where: (t) => t.done === false }), { wrapper });
    await waitFor(() => expect(result.current.error?.message).toMatch(/`where` runs on a sync engine/));
    expect(f.calls).toHaveLength(0);
  });
});

describe("useMutation over REST", () => {
  it("inserts, updates and removes by key, pending until answered", async () => {
    const { f, wrapper } = setup(json(201, null), json(204, null), json(204, null));
    const { result } = renderHook(() => useMutation("todos"), { wrapper });
    let write!: Promise<void>;
    act(() => {
      write = result.current.insert({ id: 1, title: "milk" });
    });
    expect(result.current.pending).toBe(true);
    await act(() => write);
    expect(result.current.pending).toBe(false);
    expect(f.calls[0]).toMatchObject({ method: "POST", url: `${PROJECT}/rest/v1/todos` });
    expect(JSON.parse(f.calls[0]!.body!)).toEqual({ id: 1, title: "milk" });

    await act(() => result.current.update(1, { done: true }));
    expect(f.calls[1]).toMatchObject({ method: "PATCH", url: `${PROJECT}/rest/v1/todos?id=eq.1` });
    await act(() => result.current.remove({ id: 1 }));
    expect(f.calls[2]).toMatchObject({ method: "DELETE", url: `${PROJECT}/rest/v1/todos?id=eq.1` });
    expect(result.current.error).toBeNull();
  });

  it("keeps the server's refusal (code and message) in `error`", async () => {
    const { wrapper } = setup(
      json(409, {
        code: "23505",
        message: "duplicate key value violates unique constraint",
        details: "Key (id) already exists.",
        hint: null,
      }),
    );
    const { result } = renderHook(() => useMutation("todos"), { wrapper });
    await act(async () => {
      await expect(result.current.insert({ id: 1 })).rejects.toBeInstanceOf(HearthError);
    });
    expect(result.current.error).toMatchObject({
      code: "23505",
      message: "duplicate key value violates unique constraint",
      details: "Key (id) already exists.",
    });
    expect(result.current.pending).toBe(false);
  });
});

describe("the provider", () => {
  it("is required, with a message that says so", () => {
    expect(() => renderHook(() => useHearth())).toThrow(/HearthProvider/);
  });
});
