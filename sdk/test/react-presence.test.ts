// @vitest-environment happy-dom
/**
 * `usePresence` against a fake realtime object with the helpers' interface: joins on mount
 * with the state, re-renders on every change, sends a state only when it differs (as JSON),
 * leaves on unmount and when the room changes.
 */
import { act, cleanup, renderHook, waitFor } from "@testing-library/react";
import { createElement, type ReactNode } from "react";
import { afterEach, describe, expect, it } from "vitest";
import { createClient } from "../src/client/client.ts";
import { HearthProvider, type PresenceSource, usePresence } from "../src/react/index.ts";
import type { Presence } from "../src/realtime/index.ts";
import { PROJECT } from "./fixtures/fake-fetch.ts";

afterEach(cleanup);

type State = Record<string, unknown>;

/** A realtime stand-in: rooms with members, and a log of what the hook did. */
function fakeRealtime() {
  const log: string[] = [];
  const rooms = new Map<
    string,
    { members: Record<string, State[]>; listeners: Set<(s: Record<string, State[]>) => void> }
  >();
  const room = (name: string) => {
    let r = rooms.get(name);
    if (!r) {
      r = { members: {}, listeners: new Set() };
      rooms.set(name, r);
    }
    return r;
  };
  const announce = (name: string) => {
    const r = room(name);
    for (const l of r.listeners) l(structuredClone(r.members));
  };
  const realtime: PresenceSource = {
    async presence<S extends State>(name: string, key: string, state: S): Promise<Presence<S>> {
      log.push(`join ${name} ${key} ${JSON.stringify(state)}`);
      const r = room(name);
      r.members[key] = [state];
      announce(name);
      return {
        state: () => structuredClone(r.members) as Record<string, S[]>,
        onChange(cb) {
          const l = cb as (s: Record<string, State[]>) => void;
          r.listeners.add(l);
          return () => r.listeners.delete(l);
        },
        async update(next) {
          log.push(`update ${name} ${key} ${JSON.stringify(next)}`);
          r.members[key] = [next];
          announce(name);
        },
        async leave() {
          log.push(`leave ${name} ${key}`);
          delete r.members[key];
          announce(name);
        },
      };
    },
  };
  /** someone else joins or leaves */
  const other = (name: string, key: string, state: State | null) => {
    if (state) room(name).members[key] = [state];
    else delete room(name).members[key];
    announce(name);
  };
  return { realtime, log, other, rooms };
}

function wrapperWith(realtime: PresenceSource) {
  const client = createClient(PROJECT, { key: "anon", auth: { storage: "memory" } });
  return ({ children }: { children: ReactNode }) =>
    createElement(HearthProvider, { client, realtime }, children);
}

describe("usePresence", () => {
  it("joins, re-renders on changes, updates a changed state only, and leaves on unmount", async () => {
    const { realtime, log, other, rooms } = fakeRealtime();
    const { result, rerender, unmount } = renderHook(
      ({ typing }: { typing: boolean }) => usePresence("lobby", "ada", { typing }),
      { wrapper: wrapperWith(realtime), initialProps: { typing: false } },
    );
    expect(result.current).toEqual({});
    await waitFor(() => expect(result.current).toEqual({ ada: [{ typing: false }] }));
    expect(log).toEqual(['join lobby ada {"typing":false}']);

    act(() => other("lobby", "bob", { typing: true }));
    expect(result.current).toEqual({ ada: [{ typing: false }], bob: [{ typing: true }] });

    // A new object equal to the last one sends nothing; a different one is tracked.
    rerender({ typing: false });
    expect(log).toHaveLength(1);
    rerender({ typing: true });
    await waitFor(() => expect(result.current.ada).toEqual([{ typing: true }]));
    expect(log).toEqual(['join lobby ada {"typing":false}', 'update lobby ada {"typing":true}']);

    act(() => other("lobby", "bob", null));
    expect(Object.keys(result.current)).toEqual(["ada"]);

    unmount();
    await waitFor(() => expect(log.at(-1)).toBe("leave lobby ada"));
    expect(rooms.get("lobby")!.members).toEqual({});
    expect(rooms.get("lobby")!.listeners.size).toBe(0);
  });

  it("moves to a new room: leaves the old one and joins the new one", async () => {
    const { realtime, log } = fakeRealtime();
    const { result, rerender } = renderHook(
      ({ room }: { room: string }) => usePresence(room, "ada", { v: 1 }),
      {
        wrapper: wrapperWith(realtime),
        initialProps: { room: "a" },
      },
    );
    await waitFor(() => expect(result.current).toEqual({ ada: [{ v: 1 }] }));
    rerender({ room: "b" });
    await waitFor(() => expect(log).toEqual(['join a ada {"v":1}', "leave a ada", 'join b ada {"v":1}']));
    await waitFor(() => expect(result.current).toEqual({ ada: [{ v: 1 }] }));
  });

  it("reports a failed join to onError", async () => {
    const errors: unknown[] = [];
    const realtime: PresenceSource = {
      presence: () => Promise.reject(new Error("realtime: CHANNEL_ERROR")),
    };
    const { result } = renderHook(() => usePresence("lobby", "ada", {}, { onError: (e) => errors.push(e) }), {
      wrapper: wrapperWith(realtime),
    });
    await waitFor(() => expect(errors).toHaveLength(1));
    expect((errors[0] as Error).message).toBe("realtime: CHANNEL_ERROR");
    expect(result.current).toEqual({});
  });
});
