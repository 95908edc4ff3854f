"""Credentials the project issues verify with independent third-party code: the npm
packages cose-js (COSE_Sign1), jose (JWS, JWT) and base45, with node's zlib and crypto
(``make npm-deps`` installs them under ``.venv/npm``). A tampered credential fails there
too, so the check could fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.apps.credentials.issuance import issue_all
from healthledger.apps.credentials.records import VCT, dcc_payload, vc_claims
from healthledger.crypto import sdjwt
from healthledger.crypto.jose import Jwk
from tests.apps.credentials.test_issuance_cli import NOW, VACCINATION, _signer

ROOT = Path(__file__).resolve().parents[3]
NPM_PREFIX = ROOT / ".venv" / "npm"
SCRIPT = Path(__file__).with_name("third_party_verify.mjs")
AUDIENCE, NONCE = "https://checkpoint.example", "n-7"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (NPM_PREFIX / "node_modules" / "cose-js").is_dir(),
    reason="needs node and `make npm-deps` (cose-js, jose, base45 under .venv/npm)",
)


def _node(inputs: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(SCRIPT)], input=json.dumps(inputs), capture_output=True, text=True,
        env={**os.environ, "NPM_PREFIX": str(NPM_PREFIX)}, timeout=60, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _inputs(texts: dict[str, str], jwk: dict[str, Any], shown: str) -> dict[str, Any]:
    return {
        "dcc": {"text": texts["dcc"], "jwk": jwk},
        "shc": {"text": texts["shc"], "jwk": jwk},
        "sdjwt": {"text": shown, "jwk": jwk, "aud": AUDIENCE, "nonce": NONCE},
    }


def test_issued_credentials_verify_with_cose_js_and_jose() -> None:
    signer = _signer("cdc")
    holder = ec.generate_private_key(ec.SECP256R1())
    texts = issue_all(VACCINATION, signer, now=NOW, valid_days=365,
                      holder=Jwk.of(holder.public_key()))  # fmt: skip
    shown = sdjwt.present(texts["sd-jwt-vc"], disclose=lambda d: True, holder_key=holder,
                          audience=AUDIENCE, nonce=NONCE, issued_at=NOW)  # fmt: skip
    jwk = {k: v for k, v in signer.jwk.members.items() if k in ("kty", "crv", "x", "y")}
    result = _node(_inputs(texts, jwk, shown))
    assert result["dcc"] == {
        "ok": True,
        "value": {
            "iss": "CN",
            "iat": NOW,
            "exp": NOW + 365 * 86_400,
            "dcc": dcc_payload(VACCINATION),
        },
    }
    assert result["shc"]["ok"], result["shc"]
    shc = result["shc"]["value"]
    assert shc["kid"] == signer.jwk.thumbprint()
    assert shc["payload"]["vc"]["credentialSubject"]["fhirBundle"]["entry"][0]["resource"][
        "birthDate"] == VACCINATION.birth_date  # fmt: skip
    vct = VCT["vaccination"]
    assert result["sdjwt"] == {"ok": True, "value": {
        "iss": signer.issuer, "vct": vct, "disclosed": vc_claims(VACCINATION)}}  # fmt: skip

    other = _signer("elsewhere")
    wrong = {k: v for k, v in other.jwk.members.items() if k in ("kty", "crv", "x", "y")}
    refused = _node(_inputs(texts, wrong, shown))
    assert [refused[n]["ok"] for n in ("dcc", "shc", "sdjwt")] == [False, False, False]
