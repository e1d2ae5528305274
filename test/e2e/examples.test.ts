/**
 * The two example apps (examples/) in a real browser (Debian's chromium driven by
 * playwright-core) against the real `npm start` server, each started with its own command
 * (`node examples/serve.mjs todo|today`): a user signs in to both through Hearth's consent
 * page, makes their key in Todos and unlocks it in Today; a to-do added in Todos appears live in
 * Today with its private notes; Todos goes offline, edits and adds, reloads (the page comes from
 * its service worker, the queue from IndexedDB), comes back online, and everything syncs once:
 * Today shows it, and the rows read raw with the project's service key hold exactly the
 * to-dos written, with ciphertext in `notes`. Screenshots are kept under test/e2e/artifacts/.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CHROMIUM, CHROMIUM_ARGS, requireChromium } from "../../scripts/chromium.mjs";

const BASE = inject("hearthUrl");
const ROOT = path.resolve(import.meta.dirname, "../..");
const ARTIFACTS = path.resolve(import.meta.dirname, "artifacts");
const PASSWORD = "correct horse battery";
const PASSPHRASE = "my kitchen has three windows";
const NOTES = "the oat one, not the almond one";

/** Starts `node examples/serve.mjs <app> --port 0` in its own process group; resolves with its URL. */
function serveExample(app: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ["examples/serve.mjs", app, "--port", "0", "--hearth", BASE], {
    cwd: ROOT,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${app} did not start within 60 s:\n${out}`)), 60_000);
    const read = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /ready at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]! });
      }
    };
    child.stdout!.on("data", read);
    child.stderr!.on("data", read);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${app} exited with ${code}:\n${out}`));
    });
  });
}

function stop(child: ChildProcess | undefined): void {
  if (!child?.pid || child.exitCode !== null) return;
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    // already gone
  }
}

