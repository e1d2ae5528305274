/**
 * What both example apps share: the config the example server puts in the page, sign-in with
 * Hearth (OAuth 2.1 + PKCE, the user picks what to grant on Hearth's consent page), unlocking
 * the end-to-end key, the local-first sync engine on IndexedDB, the offline app shell (a
 * service worker) and the status line. Each app passes its own screen as `children`.
 */
import {
  createClient,
  createSync,
  decryptRow,
  encryptRow,
  type HearthClient,
  HearthError,
  IndexedDbReplica,
  type KeyEnvelope,
  type SyncEngine,
} from "@hearth/sdk";
import { HearthProvider, useUser } from "@hearth/sdk/react";
import { type FormEvent, type ReactNode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { createKey, fetchEnvelope, forgetKey, storedKey, unlock } from "./keys.ts";
import schema from "./schema.json";

export const TODOS = "com.example.todos";

export type Todo = {
  id: string;
  title: string;
  done: boolean;
  due: string | null;
  /** decrypted on this device; the server holds `hearth:e1:…` */
  notes: string | null;
  created_at?: string;
};

/** What the example server (examples/serve.mjs) writes into the page. */
export interface ExampleConfig {
  app: string;
  title: string;
  hearthUrl: string;
  clientId: string;
  redirectUri: string;
  scopes: string[];
}

function readConfig(): ExampleConfig {
  const el = document.getElementById("hearth-config");
  if (!el?.textContent) throw new Error("this page was not served by examples/serve.mjs");
  return JSON.parse(el.textContent) as ExampleConfig;
}

function message(err: unknown): string {
  if (err instanceof HearthError) return `${err.message} (${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** `YYYY-MM-DD` of the device's today. */
export function today(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** Starts the app: finishes a sign-in redirect if this is one, registers the offline shell, renders. */
export async function start(screen: () => ReactNode): Promise<void> {
  const config = readConfig();
  document.title = config.title;
  const client = createClient(config.hearthUrl, {
    auth: { storage: "localStorage", storageKey: `hearth-example.${config.app}` },
    schema, // refuses filters on the encrypted notes before they are sent
  });
  let redirectError: string | null = null;
  if (location.pathname === "/callback") {
    try {
      await client.auth.handleRedirect(location.href);
    } catch (err) {
      redirectError = message(err);
    }
    history.replaceState(null, "", "/");
  }
  registerShell();
  const root = createRoot(document.getElementById("root")!);
  root.render(
    <HearthProvider client={client}>
      <Shell config={config} client={client} redirectError={redirectError} screen={screen} />
    </HearthProvider>,
  );
}

/** The service worker caches the page and its script, so a reload works offline. */
function registerShell(): void {
  if (!("serviceWorker" in navigator)) return;
  navigator.serviceWorker
    .register("/sw.js")
    .then(() => navigator.serviceWorker.ready)
    .then(() => document.documentElement.setAttribute("data-offline-ready", "true"))
    .catch((err) => console.warn("offline shell unavailable:", err));
}

function Shell(props: {
  config: ExampleConfig;
  client: HearthClient;
  redirectError: string | null;
  screen: () => ReactNode;
}): ReactNode {
  const { config, client } = props;
  const { session, loading } = useUser();
  const [key, setKey] = useState<CryptoKey | null>(null);
  const [keyChecked, setKeyChecked] = useState(false);
  const projectUrl = client.projectUrl;
  const slot = session && projectUrl ? `${projectUrl}#${session.user.id}` : null;

  useEffect(() => {
    setKey(null);
    setKeyChecked(false);
    if (!slot) return;
    let live = true;
    storedKey(slot).then(
      (k) => {
        if (!live) return;
        setKey(k);
        setKeyChecked(true);
      },
      () => live && setKeyChecked(true),
    );
    return () => {
      live = false;
    };
  }, [slot]);

  if (loading) return <p className="muted">Loading…</p>;
  if (!session || !projectUrl || !slot)
    return <SignIn config={config} client={client} error={props.redirectError} />;
  if (!keyChecked) return <p className="muted">Opening your data…</p>;
  if (!key) return <Unlock client={client} slot={slot} onKey={setKey} />;
  return (
    <Synced
      config={config}
      client={client}
      slot={slot}
      dataKey={key}
      projectUrl={projectUrl}
      screen={props.screen}
    />
  );
}

function SignIn({
  config,
  client,
  error,
}: {
  config: ExampleConfig;
  client: HearthClient;
  error: string | null;
}) {
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState(error);
  const signIn = async () => {
    setBusy(true);
    try {
      await client.auth.signInWithApp({
        clientId: config.clientId,
        redirectUri: config.redirectUri,
        scopes: config.scopes,
      });
    } catch (err) {
      setFailure(message(err));
      setBusy(false);
    }
  };
  return (
    <main className="card">
      <h1>{config.title}</h1>
      <p>Your to-dos live in your own Hearth store. This app asks for:</p>
      <ul>
        {config.scopes.map((s) => (
          <li key={s}>
            <code>{s}</code>
          </li>
        ))}
      </ul>
      {failure && <p role="alert">{failure}</p>}
      <button type="button" onClick={signIn} disabled={busy}>
        Sign in with Hearth
      </button>
    </main>
  );
}

/** First device: choose a passphrase (and see the recovery phrase once); later: type it. */
function Unlock({
  client,
  slot,
  onKey,
}: {
  client: HearthClient;
  slot: string;
  onKey: (k: CryptoKey) => void;
}) {
  const [envelope, setEnvelope] = useState<KeyEnvelope | null | undefined>(undefined);
  const [failure, setFailure] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [phrase, setPhrase] = useState<{ key: CryptoKey; words: string } | null>(null);

  useEffect(() => {
    fetchEnvelope(client).then(setEnvelope, (err) =>
      setFailure(`Could not read your keyring: ${message(err)}`),
    );
  }, [client]);

  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const form = new FormData(e.currentTarget);
    const passphrase = String(form.get("passphrase") ?? "");
    setFailure(null);
    setBusy(true);
    try {
      if (envelope) {
        onKey(await unlock(slot, envelope, passphrase));
      } else {
        if (passphrase.length < 8) throw new Error("Use at least 8 characters.");
        if (passphrase !== form.get("confirm")) throw new Error("The two passphrases differ.");
        const made = await createKey(client, slot, passphrase);
        setPhrase({ key: made.key, words: made.recoveryPhrase });
      }
    } catch (err) {
      setFailure(message(err));
      if (err instanceof HearthError && err.status === 409) setEnvelope(await fetchEnvelope(client));
    } finally {
      setBusy(false);
    }
  };

  if (phrase) {
    return (
      <main className="card">
        <h1>Your recovery phrase</h1>
        <p>
          Write these 24 words down. With them you can read your private notes if you forget the passphrase.
        </p>
        <p className="phrase" data-testid="recovery-phrase">
          {phrase.words}
        </p>
        <button type="button" onClick={() => onKey(phrase.key)}>
          I wrote it down
        </button>
      </main>
    );
  }
  if (envelope === undefined && !failure) return <p className="muted">Looking for your key…</p>;
  const creating = envelope === null;
  return (
    <main className="card">
      <h1>{creating ? "Protect your private notes" : "Unlock your private notes"}</h1>
      <p>
        Notes are encrypted on this device before they leave it. Neither Hearth nor the app's developer can
        read them.
      </p>
      <form onSubmit={submit}>
        <label>
          Passphrase
          <input
            name="passphrase"
            type="password"
            autoComplete={creating ? "new-password" : "current-password"}
          />
        </label>
        {creating && (
          <label>
            Passphrase again
            <input name="confirm" type="password" autoComplete="new-password" />
          </label>
        )}
        {failure && <p role="alert">{failure}</p>}
        <button type="submit" disabled={busy || envelope === undefined}>
          {creating ? "Create my key" : "Unlock"}
        </button>
      </form>
    </main>
  );
}

