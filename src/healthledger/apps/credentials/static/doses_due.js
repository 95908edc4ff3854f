// The wallet's "Doses due" section: after the wallet draws its credentials, the newest
// vaccination credential bound to this wallet's key is presented (no claim disclosed,
// a Key Binding JWT for the doses-due audience) to POST /api/v1/credentials/doses-due,
// and each vaccine's schedule is drawn: doses that count, the next dose and when it is
// due. Only this wallet's key can ask; nothing is kept. Needs verifier.js and wallet.js.
"use strict";

(function () {
  const V = window.HealthledgerVerifier, W = window.HealthledgerWallet;
  const AUDIENCE = "healthledger:credentials:doses-due";
  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    children.forEach((c) => node.append(c));
    return node;
  }
  function isVaccination(card) {
    const text = card.texts && card.texts["sd-jwt-vc"];
    if (!card.bound || !text) return false;
    try { return V.sdJwtParts(text).disclosures.some((d) => d.name === "vaccine"); } catch (e) { return false; }
  }
  function show(...children) {
    const body = $("doses-due-body");
    body.textContent = "";
    children.forEach((c) => body.append(c));
    $("doses-due").hidden = false;
  }
  function nonce() {
    const bytes = crypto.getRandomValues(new Uint8Array(12));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function series(item) {
    const next = item.next;
    const line = el("li", { className: "due-" + item.status });
    line.dataset.vaccine = item.vaccine;
    line.dataset.status = item.status;
    line.append(el("strong", { textContent: item.name }), " — ", el("span", { className: "due-status", textContent: item.status_title }));
    const given = item.doses.map((d) => W.localDate(d)).join(", ");
    line.append(el("br"), el("span", { className: "muted", textContent: `Doses that count: ${given}.` }));
    if (item.too_early.length) {
      line.append(el("br"), el("span", { className: "muted", textContent: `Given too early, so not counted: ${item.too_early.map((d) => W.localDate(d)).join(", ")}.` }));
    }
    if (next && item.status !== "complete") {
      const when = item.status === "overdue" ? `overdue since ${W.localDate(next.overdue_from)}`
        : item.status === "due" ? `due since ${W.localDate(next.due)}, overdue from ${W.localDate(next.overdue_from)}`
        : `due on ${W.localDate(next.due)} (not before ${W.localDate(next.earliest)})`;
      line.append(el("br"), el("span", { className: "due-next", textContent: `${next.label}: ${when}.` }));
    } else if (next) {
      line.append(el("br"), el("span", { className: "muted", textContent: `${next.label} from ${W.localDate(next.due)}.` }));
    }
    return line;
  }

  async function refresh(cards) {
    const card = cards.filter(isVaccination).sort((a, b) => b.received - a.received)[0];
    if (!card) { $("doses-due").hidden = true; return; }
    if (!navigator.onLine) { show(el("p", { className: "muted", textContent: "Connect to the network to see which doses are due." })); return; }
    try {
      const presentation = await W.present(card, [], { aud: AUDIENCE, nonce: nonce() });
      const answer = await fetch("/api/v1/credentials/doses-due", {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ presentation }),
      });
      const body = await answer.json().catch(() => ({}));
      if (!answer.ok) throw new Error(body.detail || body.title || "The ledger did not answer (" + answer.status + ").");
      const pending = body.series.filter((s) => s.status === "due" || s.status === "overdue").length;
      show(
        el("p", { className: pending ? "notice error" : "notice", textContent: pending
          ? `${pending === 1 ? "A dose is" : pending + " doses are"} due. Ask your hospital or vaccination site.`
          : "No dose is due now." }),
        el("ul", { className: "doses-due", id: "doses-due-list" }, ...body.series.map(series)),
        el("p", { className: "muted", textContent: `From your vaccinations on the ledger, as of ${W.localDate(body.as_of)}, by schedules ${body.schedules_version}. Only this wallet's key can ask for them.` }));
    } catch (e) {
      show(el("p", { className: "muted", textContent: "Doses due cannot be shown now: " + e.message }));
    }
  }

  document.addEventListener("wallet:rendered", (event) => { refresh(event.detail.cards); });
})();
