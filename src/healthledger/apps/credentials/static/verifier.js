// The public credential verifier, in the browser: EU DCC (HC1:), SMART Health Cards
// (shc:/) and SD-JWT VC, verified here with WebCrypto (ES256) against the ledger's
// signed trust list and status document, cached for offline use. Reason codes are the
// ones the Python verifier answers (docs/credentials.md).
"use strict";

const TRUST_URL = "/api/v1/credentials/trust-list";
const STATUS_URL = "/api/v1/credentials/status";
const STORE = "healthledger-credential-lists";
const MAX_STATUS_AGE = 86400;

// --- bytes -------------------------------------------------------------------------
function b64urlBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
function b64Bytes(text) { return Uint8Array.from(atob(text), (c) => c.charCodeAt(0)); }
function utf8(bytes) { return new TextDecoder().decode(bytes); }
function ascii(text) { return new TextEncoder().encode(text); }
function hex(bytes) { return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join(""); }
function b64url(bytes) {
  let bin = ""; new Uint8Array(bytes).forEach((b) => { bin += String.fromCharCode(b); });
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
async function inflate(bytes, format) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream(format));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
async function sha256(bytes) { return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)); }

class Refused extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

// --- Base45 (RFC 9285) and CBOR ------------------------------------------------------
const B45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
function base45(text) {
  const out = [];
  for (let i = 0; i < text.length; i += 3) {
    const chunk = text.slice(i, i + 3).split("").map((c) => B45.indexOf(c));
    if (chunk.some((v) => v < 0) || chunk.length === 1) throw new Refused("MALFORMED_BASE45", "not Base45");
    const n = chunk.reduce((acc, v, k) => acc + v * 45 ** k, 0);
    if (chunk.length === 3) { if (n > 0xffff) throw new Refused("MALFORMED_BASE45", "not Base45"); out.push(n >> 8, n & 0xff); }
    else { if (n > 0xff) throw new Refused("MALFORMED_BASE45", "not Base45"); out.push(n); }
  }
  return new Uint8Array(out);
}
function cbor(bytes) {
  let pos = 0;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  function arg(info) {
    if (info < 24) return info;
    const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (!size || pos + size > bytes.length) throw new Refused("MALFORMED_CBOR", "bad CBOR length");
    let n = 0; for (let k = 0; k < size; k++) n = n * 256 + bytes[pos + k];
    pos += size; return n;
  }
  function item(depth) {
    if (depth > 32 || pos >= bytes.length) throw new Refused("MALFORMED_CBOR", "truncated CBOR");
    const head = bytes[pos++]; const major = head >> 5; const info = head & 31;
    if (major === 7) {
      if (info === 20) return false; if (info === 21) return true; if (info === 22 || info === 23) return null;
      if (info === 25) { const h = view.getUint16(pos); pos += 2; const e = (h >> 10) & 31, f = h & 1023;
        return (h >> 15 ? -1 : 1) * (e ? (1 + f / 1024) * 2 ** (e - 15) : f / 1024 * 2 ** -14); }
      if (info === 26) { const v = view.getFloat32(pos); pos += 4; return v; }
      if (info === 27) { const v = view.getFloat64(pos); pos += 8; return v; }
      throw new Refused("MALFORMED_CBOR", "unsupported CBOR simple value");
    }
    const n = arg(info);
    if (major === 0) return n;
    if (major === 1) return -1 - n;
    if (major === 2 || major === 3) {
      if (pos + n > bytes.length) throw new Refused("MALFORMED_CBOR", "truncated CBOR string");
      const s = bytes.slice(pos, pos + n); pos += n; return major === 2 ? s : utf8(s);
    }
    if (major === 4) { const a = []; for (let k = 0; k < n; k++) a.push(item(depth + 1)); return a; }
    if (major === 5) { const m = new Map(); for (let k = 0; k < n; k++) { const key = item(depth + 1); m.set(key, item(depth + 1)); } return m; }
    if (major === 6) return { tag: n, value: item(depth + 1) };
    throw new Refused("MALFORMED_CBOR", "bad CBOR");
  }
  const value = item(0);
  return value;
}
function cborHead(major, n) {
  if (n < 24) return [(major << 5) | n];
  if (n < 256) return [(major << 5) | 24, n];
  if (n < 65536) return [(major << 5) | 25, n >> 8, n & 255];
  return [(major << 5) | 26, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255];
}
function sigStructure(protectedBytes, payload) {
  const parts = [[0x84], cborHead(3, 10), Array.from(ascii("Signature1")),
    cborHead(2, protectedBytes.length), Array.from(protectedBytes), [0x40],
    cborHead(2, payload.length), Array.from(payload)];
  return new Uint8Array(parts.flat());
}
function plain(value) {
  if (value instanceof Map) { const o = {}; value.forEach((v, k) => { o[String(k)] = plain(v); }); return o; }
  if (Array.isArray(value)) return value.map(plain);
  return value;
}

