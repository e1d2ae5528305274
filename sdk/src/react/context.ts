/**
 * `<HearthProvider>` and `useHearth()`: the client, and optionally a sync engine and a realtime
 * connection, handed to every hook below. Written with `createElement` (no JSX) so the SDK's
 * tsconfig needs no `jsx` setting. Only this folder imports React: the core entry stays
 * React-free (sdk/test/react-core-free.test.ts checks it).
 */
import { createContext, createElement, type ReactNode, useContext, useMemo } from "react";
import type { HearthClient } from "../client/client.ts";
import type { Presence } from "../realtime/index.ts";
import type { SyncEngine, Tables } from "../sync/engine.ts";

/**
 * What `usePresence` needs of a realtime connection: `createRealtime(...)` is one; a test or
 * another transport may be any object with this method.
 */
export interface PresenceSource {
  presence<State extends Record<string, unknown>>(
    room: string,
    key: string,
    state: State,
  ): Promise<Presence<State>>;
}

export interface HearthContextValue {
  // biome-ignore lint/suspicious/noExplicitAny: any project's client, typed or not
  client: HearthClient<any>;
  /** with it, `useQuery` is live and `useMutation` optimistic; without it, both use REST */
  // biome-ignore lint/suspicious/noExplicitAny: any engine's table types
  sync: SyncEngine<any> | null;
  realtime: PresenceSource | null;
}

const HearthContext = createContext<HearthContextValue | null>(null);
HearthContext.displayName = "HearthContext";

export interface HearthProviderProps {
  // biome-ignore lint/suspicious/noExplicitAny: any project's client, typed or not
  client: HearthClient<any>;
  sync?: SyncEngine<Tables> | null | undefined;
  realtime?: PresenceSource | null | undefined;
  children?: ReactNode;
}

/**
 * Makes a Hearth client (and optionally a sync engine and a realtime connection) available to
 * the hooks of `@hearth/sdk/react`. Create them once, outside render: the provider does not
 * own them, and does not close them on unmount.
 *
 * @example
 * ```ts
 * import { createElement } from "react";
 * import { HearthProvider } from "@hearth/sdk/react";
 *
 * const hearth = createClient(PROJECT_URL, { key: ANON_KEY });
 * const sync = createSync({ url: PROJECT_URL, getToken, tables: ["todos"], replica });
 * root.render(createElement(HearthProvider, { client: hearth, sync }, createElement(App)));
 * // with JSX: <HearthProvider client={hearth} sync={sync}><App /></HearthProvider>
 * ```
 */
export function HearthProvider({ client, sync, realtime, children }: HearthProviderProps): ReactNode {
  const value = useMemo<HearthContextValue>(
    () => ({ client, sync: sync ?? null, realtime: realtime ?? null }),
    [client, sync, realtime],
  );
  return createElement(HearthContext.Provider, { value }, children);
}

/**
 * The client, sync engine and realtime connection of the nearest `<HearthProvider>`.
 * Throws when there is none (a missing provider is a wiring mistake, not a state to render).
 *
 * @example
 * ```ts
 * const { client } = useHearth();
 * const onExport = async () => download(await (await client.fetch("/export")).blob());
 * ```
 */
export function useHearth(): HearthContextValue {
  const value = useContext(HearthContext);
  if (value === null) {
    throw new Error("Hearth: useHearth and the Hearth hooks need a <HearthProvider client={...}> above them");
  }
  return value;
}
