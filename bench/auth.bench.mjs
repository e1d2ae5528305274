/**
 * Cost of authorization on the hot path, under `npm start` (wrangler dev, local workerd):
 * - a point read by primary key of the same row with the project's service key, the owning
 *   account's access token and an OAuth app token (`db:<table>:read`): sequential p50/p99 and
 *   autocannon throughput, as ratios to the service key (which needs no catalog lookup);
 * - how long after `DELETE /account/grants/:id` returns the grant's app token is first
 *   refused: one client polls the point read as fast as it can (bounded), repeated a few times.
 * A step that fails is reported in the results with its error; the others still run.
 */
import { createHash, randomBytes } from "node:crypto";
import { figure, latencyFigure } from "./lib/figures.mjs";
import { expectStatus, keyHeaders, request, startBenchHearth } from "./lib/hearth.mjs";
import { throughput } from "./lib/load.mjs";
import { errorBlock, errorCell, table } from "./lib/markdown.mjs";
import { int, ms, ratio, summarize } from "./lib/stats.mjs";
import { stepRunner } from "./lib/steps.mjs";

export const title = "Authorization cost and grant revocation";

const TABLE = "com.bench.items";
const REDIRECT_URI = "https://bench.example/callback";
const ITEMS = {
  columns: { id: { type: "integer", primaryKey: true }, name: { type: "text" } },
  policy: { read: "members", write: "members" },
};
const POLL_LIMIT_MS = 10_000; // per revocation: give up (and report) after this long
const POLL_LIMIT_REQUESTS = 20_000;

const b64url = (buf) => buf.toString("base64").replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

async function json(res, status, what) {
  const text = await res.text();
  if (res.status !== status) throw new Error(`${what} answered ${res.status}: ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : null;
}

const bearer = (token) => ({ authorization: `Bearer ${token}`, "content-type": "application/json" });

async function signup(base, tag, n) {
  const email = `${tag}-${Date.now()}-${randomBytes(4).toString("hex")}@bench.test`;
  const res = await fetch(`${base}/auth/v1/signup`, {
    method: "POST",
    // A distinct client IP per sign-up keeps the per-IP sign-up limit out of the way.
    headers: { "content-type": "application/json", "cf-connecting-ip": `10.77.0.${n}` },
    body: JSON.stringify({ email, password: "bench password 1234" }),
  });
  const session = await json(res, 200, "signup");
  return { id: session.user.id, email, token: session.access_token };
}

/** Approve as JSON with the account token, exchange the code with PKCE → the token answer. */
async function connectApp(base, accountToken, clientId, scope, projectId) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash("sha256").update(verifier).digest());
  const approved = await fetch(`${base}/oauth/authorize`, {
    method: "POST",
    redirect: "manual",
    headers: bearer(accountToken),
    body: JSON.stringify({
      response_type: "code",
      client_id: clientId,
      redirect_uri: REDIRECT_URI,
      scope,
      state: "bench",
      code_challenge: challenge,
      code_challenge_method: "S256",
      project_id: projectId,
      decision: "approve",
    }),
  });
  const location = approved.headers.get("location");
  if (approved.status !== 302 || !location)
    throw new Error(`authorize answered ${approved.status}: ${(await approved.text()).slice(0, 300)}`);
  const code = new URL(location).searchParams.get("code");
  if (!code) throw new Error(`authorize redirected without a code: ${location}`);
  const res = await fetch(`${base}/oauth/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: REDIRECT_URI,
      client_id: clientId,
      code_verifier: verifier,
    }).toString(),
  });
  return json(res, 200, "token exchange");
}

async function grantId(base, accountToken, clientId, projectId) {
  const grants = await json(
    await fetch(`${base}/account/grants`, { headers: bearer(accountToken) }),
    200,
    "list grants",
  );
  const grant = grants.find((g) => g.app.clientId === clientId && g.projectId === projectId);
  if (!grant) throw new Error(`no live grant of ${clientId} on ${projectId}`);
  return grant.id;
}

