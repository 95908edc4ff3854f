"""An identity a client signs as: its certificate and its private key, which stays
on the client's machine in an encrypted PKCS#8 file.

The key file may hold the certificate too (PEM blocks one after the other); else the
certificate is the file beside it named ``NAME.cert.pem`` for a key ``NAME.key.pem``.
"""

from __future__ import annotations

import getpass
import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthledger.client.errors import IdentityError
from healthledger.crypto.certs import Certificate, load_certificate
from healthledger.crypto.enrolment import KeyFileError, decrypt_key
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.keys import SigningKey
from healthledger.ledger.errors import InvalidTransaction
from healthledger.ledger.transaction import Proposal, SignedProposal, transient_digest

_CERT_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.*?-----END CERTIFICATE-----\r?\n?", re.DOTALL
)
KEY_SUFFIX = ".key.pem"
CERT_SUFFIX = ".cert.pem"


def wall_clock_ms() -> int:
    """Unix milliseconds now."""
    return time.time_ns() // 1_000_000


def read_passphrase(
    file: Path | str | None = None, *, prompt: str = "Passphrase: ", confirm: bool = False
) -> str:
    """A passphrase from the first line of ``file``, else asked on the terminal (twice
    with ``confirm``); IdentityError if neither can be had."""
    if file is not None:
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise IdentityError(f"cannot read the passphrase file {file}: {exc}") from exc
        if not lines or not lines[0]:
            raise IdentityError(f"the passphrase file {file} is empty")
        return lines[0]
    if not sys.stdin.isatty():
        raise IdentityError("no terminal to ask the passphrase on: give a passphrase file")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != first:
        raise IdentityError("the passphrases differ")
    return first


def certificate_path(key_path: Path) -> Path:
    """Where the certificate of the key file ``key_path`` lies when the key file holds none."""
    name = key_path.name
    stem = name[: -len(KEY_SUFFIX)] if name.endswith(KEY_SUFFIX) else key_path.stem
    return key_path.with_name(stem + CERT_SUFFIX)


@dataclass(frozen=True)
class SignedCall:
    """A signed proposal and the salted private inputs it binds (None: no transient)."""

    signed: SignedProposal
    transient: dict[str, Any] | None

    @property
    def tx_id(self) -> str:
        """The transaction id the call will have."""
        return self.signed.tx_id

    def body(self) -> dict[str, Any]:
        """The request body of ``/proposals/endorse``, ``/invoke`` and ``/query``."""
        body = self.signed.to_json()
        if self.transient is not None:
            body["transient"] = self.transient
        return body


class Identity:
    """A registered identity's certificate and key: signs proposals locally."""

    def __init__(
        self,
        *,
        certificate: Certificate,
        key: SigningKey,
        clock: Callable[[], int] = wall_clock_ms,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if key.public_bytes() != certificate.public_key:
            raise IdentityError(
                f"the certificate of {certificate.org}/{certificate.name} is not for this key"
            )
        if certificate.is_ca:
            raise IdentityError("a CA certificate is not an identity: use the CA key to issue")
        self.certificate = certificate
        self.key = key
        self._clock = clock
        self._random = random

    @classmethod
    def load(
        cls,
        key_file: Path | str,
        *,
        passphrase: str,
        certificate_file: Path | str | None = None,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> Identity:
        """The identity of an encrypted PKCS#8 key file and its certificate (in the key
        file, or ``certificate_file``, or beside the key as ``NAME.cert.pem``)."""
        key_path = Path(key_file)
        try:
            key_pem = key_path.read_bytes()
        except OSError as exc:
            raise IdentityError(f"cannot read the key file {key_path}: {exc.strerror}") from exc
        try:
            key = decrypt_key(key_pem, passphrase)
        except KeyFileError as exc:
            raise IdentityError(f"{key_path}: {exc}") from exc
        block = _CERT_BLOCK.search(key_pem)
        if certificate_file is None and block is not None:
            cert_pem, where = block.group(0), key_path
        else:
            where = Path(certificate_file) if certificate_file else certificate_path(key_path)
            try:
                cert_pem = where.read_bytes()
            except OSError as exc:
                raise IdentityError(
                    f"no certificate for {key_path}: cannot read {where} ({exc.strerror}); "
                    "it is issued when the organisation's admin registers the request"
                ) from exc
        try:
            certificate = load_certificate(cert_pem)
        except CryptoError as exc:
            raise IdentityError(f"{where}: {exc}") from exc
        identity = cls(certificate=certificate, key=key, clock=clock)
        identity.check_validity()
        return identity

    @property
    def id(self) -> str:
        """The identity id, ``org/name``."""
        return f"{self.certificate.org}/{self.certificate.name}"

    @property
    def org(self) -> str:
        """The identity's organisation."""
        return self.certificate.org

    @property
    def role(self) -> str:
        """The identity's role in its organisation."""
        return self.certificate.role

    def check_validity(self) -> None:
        """Raise IdentityError if the certificate is expired or not yet valid now."""
        now = self._clock()
        cert = self.certificate
        if now > cert.not_after_ms:
            raise IdentityError(
                f"the certificate of {self.id} expired at {_when(cert.not_after_ms)}"
            )
        if now < cert.not_before_ms:
            raise IdentityError(
                f"the certificate of {self.id} is not valid before {_when(cert.not_before_ms)}"
            )

    def propose(
        self,
        contract: str,
        function: str,
        args: Mapping[str, Any] | None = None,
        *,
        transient: Mapping[str, Any] | None = None,
    ) -> SignedCall:
        """A proposal to call ``contract.function(**args)``, signed with this key; the
        private inputs ``transient`` are salted and bound by their hash."""
        salted = None
        if transient is not None:
            salted = {**transient, "_salt": self._random(16).hex()}
        try:
            proposal = Proposal(
                contract=contract,
                function=function,
                args=dict(args or {}),
                creator=self.id,
                nonce=self._random(16).hex(),
                timestamp=self._clock(),
                transient_hash=None if salted is None else transient_digest(salted),
            )
            # Parse the JSON form back: the same checks a node makes on names and ids.
            Proposal.from_json(proposal.to_json())
        except (InvalidTransaction, CryptoError) as exc:
            raise IdentityError(f"cannot make this proposal: {exc}") from exc
        return SignedCall(SignedProposal.sign(proposal, self.key), salted)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(ms / 1000))
