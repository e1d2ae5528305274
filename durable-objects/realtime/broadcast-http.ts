/**
 * The HTTP side of broadcast (realtime-js falls back to it when a channel is not joined):
 * - `POST /realtime/v1/api/broadcast` `{"messages":[{topic, event, payload, private?}]}`
 * - `POST /realtime/v1/api/broadcast/<channel>/events/<event>[?private=true]` with the payload
 * Both answer 202 with how many sockets received each message. Private channels need the
 * service key or a project member, as joining them does.
 */
import { z } from "zod";
import { HearthError } from "../../shared/errors.ts";
import type { Principal } from "../../shared/principal.ts";
import { readJsonBody } from "../../shared/rest/bodies.ts";
import { JSON_TYPE, respond } from "../rest-response.ts";
import { mayJoinPrivate } from "./channel.ts";
import type { RealtimeHub } from "./hub.ts";

const MAX_BROADCAST_BODY = 1024 * 1024;

const MessagesSchema = z.object({
  messages: z
    .array(
      z.object({
        topic: z.string().min(1).max(256),
        event: z.string().min(1).max(256),
        payload: z.unknown().optional(),
        private: z.boolean().optional(),
      }),
    )
    .min(1)
    .max(100),
});

function topicOf(name: string): string {
  return name.startsWith("realtime:") ? name : `realtime:${name}`;
}

export async function broadcastHttp(
  hub: RealtimeHub,
  principal: Principal,
  request: Request,
  rest: string,
  requestId: string,
): Promise<Response> {
  if (request.method !== "POST") {
    throw new HearthError("HEARTH_METHOD_NOT_ALLOWED", `${request.method} is not allowed here; use POST.`);
  }
  const body = await readJsonBody(request, MAX_BROADCAST_BODY);
  let messages: z.infer<typeof MessagesSchema>["messages"];
  const single = /^\/([^/]+)\/events\/([^/]+)$/.exec(rest);
  if (single) {
    messages = [
      {
        topic: decodeURIComponent(single[1]!),
        event: decodeURIComponent(single[2]!),
        payload: body ?? {},
        private: new URL(request.url).searchParams.get("private") === "true",
      },
    ];
  } else if (rest === "" || rest === "/") {
    const parsed = MessagesSchema.safeParse(body);
    if (!parsed.success) {
      throw new HearthError(
        "HEARTH_BAD_REQUEST",
        'The body must be {"messages": [{topic, event, payload}]}',
        {
          details: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "),
        },
      );
    }
    messages = parsed.data.messages;
  } else {
    throw new HearthError("HEARTH_NOT_FOUND", `No route for POST ${new URL(request.url).pathname}`);
  }
  const auth = { token: "", principal, expiresAtMs: null, checkedAt: Date.now() };
  if (messages.some((m) => m.private) && !mayJoinPrivate(auth)) {
    throw new HearthError("42501", "A private channel needs the service key or a project member", {
      status: principal.role === "anon" ? 401 : 403,
    });
  }
  const delivered: number[] = [];
  for (const m of messages) {
    delivered.push(
      await hub.broadcastFromServer(topicOf(m.topic), m.event, m.payload ?? {}, m.private === true),
    );
  }
  return respond(202, JSON.stringify({ delivered }), { "content-type": JSON_TYPE }, requestId);
}