export default async function run({ quick, log }) {
  const cfg = quick
    ? { seqCount: 300, warmup: 30, seconds: 5, revocations: 3 }
    : { seqCount: 1_000, warmup: 50, seconds: 10, revocations: 5 };
  const { step, failedSteps } = stepRunner(log);

  const out = [
    `# ${title}${quick ? " (quick)" : ""}`,
    "",
    `Hearth runs under \`npm start\` (wrangler dev, local workerd, throwaway state dir) on the same machine as the load generator. Latencies are client-side wall time over a kept-alive loopback connection, ${cfg.seqCount} sequential requests after ${cfg.warmup} warm-up ones; throughput is autocannon with 10 connections for ${cfg.seconds} s. Every credential reads the same row (\`GET /rest/v1/${TABLE}?id=eq.1\`, policy \`members\`); ratios are to the service key measured in this same run.`,
    "",
  ];

  const figures = [];
  const hearth = await step("start Hearth", () => startBenchHearth());
  if (!hearth.ok) {
    out.push(errorBlock("Starting Hearth", hearth.error));
    return { markdown: out.join("\n"), failedSteps };
  }
  const server = hearth.value;
  try {
    const setup = await step("accounts, project, app and grant", async () => {
      const owner = await signup(server.url, "bench-owner", 1);
      const dev = await signup(server.url, "bench-dev", 2);
      const project = await json(
        await fetch(`${server.url}/v1/projects`, {
          method: "POST",
          headers: bearer(owner.token),
          body: JSON.stringify({ name: "bench-auth" }),
        }),
        201,
        "create project",
      );
      const app = await json(
        await fetch(`${server.url}/v1/apps`, {
          method: "POST",
          headers: bearer(dev.token),
          body: JSON.stringify({
            name: "Bench app",
            redirectUris: [REDIRECT_URI],
            confidential: false,
            schema: { tables: { [TABLE]: ITEMS } },
          }),
        }),
        201,
        "register app",
      );
      const scope = `db:${TABLE}:read`;
      const appTokens = await connectApp(server.url, owner.token, app.clientId, scope, project.id);
      await json(
        await fetch(`${project.url}/rest/v1/${TABLE}`, {
          method: "POST",
          headers: { ...keyHeaders(project.serviceKey), "content-type": "application/json" },
          body: JSON.stringify({ id: 1, name: "the row" }),
        }),
        201,
        "insert the row",
      );
      return { owner, project, app, scope, appToken: appTokens.access_token };
    });
    if (!setup.ok) {
      out.push(errorBlock("Setting up", setup.error));
      return { markdown: out.join("\n"), failedSteps };
    }
    const { owner, project, app, scope, appToken } = setup.value;
    const pointUrl = `${project.url}/rest/v1/${TABLE}?id=eq.1`;
    out.push(...(await pointReads({ cfg, step, pointUrl, project, owner, appToken, figures })));
    out.push(...(await revocation({ cfg, step, server, project, owner, app, scope, pointUrl })));
  } finally {
    await server.stop();
  }
  return { markdown: out.join("\n"), failedSteps, figures: figures.filter(Boolean) };
}

