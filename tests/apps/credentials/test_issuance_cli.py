"""Issuing a vaccination in the three encodings, each in one QR code at error correction
M, and verifying them offline through ``healthledger credentials verify``: valid, then
refused for a tampered text, another issuer, an expired time, a revocation and a photo of
its QR code read back."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from healthledger.apps.credentials.issuance import Signer, issue_all, new_signer, rid_of
from healthledger.apps.credentials.qr import qr_code, qr_version
from healthledger.apps.credentials.records import Recovery, TestResult, Vaccination
from healthledger.cli.main import app
from healthledger.crypto import sdjwt
from healthledger.crypto.credentials.status import STATUS_TYPE, dcc_revocation_hash
from healthledger.crypto.jose import Jwk

NOW = 1_780_000_000
RUNNER = CliRunner()
VACCINATION = Vaccination(
    family_name="Müller-Wang", given_name="Xiǎo Míng", birth_date="1990-01-02",
    product="EU/1/20/1528", manufacturer="ORG-100030215", dose=2, doses=2,
    date="2026-05-01", country="CN", certificate_issuer="Beijing CDC",
    uci="URN:UVCI:01:CN:HL0000000001#X",
)  # fmt: skip
HOLDER = ec.generate_private_key(ec.SECP256R1())


def _signer(name: str) -> Signer:
    moment = dt.datetime.fromtimestamp(NOW - 86_400, dt.UTC)
    return new_signer(issuer=f"https://{name}.example.cn", country="CN", name=name,
                      now=moment, days=365)  # fmt: skip


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("signer")
    signer = _signer("cdc")
    signer.save(folder)
    texts = issue_all(VACCINATION, Signer.load(folder), now=NOW, valid_days=365,
                      holder=Jwk.of(HOLDER.public_key()))  # fmt: skip
    return folder, texts


def _verify(*args: str) -> tuple[int, dict[str, object]]:
    result = RUNNER.invoke(app, ["credentials", "verify", *args, "--json"])
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_each_encoding_fits_one_qr_code_at_m(issued: tuple[Path, dict[str, str]]) -> None:
    _, texts = issued
    versions = {fmt: qr_version(text) for fmt, text in texts.items()}
    assert versions["dcc"] <= 15 and versions["shc"] <= 25 and versions["sd-jwt-vc"] <= 40


@pytest.mark.parametrize("fmt", ["dcc", "shc", "sd-jwt-vc"])
def test_an_issued_credential_verifies_and_a_tampered_one_is_refused(
    issued: tuple[Path, dict[str, str]], fmt: str
) -> None:
    folder, texts = issued
    trust = str(folder / ("certificate.pem" if fmt == "dcc" else "jwks.json"))
    at = dt.datetime.fromtimestamp(NOW + 60, dt.UTC).isoformat()
    code, verdict = _verify(texts[fmt], "--trust", trust, "--at", at)
    assert (code, verdict["valid"], verdict["format"]) == (0, True, fmt), verdict
    later = dt.datetime.fromtimestamp(NOW + 400 * 86_400, dt.UTC).isoformat()
    code, verdict = _verify(texts[fmt], "--trust", trust, "--at", later)
    assert code == 1 and [r["code"] for r in verdict["reasons"]] == ["EXPIRED"]
    other = _signer("elsewhere")
    other.save(folder.parent / f"other-{fmt}")
    wrong = folder.parent / f"other-{fmt}" / Path(trust).name
    code, verdict = _verify(texts[fmt], "--trust", str(wrong), "--at", at)
    assert code == 1 and verdict["reasons"][0]["code"] == "UNKNOWN_ISSUER"
    text = texts[fmt]
    middle = len(text) // 2
    tampered = text[:middle] + ("2" if text[middle] != "2" else "3") + text[middle + 1 :]
    code, verdict = _verify(tampered, "--trust", trust, "--at", at)
    assert code == 1 and verdict["valid"] is False and verdict["reasons"]


def test_revocation_flips_the_verdict(issued: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    folder, texts = issued
    status = tmp_path / "status.json"
    status.write_text(json.dumps({
        "type": STATUS_TYPE, "fetched_at": NOW,
        "dcc_revoked": [dcc_revocation_hash(VACCINATION.uci)],
        "shc_crls": [{"kid": Signer.load(folder).jwk.thumbprint(), "method": "rid", "ctr": 1,
                      "rids": [rid_of(VACCINATION.uci)]}],
    }))  # fmt: skip
    at = dt.datetime.fromtimestamp(NOW + 60, dt.UTC).isoformat()
    for fmt, trust in (("dcc", "certificate.pem"), ("shc", "jwks.json")):
        args = [texts[fmt], "--trust", str(folder / trust), "--at", at, "--status", str(status)]
        code, verdict = _verify(*args)
        assert code == 1 and [r["code"] for r in verdict["reasons"]] == ["REVOKED"]
        assert verdict["status_age_seconds"] == 60
    stale = dt.datetime.fromtimestamp(NOW + 2 * 86_400, dt.UTC).isoformat()
    code, verdict = _verify(texts["shc"], "--trust", str(folder / "jwks.json"), "--at", stale,
                            "--status", str(status))  # fmt: skip
    assert {r["code"] for r in verdict["reasons"]} == {"REVOKED", "STATUS_STALE"}


def test_a_presentation_with_key_binding(issued: tuple[Path, dict[str, str]]) -> None:
    folder, texts = issued
    shown = sdjwt.present(texts["sd-jwt-vc"], disclose=lambda d: d.name in ("dose", "vaccine"),
                          holder_key=HOLDER, audience="https://checkpoint.example",
                          nonce="n-1", issued_at=NOW + 50)  # fmt: skip
    at = dt.datetime.fromtimestamp(NOW + 60, dt.UTC).isoformat()
    base = [shown, "--trust", str(folder / "jwks.json"), "--at", at]
    code, verdict = _verify(*base, "--audience", "https://checkpoint.example", "--nonce", "n-1")
    assert code == 0, verdict
    claims = verdict["claims"]
    assert isinstance(claims, dict) and claims["dose"] == 2 and "family_name" not in claims
    code, verdict = _verify(*base, "--audience", "https://checkpoint.example", "--nonce", "n-2")
    assert code == 1 and verdict["reasons"][0]["code"] == "KEY_BINDING"


def test_a_qr_image_verifies_and_usage_errors_exit_2(
    issued: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    folder, texts = issued
    png = tmp_path / "dcc.png"
    qr_code(texts["dcc"]).save(str(png), kind="png", scale=3, border=4)
    at = "2026-05-28T20:27:40Z"
    code, verdict = _verify(str(png), "--trust", str(folder / "certificate.pem"), "--at", at)
    assert code == 0 and verdict["credential_id"] == VACCINATION.uci
    result = RUNNER.invoke(app, ["credentials", "verify", texts["dcc"], "--trust",
                                 str(folder / "certificate.pem"), "--at", "yesterday"])  # fmt: skip
    assert result.exit_code == 2 and "RFC 3339" in result.stderr
    result = RUNNER.invoke(app, ["credentials", "verify", texts["dcc"], "--trust",
                                 str(tmp_path / "missing.pem")])  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    code, verdict = _verify(str(garbage), "--trust", str(folder / "certificate.pem"))
    assert code == 1 and verdict["reasons"][0]["code"] == "UNREADABLE_IMAGE"


def test_new_signer_and_issue_sample(tmp_path: Path) -> None:
    folder = tmp_path / "signer"
    made = RUNNER.invoke(app, ["credentials", "new-signer", str(folder), "--issuer",
                               "https://clinic.example.cn"])  # fmt: skip
    assert made.exit_code == 0, made.output
    result = RUNNER.invoke(app, ["credentials", "issue-sample", "--signer", str(folder),
                                 "--format", "shc", "--qr", str(tmp_path / "shc.png")])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = result.stdout.strip().splitlines()[-1]
    code, verdict = _verify(text, "--trust", str(folder / "jwks.json"))
    assert code == 0 and verdict["issuer"] == "https://clinic.example.cn"
    code, verdict = _verify(str(tmp_path / "shc.png"), "--trust", str(folder / "jwks.json"))
    assert code == 0


NEGATIVE_TEST = TestResult(
    family_name="Zhang", given_name="Wei", birth_date="1979-11-03", test_type="LP217198-3",
    detected=False, collected_at="2026-05-27T08:00:00Z", centre="Chaoyang test site",
    country="CN", certificate_issuer="Beijing CDC", uci="URN:UVCI:01:CN:HLTEST0001#T",
)  # fmt: skip
RECOVERY = Recovery(
    family_name="Zhang", given_name="Wei", birth_date="1979-11-03",
    first_positive="2026-05-01", valid_from="2026-05-12", valid_until="2026-10-28",
    country="CN", certificate_issuer="Beijing CDC", uci="URN:UVCI:01:CN:HLRECO0001#R",
)  # fmt: skip


@pytest.mark.parametrize("record", [NEGATIVE_TEST, RECOVERY], ids=["test", "recovery"])
def test_test_results_and_recoveries_verify_in_each_form_they_have(
    issued: tuple[Path, dict[str, str]], record: TestResult | Recovery
) -> None:
    folder, _ = issued
    texts = issue_all(record, Signer.load(folder), now=NOW, valid_days=30,
                      holder=Jwk.of(HOLDER.public_key()))  # fmt: skip
    assert set(texts) == ({"dcc", "sd-jwt-vc"} | ({"shc"} if record is NEGATIVE_TEST else set()))
    at = dt.datetime.fromtimestamp(NOW + 60, dt.UTC).isoformat()
    for fmt, text in texts.items():
        qr_version(text)  # raises when it does not fit one QR code
        trust = folder / ("certificate.pem" if fmt == "dcc" else "jwks.json")
        code, verdict = _verify(text, "--trust", str(trust), "--at", at)
        assert code == 0, verdict
        unchecked = [] if fmt == "sd-jwt-vc" else ["STATUS_UNCHECKED"]  # it names no list
        assert [w["code"] for w in verdict["warnings"]] == unchecked
    group = "t" if record is NEGATIVE_TEST else "r"
    _, verdict = _verify(texts["dcc"], "--trust", str(folder / "certificate.pem"), "--at", at)
    assert isinstance(verdict["claims"], dict) and verdict["claims"][group][0]["ci"] == record.uci
