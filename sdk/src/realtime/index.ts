/**
 * Realtime helpers over `{url}/realtime/v1/websocket` (docs/realtime.md): live table
 * changes, broadcast and presence. The wire protocol is realtime-js's (Phoenix channels), so
 * the SDK reuses `@supabase/realtime-js` rather than a second implementation of it.
 */
import {
  type RealtimeChannel,
  RealtimeClient,
  type RealtimePostgresChangesPayload,
  type RealtimePresenceState,
} from "@supabase/realtime-js";

/** A WebSocket constructor: browsers, Workers and Node ≥ 22 have one; Node 20 passes `ws`. */
// biome-ignore lint/suspicious/noExplicitAny: realtime-js accepts any WebSocket-like constructor
export type WebSocketConstructor = any;

export interface RealtimeOptions {
  /** the project's anon key (or any project credential): it opens the socket */
  key: string;
  /** the signed-in user's or app's access token, sent with every join (re-read on refresh) */
  accessToken?: () => Promise<string | null>;
  WebSocket?: WebSocketConstructor;
}

export type ChangeEvent = "INSERT" | "UPDATE" | "DELETE" | "*";

export interface TableChange<Row extends Record<string, unknown> = Record<string, unknown>> {
  table: string;
  type: "INSERT" | "UPDATE" | "DELETE";
  /** the row after the change; `{}` for DELETE */
  new: Partial<Row>;
  /** the row before the change; `{}` for INSERT */
  old: Partial<Row>;
  commitTimestamp: string;
}

export interface Presence<State extends Record<string, unknown>> {
  /** everyone present on the channel now, by key */
  state(): Record<string, State[]>;
  /** called with the whole state after every join or leave */
  onChange(cb: (state: Record<string, State[]>) => void): () => void;
  /** replaces this client's tracked state */
  update(state: State): Promise<void>;
  leave(): Promise<void>;
}

function waitSubscribed(channel: RealtimeChannel): Promise<void> {
  return new Promise((resolve, reject) => {
    channel.subscribe((status, err) => {
      if (status === "SUBSCRIBED") resolve();
      else if (status === "CHANNEL_ERROR" || status === "TIMED_OUT") {
        reject(new Error(`realtime: ${status}${err ? `: ${err.message}` : ""}`));
      }
    });
  });
}

function plainState<State>(raw: RealtimePresenceState): Record<string, State[]> {
  const out: Record<string, State[]> = {};
  for (const [key, metas] of Object.entries(raw)) {
    out[key] = metas.map(({ presence_ref: _ref, ...state }) => state as State);
  }
  return out;
}

let channelCounter = 0;

/**
 * Realtime for one project.
 *
 * @example
 * const rt = createRealtime("http://127.0.0.1:8787/p/abc", { key: anonKey });
 * const stop = await rt.onTableChange("todos", { event: "INSERT" }, (c) => console.log(c.new));
 * const room = await rt.presence("lobby", "alice", { mood: "happy" });
 * room.onChange((everyone) => console.log(Object.keys(everyone)));
 */
export function createRealtime(projectUrl: string, options: RealtimeOptions) {
  const endpoint = `${projectUrl.replace(/^http/, "ws").replace(/\/$/, "")}/realtime/v1`;
  const client = new RealtimeClient(endpoint, {
    params: { apikey: options.key },
    ...(options.WebSocket ? { transport: options.WebSocket } : {}),
    ...(options.accessToken ? { accessToken: options.accessToken } : {}),
  });

  return {
    /** The underlying realtime-js client, for anything these helpers do not cover. */
    client,

    /**
     * Calls `cb` for each committed change of `table` the caller may read, optionally only
     * for one event and rows matching a PostgREST filter (`status=eq.paid`). Resolves once
     * subscribed; the returned function unsubscribes.
     */
    async onTableChange<Row extends Record<string, unknown> = Record<string, unknown>>(
      table: string,
      opts: { event?: ChangeEvent; filter?: string },
      cb: (change: TableChange<Row>) => void,
    ): Promise<() => Promise<void>> {
      const channel = client.channel(`hearth-changes-${++channelCounter}`);
      const binding = {
        event: opts.event ?? "*",
        schema: "public",
        table,
        ...(opts.filter ? { filter: opts.filter } : {}),
      };
      channel.on(
        // biome-ignore lint/suspicious/noExplicitAny: realtime-js overloads by literal event type
        "postgres_changes" as any,
        binding,
        (p: RealtimePostgresChangesPayload<Row>) => {
          cb({
            table: p.table,
            type: p.eventType,
            new: p.new as Partial<Row>,
            old: p.old as Partial<Row>,
            commitTimestamp: p.commit_timestamp,
          });
        },
      );
      await waitSubscribed(channel);
      return async () => {
        await client.removeChannel(channel);
      };
    },

    /** Joins `name` for broadcast: `send` reaches the others; `on` hears them. */
    async broadcast<Message extends Record<string, unknown>>(name: string, opts: { self?: boolean } = {}) {
      const channel = client.channel(name, {
        config: { broadcast: { self: opts.self ?? false, ack: true } },
      });
      const handlers: ((event: string, payload: Message) => void)[] = [];
      channel.on("broadcast", { event: "*" }, (m) => {
        for (const h of handlers) h(m.event as string, m.payload as Message);
      });
      await waitSubscribed(channel);
      return {
        async send(event: string, payload: Message): Promise<void> {
          const r = await channel.send({ type: "broadcast", event, payload });
          if (r !== "ok") throw new Error(`realtime: broadcast ${r}`);
        },
        on(h: (event: string, payload: Message) => void): () => void {
          handlers.push(h);
          return () => handlers.splice(handlers.indexOf(h), 1);
        },
        async leave(): Promise<void> {
          await client.removeChannel(channel);
        },
      };
    },

    /** Joins `room` as `key` with `state`; others see it until `leave()` or the socket drops. */
    async presence<State extends Record<string, unknown>>(
      room: string,
      key: string,
      state: State,
    ): Promise<Presence<State>> {
      const channel = client.channel(room, { config: { presence: { key } } });
      const listeners: ((s: Record<string, State[]>) => void)[] = [];
      channel.on("presence", { event: "sync" }, () => {
        const s = plainState<State>(channel.presenceState());
        for (const l of listeners) l(s);
      });
      await waitSubscribed(channel);
      const tracked = await channel.track(state);
      if (tracked !== "ok") throw new Error(`realtime: presence track ${tracked}`);
      return {
        state: () => plainState<State>(channel.presenceState()),
        onChange(cb) {
          listeners.push(cb);
          return () => listeners.splice(listeners.indexOf(cb), 1);
        },
        async update(next) {
          const r = await channel.track(next);
          if (r !== "ok") throw new Error(`realtime: presence track ${r}`);
        },
        async leave() {
          await channel.untrack();
          await client.removeChannel(channel);
        },
      };
    },

    /** Closes the socket and every channel. */
    async close(): Promise<void> {
      await client.removeAllChannels();
      client.disconnect();
    },
  };
}

export type Realtime = ReturnType<typeof createRealtime>;
