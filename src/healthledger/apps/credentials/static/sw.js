// The service worker of the verifier page and of the holder's wallet: the pages, their
// scripts and the ledger's trust list and status document are fetched from the network
// when it answers and from this cache when it does not, so both keep working offline
// after their first load (the wallet's credentials and key live in IndexedDB).
"use strict";
const CACHE = "healthledger-verifier-v2";
const KEPT = [
  "/credentials/verify",
  "/credentials/verifier.js",
  "/credentials/wallet",
  "/credentials/wallet.js",
  "/credentials/wallet_page.js",
  "/credentials/qrcode.js",
  "/api/v1/credentials/trust-list",
  "/api/v1/credentials/status",
  "/static/style.css",
  "/static/console.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(KEPT)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  // An older version's cache goes; the wallet's own data is in IndexedDB, not here.
  const old = caches.keys().then((names) => Promise.all(
    names.filter((n) => n.startsWith("healthledger-verifier-") && n !== CACHE).map((n) => caches.delete(n))));
  event.waitUntil(old.then(() => self.clients.claim()));
});
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
