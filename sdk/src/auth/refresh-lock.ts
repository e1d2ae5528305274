/**
 * The cross-tab refresh lock. Refresh tokens rotate and a reused one revokes the whole session,
 * so two tabs sharing a storage must not both refresh the same token. Where the Web Locks API
 * exists (`navigator.locks`: browsers, and their workers), a refresh runs under an exclusive
 * lock named after the storage key, and reads the stored session again once it holds it: a tab
 * that waited adopts what the other one stored. Without Web Locks (Node 20, Workers) the refresh
 * runs unlocked, and two clients can still race within the same instant.
 */

/** The part of the Web Locks API (`navigator.locks`) the refresh uses. */
export interface RefreshLocks {
  request<T>(
    name: string,
    options: { mode: "exclusive" },
    callback: (lock: unknown) => Promise<T>,
  ): Promise<T>;
}

/** `navigator.locks` where it exists (read at each refresh, so a page's own stays in charge). */
function webLocks(): RefreshLocks | null {
  const locks = (globalThis as { navigator?: { locks?: Partial<RefreshLocks> } }).navigator?.locks;
  return typeof locks?.request === "function" ? (locks as RefreshLocks) : null;
}

/** The lock's name: one per storage key, so clients of one session share it. */
export function refreshLockName(storageKey: string): string {
  return `hearth.auth.refresh:${storageKey}`;
}

/** Runs `refresh` holding the session's refresh lock, or at once where there are no Web Locks. */
export function withRefreshLock<T>(storageKey: string, refresh: () => Promise<T>): Promise<T> {
  const locks = webLocks();
  return locks
    ? locks.request(refreshLockName(storageKey), { mode: "exclusive" }, () => refresh())
    : refresh();
}
