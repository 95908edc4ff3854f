// The holder's wallet: credentials kept in this browser (IndexedDB), an ES256 key pair
// made here with WebCrypto whose private key cannot be exported, a credential claimed
// from an issuer's one-time link bound to that key, and presentations of an SD-JWT VC
// that disclose only the claims the holder ticks, with a Key Binding JWT (RFC 9901
// section 4.3) over the verifier's nonce and audience. Needs verifier.js (decoding and
// verification against the ledger's lists) and qrcode.js (QR codes, offline).
"use strict";

(function () {
  const V = window.HealthledgerVerifier;
  const DB = "healthledger-wallet";
  const KEYS = "keys", CARDS = "credentials";
  const PROOF_TYP = "openid4vci-proof+jwt";
  const FORMATS = { "sd-jwt-vc": "SD-JWT credential", dcc: "EU Digital COVID Certificate", shc: "SMART Health Card" };

  // --- storage -------------------------------------------------------------------------
  function open() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB, 1);
      request.onupgradeneeded = () => {
        request.result.createObjectStore(KEYS);
        request.result.createObjectStore(CARDS, { keyPath: "id" });
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }
  async function tx(store, mode, work) {
    const db = await open();
    return new Promise((resolve, reject) => {
      const t = db.transaction(store, mode);
      const result = work(t.objectStore(store));
      t.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error || new Error("the wallet's storage refused the change"));
    });
  }
  const cards = () => tx(CARDS, "readonly", (s) => s.getAll());
  const keep = (card) => tx(CARDS, "readwrite", (s) => s.put(card));
  const forget = (id) => tx(CARDS, "readwrite", (s) => s.delete(id));

  // --- the holder's key ----------------------------------------------------------------
  async function holderKey() {
    const found = await tx(KEYS, "readonly", (s) => s.get("holder"));
    if (found) return found;
    const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
    const full = await crypto.subtle.exportKey("jwk", pair.publicKey);
    const jwk = { kty: full.kty, crv: full.crv, x: full.x, y: full.y };
    const made = { privateKey: pair.privateKey, jwk, thumbprint: await thumbprint(jwk) };
    await tx(KEYS, "readwrite", (s) => s.put(made, "holder"));
    return made;
  }
  async function thumbprint(jwk) {
    const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y });
    return V.b64url(await V.sha256(V.ascii(canonical)));
  }
  async function signJwt(header, payload, privateKey) {
    const input = V.b64url(V.ascii(JSON.stringify({ ...header, alg: "ES256" }))) + "." + V.b64url(V.ascii(JSON.stringify(payload)));
    const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, V.ascii(input));
    return input + "." + V.b64url(signature);
  }
  const now = () => Math.floor(Date.now() / 1000);

  // --- receiving -----------------------------------------------------------------------
  // A claim link (#claim=TOKEN): prove possession of the key, receive the three texts.
  async function claim(token) {
    const key = await holderKey();
    const proof = await signJwt({ typ: PROOF_TYP, jwk: key.jwk }, { nonce: token, iat: now() }, key.privateKey);
    let answer;
    try {
      answer = await fetch("/api/v1/credentials/claims/" + encodeURIComponent(token), {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ proof }),
      });
    } catch (e) { throw new Error("The issuer could not be reached: claim the certificate when you are online."); }
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(body.detail || body.title || "The issuer refused the claim (" + answer.status + ").");
    const card = { id: body.credential.credential_id, texts: body.texts, issuer: body.issuer, received: now(), bound: key.thumbprint };
    await keep(card);
    return card;
  }
  // A pasted or scanned text: one encoding of a credential, kept as it is.
  async function receiveText(text, lists) {
    const t = text.trim();
    const format = /^HC1:/i.test(t) ? "dcc" : t.startsWith("shc:/") ? "shc" : t.includes("~") ? "sd-jwt-vc" : null;
    if (!format) throw new Error("This is not a health certificate: neither an EU DCC (HC1:), a SMART Health Card (shc:/) nor an SD-JWT credential.");
    const verdict = await V.verifyText(t, lists);
    if (!verdict.format) throw new Error("This certificate cannot be read: " + verdict.reasons.map((r) => r.message).join("; ") + ".");
    const id = "pasted-" + V.b64url(await V.sha256(V.ascii(t))).slice(0, 16);
    const card = { id, texts: { [format]: t }, received: now(), bound: null };
    if (format === "sd-jwt-vc") {
      const claims = JSON.parse(V.utf8(V.b64urlBytes(t.split(".")[1])));
      const key = await holderKey();
      card.bound = claims.cnf && claims.cnf.jwk && claims.cnf.jwk.x === key.jwk.x ? key.thumbprint : null;
    }
    await keep(card);
    return card;
  }

  // --- reading a credential ------------------------------------------------------------
  // What the card shows: from the SD-JWT's Disclosures (all of them: the holder has
  // them) or else from the verified DCC or SMART Health Card.
  async function describe(card, lists, names) {
    const first = card.texts["sd-jwt-vc"] || card.texts.dcc || card.texts.shc;
    const verdict = await V.verifyText(first, lists);
    const out = { verdict, claims: null, title: "Health certificate", rows: [] };
    if (card.texts["sd-jwt-vc"]) {
      try {
        out.claims = {};
        V.sdJwtParts(card.texts["sd-jwt-vc"]).disclosures.forEach((d) => { out.claims[d.name] = d.value; });
      } catch (e) { out.claims = null; }
    }
    const c = out.claims;
    if (c) {
      out.name = `${c.given_name || ""} ${c.family_name || ""}`.trim();
      if (c.vaccine) { out.title = `COVID-19 vaccination, dose ${c.dose} of ${c.doses}`; out.rows.push(["Vaccine", c.vaccine], ["Given on", localDate(c.vaccination_date)]); }
      else if (c.result) { out.title = `COVID-19 test: ${c.result.toLowerCase()}`; out.rows.push(["Sample taken", localDate(c.collected_at)]); }
      else if (c.valid_until) { out.title = "COVID-19 recovery"; out.rows.push(["Valid", `${localDate(c.valid_from)} to ${localDate(c.valid_until)}`]); }
      out.rows.push(["Born", localDate(c.birthdate)]);
    } else if (verdict.holder) {
      out.name = verdict.holder.name;
      out.title = readableFacts(verdict.facts || "", names);
      out.rows.push(["Born", localDate(verdict.holder.birth)]);
    }
    if (verdict.issuer) out.rows.push(["Issued by", verdict.issuer]);
    return out;
  }
  function localDate(value) {
    if (!value || !/^\d{4}-\d{2}-\d{2}/.test(String(value))) return value || "";
    const [y, m, d] = String(value).slice(0, 10).split("-").map(Number);
    return new Intl.DateTimeFormat(undefined, { dateStyle: "long" }).format(new Date(y, m - 1, d));
  }
  function readableFacts(facts, names) {
    let text = facts;
    Object.entries(names.product).forEach(([code, name]) => { text = text.split(code).join(name); });
    return text.replace(/\b(\d{4}-\d{2}-\d{2})(T[\d:.+Z-]*)?\b/g, (day) => localDate(day));
  }

  // --- presenting ----------------------------------------------------------------------
  // The verifier's request: its QR text (JSON with aud and nonce) or a code typed in,
  // then for this ledger's own verifier page.
  function parseRequest(text) {
    const t = (text || "").trim();
    if (!t) throw new Error("Enter the code the verifier shows, or paste its request.");
    if (t.startsWith("{")) {
      let r;
      try { r = JSON.parse(t); } catch (e) { throw new Error("The verifier's request cannot be read."); }
      if (typeof r.nonce !== "string" || typeof r.aud !== "string") throw new Error("The verifier's request names no nonce and audience.");
      return { aud: r.aud, nonce: r.nonce };
    }
    if (!/^[A-Za-z0-9_-]{6,64}$/.test(t)) throw new Error("The verifier's code is letters and digits only.");
    return { aud: location.origin + "/credentials/verify", nonce: t.toUpperCase() };
  }
  // RFC 9901 section 4.3: the issuer's JWT, the chosen Disclosures, then a KB-JWT over
  // the SHA-256 of everything before it.
  async function present(card, chosen, request) {
    const split = V.sdJwtParts(card.texts["sd-jwt-vc"]);
    const kept = split.disclosures.filter((d) => chosen.includes(d.name)).map((d) => d.text);
    const presented = [split.jwt, ...kept].join("~") + "~";
    if (!card.bound) return presented;
    const key = await holderKey();
    if (card.bound !== key.thumbprint) throw new Error("This credential is bound to another wallet's key.");
    const sdHash = V.b64url(await V.sha256(V.ascii(presented)));
    const body = { iat: now(), aud: request.aud, nonce: request.nonce, sd_hash: sdHash };
    return presented + await signJwt({ typ: "kb+jwt" }, body, key.privateKey);
  }

  window.HealthledgerWallet = { cards, keep, forget, holderKey, claim, receiveText, describe, present, parseRequest, localDate, FORMATS };
})();