// --- keys ------------------------------------------------------------------------------
async function importJwk(jwk) {
  return crypto.subtle.importKey("jwk", { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
    { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
}
async function es256(key, signature, data) {
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, key, signature, data);
}
async function verifyJws(text, keyFor) {
  const parts = text.split(".");
  if (parts.length !== 3) throw new Refused("MALFORMED_JWS", "not a compact JWS");
  let header;
  try { header = JSON.parse(utf8(b64urlBytes(parts[0]))); } catch (e) { throw new Refused("MALFORMED_JWS", "bad JWS header"); }
  if (header.alg !== "ES256") throw new Refused("SIGNATURE", `algorithm ${header.alg} is not ES256`);
  const jwk = keyFor(header);
  const ok = await es256(await importJwk(jwk), b64urlBytes(parts[2]), ascii(parts[0] + "." + parts[1]));
  if (!ok) throw new Refused("SIGNATURE", "the signature does not verify");
  return { header, payload: b64urlBytes(parts[1]) };
}

// --- the lists -------------------------------------------------------------------------
async function loadLists(refresh) {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { saved = null; }
  if (refresh || !saved) {
    try {
      const [trust, status] = await Promise.all([TRUST_URL, STATUS_URL].map(async (url) => {
        const answer = await fetch(url, { cache: "no-store" });
        if (!answer.ok) throw new Error(`${url} answered ${answer.status}`);
        return answer.json();
      }));
      const list = await checkTrustList(trust);
      saved = { list, status, fetchedAt: Math.floor(Date.now() / 1000) };
      localStorage.setItem(STORE, JSON.stringify(saved));
    } catch (e) {
      if (!saved) throw new Refused("UNKNOWN_ISSUER", `no trust list yet (${e.message}): open this page once online`);
    }
  }
  return saved;
}
async function checkTrustList(signed) {
  // The list is the JWS's own payload, signed with the commission's key on chain.
  const jwk = signed.trust_list && signed.trust_list.signed_by && signed.trust_list.signed_by.jwk;
  if (!jwk) throw new Error("the trust list names no signing key");
  const { payload } = await verifyJws(signed.jws, () => jwk);
  const list = JSON.parse(utf8(payload));
  if (list.signed_by.jwk.x !== jwk.x || list.signed_by.jwk.y !== jwk.y) throw new Error("signed by another key");
  return list;
}
function issuerKeys(list) {
  const keys = [];
  for (const issuer of list.issuers || []) for (const key of issuer.jwks.keys) keys.push({ iss: issuer.iss, name: issuer.name || issuer.org, jwk: key });
  return keys;
}

// --- the three encodings -----------------------------------------------------------------
async function verifyDcc(text, lists, now) {
  const body = text.trim().replace(/^HC1:/i, "");
  const cose = cbor(await inflate(base45(body), "deflate").catch(() => { throw new Refused("MALFORMED_ZLIB", "not zlib"); }));
  const sign1 = cose && cose.tag === 18 ? cose.value : cose;
  if (!Array.isArray(sign1) || sign1.length !== 4) throw new Refused("MALFORMED_COSE", "not a COSE_Sign1");
  const [prot, unprot, payload, signature] = sign1;
  const header = prot.length ? cbor(prot) : new Map();
  const kidBytes = header.get(4) || (unprot instanceof Map ? unprot.get(4) : undefined);
  const kid = kidBytes ? btoa(String.fromCharCode(...kidBytes)) : null;
  const signer = (lists.list.signers || []).find((s) => s.kid === kid);
  if (!signer) throw new Refused("UNKNOWN_ISSUER", `no trusted document signer ${kid}`);
  const ok = await es256(await importJwk(signer.jwk), signature, sigStructure(prot, payload));
  if (!ok) throw new Refused("SIGNATURE", "the signature does not verify");
  const cwt = cbor(payload);
  const hcert = cwt.get(-260); const dcc = hcert && plain(hcert.get(1));
  if (!dcc) throw new Refused("MALFORMED_CWT", "no health certificate in the CWT");
  const group = (dcc.v || dcc.t || dcc.r || [])[0] || {};
  const revoked = (lists.status.dcc_revoked || []).includes(hex(await sha256(ascii(group.ci || ""))));
  const named = (lists.list.issuers || []).find((i) => i.org === signer.org);
  return { format: "EU DCC", exp: cwt.get(4), nbf: cwt.get(6), revoked, issuer: named ? named.name : signer.org,
    holder: { name: `${dcc.nam.gn || ""} ${dcc.nam.fn || ""}`.trim(), birth: dcc.dob }, facts: dccFacts(dcc) };
}
function dccFacts(dcc) {
  if (dcc.v) return `Vaccination: dose ${dcc.v[0].dn} of ${dcc.v[0].sd}, ${dcc.v[0].mp}, on ${dcc.v[0].dt}`;
  if (dcc.t) return `Test: ${dcc.t[0].tr === "260415000" ? "not detected" : "detected"}, sample taken ${dcc.t[0].sc}`;
  if (dcc.r) return `Recovery: valid ${dcc.r[0].df} to ${dcc.r[0].du}`;
  return "";
}
async function verifyShc(text, lists, now) {
  const digits = text.trim().slice(5);
  if (!/^(\d\d)+$/.test(digits)) throw new Refused("MALFORMED_QR", "a chunked or malformed shc:/ text");
  let jws = "";
  for (let k = 0; k < digits.length; k += 2) jws += String.fromCharCode(Number(digits.slice(k, k + 2)) + 45);
  const keys = issuerKeys(lists.list);
  let issuer = null;
  const { payload } = await verifyJws(jws, (header) => {
    const found = keys.find((k) => k.jwk.kid === header.kid);
    if (!found) throw new Refused("UNKNOWN_ISSUER", `no trusted key ${header.kid}`);
    issuer = found; return found.jwk;
  });
  const claims = JSON.parse(utf8(await inflate(payload, "deflate-raw").catch(() => { throw new Refused("MALFORMED_DEFLATE", "not DEFLATE"); })));
  if (claims.iss !== issuer.iss) throw new Refused("UNKNOWN_ISSUER", `key not for ${claims.iss}`);
  const crl = (lists.status.shc_crls || []).find((c) => c.kid === issuer.jwk.kid);
  const rid = claims.vc.rid;
  const revoked = !!(crl && rid && crl.rids.some((r) => r.split(".")[0] === rid));
  const entries = claims.vc.credentialSubject.fhirBundle.entry.map((e) => e.resource);
  const patient = entries.find((r) => r.resourceType === "Patient") || { name: [{}] };
  const fact = entries.find((r) => r.resourceType !== "Patient") || {};
  const facts = fact.resourceType === "Immunization" ? `Vaccination on ${fact.occurrenceDateTime}` : `Test, sample taken ${fact.effectiveDateTime}`;
  return { format: "SMART Health Card", exp: claims.exp, nbf: claims.nbf, revoked, issuer: issuer.name,
    holder: { name: `${(patient.name[0].given || []).join(" ")} ${patient.name[0].family || ""}`.trim(), birth: patient.birthDate }, facts };
}
// The Disclosures of an SD-JWT (its text, salt, claim name, value), and its Key Binding
// JWT's text ("" when it ends with "~").
function sdJwtParts(text) {
  const cut = text.lastIndexOf("~");
  if (cut < 0) throw new Refused("MALFORMED_SD_JWT", "an SD-JWT has a '~' after the issuer's JWT");
  const parts = text.slice(0, cut).split("~");
  const disclosures = parts.slice(1).map((d) => {
    let item;
    try { item = JSON.parse(utf8(b64urlBytes(d))); } catch (e) { throw new Refused("DISCLOSURE", "a Disclosure is not base64url JSON"); }
    if (!Array.isArray(item) || item.length !== 3) throw new Refused("DISCLOSURE", "a Disclosure is [salt, name, value]");
    return { text: d, name: item[1], value: item[2] };
  });
  return { jwt: parts[0], disclosures, kb: text.slice(cut + 1), presented: text.slice(0, cut + 1) };
}
const KB_MAX_AGE = 300;
// RFC 9901 section 7.3: the Key Binding JWT is signed with the cnf.jwk key, over this
// presentation (sd_hash), fresh, and for this verifier's request (aud, nonce).
async function checkKeyBinding(split, claims, request, now) {
  const kb = (detail, message) => { const e = new Refused("KEY_BINDING", message); e.detail = detail; return e; };
  if (!split.kb) {
    if (request) throw kb("missing", "the presentation has no Key Binding JWT: the holder's key was not proved");
    return null;
  }
  const cnf = claims.cnf && claims.cnf.jwk;
  if (!cnf) throw kb("no_holder_key", "the credential names no holder key (cnf.jwk)");
  const pieces = split.kb.split(".");
  let header, body;
  try { header = JSON.parse(utf8(b64urlBytes(pieces[0]))); body = JSON.parse(utf8(b64urlBytes(pieces[1]))); }
  catch (e) { throw kb("malformed", "the Key Binding JWT is malformed"); }
  if (pieces.length !== 3) throw kb("malformed", "the Key Binding JWT is malformed");
  if (header.typ !== "kb+jwt") throw kb("typ", "the Key Binding JWT's typ is not kb+jwt");
  let ok = false;
  try { ok = header.alg === "ES256" && await es256(await importJwk(cnf), b64urlBytes(pieces[2]), ascii(pieces[0] + "." + pieces[1])); }
  catch (e) { ok = false; }
  if (!ok) throw kb("signature", "the Key Binding JWT is not signed by the holder's key");
  if (body.sd_hash !== b64url(await sha256(ascii(split.presented)))) throw kb("sd_hash", "the Key Binding JWT is for another presentation");
  if (!Number.isInteger(body.iat)) throw kb("iat", "the Key Binding JWT has no iat");
  if (request && body.aud !== request.aud) throw kb("audience", `the Key Binding JWT is for ${body.aud}`);
  if (request && body.nonce !== request.nonce) throw kb("nonce", "the Key Binding JWT answers another request (nonce)");
  if (Math.abs(now - body.iat) > KB_MAX_AGE) throw kb("stale", "the Key Binding JWT is not fresh");
  return body;
}
async function verifySdJwt(text, lists, now, request) {
  const split = sdJwtParts(text.trim());
  const parts = [split.jwt];
  const keys = issuerKeys(lists.list);
  let issuer = null;
  const { payload } = await verifyJws(parts[0], (header) => {
    const found = keys.find((k) => k.jwk.kid === header.kid);
    if (!found) throw new Refused("UNKNOWN_ISSUER", `no trusted key ${header.kid}`);
    issuer = found; return found.jwk;
  });
  const claims = JSON.parse(utf8(payload));
  if (claims.iss !== issuer.iss) throw new Refused("UNKNOWN_ISSUER", `key not for ${claims.iss}`);
  const digests = new Set(claims._sd || []);
  const shown = {};
  for (const disclosure of split.disclosures) {
    const digest = b64url(await sha256(ascii(disclosure.text)));
    if (!digests.has(digest)) throw new Refused("DISCLOSURE", "a disclosure matches no digest");
    digests.delete(digest);
    shown[disclosure.name] = disclosure.value;
  }
  const binding = await checkKeyBinding(split, claims, request, now);
  let revoked = false;
  const ref = claims.status && claims.status.status_list;
  if (ref) {
    const held = (lists.status.token_status_lists || {})[ref.uri];
    if (held) {
      const entries = await inflate(b64urlBytes(held.lst), "deflate");
      const perByte = 8 / held.bits;
      const byte = entries[Math.floor(ref.idx / perByte)];
      revoked = ((byte >> ((ref.idx % perByte) * held.bits)) & ((1 << held.bits) - 1)) !== 0;
    }
  }
  const facts = shown.vaccine && shown.dose ? `Vaccination: dose ${shown.dose} of ${shown.doses}, ${shown.vaccine}, on ${shown.vaccination_date}`
    : shown.result ? `Test: ${shown.result}, sample taken ${shown.collected_at}` : shown.valid_until ? `Recovery: valid to ${shown.valid_until}` : "";
  return { format: "SD-JWT VC", exp: claims.exp, nbf: claims.iat, revoked, issuer: issuer.name, disclosed: shown,
    keyBound: binding !== null, holder: { name: `${shown.given_name || ""} ${shown.family_name || ""}`.trim(), birth: shown.birthdate }, facts };
}

// request: the verifier's {aud, nonce} when it asked for a presentation (key binding
// then required), or undefined.
async function verifyText(text, lists, request) {
  const now = Math.floor(Date.now() / 1000);
  const t = text.trim();
  const reasons = [];
  let found = null;
  try {
    if (/^HC1:/i.test(t)) found = await verifyDcc(t, lists, now);
    else if (t.startsWith("shc:/")) found = await verifyShc(t, lists, now);
    else if (t.includes("~")) found = await verifySdJwt(t, lists, now, request);
    else throw new Refused("UNKNOWN_FORMAT", "neither an EU DCC (HC1:), a SMART Health Card (shc:/) nor an SD-JWT VC");
  } catch (e) {
    reasons.push({ code: e.code || "MALFORMED_QR", message: e.message, detail: e.detail });
    return { valid: false, reasons, age: now - lists.status.fetched_at };
  }
  if (typeof found.exp === "number" && now > found.exp) reasons.push({ code: "EXPIRED", message: "the credential has expired" });
  if (typeof found.nbf === "number" && now + 300 < found.nbf) reasons.push({ code: "NOT_YET_VALID", message: "not valid yet" });
  if (found.revoked) reasons.push({ code: "REVOKED", message: "its issuer revoked it" });
  const age = now - lists.status.fetched_at;
  if (age > MAX_STATUS_AGE) reasons.push({ code: "STATUS_STALE", message: `the status list is ${age} s old` });
  return { valid: reasons.length === 0, reasons, age, ...found };
}

// --- a photo of a QR code -------------------------------------------------------------
const PHOTO_URL = "/api/v1/credentials/verify/photo";
// The first QR code in a photo, read in this browser where it can (BarcodeDetector), else
// by the ledger's node: { text } when one is read, or { verdict } with the node's refusal
// (UNREADABLE_IMAGE and why). Offline and without a detector it throws a Refused.
async function qrFromPhoto(file) {
  if ("BarcodeDetector" in window) {
    const codes = await new window.BarcodeDetector({ formats: ["qr_code"] }).detect(await createImageBitmap(file));
    if (codes.length) return { text: codes[0].rawValue };
  }
  if (!navigator.onLine) throw new Refused("UNREADABLE_IMAGE", "this browser reads no QR code from a photo offline: paste the text");
  const body = new FormData(); body.append("photo", file);
  const verdict = await (await fetch(PHOTO_URL, { method: "POST", body })).json();
  if (verdict.texts && verdict.texts.length) return { text: verdict.texts[0] };
  return { verdict };
}

window.HealthledgerVerifier = { loadLists, verifyText, sdJwtParts, b64url, sha256, ascii, utf8, b64urlBytes, qrFromPhoto };
