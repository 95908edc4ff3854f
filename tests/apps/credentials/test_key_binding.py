"""Key binding of an SD-JWT VC (RFC 9901 section 4.3): the holder's wallet presents a
subset of the claims with a Key Binding JWT over the verifier's nonce and audience; the
verifier accepts it and sees only what was disclosed, and refuses each kind of bad Key
Binding as ``KEY_BINDING`` with a named defect."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from healthledger import verify
from healthledger.apps.credentials.issuance import issue_all, new_signer
from healthledger.apps.credentials.records import Vaccination
from healthledger.cli.main import app
from healthledger.crypto import sdjwt
from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.trust import TrustStore, load_trust
from healthledger.crypto.jose import Jwk, b64url_encode, sign_compact

NOW = 1_780_000_000
VACCINATION = Vaccination(
    family_name="Chen", given_name="Xiaoming", birth_date="1985-03-12",
    product="EU/1/20/1528", manufacturer="ORG-100030215", dose=2, doses=2,
    date="2026-05-01", country="CN", certificate_issuer="Guangzhou CDC",
    uci="URN:UVCI:01:CN:HL0000000002#K",
)  # fmt: skip
AUD = "https://checkpoint.example/gate-3"
NONCE = "b7Qy1-nonce"
HOLDER = ec.generate_private_key(ec.SECP256R1())
OTHER = ec.generate_private_key(ec.SECP256R1())
SHOWN = ("vaccine", "dose", "vaccination_date")
SIGNER = new_signer(issuer="https://cdc.example.cn", country="CN", name="cdc",
                    now=dt.datetime.fromtimestamp(NOW - 86_400, dt.UTC), days=365)  # fmt: skip
POLICY = Policy(audience=AUD, nonce=NONCE, require_key_binding=True)


@pytest.fixture(scope="module")
def issued() -> tuple[TrustStore, str, str]:
    """A bound SD-JWT VC, one issued without a holder key, and the issuer's JWKS."""
    signer = SIGNER
    trust = load_trust(json.dumps(signer.jwks()).encode())
    bound = issue_all(VACCINATION, signer, now=NOW, valid_days=365,
                      holder=Jwk.of(HOLDER.public_key()))["sd-jwt-vc"]  # fmt: skip
    unbound = issue_all(VACCINATION, signer, now=NOW, valid_days=365, holder=None)["sd-jwt-vc"]
    return trust, bound, unbound


def _present(text: str, *, key: ec.EllipticCurvePrivateKey | None = HOLDER, aud: str = AUD,
             nonce: str = NONCE, iat: int = NOW + 10) -> str:  # fmt: skip
    return sdjwt.present(text, disclose=lambda d: d.name in SHOWN, holder_key=key,
                         audience=aud, nonce=nonce, issued_at=iat)  # fmt: skip


def _kb(presented: str, body: dict[str, object], typ: str = sdjwt.KB_TYP) -> str:
    """``presented`` (ending in ``~``) with a hand-made Key Binding JWT."""
    return presented + sign_compact({"typ": typ}, json.dumps(body).encode(), HOLDER)


def _sd_hash(presented: str) -> str:
    return b64url_encode(hashlib.sha256(presented.encode()).digest())


def test_a_bound_presentation_shows_only_what_was_disclosed(
    issued: tuple[TrustStore, str, str],
) -> None:
    trust, bound, _ = issued
    verdict = verify.credential(text=_present(bound), trust=trust, at=NOW + 60, policy=POLICY)
    assert verdict.valid and verdict.format == "sd-jwt-vc"
    shown = set(verdict.claims) - {"iss", "iat", "exp", "vct", "cnf"}
    assert shown == set(SHOWN) and verdict.claims["dose"] == 2
    assert "family_name" not in verdict.claims and "birthdate" not in verdict.claims


def _cases(bound: str, unbound: str) -> dict[str, Callable[[], str]]:
    plain = _present(bound, key=None)
    asked = {"aud": AUD, "nonce": NONCE}
    return {
        "missing": lambda: plain,
        "signature": lambda: _present(bound, key=OTHER),
        "nonce": lambda: _present(bound, nonce="an-old-nonce"),
        "audience": lambda: _present(bound, aud="https://elsewhere.example"),
        "stale": lambda: _present(bound, iat=NOW - 3_600),
        # signed over the whole issued SD-JWT, not the presentation made of it
        "sd_hash": lambda: _kb(plain, {**asked, "iat": NOW, "sd_hash": _sd_hash(bound)}),
        "typ": lambda: _kb(plain, {**asked, "iat": NOW, "sd_hash": _sd_hash(plain)}, "JWT"),
        "iat": lambda: _kb(plain, {**asked, "sd_hash": _sd_hash(plain)}),
        "no_holder_key": lambda: _present(unbound),
        "malformed": lambda: plain + "not-a-jwt",
    }


@pytest.mark.parametrize("defect", sdjwt.KB_DEFECTS)
def test_each_bad_key_binding_is_a_named_refusal(
    issued: tuple[TrustStore, str, str], defect: str
) -> None:
    trust, bound, unbound = issued
    text = _cases(bound, unbound)[defect]()
    with pytest.raises(verify.VerificationError) as refused:
        verify.credential(text=text, trust=trust, at=NOW + 60, policy=POLICY)
    verdict = refused.value.verdict
    assert verdict is not None and verdict.codes == ("KEY_BINDING",)
    reason = verdict.to_json()["reasons"][0]
    assert reason["detail"] == defect, reason


def test_the_cli_names_the_defect_and_lists_only_what_was_disclosed(
    issued: tuple[TrustStore, str, str], tmp_path: Path
) -> None:
    _, bound, _ = issued
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(SIGNER.jwks()))
    at = dt.datetime.fromtimestamp(NOW + 60, dt.UTC).isoformat()
    args = ["credentials", "verify", _present(bound), "--trust", str(jwks), "--at", at]
    good = CliRunner().invoke(app, [*args, "--audience", AUD, "--nonce", NONCE])
    assert good.exit_code == 0, good.stdout
    assert "vaccine=Comirnaty" in good.stdout and "dose=2" in good.stdout
    assert "Chen" not in good.stdout and "1985" not in good.stdout
    replayed = CliRunner().invoke(app, [*args, "--nonce", "a-later-request"])
    assert replayed.exit_code == 1 and "KEY_BINDING (nonce)" in replayed.stdout
