/**
 * The cross-tab refresh lock: two clients sharing one storage (two tabs) and one Web Locks
 * manager refresh at the same moment, and only one of them sends the refresh token; the other
 * waits for the lock and adopts the session the first one stored. Without Web Locks the old
 * behaviour stays (both send it: the race the lock closes).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { createClient, memoryStorage } from "../src/index.ts";
import { type Call, fakeFetch, json, PROJECT } from "./fixtures/fake-fetch.ts";

const USER = { id: "u1", email: "ada@example.com", aud: "authenticated", role: "authenticated" };
const session = (n: number) => ({
  access_token: `access-${n}`,
  token_type: "bearer",
  expires_in: 3600,
  expires_at: 0,
  refresh_token: `refresh-${n}`,
  user: USER,
});

/** A Web Locks manager with exclusive locks only: callbacks of one name run one after another. */
function fakeLocks() {
  const tails = new Map<string, Promise<unknown>>();
  const requested: string[] = [];
  return {
    requested,
    request<T>(name: string, options: { mode: string }, callback: (lock: unknown) => Promise<T>): Promise<T> {
      requested.push(`${name} ${options.mode}`);
      const run = (tails.get(name) ?? Promise.resolve()).then(() => callback({ name, mode: options.mode }));
      tails.set(
        name,
        run.catch(() => {}),
      );
      return run;
    },
  };
}

/** Two tabs on one storage, signed in as refresh-1; refreshes answer session(2), (3)... once released. */
async function twoTabs() {
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  let next = 2;
  const refresh = async (_call: Call) => {
    await gate; // hold every refresh until both tabs asked
    return new Response(JSON.stringify(session(next++)), { status: 200 });
  };
  const f = fakeFetch(json(200, session(1)), refresh, refresh);
  const storage = memoryStorage();
  const options = { key: "anon", fetch: f.fetch, auth: { storage, storageKey: "s", autoRefresh: false } };
  const tabA = createClient(PROJECT, options);
  await tabA.auth.signInWithPassword({ email: "ada@example.com", password: "pw" });
  const tabB = createClient(PROJECT, options);
  await tabB.auth.ready;
  expect(tabB.auth.currentSession()?.refresh_token).toBe("refresh-1");
  const refreshTokensSent = () =>
    f.calls
      .filter((c) => c.url.includes("grant_type=refresh_token"))
      .map((c) => JSON.parse(c.body!).refresh_token);
  return { tabA, tabB, storage, release, refreshTokensSent };
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("refresh across tabs", () => {
  it("with Web Locks, two tabs refreshing at once send the refresh token once and share the new session", async () => {
    const locks = fakeLocks();
    vi.stubGlobal("navigator", { locks });
    const { tabA, tabB, storage, release, refreshTokensSent } = await twoTabs();

    const both = Promise.all([tabA.auth.refreshSession(), tabB.auth.refreshSession()]);
    // Both tabs asked for the lock, and the first refresh is on the wire, before it is answered.
    await vi.waitFor(() => expect(locks.requested).toHaveLength(2));
    await vi.waitFor(() => expect(refreshTokensSent()).toEqual(["refresh-1"]));
    release();
    const [a, b] = await both;

    expect(refreshTokensSent()).toEqual(["refresh-1"]);
    expect(a.refresh_token).toBe("refresh-2");
    expect(b.refresh_token).toBe("refresh-2");
    expect(tabA.auth.currentSession()?.access_token).toBe("access-2");
    expect(tabB.auth.currentSession()?.access_token).toBe("access-2");
    expect(JSON.parse((await storage.getItem("s"))!).refresh_token).toBe("refresh-2");
    expect(locks.requested).toEqual(["hearth.auth.refresh:s exclusive", "hearth.auth.refresh:s exclusive"]);
  });

  it("without Web Locks, the refresh runs as before: each tab sends the token it holds", async () => {
    const { tabA, tabB, release, refreshTokensSent } = await twoTabs();
    const both = Promise.all([tabA.auth.refreshSession(), tabB.auth.refreshSession()]);
    // The race the lock closes: the server would see refresh-1 twice and revoke the session.
    await vi.waitFor(() => expect(refreshTokensSent()).toEqual(["refresh-1", "refresh-1"]));
    release();
    await both;
  });
});