async function pointReads({ cfg, step, pointUrl, project, owner, appToken, figures }) {
  const credentials = [
    { name: "service key", headers: keyHeaders(project.serviceKey) },
    { name: "account token (owner)", headers: { authorization: `Bearer ${owner.token}` } },
    { name: "app token (`db:T:read`)", headers: { authorization: `Bearer ${appToken}` } },
  ];
  const checks = [];
  for (const c of credentials) {
    checks.push(
      await step(`point read with the ${c.name} returns the row`, async () => {
        const res = expectStatus(await request(pointUrl, { headers: c.headers }), 200, c.name);
        const rows = JSON.parse(res.body);
        if (rows.length !== 1 || rows[0].id !== 1)
          throw new Error(`expected [{id: 1, ...}], got ${res.body}`);
      }),
    );
  }
  const live = credentials.filter((_, i) => checks[i].ok);
  // Sequential latencies are interleaved (one request per credential in turn), so warm-up
  // and drift of the single workerd process weigh on every credential alike.
  const lat = await step("sequential point reads, interleaved", async () => {
    const samples = live.map(() => []);
    const total = cfg.warmup + cfg.seqCount;
    for (let i = 0; i < total; i++) {
      for (let k = 0; k < live.length; k++) {
        const t0 = process.hrtime.bigint();
        expectStatus(await request(pointUrl, { headers: live[k].headers }), 200, live[k].name);
        if (i >= cfg.warmup) samples[k].push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    return samples.map(summarize);
  });
  // One untimed load run first, so the measured runs all meet a warm server.
  await step("autocannon warm-up", () =>
    throughput({ url: pointUrl, headers: credentials[0].headers, seconds: Math.max(2, cfg.seconds / 2) }),
  );
  const results = [];
  for (let i = 0; i < credentials.length; i++) {
    const c = credentials[i];
    if (!checks[i].ok) {
      results.push({ c, lat: checks[i], tp: checks[i] });
      continue;
    }
    const k = live.indexOf(c);
    const tp = await step(`autocannon point read, ${c.name}`, () =>
      throughput({ url: pointUrl, headers: c.headers, seconds: cfg.seconds }),
    );
    results.push({ c, lat: lat.ok ? { ok: true, value: lat.value[k] } : lat, tp });
  }
  const base = results[0];
  const baseP50 = base.lat.ok ? base.lat.value.p50 : Number.NaN;
  const baseP99 = base.lat.ok ? base.lat.value.p99 : Number.NaN;
  const baseRps = base.tp.ok ? base.tp.value.reqPerSec : Number.NaN;
  for (const { c, lat, tp } of results.slice(1)) {
    const floor = { peerName: "the same read with the service key", peerKind: "floor" };
    figures.push(
      ...[
        latencyFigure(
          { shape: `point read with an ${c.name}`, ...floor },
          lat.ok ? lat.value : null,
          base.lat.ok ? base.lat.value : null,
        ),
        tp.ok && base.tp.ok
          ? figure({
              shape: `point read with an ${c.name}, 10 connections`,
              unit: "req/s",
              hearth: tp.value.reqPerSec,
              peer: base.tp.value.reqPerSec,
              lowerIsBetter: false,
              ...floor,
            })
          : null,
      ].filter(Boolean),
    );
  }
  const rows = results.map(({ c, lat, tp }) => [
    c.name,
    lat.ok ? ms(lat.value.p50) : errorCell(lat.error),
    lat.ok ? ms(lat.value.p99) : "–",
    lat.ok ? ratio(lat.value.p50, baseP50) : "–",
    lat.ok ? ratio(lat.value.p99, baseP99) : "–",
    tp.ok ? int(tp.value.reqPerSec) : errorCell(tp.error),
    tp.ok ? ratio(tp.value.reqPerSec, baseRps) : "–",
    tp.ok ? `${ms(tp.value.p50)} / ${ms(tp.value.p99)}` : "–",
    tp.ok ? `${tp.value.non2xx} / ${tp.value.errors} / ${tp.value.timeouts}` : "–",
  ]);
  return [
    "## Point read of one row, by credential",
    "",
    table(
      [
        "Credential",
        "p50 ms",
        "p99 ms",
        "p50 ÷ service",
        "p99 ÷ service",
        "req/s (10 conns)",
        "req/s ÷ service",
        "loaded p50 / p99 ms",
        "non-2xx / errors / timeouts",
      ],
      rows,
    ),
    "",
    "What each credential costs the gateway per request: the service key is a cached JWT check plus the Durable Object's key-liveness check; the account token adds the session-liveness check (cached ≤ 5 s) and the project-membership lookup in D1; the app token adds the grant-liveness check (cached ≤ 5 s per isolate) and the scope check.",
    "",
  ];
}

async function revocation({ cfg, step, server, project, owner, app, scope, pointUrl }) {
  const runs = [];
  for (let i = 0; i < cfg.revocations; i++) {
    const r = await step(`revocation ${i + 1}`, async () => {
      // A fresh grant (approving again after a revoke creates a new one), warmed up so the
      // gateway's grant cache holds it as live when the revocation lands.
      const tokens = await connectApp(server.url, owner.token, app.clientId, scope, project.id);
      const headers = { authorization: `Bearer ${tokens.access_token}` };
      for (let w = 0; w < 20; w++) expectStatus(await request(pointUrl, { headers }), 200, "warm-up read");
      const id = await grantId(server.url, owner.token, app.clientId, project.id);
      const del = await fetch(`${server.url}/account/grants/${id}`, {
        method: "DELETE",
        headers: { authorization: `Bearer ${owner.token}` },
      });
      await json(del, 204, "DELETE /account/grants/:id");
      const t0 = process.hrtime.bigint();
      let accepted = 0;
      for (let n = 0; n < POLL_LIMIT_REQUESTS; n++) {
        const res = await request(pointUrl, { headers });
        const elapsed = Number(process.hrtime.bigint() - t0) / 1e6;
        if (res.status === 401) return { ms: elapsed, accepted, code: JSON.parse(res.body).code };
        expectStatus(res, 200, "read before the revocation took effect");
        accepted++;
        if (elapsed > POLL_LIMIT_MS) break;
      }
      throw new Error(`still accepted after ${accepted} requests (${POLL_LIMIT_MS} ms bound)`);
    });
    runs.push(r);
  }
  const ok = runs.filter((r) => r.ok).map((r) => r.value);
  const rows = runs.map((r, i) => [
    String(i + 1),
    r.ok ? ms(r.value.ms) : errorCell(r.error),
    r.ok ? String(r.value.accepted) : "–",
    r.ok ? r.value.code : "–",
  ]);
  const s = summarize(ok.map((v) => v.ms));
  return [
    "## Grant revocation → first refused request",
    "",
    `Time from \`DELETE /account/grants/:id\` returning 204 to the first 401 for that grant's app token, one client polling the point read back-to-back (bounded by ${POLL_LIMIT_MS / 1000} s / ${int(POLL_LIMIT_REQUESTS)} requests). "Accepted after" counts reads still answered 200 after the DELETE returned. The gateway caches a grant's liveness for up to 5 s per isolate and forgets it at once in the isolate that served the revocation; \`npm start\` runs one isolate.`,
    "",
    table(["Run", "ms to first 401", "accepted after", "code"], rows),
    "",
    ok.length > 0
      ? `Median ${ms(s.p50)} ms, max ${ms(s.max)} ms over ${ok.length} run(s).`
      : "No run succeeded.",
    "",
  ];
}
