// The wallet page: lists the credentials kept in this browser, receives one (a claim
// link, a pasted text, a photo of its QR code) and presents one (an SD-JWT with the
// claims the holder ticks and a Key Binding JWT; an EU DCC or SMART Health Card as
// issued). The work is wallet.js's; this file only draws.
"use strict";

(function () {
  const V = window.HealthledgerVerifier, W = window.HealthledgerWallet, Q = window.HealthledgerQr;
  const NAMES = window.WALLET_NAMES || { product: {}, manufacturer: {}, cvx: {} };
  const LABELS = { given_name: "Given name", family_name: "Family name", birthdate: "Date of birth", target: "Disease",
    vaccine: "Vaccine", manufacturer: "Manufacturer", dose: "Dose number", doses: "Doses in the series",
    vaccination_date: "Date of vaccination", country: "Country", test_type: "Type of test", result: "Result",
    collected_at: "Sample taken", test_centre: "Test centre", first_positive: "First positive test",
    valid_from: "Valid from", valid_until: "Valid until" };
  const $ = (id) => document.getElementById(id);
  let lists = null, showing = null;

  function notice(text, error) {
    const box = $("notice");
    box.hidden = !text; box.textContent = text || ""; box.className = "notice" + (error ? " error" : "");
  }
  async function ensureLists() {
    if (lists) return lists;
    lists = await V.loadLists(navigator.onLine);
    return lists;
  }
  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    Object.assign(node, props || {});
    children.forEach((c) => node.append(c));
    return node;
  }
  function verdictWords(verdict) {
    if (verdict.valid) return ["Valid", "valid"];
    const codes = verdict.reasons.map((r) => r.code);
    if (codes.includes("REVOKED")) return ["Revoked by its issuer", "refused"];
    if (codes.includes("EXPIRED")) return ["Expired", "refused"];
    if (codes.includes("UNKNOWN_ISSUER")) return ["Issuer not on the trust list", "refused"];
    if (codes.includes("STATUS_STALE")) return ["Status not checked recently", "refused"];
    return ["Cannot be verified: " + verdict.reasons.map((r) => r.message).join("; "), "refused"];
  }

  async function render() {
    const list = $("cards");
    list.textContent = "";
    const kept = await W.cards();
    $("empty").hidden = kept.length > 0;
    try { await ensureLists(); } catch (e) { notice(e.message, true); return; }
    for (const card of kept.sort((a, b) => b.received - a.received)) {
      const about = await W.describe(card, lists, NAMES);
      const [word, tone] = verdictWords(about.verdict);
      const rows = el("dl");
      about.rows.forEach(([k, v]) => { if (v) rows.append(el("dt", { textContent: k }), el("dd", { textContent: v })); });
      const show = el("button", { type: "button", textContent: "Show" });
      show.addEventListener("click", () => openPresent(card, about));
      const remove = el("button", { type: "button", textContent: "Remove", className: "secondary" });
      remove.addEventListener("click", async () => {
        if (!confirm("Remove this certificate from the wallet?")) return;
        await W.forget(card.id); closePresent(); render();
      });
      const formats = Object.keys(card.texts).map((f) => W.FORMATS[f]).join(", ");
      const item = el("li", { className: "wallet-card" },
        el("h3", { textContent: about.title }),
        el("p", { className: "who", textContent: about.name || "" }),
        rows,
        el("p", {}, el("span", { className: "badge " + tone, textContent: word })),
        el("p", { className: "muted", textContent: formats + (card.bound ? " · bound to this wallet's key" : "") }),
        el("div", { className: "actions" }, show, remove));
      item.dataset.credential = card.id;
      item.dataset.valid = about.verdict.valid ? "true" : "false";
      list.append(item);
    }
    document.dispatchEvent(new CustomEvent("wallet:rendered", { detail: { cards: kept } }));
  }

  // --- presenting ----------------------------------------------------------------------
  function openPresent(card, about) {
    showing = { card, about, format: card.texts["sd-jwt-vc"] ? "sd-jwt-vc" : Object.keys(card.texts)[0] };
    $("present").hidden = false;
    $("present-what").textContent = `${about.title}${about.name ? ", " + about.name : ""}.`;
    const group = $("present-formats");
    group.textContent = "";
    Object.keys(card.texts).forEach((format) => {
      const b = el("button", { type: "button", textContent: W.FORMATS[format], className: "secondary" });
      b.dataset.format = format;
      b.addEventListener("click", () => { showing.format = format; drawFormat(); });
      group.append(b);
    });
    drawFormat();
    $("present").scrollIntoView({ block: "start" });
  }
  function drawFormat() {
    const { card, about, format } = showing;
    $("present-formats").querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.format === format)));
    $("shown").hidden = true;
    const selective = format === "sd-jwt-vc" && about.claims;
    $("present-sd").hidden = !selective;
    if (!selective) {
      showQr(card.texts[format], `As issued: it shows everything on it (${W.FORMATS[format]} has no choice of what to show).`);
      return;
    }
    const box = $("claims");
    box.textContent = "";
    Object.entries(about.claims).forEach(([name, value]) => {
      // Who you are is not shown unless ticked: the key binding already proves the
      // certificate is this wallet's.
      const shown = !(name === "birthdate" || name.endsWith("_name"));
      const check = el("input", { type: "checkbox", name: "claim", value: name, checked: shown });
      check.setAttribute("aria-label", LABELS[name] || name);
      const shownValue = /date|_at$|valid_|first_positive/.test(name) ? W.localDate(value) : String(value);
      box.append(el("label", {}, check, el("span", { textContent: LABELS[name] || name }), el("span", { className: "value", textContent: shownValue })));
    });
  }
  function showQr(text, note) {
    let drawn;
    try { drawn = Q.svg(text, "QR code to show the verifier"); }
    catch (e) { notice("This is too long for one QR code: show the text instead.", true); drawn = { markup: "", version: 0 }; }
    $("shown-qr").innerHTML = drawn.markup;
    $("shown-text").value = text;
    $("shown-note").textContent = note;
    $("shown").hidden = false;
  }
  function closePresent() { showing = null; $("present").hidden = true; $("shown").hidden = true; }

  $("make").addEventListener("click", async () => {
    notice("");
    try {
      const chosen = Array.from($("claims").querySelectorAll("input:checked"), (c) => c.value);
      if (!chosen.length) throw new Error("Tick at least one thing to show.");
      const card = showing.card;
      const request = card.bound ? W.parseRequest($("request").value) : null;
      const text = await W.present(card, chosen, request);
      const what = chosen.map((n) => (LABELS[n] || n).toLowerCase()).join(", ");
      showQr(text, card.bound
        ? `Shows only: ${what}. Signed with this wallet's key for the verifier's code ${request.nonce}; valid for 5 minutes.`
        : `Shows only: ${what}. This certificate is not bound to this wallet's key, so the verifier cannot tell it is yours.`);
    } catch (e) { notice(e.message, true); }
  });
  $("close").addEventListener("click", closePresent);

  // --- receiving -----------------------------------------------------------------------
  async function addText(text) {
    notice("");
    try {
      const claimLink = /^https?:\/\/[^#\s]+\/credentials\/wallet#claim=[A-Za-z0-9_-]+$/.test(text.trim()) ? new URL(text.trim()) : null;
      if (claimLink) {  // a photo of an issuer's claim QR code: open it here
        if (claimLink.origin !== location.origin) throw new Error("This claim link is for another ledger's wallet: open it with your phone's camera instead.");
        location.replace(claimLink.href); location.reload();
        return null;
      }
      await ensureLists();
      const card = await W.receiveText(text, lists);
      $("paste").value = "";
      notice("Added to your wallet.");
      await render();
      return card;
    } catch (e) { notice(e.message, true); return null; }
  }
  $("add").addEventListener("click", () => addText($("paste").value));
  async function qrFromPhoto(file) {
    const read = await V.qrFromPhoto(file);
    if (read.text) return read.text;
    const reason = (read.verdict.reasons || [])[0];
    throw new Error(reason ? reason.message : "No QR code could be read in this photo.");
  }
  $("photo").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try { await addText(await qrFromPhoto(file)); } catch (e) { notice(e.message, true); }
    event.target.value = "";
  });
  $("request-photo").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try { $("request").value = await qrFromPhoto(file); notice("The verifier's request is read: make the QR code."); }
    catch (e) { notice(e.message, true); }
  });

  async function start() {
    try {
      const key = await W.holderKey();
      $("thumbprint").textContent = key.thumbprint.slice(0, 16);
    } catch (e) { notice("This browser cannot keep a wallet key (" + e.message + ").", true); return; }
    const token = new URLSearchParams(location.hash.slice(1)).get("claim");
    if (token) {
      notice("Receiving the certificate…");
      try {
        await W.claim(token);
        notice("The certificate is in your wallet, bound to this wallet's key.");
      } catch (e) { notice(e.message, true); }
      history.replaceState(null, "", location.pathname);
    }
    await render();
  }
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/credentials/sw.js", { scope: "/credentials/wallet" });
  start();
})();
