"""The verdict on one credential: valid or refused, and why, as stable reason codes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    """Why a credential is refused (or, for the warnings, what a verifier should know).

    The values are stable: scripts match on them (``--json``)."""

    SIGNATURE = "SIGNATURE"
    """The signature does not verify with the issuer's key."""
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    REVOKED = "REVOKED"
    UNKNOWN_ISSUER = "UNKNOWN_ISSUER"
    """No key of the trust source fits the credential's issuer and key id."""
    KEY_USAGE = "KEY_USAGE"
    """The DCC signer certificate's extended key usage excludes this certificate type."""
    SIGNER_NOT_VALID = "SIGNER_NOT_VALID"
    """The signer certificate was not valid when the credential was issued."""
    SCHEMA = "SCHEMA"
    """The payload does not follow its schema (DCC JSON schema, SHC or SD-JWT VC shape)."""
    STATUS_STALE = "STATUS_STALE"
    """The cached status list is older than the policy admits."""
    MALFORMED_PREFIX = "MALFORMED_PREFIX"
    MALFORMED_BASE45 = "MALFORMED_BASE45"
    MALFORMED_ZLIB = "MALFORMED_ZLIB"
    MALFORMED_CBOR = "MALFORMED_CBOR"
    MALFORMED_COSE = "MALFORMED_COSE"
    MALFORMED_CWT = "MALFORMED_CWT"
    MALFORMED_QR = "MALFORMED_QR"
    """A ``shc:/`` numeric QR text that is not well formed."""
    QR_CHUNKS = "QR_CHUNKS"
    """Chunked ``shc:/i/n/`` QR texts that are missing, duplicated or inconsistent."""
    MALFORMED_JWS = "MALFORMED_JWS"
    MALFORMED_DEFLATE = "MALFORMED_DEFLATE"
    MALFORMED_SD_JWT = "MALFORMED_SD_JWT"
    DISCLOSURE = "DISCLOSURE"
    """A Disclosure is malformed or does not match a digest of the SD-JWT."""
    KEY_BINDING = "KEY_BINDING"
    """The Key Binding JWT is missing, mis-signed, stale, or not for this verifier."""
    UNREADABLE_IMAGE = "UNREADABLE_IMAGE"
    UNKNOWN_FORMAT = "UNKNOWN_FORMAT"
    # Warnings: never a refusal on their own.
    QR_CHUNKED = "QR_CHUNKED"
    """The card came in several QR codes, which SMART Health Cards deprecates."""
    STATUS_UNCHECKED = "STATUS_UNCHECKED"
    """The credential names a status or revocation list the status source does not hold."""
    VALUE_SET = "VALUE_SET"
    """A coded value is not in the value sets this verifier knows."""


WARNINGS = frozenset({Reason.QR_CHUNKED, Reason.STATUS_UNCHECKED, Reason.VALUE_SET})


@dataclass(frozen=True)
class Finding:
    """One reason with the sentence that explains it."""

    code: Reason
    message: str
    detail: str | None = None
    """A stable sub-code naming the defect more closely (for ``KEY_BINDING``: one of
    ``healthledger.crypto.sdjwt.KB_DEFECTS``), or None."""

    def to_json(self) -> dict[str, Any]:
        """``code`` and ``message``, and ``detail`` when there is one."""
        found: dict[str, Any] = {"code": self.code.value, "message": self.message}
        return found if self.detail is None else {**found, "detail": self.detail}


@dataclass(frozen=True)
class Verdict:
    """What the verifier concluded about one credential."""

    format: str
    """``dcc``, ``shc``, ``sd-jwt-vc`` or ``unknown``."""
    refusals: tuple[Finding, ...]
    """Why the credential is refused; empty when it is valid."""
    warnings: tuple[Finding, ...] = ()
    issuer: str | None = None
    """The issuer: a DCC's country, an SHC's or SD-JWT's ``iss``."""
    kid: str | None = None
    issued_at: int | None = None
    """Unix seconds."""
    expires_at: int | None = None
    checked_at: int = 0
    status_age: int | None = None
    """Seconds between the status list's fetch and the check, when one was used."""
    credential_id: str | None = None
    """The DCC's unique certificate identifier, the SHC's ``rid``, the SD-JWT's ``jti``."""
    claims: Mapping[str, Any] = field(default_factory=dict)
    """The verified content (the DCC's ``hcert`` group, the SHC's FHIR bundle, the SD-JWT's
    processed claims); empty when the signature did not verify."""

    @property
    def valid(self) -> bool:
        """True when nothing refuses the credential."""
        return not self.refusals

    @property
    def codes(self) -> tuple[str, ...]:
        """The refusal codes, in the order they were found."""
        return tuple(f.code.value for f in self.refusals)

    def to_json(self) -> dict[str, Any]:
        """The verdict as JSON (the CLI's ``--json``)."""
        return {
            "valid": self.valid,
            "format": self.format,
            "reasons": [f.to_json() for f in self.refusals],
            "warnings": [{"code": f.code.value, "message": f.message} for f in self.warnings],
            "issuer": self.issuer,
            "kid": self.kid,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "checked_at": self.checked_at,
            "status_age_seconds": self.status_age,
            "credential_id": self.credential_id,
            "claims": dict(self.claims),
        }


def refused(
    fmt: str, code: Reason, message: str, *, at: int, detail: str | None = None, **known: Any
) -> Verdict:
    """A verdict refusing a credential for one reason."""
    finding = Finding(code, message, detail)
    return Verdict(format=fmt, refusals=(finding,), checked_at=at, **known)
