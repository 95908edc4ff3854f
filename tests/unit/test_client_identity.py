"""Loading a client identity from its files, and signing with it: where the
certificate is found, and each file that cannot be used named in one line; reads of
membership that fall back on a signed query (over a swapped httpx transport, no
socket)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from healthledger.client import AccessDenied, Client, Identity, IdentityError
from healthledger.client.identity import certificate_path, read_passphrase
from healthledger.crypto.certs import issue_ca_certificate, issue_identity_certificate
from healthledger.crypto.enrolment import encrypt_key
from healthledger.crypto.keys import SigningKey, verify_signature
from healthledger.ledger.transaction import SignedProposal, transient_digest

NOW = 1_800_000_000_000
DAY = 24 * 3600 * 1000
PASSPHRASE = "eight or more"


def _files(folder: Path, *, not_after: int = NOW + DAY) -> tuple[Path, str, SigningKey]:
    ca = SigningKey.generate()
    ca_pem = issue_ca_certificate(org="gd-cdc", key=ca, not_before_ms=0, not_after_ms=2 * NOW)
    key = SigningKey.generate()
    cert = issue_identity_certificate(
        ca_pem=ca_pem, ca_key=ca, role="officer", name="officer-wu",
        public_key=key.public_bytes(), not_before_ms=NOW - DAY, not_after_ms=not_after, serial=3,
    )  # fmt: skip
    key_file = folder / "officer-wu.key.pem"
    key_file.write_bytes(encrypt_key(key, PASSPHRASE))
    return key_file, cert, key


def test_the_certificate_is_found_beside_the_key_or_in_it(tmp_path: Path) -> None:
    key_file, cert, _ = _files(tmp_path)
    assert certificate_path(key_file) == tmp_path / "officer-wu.cert.pem"
    with pytest.raises(IdentityError, match=r"no certificate for .*officer-wu\.cert\.pem"):
        Identity.load(key_file, passphrase=PASSPHRASE, clock=lambda: NOW)
    certificate_path(key_file).write_text(cert)
    beside = Identity.load(key_file, passphrase=PASSPHRASE, clock=lambda: NOW)
    certificate_path(key_file).unlink()
    key_file.write_bytes(key_file.read_bytes() + cert.encode())
    inside = Identity.load(key_file, passphrase=PASSPHRASE, clock=lambda: NOW)
    assert beside.id == inside.id == "gd-cdc/officer-wu"
    assert inside.role == "officer"


def test_a_proposal_is_signed_with_the_key_and_binds_its_salted_transient(tmp_path: Path) -> None:
    key_file, cert, key = _files(tmp_path)
    certificate_path(key_file).write_text(cert)
    identity = Identity.load(key_file, passphrase=PASSPHRASE, clock=lambda: NOW)
    call = identity.propose("epidemic", "report_case", {"region": "440104"}, transient={"a": "b"})
    proposal = call.signed.proposal
    assert (proposal.creator, proposal.timestamp) == ("gd-cdc/officer-wu", NOW)
    assert call.transient is not None and call.transient["a"] == "b"
    assert len(call.transient["_salt"]) == 32
    assert proposal.transient_hash == transient_digest(call.transient)
    verify_signature(key.public_bytes(), call.signed.signature, call.signed.signed_bytes)
    assert SignedProposal.from_json(call.signed.to_json()).tx_id == call.tx_id
    other = identity.propose("epidemic", "report_case", {"region": "440104"})
    assert other.tx_id != call.tx_id  # a fresh nonce every time
    with pytest.raises(IdentityError, match="cannot make this proposal"):
        identity.propose("Not A Name", "f")


def test_an_expired_or_not_yet_valid_certificate_is_refused(tmp_path: Path) -> None:
    key_file, cert, _ = _files(tmp_path, not_after=NOW - 1)
    certificate_path(key_file).write_text(cert)
    with pytest.raises(IdentityError, match="gd-cdc/officer-wu expired at"):
        Identity.load(key_file, passphrase=PASSPHRASE, clock=lambda: NOW)
    with pytest.raises(IdentityError, match="not valid before"):
        Identity.load(key_file, passphrase=PASSPHRASE, clock=lambda: NOW - 2 * DAY)


def test_unusable_files_are_named(tmp_path: Path) -> None:
    key_file, _, _ = _files(tmp_path)
    certificate_path(key_file).write_text("not a certificate")
    with pytest.raises(IdentityError, match=r"officer-wu\.cert\.pem: not a PEM certificate"):
        Identity.load(key_file, passphrase=PASSPHRASE, clock=lambda: NOW)
    with pytest.raises(IdentityError, match="wrong passphrase"):
        Identity.load(key_file, passphrase="not the one", clock=lambda: NOW)
    with pytest.raises(IdentityError, match="cannot read the key file"):
        Identity.load(tmp_path / "missing.key.pem", passphrase=PASSPHRASE)
    (tmp_path / "empty").write_text("")
    with pytest.raises(IdentityError, match="is empty"):
        read_passphrase(tmp_path / "empty")
    (tmp_path / "phrase").write_text("first line\nsecond\n")
    assert read_passphrase(tmp_path / "phrase") == "first line"


def test_membership_reads_fall_back_on_a_signed_query_where_the_route_is_for_members(
    tmp_path: Path,
) -> None:
    key_file, cert, _ = _files(tmp_path)
    certificate_path(key_file).write_text(cert)
    identity = Identity.load(key_file, passphrase=PASSPHRASE, clock=lambda: NOW)
    asked: list[tuple[str, str]] = []
    record = {"id": "gd-cdc/officer-wu", "status": "active", "cert": cert}

    def node(request: httpx.Request) -> httpx.Response:
        asked.append((request.method, request.url.path))
        if request.url.path == "/api/v1/consortium/identities":
            problem = {"type": "/api/v1/problems/access-denied", "detail": "members only"}
            return httpx.Response(403, json=problem)
        body = json.loads(request.content)
        assert body["proposal"]["creator"] == "gd-cdc/officer-wu"
        assert (body["proposal"]["contract"], body["proposal"]["function"]) == (
            "membership", "identities"
        )  # fmt: skip
        return httpx.Response(200, json={"result": [record], "custody": "client"})

    transport = httpx.MockTransport(node)
    with Client("http://node", identity=identity, transport=transport) as client:
        assert client.registered("gd-cdc/officer-wu") == record
    assert asked == [("GET", "/api/v1/consortium/identities"), ("POST", "/api/v1/query")]
    with Client("http://node", transport=transport) as anonymous, pytest.raises(AccessDenied):
        anonymous.registered("gd-cdc/officer-wu")
