// @vitest-environment happy-dom
/** `useUser` follows the client's session: loading, then sign-in and sign-out re-render it. */
import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { createElement, type ReactNode } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { createClient } from "../src/client/client.ts";
import { HearthProvider, useUser } from "../src/react/index.ts";
import { fakeFetch, json, PROJECT } from "./fixtures/fake-fetch.ts";

afterEach(cleanup);

const USER = { id: "u1", email: "ada@example.com", aud: "authenticated", role: "authenticated" };
const SESSION = {
  access_token: "access-1",
  token_type: "bearer",
  expires_in: 3600,
  expires_at: 0,
  refresh_token: "refresh-1",
  user: USER,
};

describe("useUser", () => {
  it("is loading, then signed out; follows sign-in and sign-out", async () => {
    const f = fakeFetch(json(200, SESSION), json(204, null));
    const client = createClient(PROJECT, {
      key: "anon",
      fetch: f.fetch,
      auth: { storage: "memory", autoRefresh: false },
    });
    const wrapper = ({ children }: { children: ReactNode }) =>
      createElement(HearthProvider, { client }, children);
    const { result } = renderHook(() => useUser(), { wrapper });
    expect(result.current).toEqual({ user: null, session: null, loading: true });
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.user).toBeNull();

    await act(() => client.auth.signInWithPassword({ email: "ada@example.com", password: "pw" }));
    expect(result.current.user).toEqual(USER);
    expect(result.current.session).toMatchObject({ kind: "account", access_token: "access-1" });

    await act(() => client.auth.signOut());
    expect(result.current).toEqual({ user: null, session: null, loading: false });
  });

  it("starts from a session already in storage", async () => {
    const storage = new Map<string, string>();
    const kept = {
      getItem: (k: string) => storage.get(k) ?? null,
      setItem: (k: string, v: string) => void storage.set(k, v),
      removeItem: (k: string) => void storage.delete(k),
    };
    const first = createClient(PROJECT, {
      key: "anon",
      fetch: fakeFetch(json(200, SESSION)).fetch,
      auth: { storage: kept, autoRefresh: false },
    });
    await first.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });

    const client = createClient(PROJECT, { key: "anon", auth: { storage: kept, autoRefresh: false } });
    const wrapper = ({ children }: { children: ReactNode }) =>
      createElement(HearthProvider, { client }, children);
    const { result, unmount } = renderHook(() => useUser(), { wrapper });
    await waitFor(() => expect(result.current.loading).toBe(false));
    expect(result.current.user).toEqual(USER);
    unmount();
  });
});
