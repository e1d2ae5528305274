/**
 * `{"type":"push"}` frames: each mutation decided exactly once (mutations.ts) and answered
 * with its own `push_result`, in order. The mutations of one writer (the principal's
 * identity plus the client id, ledger.ts `ownerOf`) run one after another across all
 * sockets of this object (a client may reconnect while its previous push is still being
 * applied), so they apply in the order received. A push belongs to the writer that sent
 * it: an `auth` frame to another identity while it runs does not move its later mutations
 * to the other writer's ledger.
 */
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";
import type { SyncHost } from "./hub.ts";
import { ownerOf } from "./ledger.ts";
import { applyMutation, MutationIdSchema, type PushResult } from "./mutations.ts";
import type { PushFrame } from "./protocol.ts";
import { type Limits, persist, type SyncSocket } from "./session.ts";
import { withRef } from "./stream.ts";

const IdOnly = z.object({ id: MutationIdSchema });

export interface PushDeps {
  host: SyncHost;
  limits: Limits;
  send(s: SyncSocket, frame: Record<string, unknown>): void;
  /** token checks; false when the socket was closed for them; throws when they could not run */
  authorize(s: SyncSocket, write: boolean): Promise<boolean>;
}

export class Pusher {
  private readonly chains = new Map<string, Promise<void>>();

  constructor(private readonly d: PushDeps) {}

  async push(s: SyncSocket, f: PushFrame): Promise<void> {
    const { host, limits } = this.d;
    if (f.mutations.length > limits.mutationsPerPush) {
      throw new HearthError(
        "HEARTH_REALTIME_LIMIT",
        `A push may carry at most ${limits.mutationsPerPush} mutations`,
        {
          hint: "Split the mutations into several pushes.",
        },
      );
    }
    // Every id first: a push with one unusable id applies nothing.
    const ids = f.mutations.map((m, i) => {
      const r = IdOnly.safeParse(m);
      if (!r.success) {
        throw new HearthError("HEARTH_BAD_FRAME", `mutations[${i}] has no valid id: nothing was applied`, {
          hint: "Each mutation needs an integer id ≥ 0, increasing per client id.",
        });
      }
      return r.data.id;
    });
    if (!(await this.d.authorize(s, true))) return;
    if (s.clientId !== f.clientId) {
      s.clientId = f.clientId;
      persist(host.store, s);
    }
    const sender = s.auth.principal;
    const owner = ownerOf(sender);
    await this.serial(`${owner}\n${f.clientId}`, async () => {
      for (let i = 0; i < ids.length; i++) {
        if (s.closed) return;
        // The socket's current principal when it is still the same writer (a re-check may
        // have refreshed its membership), else the one the push was authorized as.
        const now = s.auth.principal;
        const ctx = {
          sql: host.sql,
          schema: host.schema(),
          principal: ownerOf(now) === owner ? now : sender,
          owner,
          clientId: f.clientId,
          rest: host.rest,
        };
        const r = await applyMutation(ctx, f.mutations[i], ids[i]!);
        this.answer(s, f, r);
        if (r.status === "applied" && r.lsn !== null) await host.afterWrite();
        if (r.retryable) {
          // Later mutations may depend on this one: none is attempted; all may be sent again.
          for (const id of ids.slice(i + 1)) {
            const message = `Not attempted: mutation ${ids[i]} before it failed`;
            this.answer(s, f, { ...r, id, error: { ...r.error!, message } });
          }
          return;
        }
      }
    });
  }

  private answer(s: SyncSocket, f: PushFrame, r: PushResult): void {
    this.d.send(s, { type: "push_result", clientId: f.clientId, ...r, ...withRef(f.ref) });
  }

  /** Runs `fn` after every earlier call for the same key (a writer). */
  private async serial(key: string, fn: () => Promise<void>): Promise<void> {
    const next = (this.chains.get(key) ?? Promise.resolve()).catch(() => {}).then(fn);
    this.chains.set(key, next);
    try {
      await next;
    } finally {
      if (this.chains.get(key) === next) this.chains.delete(key);
    }
  }
}