/** The sync engine for this user's store, made once the key is unlocked. */
function Synced(props: {
  config: ExampleConfig;
  client: HearthClient;
  slot: string;
  dataKey: CryptoKey;
  projectUrl: string;
  screen: () => ReactNode;
}): ReactNode {
  const { config, client, slot, dataKey, projectUrl } = props;
  const [sync, setSync] = useState<SyncEngine | null>(null);
  const [failure, setFailure] = useState<string | null>(null);
  const replicaName = `hearth-example.${config.app}:${slot}`;

  useEffect(() => {
    const engine = createSync({
      url: projectUrl,
      getToken: async () => (await client.auth.getAccessToken()) ?? "",
      tables: [TODOS],
      replica: new IndexedDbReplica({ name: replicaName }),
      codec: {
        encrypt: (table, row, options) => encryptRow(dataKey, schema, table, row, options),
        decrypt: (table, row) => decryptRow(dataKey, schema, table, row),
      },
      onError: (err) => console.warn("sync:", err.code, err.message),
      onRejected: (err) => setFailure(`The server refused a change: ${err.message}`),
    });
    setSync(engine);
    return () => {
      setSync(null);
      void engine.close();
    };
  }, [client, dataKey, projectUrl, replicaName]);

  const signOut = async () => {
    await sync?.close();
    await forgetKey(slot);
    indexedDB.deleteDatabase(replicaName);
    await client.auth.signOut().catch(() => client.auth.signOut({ scope: "local" }));
  };

  if (!sync) return <p className="muted">Opening your data…</p>;
  return (
    <HearthProvider client={client} sync={sync}>
      <header>
        <h1>{config.title}</h1>
        <SyncStatus sync={sync} />
        <button type="button" className="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      {failure && (
        <p role="alert">
          {failure}{" "}
          <button type="button" className="link" onClick={() => setFailure(null)}>
            Dismiss
          </button>
        </p>
      )}
      {props.screen()}
    </HearthProvider>
  );
}

const STATUS_TEXT: Record<string, string> = {
  connecting: "Connecting…",
  syncing: "Syncing…",
  live: "Live",
  offline: "Offline",
  stopped: "Stopped",
  unauthorized: "Access ended: sign in again",
};

/** "Live · all changes synced", or "Offline · 2 changes waiting". */
function SyncStatus({ sync }: { sync: SyncEngine }): ReactNode {
  const [state, setState] = useState({ status: sync.status, pending: sync.pendingCount });
  useEffect(() => {
    const update = () => setState({ status: sync.status, pending: sync.pendingCount });
    const offs = [sync.on("status", update), sync.on("pending", update)];
    update();
    return () => {
      for (const off of offs) off();
    };
  }, [sync]);
  const waiting =
    state.pending === 0
      ? "all changes synced"
      : `${state.pending} change${state.pending === 1 ? "" : "s"} waiting to sync`;
  return (
    <p
      className={`status ${state.status}`}
      data-testid="sync-status"
      data-status={state.status}
      data-pending={state.pending}
    >
      {STATUS_TEXT[state.status] ?? state.status} · {waiting}
    </p>
  );
}
