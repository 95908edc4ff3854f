"""Keys in encrypted PKCS#8 files, certificate signing requests, and certificates
issued from them by an organisation's CA: valid cases and each refusal."""

from __future__ import annotations

import base64

import pytest

from healthledger.client.enrolment import EnrolmentError, new_identity
from healthledger.crypto.certs import issue_ca_certificate, load_certificate, verify_issued_by
from healthledger.crypto.enrolment import (
    KeyFileError,
    certificate_request,
    decrypt_key,
    encrypt_key,
    issue_from_request,
    load_request,
)
from healthledger.crypto.errors import CertificateError
from healthledger.crypto.keys import SigningKey

YEAR_MS = 365 * 24 * 3600 * 1000


def _ca(org: str = "gz-first-hospital") -> tuple[SigningKey, str]:
    key = SigningKey.from_seed(bytes(range(32)))
    return key, issue_ca_certificate(org=org, key=key, not_before_ms=0, not_after_ms=80 * YEAR_MS)


def test_a_key_round_trips_through_its_encrypted_file() -> None:
    key = SigningKey.generate()
    pem = encrypt_key(key, "correct horse battery")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert key.seed() not in pem
    assert decrypt_key(pem, "correct horse battery").seed() == key.seed()


@pytest.mark.parametrize(
    ("pem", "passphrase", "message"),
    [
        (None, "wrong passphrase", "wrong passphrase"),
        (SigningKey.generate().to_pem(), "whatever1", "not an encrypted PKCS#8"),
        (
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            "whatever1",
            "unreadable",
        ),
    ],
    ids=["wrong-passphrase", "unencrypted", "garbage"],
)
def test_a_key_file_that_cannot_be_opened_says_why(
    pem: bytes | None, passphrase: str, message: str
) -> None:
    data = encrypt_key(SigningKey.generate(), "the right one") if pem is None else pem
    with pytest.raises(KeyFileError, match=message):
        decrypt_key(data, passphrase)


def test_a_short_passphrase_is_refused() -> None:
    with pytest.raises(KeyFileError, match="at least 8"):
        encrypt_key(SigningKey.generate(), "short")


def test_a_request_names_its_subject_and_is_certified_by_its_org_ca() -> None:
    person = SigningKey.generate()
    request = load_request(
        certificate_request(
            key=person,
            org="gz-first-hospital",
            role="doctor",
            name="dr-new",
            attributes={"region": "440104"},
        )
    )
    assert (request.identity, request.role) == ("gz-first-hospital/dr-new", "doctor")
    assert dict(request.attributes) == {"region": "440104"}
    assert request.public_key == person.public_bytes()
    ca_key, ca_pem = _ca()
    cert = issue_from_request(
        request, ca_pem=ca_pem, ca_key=ca_key, not_before_ms=0, not_after_ms=YEAR_MS, serial=9
    )
    assert (cert.org, cert.name, cert.role, cert.public_key) == (
        "gz-first-hospital",
        "dr-new",
        "doctor",
        person.public_bytes(),
    )
    verify_issued_by(cert, load_certificate(ca_pem))


def test_a_request_for_another_organisation_or_with_the_wrong_ca_key_is_refused() -> None:
    request = load_request(
        certificate_request(
            key=SigningKey.generate(), org="sz-peoples-hospital", role="doctor", name="dr-x"
        )
    )
    ca_key, ca_pem = _ca()
    with pytest.raises(CertificateError, match="for organisation sz-peoples-hospital"):
        issue_from_request(
            request, ca_pem=ca_pem, ca_key=ca_key, not_before_ms=0, not_after_ms=1, serial=2
        )
    own = load_request(
        certificate_request(
            key=SigningKey.generate(), org="gz-first-hospital", role="doctor", name="dr-y"
        )
    )
    with pytest.raises(CertificateError, match="not the key of"):
        issue_from_request(
            own,
            ca_pem=ca_pem,
            ca_key=SigningKey.generate(),
            not_before_ms=0,
            not_after_ms=1,
            serial=2,
        )


def test_a_tampered_request_fails_its_proof_of_possession() -> None:
    pem = certificate_request(
        key=SigningKey.generate(), org="gz-first-hospital", role="doctor", name="dr-a"
    )
    other = certificate_request(
        key=SigningKey.generate(), org="gz-first-hospital", role="doctor", name="dr-b"
    )

    def der(text: str) -> bytes:
        return base64.b64decode("".join(text.strip().splitlines()[1:-1]))

    # Swap the signature of one request onto the other's body.
    a, b = der(pem), der(other)
    forged = a[: len(a) - 64] + b[len(b) - 64 :]
    body = base64.encodebytes(forged).decode("ascii")
    forged_pem = f"-----BEGIN CERTIFICATE REQUEST-----\n{body}-----END CERTIFICATE REQUEST-----\n"
    with pytest.raises(CertificateError, match="does not verify"):
        load_request(forged_pem)
    with pytest.raises(CertificateError, match="not a PEM certificate signing request"):
        load_request("hello")


def test_a_ca_role_cannot_be_requested() -> None:
    with pytest.raises(CertificateError, match="reserved"):
        certificate_request(key=SigningKey.generate(), org="gz-first-hospital", role="ca", name="x")


@pytest.mark.parametrize(
    ("org", "role", "name", "says"),
    [
        ("GZ Hospital", "doctor", "dr-a", "not an organisation id"),
        ("gz-first-hospital", "Doctor", "dr-a", "not a role"),
        ("gz-first-hospital", "doctor", "Dr Li", "not an identity name"),
    ],
)
def test_names_no_proposal_could_carry_are_refused_before_a_key_is_made(
    org: str, role: str, name: str, says: str
) -> None:
    with pytest.raises(EnrolmentError, match=says):
        new_identity(org=org, role=role, name=name, passphrase="long enough")
