"""The health code's signed QR text: valid while current, EXPIRED for a screenshot,
refused with its reason when forged, signed by another key or not a health code."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthledger.apps.credentials.healthcode_qr import (
    LIFETIME_S,
    public_jwk,
    sign_code,
    signing_key,
    verify_code,
)
from healthledger.apps.credentials.qr import qr_code
from healthledger.cli.main import app
from healthledger.crypto.jose import b64url_decode, b64url_encode

CODE = {"colour": "yellow", "version": "2026.1", "clause": "close-contact", "day": 20_000}
NOW = 1_765_000_000
KEY = signing_key(bytes(range(32)))
JWKS = {"keys": [public_jwk(KEY)]}


def test_a_current_code_verifies_offline_with_its_colour_and_rule() -> None:
    text = sign_code(CODE, KEY, issuer="gd-cdc", now_s=NOW)
    verdict = verify_code(text, JWKS, now_s=NOW + 30)
    assert verdict.valid
    assert (verdict.colour, verdict.version, verdict.clause) == (
        "yellow",
        "2026.1",
        "close-contact",
    )
    assert "pid" not in text and "p1-" not in json.dumps(verdict.to_json())


def test_a_screenshot_expires_after_a_minute() -> None:
    text = sign_code(CODE, KEY, issuer="gd-cdc", now_s=NOW)
    verdict = verify_code(text, JWKS, now_s=NOW + LIFETIME_S + 60)
    assert verdict.verdict == "EXPIRED" and not verdict.valid
    assert "screenshot" in verdict.message and verdict.colour == "yellow"


def test_the_same_secret_gives_the_same_key_and_another_secret_another() -> None:
    assert public_jwk(signing_key(bytes(range(32)))) == public_jwk(KEY)
    assert public_jwk(signing_key(bytes(32))) != public_jwk(KEY)


def _with_payload(text: str, **changes: object) -> str:
    head, body, signature = text.split(".")
    payload = json.loads(b64url_decode(body)) | changes
    return ".".join((head, b64url_encode(json.dumps(payload).encode()), signature))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda t: _with_payload(t, hc="green"), "BAD_SIGNATURE"),
        (lambda t: _with_payload(t, exp=NOW + 86_400), "BAD_SIGNATURE"),
        (lambda t: sign_code(CODE, signing_key(bytes(32)), issuer="x", now_s=NOW), "UNKNOWN_KEY"),
        (lambda t: t[:-3], "BAD_SIGNATURE"),
        (lambda t: t[7:], "MALFORMED"),
        (lambda t: "HC1:NCFOXN%TS3DH", "MALFORMED"),
        (lambda t: "", "MALFORMED"),
    ],
    ids=[
        "colour-changed",
        "expiry-pushed",
        "other-key",
        "short-signature",
        "cut-header",
        "a-dcc",
        "empty",
    ],
)
def test_a_forged_or_foreign_code_is_refused_by_name(mutate: object, expected: str) -> None:
    text = sign_code(CODE, KEY, issuer="gd-cdc", now_s=NOW)
    assert callable(mutate)
    verdict = verify_code(mutate(text), JWKS, now_s=NOW + 1)
    assert verdict.verdict == expected and not verdict.valid


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["credentials", "verify-code", *args])
    return result.exit_code, result.output


def test_verify_code_in_the_cli_from_text_and_photo(tmp_path: Path) -> None:
    text = sign_code(CODE, KEY, issuer="gd-cdc", now_s=NOW)
    keys = tmp_path / "jwks.json"
    keys.write_text(json.dumps(JWKS))
    at = dt.datetime.fromtimestamp(NOW + 20, dt.UTC).isoformat()
    code, out = _cli(text, "--keys", str(keys), "--at", at)
    assert code == 0 and "VALID" in out and "yellow" in out
    photo = tmp_path / "screenshot.png"
    qr_code(text).save(str(photo), scale=4)
    later = dt.datetime.fromtimestamp(NOW + 600, dt.UTC).isoformat()
    result = CliRunner().invoke(
        app,
        ["credentials", "verify-code", str(photo), "--keys", str(keys), "--at", later, "--json"],
    )
    assert result.exit_code == 1 and json.loads(result.stdout)["verdict"] == "EXPIRED"
    code, out = _cli(str(photo), "--keys", str(keys), "--at", later)
    assert code == 1 and out.startswith("EXPIRED") and "internal error" not in out
    code, out = _cli(text, "--keys", str(tmp_path / "absent.json"))
    assert code == 2 and "cannot read" in out and "Traceback" not in out
    code, out = _cli(text, "--keys", str(keys), "--at", "yesterday")
    assert code == 2 and "RFC 3339" in out
