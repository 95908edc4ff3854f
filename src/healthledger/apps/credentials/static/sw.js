// The verifier page's service worker: the page, its script and the ledger's trust list
// and status document are fetched from the network when it answers and from this cache
// when it does not, so the page keeps verifying offline after its first load.
"use strict";
const CACHE = "healthledger-verifier-v1";
const KEPT = [
  "/credentials/verify",
  "/credentials/verifier.js",
  "/api/v1/credentials/trust-list",
  "/api/v1/credentials/status",
  "/static/style.css",
  "/static/console.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(KEPT)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => { event.waitUntil(self.clients.claim()); });
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin || !KEPT.includes(url.pathname)) return;
  event.respondWith(
    fetch(event.request).then((answer) => {
      if (answer.ok) { const copy = answer.clone(); caches.open(CACHE).then((cache) => cache.put(url.pathname, copy)); }
      return answer;
    }).catch(() => caches.match(url.pathname).then((kept) => kept || Response.error()))
  );
});
