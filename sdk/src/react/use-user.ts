/** `useUser()`: the signed-in user, following `client.auth.onAuthStateChange`. */
import { useEffect, useState } from "react";
import type { Session } from "../auth/session.ts";
import { useHearth } from "./context.ts";

export interface UserState {
  /** the session's user (an app session knows only `{ id }`), or null when signed out */
  user: Session["user"] | null;
  session: Session | null;
  /** true until the stored session was loaded (the first `INITIAL_SESSION`) */
  loading: boolean;
}

/**
 * The current user: re-renders on sign-in, sign-out and token refresh.
 *
 * @example
 * ```ts
 * function Account() {
 *   const { user, loading } = useUser();
 *   if (loading) return "…";
 *   return user ? `Signed in as ${user.email ?? user.id}` : "Signed out";
 * }
 * ```
 */
export function useUser(): UserState {
  const { client } = useHearth();
  const [state, setState] = useState<UserState>(() => ({
    user: null,
    session: null,
    loading: true,
  }));
  useEffect(() => {
    // INITIAL_SESSION comes once storage is read, even when subscribing late.
    const { unsubscribe } = client.auth.onAuthStateChange((_event, session) => {
      setState({ user: session?.user ?? null, session, loading: false });
    });
    return unsubscribe;
  }, [client]);
  return state;
}
