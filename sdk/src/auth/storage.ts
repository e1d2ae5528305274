/**
 * Where sessions and the pending PKCE verifier are kept. Any object with `getItem`, `setItem`
 * and `removeItem` (sync or async) fits: `localStorage`, an IndexedDB or file wrapper, a
 * React Native AsyncStorage.
 */

export interface AuthStorage {
  getItem(key: string): string | null | Promise<string | null>;
  setItem(key: string, value: string): void | Promise<void>;
  removeItem(key: string): void | Promise<void>;
}

/**
 * Storage that lives as long as the client (the default outside browsers).
 *
 * @example
 * ```ts
 * const hearth = createClient(url, { key, auth: { storage: memoryStorage() } });
 * ```
 */
export function memoryStorage(): AuthStorage {
  const items = new Map<string, string>();
  return {
    getItem: (key) => items.get(key) ?? null,
    setItem: (key, value) => {
      items.set(key, value);
    },
    removeItem: (key) => {
      items.delete(key);
    },
  };
}

/** The browser's `localStorage` when it exists and can be written (not in Node, Workers, or some private modes). */
export function localStorageIfUsable(): AuthStorage | null {
  try {
    const ls = (globalThis as { localStorage?: AuthStorage & { setItem(k: string, v: string): void } })
      .localStorage;
    if (!ls) return null;
    const probe = "hearth.probe";
    ls.setItem(probe, "1");
    ls.removeItem(probe);
    return ls;
  } catch {
    return null;
  }
}

export type StorageOption = "memory" | "localStorage" | AuthStorage;

/** `localStorage` in browsers and memory elsewhere, unless the caller chose. */
export function resolveStorage(option: StorageOption | undefined): AuthStorage {
  if (option === "memory") return memoryStorage();
  if (option === "localStorage") {
    const ls = localStorageIfUsable();
    if (!ls)
      throw new TypeError("Hearth: localStorage is not available here; use storage: 'memory' or your own");
    return ls;
  }
  return option ?? localStorageIfUsable() ?? memoryStorage();
}
