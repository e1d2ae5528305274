#!/usr/bin/env node
/**
 * Runs one example app against a running Hearth (`npm start`):
 *
 *   npm run example:todo        # http://127.0.0.1:5173
 *   npm run example:today       # http://127.0.0.1:5174
 *   node examples/serve.mjs <todo|today> [--port N] [--hearth URL]
 *
 * It signs in the app's developer account (creating it the first time), registers the app with
 * Hearth if this developer has no app of that name and redirect URI yet (POST /v1/apps, public
 * client, the schema of examples/shared/schema.json), bundles the app with esbuild, and serves
 * it on 127.0.0.1. Each app has its own developer: they only share the user's table.
 * Prints "<Title> ready at <url>" once it listens. Ctrl-C stops it.
 */
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as esbuild from "esbuild";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SCOPES = ["db:com.example.todos:write", "db:com.example.keyring:write"];

const APPS = {
  todo: { title: "Todos", port: 5173, developer: "developer@todos.example" },
  today: { title: "Today", port: 5174, developer: "developer@today.example" },
};

function usage(problem) {
  console.error(
    `${problem}\nusage: node examples/serve.mjs <${Object.keys(APPS).join("|")}> [--port N] [--hearth URL]`,
  );
  process.exit(2);
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { port: { type: "string" }, hearth: { type: "string" } },
});
const name = positionals[0];
const app = APPS[name];
if (!app || positionals.length !== 1) usage(name ? `unknown app "${name}"` : "which app?");
const hearthUrl = (values.hearth ?? process.env.HEARTH_URL ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
const port = values.port === undefined ? app.port : Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port must be 0..65535, not ${values.port}`);
// A local example: the developer's password only guards this machine's dev accounts.
const password = process.env.HEARTH_EXAMPLE_PASSWORD ?? "example developer password";

/** POSTs/GETs JSON to Hearth; throws with the server's error text. */
async function call(method, route, { token, body } = {}) {
  let res;
  try {
    res = await fetch(`${hearthUrl}${route}`, {
      method,
      headers: {
        ...(body ? { "content-type": "application/json" } : {}),
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    throw new Error(
      `Hearth is not reachable at ${hearthUrl} (${err.cause?.code ?? err.message}): start it with npm start`,
    );
  }
  const text = await res.text();
  const json = text ? JSON.parse(text) : null;
  return { status: res.status, json };
}

/** The developer's account token: sign up the first time, sign in afterwards. */
async function developerToken() {
  const creds = { email: app.developer, password };
  const signup = await call("POST", "/auth/v1/signup", { body: creds });
  if (signup.status === 200 && signup.json?.access_token) return signup.json.access_token;
  const signin = await call("POST", "/auth/v1/token?grant_type=password", { body: creds });
  if (signin.status === 200) return signin.json.access_token;
  throw new Error(
    `cannot sign in the example developer ${app.developer}: ${signin.status} ${JSON.stringify(signin.json)}` +
      " (set HEARTH_EXAMPLE_PASSWORD to the password it was created with)",
  );
}

/** The app's client id: the developer's app of this name and redirect URI, registered if missing. */
async function registerApp(token, redirectUri) {
  const list = await call("GET", "/v1/apps", { token });
  if (list.status !== 200)
    throw new Error(`GET /v1/apps answered ${list.status}: ${JSON.stringify(list.json)}`);
  const schema = JSON.parse(await readFile(path.join(HERE, "shared", "schema.json"), "utf8"));
  const existing = list.json.find((a) => a.name === app.title && a.redirectUris.includes(redirectUri));
  if (existing) return existing.clientId;
  const made = await call("POST", "/v1/apps", {
    token,
    body: { name: app.title, redirectUris: [redirectUri], confidential: false, schema },
  });
  if (made.status !== 201)
    throw new Error(`POST /v1/apps answered ${made.status}: ${JSON.stringify(made.json)}`);
  return made.json.clientId;
}

async function bundle() {
  const out = await esbuild.build({
    entryPoints: [path.join(HERE, name, "main.tsx")],
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    jsx: "automatic",
    minify: true,
    sourcemap: "inline",
    define: { "process.env.NODE_ENV": '"production"' },
    write: false,
    logLevel: "silent",
  });
  return out.outputFiles[0].text;
}

function page(config) {
  // JSON in a script element: "<" is escaped so no value can close the element.
  const json = JSON.stringify(config).replace(/</g, "\\u003c");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${app.title}</title>
<link rel="stylesheet" href="/style.css">
<script id="hearth-config" type="application/json">${json}</script>
<script type="module" src="/app.js"></script>
</head>
<body><div id="root"></div></body>
</html>
`;
}

const files = new Map();
const server = createServer((req, res) => {
  const url = new URL(req.url ?? "/", "http://127.0.0.1");
  const route = url.pathname === "/callback" ? "/" : url.pathname;
  const file = req.method === "GET" || req.method === "HEAD" ? files.get(route) : undefined;
  if (!file) {
    res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
    return;
  }
  res.writeHead(200, {
    "content-type": file.type,
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
    ...(route === "/sw.js" ? { "service-worker-allowed": "/" } : {}),
  });
  res.end(req.method === "HEAD" ? undefined : file.body);
});

try {
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
} catch (err) {
  console.error(
    `cannot listen on 127.0.0.1:${port}: ${err.code ?? err.message} (choose another with --port)`,
  );
  process.exit(1);
}
const origin = `http://127.0.0.1:${server.address().port}`;
const redirectUri = `${origin}/callback`;

try {
  const token = await developerToken();
  const clientId = await registerApp(token, redirectUri);
  const config = { app: name, title: app.title, hearthUrl, clientId, redirectUri, scopes: SCOPES };
  files.set("/", { type: "text/html; charset=utf-8", body: page(config) });
  files.set("/app.js", { type: "text/javascript; charset=utf-8", body: await bundle() });
  files.set("/sw.js", {
    type: "text/javascript; charset=utf-8",
    body: await readFile(path.join(HERE, "shared", "sw.js")),
  });
  files.set("/style.css", {
    type: "text/css; charset=utf-8",
    body: await readFile(path.join(HERE, "shared", "style.css")),
  });
  console.log(`${app.title} ready at ${origin}  (Hearth ${hearthUrl}, app ${clientId})`);
} catch (err) {
  console.error(err.message ?? err);
  server.close();
  process.exit(1);
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
