/**
 * Whether the device has a network, as the platform tells it: in browsers `navigator.onLine`
 * and the window's `online`/`offline` events. `navigator.onLine === false` is reliable (no
 * interface is up, or the user chose "work offline"); `true` only means "maybe", so the engine
 * still finds out by connecting. Node and Workers have no such signal: always "maybe".
 */
export interface NetworkSignals {
  /** false only when the platform is sure there is no network */
  online(): boolean;
  /** calls `listener` on every change; returns the unsubscribe */
  subscribe(listener: (online: boolean) => void): () => void;
}

interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

/** The browser's signals, or null where the platform has none (Node, Workers). */
export function platformNetwork(): NetworkSignals | null {
  const g = globalThis as { navigator?: { onLine?: unknown } } & Partial<EventTargetLike>;
  if (typeof g.addEventListener !== "function" || typeof g.removeEventListener !== "function") return null;
  if (typeof g.navigator?.onLine !== "boolean") return null;
  const target = g as EventTargetLike;
  return {
    online: () => g.navigator?.onLine !== false,
    subscribe(listener) {
      const on = () => listener(true);
      const off = () => listener(false);
      target.addEventListener("online", on);
      target.addEventListener("offline", off);
      return () => {
        target.removeEventListener("online", on);
        target.removeEventListener("offline", off);
      };
    },
  };
}
