/*
 * The offline app shell: the page, its script and its style are answered from the network
 * when there is one (and kept), from this cache when there is none. Only this origin's GETs
 * are handled; requests to Hearth (another origin) pass through untouched.
 */
const CACHE = "hearth-example-shell-v1";
const SHELL = ["/", "/app.js", "/style.css"];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin) return;
  // Every page of the app is the same shell (the sign-in callback too).
  const key = request.mode === "navigate" ? "/" : url.pathname;
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok && SHELL.includes(key)) {
          const copy = response.clone();
          void caches.open(CACHE).then((cache) => cache.put(key, copy));
        }
        return response;
      })
      .catch(() => caches.match(key).then((hit) => hit ?? Response.error())),
  );
});
