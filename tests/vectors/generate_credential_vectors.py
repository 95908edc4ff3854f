"""Regenerate the project's own credential vectors under tests/vectors/credentials/.

Run from the repository root::

    python tests/vectors/generate_credential_vectors.py [OUTPUT_DIR]

One case per file, transparency-dev style: for each encoding a valid credential and
deliberately broken copies, each with the reason codes a verifier must answer
(``want``; empty: valid), the trust file's text, an optional status document, the check
time and the policy. The expected codes are written here by hand; before writing, the
script checks the verifier agrees with every case and writes nothing if it does not.
Signatures are randomised (ECDSA), so a re-run rewrites different bytes with the same
meaning.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.apps.credentials.issuance import Signer, issue_all, new_signer, rid_of
from healthledger.apps.credentials.records import Vaccination, dcc_payload
from healthledger.crypto import sdjwt
from healthledger.crypto.base45 import b45decode, b45encode
from healthledger.crypto.cose import sign1
from healthledger.crypto.credentials import shc
from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.status import (
    STATUS_TYPE,
    TokenStatusList,
    dcc_revocation_hash,
    load_status,
)
from healthledger.crypto.credentials.trust import dcc_kid, load_trust
from healthledger.crypto.credentials.verifier import verify_credential
from healthledger.crypto.jose import Jwk, sign_compact

NOW = 1_780_000_000
DAY = 86_400
AUDIENCE, NONCE = "https://checkpoint.example", "nonce-1"
VACCINATION = Vaccination(
    family_name="Li", given_name="Hua", birth_date="1985-07-30", product="EU/1/20/1507",
    manufacturer="ORG-100031184", dose=1, doses=2, date="2026-05-10", country="CN",
    certificate_issuer="Shanghai CDC", uci="URN:UVCI:01:CN:HLVECTOR0001#Q",
)  # fmt: skip
STATUS_URI = "https://cdc.example.cn/status/1"


def _signer(name: str, usages: tuple[str, ...] | None = None) -> Signer:
    moment = dt.datetime.fromtimestamp(NOW - DAY, dt.UTC)
    signer = new_signer(issuer=f"https://{name}.example.cn", country="CN", name=name,
                        now=moment, days=365)  # fmt: skip
    if usages is None:
        return signer
    cert = (
        x509.CertificateBuilder()
        .subject_name(signer.certificate.subject)
        .issuer_name(signer.certificate.subject)
        .public_key(signer.key.public_key())
        .serial_number(1)
        .not_valid_before(signer.certificate.not_valid_before_utc)
        .not_valid_after(signer.certificate.not_valid_after_utc)
        .add_extension(
            x509.ExtendedKeyUsage([x509.ObjectIdentifier(u) for u in usages]), critical=False
        )
        .sign(signer.key, hashes.SHA256())
    )
    return Signer(signer.key, cert, signer.issuer, signer.country)


def _pem(signer: Signer) -> str:
    return signer.certificate.public_bytes(serialization.Encoding.PEM).decode()


def _jwks(signer: Signer) -> str:
    return json.dumps(signer.jwks())


def _flip(text: str, at: int) -> str:
    return text[:at] + ("B" if text[at] != "B" else "C") + text[at + 1 :]


def _rezip(hc1: str, edit: Callable[[bytes], bytes]) -> str:
    raw = zlib.decompress(b45decode(hc1[4:]))
    return "HC1:" + b45encode(zlib.compress(edit(raw), 9))


def _cose(signer: Signer, claims: Any) -> str:
    kid = base64.b64decode(dcc_kid(signer.certificate))
    return "HC1:" + b45encode(zlib.compress(sign1(cbor2.dumps(claims), signer.key, kid=kid)))


def dcc_cases() -> dict[str, dict[str, Any]]:
    """The EU DCC cases."""
    signer, other = _signer("cdc"), _signer("other")
    test_only = _signer("lab", usages=("1.3.6.1.4.1.1847.2021.1.1",))
    text = issue_all(VACCINATION, signer, now=NOW, valid_days=365, holder=None)["dcc"]
    payload = dcc_payload(VACCINATION)
    base = {"trust": _pem(signer), "at": NOW + 60}
    status = {"type": STATUS_TYPE, "fetched_at": NOW,
              "dcc_revoked": [dcc_revocation_hash(VACCINATION.uci)]}  # fmt: skip
    no_dob = {k: v for k, v in payload.items() if k != "dob"}
    cwt = {1: "CN", 6: NOW, 4: NOW + DAY}
    return {
        "valid": {**base, "input": text, "want": []},
        "prefix-hc2": {**base, "input": "HC2:" + text[4:], "want": ["MALFORMED_PREFIX"]},
        "base45-lowercase": {**base, "input": text[:40] + "a" + text[41:],
                             "want": ["MALFORMED_BASE45"]},
        "base45-length-1-mod-3": {**base, "input": "HC1:ABCD", "want": ["MALFORMED_BASE45"]},
        "zlib-truncated": {**base, "input": "HC1:" + b45encode(b45decode(text[4:])[:-6]),
                           "want": ["MALFORMED_ZLIB"]},
        "not-compressed": {**base, "input": "HC1:" + b45encode(zlib.decompress(
            b45decode(text[4:]))), "want": ["MALFORMED_ZLIB"]},
        "cbor-trailing-garbage": {**base, "input": _rezip(text, lambda r: r + b"\x00"),
                                  "want": ["MALFORMED_CBOR"]},
        "cose-not-an-array": {**base, "input": _rezip(text, lambda r: cbor2.dumps({"a": 1})),
                              "want": ["MALFORMED_COSE"]},
        "cwt-without-hcert": {**base, "input": _cose(signer, {1: "CN", 6: NOW, 4: NOW + 1}),
                              "want": ["MALFORMED_CWT"]},
        "signature-bit-flipped": {**base, "input": _rezip(
            text, lambda r: r[:-1] + bytes([r[-1] ^ 1])), "want": ["SIGNATURE"]},
        "unknown-signer": {**base, "trust": _pem(other), "want": ["UNKNOWN_ISSUER"],
                           "input": text},
        "expired": {**base, "input": text, "at": NOW + 366 * DAY, "want": ["EXPIRED"]},
        "not-yet-valid": {**base, "input": text, "at": NOW - 60, "want": ["NOT_YET_VALID"]},
        "schema-no-birth-date": {**base, "input": _cose(signer, {**cwt, -260: {1: no_dob}}),
                                 "want": ["SCHEMA"]},
        "key-usage-test-only-signer": {
            "trust": _pem(test_only), "at": NOW + 60, "want": ["KEY_USAGE"],
            "input": issue_all(VACCINATION, test_only, now=NOW, valid_days=1, holder=None)["dcc"],
        },
        "revoked": {**base, "input": text, "status": status, "want": ["REVOKED"]},
        "revoked-list-stale": {**base, "input": text, "status": status, "at": NOW + 3 * DAY,
                               "want": ["REVOKED", "STATUS_STALE"]},
    }  # fmt: skip


def shc_cases() -> dict[str, dict[str, Any]]:
    """The SMART Health Cards cases."""
    signer, other = _signer("cdc"), _signer("other")
    text = issue_all(VACCINATION, signer, now=NOW, valid_days=365, holder=None)["shc"]
    jws = shc.numeric_to_jws(text[5:])
    kid = signer.jwk.thumbprint()
    base = {"trust": _jwks(signer), "at": NOW + 60}
    crl = {"kid": kid, "method": "rid", "ctr": 1, "rids": [rid_of(VACCINATION.uci)]}

    def signed(payload: bytes, header: dict[str, Any]) -> str:
        return shc.jws_to_numeric(sign_compact(header, payload, signer.key))

    card = {"iss": signer.issuer, "nbf": NOW, "vc": {"type": [shc.HEALTH_CARD]}}
    half = len(text[5:]) // 2 // 2 * 2
    return {
        "valid": {**base, "input": [text], "want": []},
        "qr-odd-digits": {**base, "input": [text + "1"], "want": ["MALFORMED_QR"]},
        "qr-pair-above-77": {**base, "input": [text[:5] + "78" + text[7:]],
                             "want": ["MALFORMED_QR"]},
        "qr-chunks-2-of-2-only": {**base, "input": ["shc:/2/2/" + text[5 + half :]],
                                  "want": ["QR_CHUNKS"]},
        "qr-chunks-in-any-order": {**base, "want": [], "input": [
            "shc:/2/2/" + text[5 + half :], "shc:/1/2/" + text[5 : 5 + half]]},
        "jws-two-parts": {**base, "input": [shc.jws_to_numeric(jws.rsplit(".", 1)[0])],
                          "want": ["MALFORMED_JWS"]},
        "jws-without-zip": {**base, "input": [signed(b"{}", {"kid": kid})],
                            "want": ["MALFORMED_JWS"]},
        "deflate-broken": {**base, "input": [signed(b"\xff\xff\xff", {"zip": "DEF", "kid": kid})],
                           "want": ["MALFORMED_DEFLATE"]},
        "payload-not-json": {**base, "input": [signed(shc.deflate(b"[1,"),
                             {"zip": "DEF", "kid": kid})], "want": ["MALFORMED_DEFLATE"]},
        "signature-bit-flipped": {**base, "input": [shc.jws_to_numeric(_flip(jws, len(jws) - 10))],
                                  "want": ["SIGNATURE"]},
        "unknown-key": {**base, "trust": _jwks(other), "input": [text],
                        "want": ["UNKNOWN_ISSUER"]},
        "expired": {**base, "input": [text], "at": NOW + 366 * DAY, "want": ["EXPIRED"]},
        "schema-no-fhir-bundle": {**base, "want": ["SCHEMA"], "input": [signed(
            shc.deflate(json.dumps(card).encode()), {"zip": "DEF", "kid": kid})]},
        "revoked": {**base, "input": [text], "status": crl, "want": ["REVOKED"]},
    }  # fmt: skip


def sd_jwt_cases() -> dict[str, dict[str, Any]]:
    """The SD-JWT VC cases."""
    signer, other = _signer("cdc"), _signer("other")
    holder, thief = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    issued = issue_all(VACCINATION, signer, now=NOW, valid_days=365,
                       holder=Jwk.of(holder.public_key()))["sd-jwt-vc"]  # fmt: skip

    def shown(
        sd: str = issued,
        *,
        key: ec.EllipticCurvePrivateKey | None = holder,
        keep: tuple[str, ...] = ("dose", "vaccine", "given_name"),
    ) -> str:
        return sdjwt.present(
            sd,
            disclose=lambda d: d.name in keep,
            holder_key=key,
            audience=AUDIENCE,
            nonce=NONCE,
            issued_at=NOW + 30,
        )

    presentation = shown()
    jwt, *disclosures, kb = presentation.split("~")
    extra = sdjwt.Disclosure.make("dose", 3, b"0123456789abcdef").text
    other_kb = shown(keep=("dose",)).rsplit("~", 1)[1]
    status_claims = {"status": {"status_list": {"idx": 12, "uri": STATUS_URI}}}
    with_status = sdjwt.issue(
        {
            "iss": signer.issuer,
            "iat": NOW,
            "exp": NOW + DAY,
            "vct": "urn:vct:test",
            **status_claims,
            "dose": 1,
        },
        key=signer.key,
        header={"typ": "dc+sd-jwt", "kid": signer.jwk.thumbprint()},
        always_visible=("iss", "iat", "exp", "vct", "status"),
    )
    bits = bytearray(2**17 // 8)  # 131,072 entries: one index says nothing of one person
    bits[12 // 8] |= 1 << (12 % 8)
    status = {
        "type": STATUS_TYPE,
        "fetched_at": NOW,
        "token_status_lists": {STATUS_URI: TokenStatusList(1, bytes(bits)).to_json()},
    }
    base = {
        "trust": _jwks(signer),
        "at": NOW + 60,
        "policy": {"audience": AUDIENCE, "nonce": NONCE, "require_key_binding": True},
    }
    plain = {"trust": _jwks(signer), "at": NOW + 60}
    return {
        "valid-presentation": {**base, "input": presentation, "want": []},
        "valid-issued-form": {**plain, "input": issued, "want": []},
        "issuer-signature-bit-flipped": {**base, "want": ["SIGNATURE"], "input": "~".join(
            [_flip(jwt, len(jwt) - 5), *disclosures, kb])},
        "unknown-issuer-key": {**base, "trust": _jwks(other), "input": presentation,
                               "want": ["UNKNOWN_ISSUER"]},
        "disclosure-not-in-the-jwt": {**plain, "input": shown(key=None) + extra + "~",
                                      "want": ["DISCLOSURE"]},
        "disclosure-given-twice": {**plain, "input": "~".join(
            [jwt, disclosures[0], disclosures[0], ""]), "want": ["DISCLOSURE"]},
        "disclosure-not-base64url": {**plain, "input": f"{jwt}~%%%~", "want": ["DISCLOSURE"]},
        "key-binding-missing": {**base, "input": shown(key=None), "want": ["KEY_BINDING"]},
        "key-binding-other-presentation": {**base, "want": ["KEY_BINDING"], "input": "~".join(
            [jwt, *disclosures, other_kb])},
        "key-binding-by-another-key": {**base, "input": shown(key=thief),
                                       "want": ["KEY_BINDING"]},
        "key-binding-wrong-audience": {**base, "input": presentation, "want": ["KEY_BINDING"],
                                       "policy": {"audience": "https://elsewhere.example"}},
        "key-binding-stale": {**base, "input": presentation, "at": NOW + 3600,
                              "want": ["KEY_BINDING"]},
        "expired": {**plain, "input": issued, "at": NOW + 366 * DAY, "want": ["EXPIRED"]},
        "revoked-in-status-list": {**plain, "input": with_status, "status": status,
                                   "want": ["REVOKED"]},
        "not-an-sd-jwt": {**plain, "input": "a.b~", "want": ["MALFORMED_SD_JWT"]},
    }  # fmt: skip


def check(case: dict[str, Any]) -> list[str]:
    """The reason codes the verifier answers for ``case``."""
    trust = load_trust(case["trust"].encode())
    status = None
    if "status" in case:
        status = load_status(json.dumps(case["status"]).encode(), fetched_at=NOW)
    texts = case["input"] if isinstance(case["input"], list) else [case["input"]]
    verdict = verify_credential(texts, trust=trust, status=status, at=case["at"],
                                policy=Policy(**case.get("policy", {})))  # fmt: skip
    return list(verdict.codes)


def main(argv: list[str]) -> int:
    """Check every case, then write them."""
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent / "credentials"
    groups = {"dcc": dcc_cases(), "shc": shc_cases(), "sd-jwt-vc": sd_jwt_cases()}
    wrong = [f"{g}/{n}: want {c['want']}, got {got}"
             for g, cases in groups.items() for n, c in cases.items()
             if (got := check(c)) != c["want"]]  # fmt: skip
    if wrong:
        print("\n".join(wrong), file=sys.stderr)
        return 1
    for group, cases in groups.items():
        folder = root / group
        folder.mkdir(parents=True, exist_ok=True)
        for name, case in cases.items():
            text = json.dumps({"description": name.replace("-", " "), **case}, indent=1)
            (folder / f"{name}.json").write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
