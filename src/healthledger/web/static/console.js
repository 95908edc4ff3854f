// healthledger console: live dashboard updates (server-sent events) and an
// in-browser check of a transaction's RFC 9162 inclusion proof. No dependencies.
"use strict";

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function short(text, keep) {
  return text.length <= keep + 1 ? text : text.slice(0, keep) + "\u2026";
}

// A moment in the console's zone, as the server writes it: "2026-12-07 20:05:31 CST (UTC+08:00)".
function formatMs(ms) {
  const zone = document.body.dataset.zone || "UTC";
  const suffix = document.body.dataset.zoneSuffix || "UTC";
  try {
    const local = new Intl.DateTimeFormat("sv-SE", {
      timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    }).format(new Date(ms));
    return local + " " + suffix;
  } catch (error) {
    return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }
}

function codeBadge(code) {
  return el("span", { class: "badge " + (code === "VALID" ? "good" : "bad"), "data-code": code }, code);
}

// --- live dashboard ------------------------------------------------------------------

function followBlocks(live) {
  const status = document.getElementById("live-status");
  if (!window.EventSource) return;
  const source = new EventSource("/api/v1/events?after=" + encodeURIComponent(live.dataset.after));
  source.addEventListener("open", () => { status.textContent = "Live: new blocks appear as they commit."; });
  source.addEventListener("error", () => { status.textContent = "Live updates paused; retrying\u2026"; });
  source.addEventListener("block", (message) => {
    const block = JSON.parse(message.data);
    document.getElementById("height").textContent = String(block.height + 1);
    const hash = document.getElementById("head-hash");
    hash.textContent = short(block.hash, 20);
    hash.title = block.hash;
    document.getElementById("head-time").textContent = formatMs(block.timestamp);
    const size = document.getElementById("log-size");
    size.textContent = String(Number(size.textContent) + block.tx_count);
    const root = document.getElementById("log-root");
    if (root) { root.textContent = "(updated — reload for the new root)"; root.title = ""; }
    addBlockRow(block);
    addCodeCounts(block.codes);
  });
}

function addBlockRow(block) {
  const body = document.getElementById("recent-blocks");
  const row = el("tr", { class: "flash" });
  const head = el("th", { scope: "row" });
  head.append(el("a", { href: "/blocks/" + block.height }, String(block.height)));
  const hash = el("td");
  hash.append(el("code", { title: block.hash }, short(block.hash, 16)));
  const codes = el("td");
  for (const [code, n] of Object.entries(block.codes).sort()) {
    codes.append(codeBadge(code), document.createTextNode(" \u00d7 " + n + " "));
  }
  row.append(head, hash, el("td", { class: "num" }, String(block.tx_count)), codes,
             el("td", {}, formatMs(block.timestamp)));
  body.prepend(row);
  while (body.rows.length > 10) body.deleteRow(body.rows.length - 1);
}

function addCodeCounts(codes) {
  const body = document.querySelector("#code-counts tbody");
  for (const [code, n] of Object.entries(codes)) {
    let row = body.querySelector('tr[data-code="' + code + '"]');
    if (!row) {
      row = el("tr", { "data-code": code });
      const head = el("th", { scope: "row" });
      head.append(codeBadge(code));
      row.append(head, el("td", { class: "num" }, "0"));
      body.append(row);
    }
    const cell = row.querySelector("td");
    cell.textContent = String(Number(cell.textContent) + n);
  }
}

// --- inclusion proof, checked here -----------------------------------------------------

// The canonical JSON profile: sorted ASCII keys, compact, integers only.
function canonical(value) {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return "[" + value.map(canonical).join(",") + "]";
  return "{" + Object.keys(value).sort().map((k) => JSON.stringify(k) + ":" + canonical(value[k])).join(",") + "}";
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function concat(prefix, ...parts) {
  const out = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0));
  out[0] = prefix;
  let at = 1;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// RFC 9162 section 2.1.3.2.
async function rootFromInclusionProof(index, size, leaf, path) {
  if (index >= size) throw new Error("leaf index is not below the tree size");
  let fn = index, sn = size - 1, r = leaf;
  for (const p of path) {
    if (sn === 0) throw new Error("the proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(1, p, r));
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await sha256(concat(1, r, p));
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the proof is too short");
  return r;
}

async function checkProof(data) {
  const proof = data.proof;
  const txHash = await sha256(new TextEncoder().encode(canonical(data.transaction)));
  const leaf = await sha256(concat(0, txHash));
  if (toHex(leaf) !== toHex(fromBase64(proof.leafHash))) {
    return [false, "the transaction shown does not hash to the proof's leaf"];
  }
  const root = await rootFromInclusionProof(proof.leafIdx, proof.treeSize, leaf, proof.proof.map(fromBase64));
  if (toHex(root) !== toHex(fromBase64(proof.root))) {
    return [false, "the audit path does not lead to the proof's root"];
  }
  if (proof.treeSize === data.headSize && toHex(root) !== data.headRoot) {
    return [false, "the root differs from the log root in the head block's header"];
  }
  return [true, "transaction hash " + short(toHex(txHash), 16) + " \u2192 leaf \u2192 root " +
    short(toHex(root), 16) + ", which is the log root in the head block's header (" + proof.treeSize + " entries)."];
}

function setupProofCheck(button) {
  const data = JSON.parse(document.getElementById("proof-data").textContent);
  const box = document.getElementById("client-check");
  const text = document.getElementById("client-check-text");
  button.addEventListener("click", async () => {
    try {
      const [ok, reason] = await checkProof(data);
      box.className = "verdict " + (ok ? "good" : "bad");
      text.textContent = (ok ? "verified — " : "not verified — ") + reason;
    } catch (error) {
      box.className = "verdict bad";
      text.textContent = "not verified — " + error.message;
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const live = document.getElementById("live");
  if (live) followBlocks(live);
  const button = document.getElementById("check-in-browser");
  if (button) setupProofCheck(button);
});
