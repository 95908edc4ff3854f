// Verify healthledger's credentials with independent code: cose-js (COSE_Sign1), jose
// (compact JWS), base45 and node's zlib and crypto. Reads {dcc, shc, sdjwt} (each
// {text, jwk}) as JSON on stdin; prints each one's verified content or its error.
import { createRequire } from "node:module";
import { createHash } from "node:crypto";
import zlib from "node:zlib";

const require = createRequire(process.env.NPM_PREFIX + "/node_modules/");
const cose = require("cose-js");
const cbor = require("cbor");
const base45 = require("base45");
const jose = require("jose");

const b64u = (s) => Buffer.from(s, "base64url");

async function dcc({ text, jwk }) {
  if (!text.startsWith("HC1:")) throw new Error("no HC1: prefix");
  const message = zlib.inflateSync(Buffer.from(base45.decode(text.slice(4))));
  const payload = await cose.sign.verify(message, { key: { x: b64u(jwk.x), y: b64u(jwk.y) } });
  const claims = cbor.decodeFirstSync(payload);
  return { iss: claims.get(1), iat: claims.get(6), exp: claims.get(4), dcc: claims.get(-260).get(1) };
}

async function shc({ text, jwk }) {
  const digits = text.slice("shc:/".length);
  let jws = "";
  for (let i = 0; i < digits.length; i += 2) jws += String.fromCharCode(Number(digits.slice(i, i + 2)) + 45);
  const key = await jose.importJWK(jwk, "ES256");
  const { payload, protectedHeader } = await jose.compactVerify(jws, key);
  if (protectedHeader.zip !== "DEF") throw new Error("no zip: DEF");
  return { kid: protectedHeader.kid, payload: JSON.parse(zlib.inflateRawSync(payload).toString("utf8")) };
}

async function sdjwt({ text, jwk, aud, nonce }) {
  const parts = text.split("~");
  const kbJwt = parts.pop();
  const key = await jose.importJWK(jwk, "ES256");
  const { payload } = await jose.compactVerify(parts[0], key);
  const claims = JSON.parse(Buffer.from(payload).toString("utf8"));
  const disclosed = {};
  for (const d of parts.slice(1)) {
    const digest = createHash("sha256").update(d, "ascii").digest("base64url");
    if (!claims._sd.includes(digest)) throw new Error("a disclosure matches no digest");
    const [, name, value] = JSON.parse(b64u(d).toString("utf8"));
    disclosed[name] = value;
  }
  const holder = await jose.importJWK(claims.cnf.jwk, "ES256");
  const kb = await jose.jwtVerify(kbJwt, holder, { audience: aud, typ: "kb+jwt" });
  const presented = parts.join("~") + "~";
  if (kb.payload.sd_hash !== createHash("sha256").update(presented).digest("base64url")) throw new Error("sd_hash");
  if (kb.payload.nonce !== nonce) throw new Error("nonce");
  return { iss: claims.iss, vct: claims.vct, disclosed };
}

const input = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
const out = {};
for (const [name, verify] of Object.entries({ dcc, shc, sdjwt })) {
  try {
    out[name] = { ok: true, value: await verify(input[name]) };
  } catch (error) {
    out[name] = { ok: false, error: String(error) };
  }
}
process.stdout.write(JSON.stringify(out, (k, v) => (v instanceof Map ? Object.fromEntries(v) : v)));
