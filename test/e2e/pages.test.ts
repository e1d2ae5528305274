/**
 * The consent and "My data" pages in a real browser (Debian's chromium driven by
 * playwright-core) against the real `npm start` server: an app is authorized through the
 * consent page (PKCE S256, redirect to a local listener), writes a row with its token; the
 * user then sees the project, the table, its row count and the row on /me (after another
 * origin's page failed to sign the browser into an attacker's account: login CSRF), exports
 * the project, revokes the app (its token is refused afterwards) and signs out. A screenshot of
 * the page is kept under test/e2e/artifacts/.
 */
import { mkdirSync, readFileSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from "../../scripts/chromium.mjs";

const BASE = inject("hearthUrl");
const ARTIFACTS = path.resolve(import.meta.dirname, "artifacts");
const TABLE = "com.example.pages";
const BULK = "com.example.bulk"; // 60 rows: two pages of at most 50
const APP_NAME = "Todo <b>& Co</b>";
const ROW_TITLE = "<script>alert('x')</script> buy milk";
const PASSWORD = "correct horse battery";

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

async function pkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: b64url(new Uint8Array(digest)) };
}

async function json(res: Response, status: number): Promise<Record<string, unknown>> {
  const text = await res.text();
  if (res.status !== status)
    throw new Error(`${res.url} answered ${res.status}, expected ${status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/**
 * A tiny redirect_uri: resolves with the query string of the first request to /callback.
 * It is also the "other site" of the login-CSRF check: `/attack?email=&password=` serves a
 * page whose button posts those credentials to /me/signin.
 */
function callbackListener(): Promise<{ server: HttpServer; uri: string; query: Promise<URLSearchParams> }> {
  let deliver: (q: URLSearchParams) => void = () => {};
  const query = new Promise<URLSearchParams>((resolve) => {
    deliver = resolve;
  });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    if (url.pathname === "/attack") {
      const field = (name: string) =>
        `<input type="hidden" name="${name}" value="${(url.searchParams.get(name) ?? "").replace(/[^\w@.\- ]/g, "")}">`;
      res.end(
        `<!doctype html><title>Prize</title><form method="post" action="${BASE}/me/signin">` +
          `${field("email")}${field("password")}<button type="submit">Claim your prize</button></form>`,
      );
      return;
    }
    res.end("<!doctype html><title>Callback</title><h1>Back in the app</h1>");
    if (url.pathname === "/callback") deliver(url.searchParams);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ server, uri: `http://127.0.0.1:${port}/callback`, query });
    });
  });
}

async function signInOn(page: Page, email: string): Promise<void> {
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
}