async function api(
  route: string,
  init: RequestInit & { token?: string } = {},
): Promise<Record<string, unknown>> {
  const res = await fetch(`${BASE}${route}`, {
    ...init,
    headers: {
      ...(init.body ? { "content-type": "application/json" } : {}),
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${route} answered ${res.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** Sign in with Hearth → Hearth's sign-in form → consent → back in the app. */
async function signIn(page: Page, appUrl: string, email: string, appName: string): Promise<void> {
  await page.goto(appUrl);
  await page.getByRole("button", { name: "Sign in with Hearth" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { level: 1, name: `Allow ${appName} to use your data?` }).waitFor();
  await page.getByRole("button", { name: "Approve" }).click();
  await page.waitForURL((u) => u.origin === new URL(appUrl).origin && u.pathname === "/");
}

function status(page: Page) {
  return page.getByTestId("sync-status");
}

async function expectStatus(page: Page, state: string, pending: number): Promise<void> {
  const s = status(page);
  await expect
    .poll(async () => [await s.getAttribute("data-status"), await s.getAttribute("data-pending")], {
      timeout: 20_000,
    })
    .toEqual([state, String(pending)]);
}

describe("the example apps in a real browser", () => {
  let browser: Browser | undefined;
  let todo: { child: ChildProcess; url: string } | undefined;
  let today: { child: ChildProcess; url: string } | undefined;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    requireChromium();
    mkdirSync(ARTIFACTS, { recursive: true });
    [todo, today] = await Promise.all([serveExample("todo"), serveExample("today")]);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => {});
    await browser?.close();
    stop(todo?.child);
    stop(today?.child);
  });

  it("shares one user's to-dos between two apps: live, offline, and encrypted at rest", async () => {
    const email = `examples-${crypto.randomUUID().slice(0, 8)}@example.test`;
    const signup = await api("/auth/v1/signup", {
      method: "POST",
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    const userToken = signup.access_token as string;

    // Two browser profiles: going offline in one leaves the other online.
    const [ctxA, ctxB] = [await browser!.newContext(), await browser!.newContext()];
    contexts.push(ctxA, ctxB);
    const a = await ctxA.newPage();
    const b = await ctxB.newPage();
    const errors: string[] = [];
    for (const p of [a, b]) p.on("pageerror", (e) => errors.push(e.message));

    // Todos: sign in, consent, make the key (the recovery phrase is shown once).
    await signIn(a, todo!.url, email, "Todos");
    await a.getByRole("heading", { name: "Protect your private notes" }).waitFor();
    await a.getByLabel("Passphrase", { exact: true }).fill(PASSPHRASE);
    await a.getByLabel("Passphrase again").fill(PASSPHRASE);
    await a.getByRole("button", { name: "Create my key" }).click();
    const phrase = await a.getByTestId("recovery-phrase").textContent();
    expect(phrase?.trim().split(/\s+/)).toHaveLength(24);
    await a.getByRole("button", { name: "I wrote it down" }).click();
    await expectStatus(a, "live", 0);

    // Today: another app, another developer; the same user unlocks the same key.
    await signIn(b, today!.url, email, "Today");
    await b.getByRole("heading", { name: "Unlock your private notes" }).waitFor();
    await b.getByLabel("Passphrase", { exact: true }).fill(PASSPHRASE);
    await b.getByRole("button", { name: "Unlock" }).click();
    await expectStatus(b, "live", 0);
    await b.getByText("Nothing due. Enjoy the day.").waitFor();

    // Added in Todos, shown live in Today, notes decrypted there.
    await a.getByLabel("New to-do").fill("Buy milk");
    await a.getByLabel("Private notes (encrypted)").fill(NOTES);
    await a.getByRole("button", { name: "Add" }).click();
    const bMilk = b.locator("li.todo", { hasText: "Buy milk" });
    await bMilk.waitFor({ timeout: 20_000 });
    await expect.poll(() => bMilk.locator(".notes").textContent()).toBe(NOTES);
    await expectStatus(a, "live", 0);

    // The service worker must hold the shell before the network goes.
    await a.waitForSelector("html[data-offline-ready=true]");

    // Offline in Todos: edit one, add one; both wait in the queue.
    await ctxA.setOffline(true);
    await expectStatus(a, "offline", 0);
    await a.getByRole("button", { name: "Edit Buy milk" }).click();
    await a.getByLabel("Title").fill("Buy oat milk");
    await a.getByRole("button", { name: "Save" }).click();
    await a.getByLabel("New to-do").fill("Call the plumber");
    await a.getByRole("button", { name: "Add" }).click();
    await expectStatus(a, "offline", 2);

    // The server has seen neither.
    const projects = (await fetch(`${BASE}/v1/projects`, {
      headers: { authorization: `Bearer ${userToken}` },
    }).then((r) => r.json())) as { id: string; personal: boolean }[];
    const personal = projects.find((p) => p.personal)!;
    const project = await api(`/v1/projects/${personal.id}`, { token: userToken });
    const raw = async () => {
      const res = await fetch(`${project.url as string}/rest/v1/com.example.todos?select=*&order=title`, {
        headers: {
          apikey: project.serviceKey as string,
          authorization: `Bearer ${project.serviceKey as string}`,
        },
      });
      expect(res.status).toBe(200);
      return (await res.json()) as { id: string; title: string; done: boolean; notes: string | null }[];
    };
    expect((await raw()).map((r) => r.title)).toEqual(["Buy milk"]);

    // Reload while offline: the shell from the service worker, the rows and queue from IndexedDB.
    await a.reload();
    await expectStatus(a, "offline", 2);
    await a.locator("li.todo", { hasText: "Buy oat milk" }).waitFor();
    await a.locator("li.todo", { hasText: "Call the plumber" }).waitFor();
    await a.screenshot({ path: path.join(ARTIFACTS, "examples-todo-offline.png") });

    // Back online: the queue drains once; Today shows both.
    await ctxA.setOffline(false);
    await expectStatus(a, "live", 0);
    await b.locator("li.todo", { hasText: "Buy oat milk" }).waitFor({ timeout: 20_000 });
    await b.locator("li.todo", { hasText: "Call the plumber" }).waitFor({ timeout: 20_000 });
    await expect
      .poll(() => b.locator("li.todo", { hasText: "Buy oat milk" }).locator(".notes").textContent())
      .toBe(NOTES);
    await b.screenshot({ path: path.join(ARTIFACTS, "examples-today.png") });

    // And the other way: ticked off in Today, shown done in Todos.
    // (Today lists open to-dos only: the ticked one leaves the list.)
    await b.locator("li.todo", { hasText: "Call the plumber" }).getByRole("checkbox").click();
    await b.locator("li.todo", { hasText: "Call the plumber" }).waitFor({ state: "detached" });
    await expect
      .poll(() => a.locator("li.todo.done", { hasText: "Call the plumber" }).count(), { timeout: 20_000 })
      .toBe(1);
    await expectStatus(b, "live", 0);

    // Raw rows through the service key: exactly the two to-dos, notes as ciphertext only.
    const rows = await raw();
    expect(rows.map((r) => r.title)).toEqual(["Buy oat milk", "Call the plumber"]);
    const milk = rows[0]!;
    expect(milk.notes).toMatch(/^hearth:e1:[A-Za-z0-9_-]+$/);
    expect(milk.notes).not.toContain("oat one");
    expect(rows[1]).toMatchObject({ done: true, notes: null });
    const keyring = await fetch(`${project.url as string}/rest/v1/com.example.keyring?select=envelope`, {
      headers: {
        apikey: project.serviceKey as string,
        authorization: `Bearer ${project.serviceKey as string}`,
      },
    }).then((r) => r.json());
    expect(JSON.stringify(keyring)).not.toContain(PASSPHRASE);
    expect(errors).toEqual([]);
  });
});