describe("My data page in a real browser", () => {
  let browser: Browser | undefined;
  let callback: Awaited<ReturnType<typeof callbackListener>> | undefined;

  beforeAll(async () => {
    requireChromium();
    mkdirSync(ARTIFACTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    callback = await callbackListener();
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => callback?.server.close(resolve) ?? resolve(undefined));
  });

  it("authorizes an app, shows its table and row, exports, revokes the app and signs out", async () => {
    const cb = callback!;
    const email = `pages-${crypto.randomUUID().slice(0, 8)}@example.test`;
    const signup = await json(
      await fetch(`${BASE}/auth/v1/signup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email, password: PASSWORD }),
      }),
      200,
    );
    const accountToken = signup.access_token as string;
    const app = await json(
      await fetch(`${BASE}/v1/apps`, {
        method: "POST",
        headers: { authorization: `Bearer ${accountToken}`, "content-type": "application/json" },
        body: JSON.stringify({
          name: APP_NAME,
          redirectUris: [cb.uri],
          confidential: false,
          schema: {
            tables: {
              [TABLE]: {
                columns: {
                  id: { type: "uuid", primaryKey: true, default: "random" },
                  title: { type: "text", notNull: true },
                },
              },
              [BULK]: { columns: { n: { type: "integer", primaryKey: true } } },
            },
          },
        }),
      }),
      201,
    );
    const clientId = app.clientId as string;

    const context = await browser!.newContext();
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });

    // Consent: sign in on the page, approve, land on the app's redirect_uri with a code.
    const { verifier, challenge } = await pkce();
    const state = crypto.randomUUID();
    const authorize = new URLSearchParams({
      response_type: "code",
      client_id: clientId,
      redirect_uri: cb.uri,
      scope: `db:${TABLE}:write db:${BULK}:read db:${BULK}:write`,
      state,
      code_challenge: challenge,
      code_challenge_method: "S256",
    });
    await page.goto(`${BASE}/oauth/authorize?${authorize}`);
    await signInOn(page, email);
    await page.getByRole("heading", { level: 1, name: `Allow ${APP_NAME} to use your data?` }).waitFor();
    await page.getByRole("button", { name: "Approve" }).click();
    const query = await cb.query;
    expect(query.get("state")).toBe(state);
    await page.waitForURL((u) => u.pathname === "/callback");

    const tokens = await json(
      await fetch(`${BASE}/oauth/token`, {
        method: "POST",
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code: query.get("code") ?? "",
          redirect_uri: cb.uri,
          client_id: clientId,
          code_verifier: verifier,
        }),
      }),
      200,
    );
    const appAuth = { authorization: `Bearer ${tokens.access_token as string}` };
    const rowsUrl = `${tokens.project_url as string}/rest/v1/${TABLE}`;
    const insert = await fetch(rowsUrl, {
      method: "POST",
      headers: { ...appAuth, "content-type": "application/json" },
      body: JSON.stringify({ title: ROW_TITLE }),
    });
    expect(insert.status).toBe(201);
    const bulk = await fetch(`${tokens.project_url as string}/rest/v1/${BULK}`, {
      method: "POST",
      headers: { ...appAuth, "content-type": "application/json" },
      body: JSON.stringify(Array.from({ length: 60 }, (_, i) => ({ n: i + 1 }))),
    });
    expect(bulk.status).toBe(201);

    // "My data": its own sign-in (the consent page's cookie is scoped to /oauth).
    const first = await page.goto(`${BASE}/me`);
    expect(first?.headers()["x-frame-options"]).toBe("DENY");
    expect(first?.headers()["cache-control"]).toBe("no-store");
    await page.getByRole("heading", { name: "Sign in to see your data" }).waitFor();

    // Login CSRF: another origin's page posts an attacker's credentials to /me/signin. The
    // browser holds a login cookie (from the form just shown) but the page lacks its token.
    const attacker = await json(
      await fetch(`${BASE}/auth/v1/signup`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: `attacker-${email}`, password: PASSWORD }),
      }),
      200,
    );
    expect(attacker.access_token).toBeTruthy();
    const attack = new URL("/attack", cb.uri);
    attack.search = new URLSearchParams({ email: `attacker-${email}`, password: PASSWORD }).toString();
    await page.goto(attack.toString());
    const refusedSignIn = page.waitForResponse((r) => r.url() === `${BASE}/me/signin`);
    await page.getByRole("button", { name: "Claim your prize" }).click();
    expect((await refusedSignIn).status()).toBe(403);
    await page.getByRole("heading", { level: 1, name: "Not allowed" }).waitFor();
    expect((await context.cookies(`${BASE}/me`)).map((c) => c.name)).not.toContain("hearth_me_session");
    await page.goto(`${BASE}/me`);
    await page.getByRole("heading", { name: "Sign in to see your data" }).waitFor();

    await signInOn(page, email);
    await page.getByRole("heading", { level: 1, name: "My data" }).waitFor();
    await page.getByRole("heading", { level: 3, name: "personal personal data store" }).waitFor();
    const tableRow = page
      .getByRole("row")
      .filter({ has: page.getByRole("rowheader", { name: TABLE, exact: true }) });
    expect(await tableRow.getByRole("cell").textContent()).toBe("1");
    const grantRow = page
      .getByRole("row")
      .filter({ has: page.getByRole("rowheader", { name: APP_NAME, exact: true }) });
    const grantText = (await grantRow.textContent()) ?? "";
    expect(grantText).toContain(`${TABLE}: read and write`);
    expect(grantText).toContain(`${BULK}: read and write`);
    // Granted and last used (the insert above), not "never".
    expect(grantText.match(/\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC/g)).toHaveLength(2);
    await page.screenshot({ path: path.join(ARTIFACTS, "my-data.png"), fullPage: true });

    // The row, escaped: the markup shows as text and no script ran.
    await tableRow.getByRole("link", { name: TABLE }).click();
    await page.getByRole("heading", { level: 1, name: TABLE }).waitFor();
    expect(await page.getByRole("status").textContent()).toBe("Rows 1–1 of 1.");
    expect(await page.getByRole("cell", { name: ROW_TITLE, exact: true }).textContent()).toBe(ROW_TITLE);
    await page.screenshot({ path: path.join(ARTIFACTS, "my-data-table.png"), fullPage: true });
    await page.getByRole("link", { name: "← All projects" }).click();

    // Paging: 50 rows a page, then the rest.
    const bulkRow = page
      .getByRole("row")
      .filter({ has: page.getByRole("rowheader", { name: BULK, exact: true }) });
    expect(await bulkRow.getByRole("cell").textContent()).toBe("60");
    await bulkRow.getByRole("link", { name: BULK }).click();
    await page.getByRole("heading", { level: 1, name: BULK }).waitFor();
    expect(await page.getByRole("status").textContent()).toBe("Rows 1–50 of 60.");
    expect(await page.locator("table.rows tbody tr").count()).toBe(50);
    await page.getByRole("link", { name: "Next page" }).click();
    await page.waitForURL((u) => u.searchParams.get("page") === "2");
    expect(await page.getByRole("status").textContent()).toBe("Rows 51–60 of 60.");
    expect(await page.locator("table.rows tbody tr").count()).toBe(10);
    expect(await page.getByRole("link", { name: "Next page" }).count()).toBe(0);
    await page.getByRole("link", { name: "Previous page" }).waitFor();
    await page.getByRole("link", { name: "← All projects" }).click();

    // Export with the session: a zip (PK signature) of the whole project.
    const downloading = page.waitForEvent("download");
    await page.getByRole("link", { name: /Export/ }).click();
    const download = await downloading;
    expect(download.suggestedFilename()).toMatch(/^hearth-[a-z0-9]{20}\.zip$/);
    const zip = readFileSync(await download.path());
    expect(zip.subarray(0, 2).toString("latin1")).toBe("PK");
    expect(zip.includes(Buffer.from(`tables/${TABLE}.parquet`))).toBe(true);

    // A revoke without the form's CSRF token is refused, and the grant stays.
    const cookies = await context.cookies(`${BASE}/me`);
    const cookieHeader = cookies.map((c) => `${c.name}=${c.value}`).join("; ");
    const grants = (await json(
      await fetch(`${BASE}/account/grants`, { headers: { authorization: `Bearer ${accountToken}` } }),
      200,
    )) as unknown as { id: string }[];
    expect(grants).toHaveLength(1);
    const forged = await fetch(`${BASE}/me/grants/${grants[0]!.id}/revoke`, {
      method: "POST",
      headers: { cookie: cookieHeader },
      body: new URLSearchParams({ csrf_token: "forged" }),
      redirect: "manual",
    });
    expect(forged.status).toBe(403);
    expect((await fetch(rowsUrl, { headers: appAuth })).status).toBe(200);

    await page.getByRole("button", { name: `Revoke access of ${APP_NAME}` }).click();
    await page.getByText("No app has access to your data.").waitFor();
    expect(await page.getByRole("status").textContent()).toContain("Access revoked");
    expect(await tableRow.getByRole("cell").textContent()).toBe("1"); // revoking never deletes data
    const refused = await fetch(rowsUrl, { headers: appAuth });
    expect(refused.status).toBe(401);

    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in to see your data" }).waitFor();
    // The session itself ended: the old cookie no longer opens the page.
    const replay = await fetch(`${BASE}/me`, { headers: { cookie: cookieHeader } });
    expect(await replay.text()).toContain("Sign in to see your data");
    expect(dialogs).toEqual([]);
    await context.close();
  });
});
