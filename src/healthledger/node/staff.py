"""Console logins outside the demo: an organisation's staff, each with a password and
their own signing key, kept by their organisation's node in ``staff.json``.

A staff member's Ed25519 key is sealed with AES-256-GCM under a fresh data key
(:func:`healthledger.crypto.envelope.seal`); the data key is itself encrypted under a
key-encryption key that needs both secrets:

``kek = HKDF-SHA256(ikm = operator_key || argon2id(password, kdf_salt), info = LABEL || id)``

So the file alone opens nothing, the operator's key alone opens nothing, and the node
can sign for a person only after that person logged in (the key is unlocked for the
session and kept in memory only). The password is also kept as an argon2id hash (PHC
string) so that a wrong password is told apart from a damaged file.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import Type, hash_secret_raw
from argon2.profiles import RFC_9106_LOW_MEMORY
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from healthledger.crypto.certs import Certificate, load_certificate
from healthledger.crypto.envelope import NONCE_SIZE, Sealed, open_sealed, seal
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.keys import SigningKey
from healthledger.errors import HealthledgerError
from healthledger.ledger.durable import write_durably

STAFF_FILE = "staff.json"
OPERATOR_KEY_ENV = "HEALTHLEDGER_STAFF_KEY"
"""The environment variable that may carry the operator's key (base64 of 32 bytes)."""
OPERATOR_KEY_SIZE = 32
MIN_PASSWORD_LENGTH = 12
LABEL = b"healthledger/staff-key/v1\n"
FORMAT_VERSION = 1


class StaffError(HealthledgerError):
    """The staff file, the operator's key or an enrolment cannot be used."""


class WrongPassword(StaffError):
    """No staff member of that id, or not that password (deliberately not told apart)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def parse_operator_key(text: str, *, where: str) -> bytes:
    """The 32-byte operator key written as base64 (as ``healthledger staff key`` makes it)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StaffError(f"{where} is not base64: {exc}") from exc
    if len(raw) != OPERATOR_KEY_SIZE:
        raise StaffError(f"{where} must hold {OPERATOR_KEY_SIZE} bytes, it holds {len(raw)}")
    return raw


def operator_key(file: Path | None, *, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The operator's key from ``file``, else from ``HEALTHLEDGER_STAFF_KEY``; None if
    neither is given (then no staff can log in)."""
    if file is not None:
        try:
            text = file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise StaffError(f"cannot read the operator key file {file}: {exc}") from exc
        return parse_operator_key(text, where=str(file))
    value = (os.environ if environ is None else environ).get(OPERATOR_KEY_ENV)
    if not value:
        return None
    return parse_operator_key(value, where=OPERATOR_KEY_ENV)


def new_operator_key(random: Callable[[int], bytes] = os.urandom) -> str:
    """A fresh operator key, base64, for a key file or the environment."""
    return _b64(random(OPERATOR_KEY_SIZE))


@dataclass(frozen=True)
class Unlocked:
    """A staff member's certificate and key, opened by their password for one session."""

    certificate: Certificate
    key: SigningKey

    @property
    def id(self) -> str:
        """The identity id, ``org/name``."""
        return f"{self.certificate.org}/{self.certificate.name}"


class StaffStore:
    """``staff.json`` of a node's data folder, opened with the operator's key."""

    def __init__(
        self,
        path: Path,
        *,
        operator_key: bytes,
        org: str | None = None,
        random: Callable[[int], bytes] = os.urandom,
        hasher: PasswordHasher | None = None,
    ) -> None:
        if len(operator_key) != OPERATOR_KEY_SIZE:
            raise StaffError(f"the operator key must be {OPERATOR_KEY_SIZE} bytes")
        self.path = path
        self.org = org
        """The organisation whose staff this node may hold (None: an embedded node)."""
        self._operator_key = operator_key
        self._random = random
        self._hasher = hasher or PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
        self._entries = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            staff = data["staff"]
            if data.get("v") != FORMAT_VERSION or not isinstance(staff, dict):
                raise ValueError("unknown format")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StaffError(f"{self.path} is not a readable staff file: {exc}") from exc
        return staff

    def _save(self) -> None:
        text = json.dumps({"v": FORMAT_VERSION, "staff": self._entries}, indent=2, sort_keys=True)
        write_durably(self.path, text.encode("utf-8"), mode=0o600)

    def ids(self) -> list[str]:
        """The staff members enrolled here."""
        return sorted(self._entries)

    def _kek(self, identity: str, password: str, salt: bytes) -> bytes:
        profile = RFC_9106_LOW_MEMORY
        stretched = hash_secret_raw(
            password.encode("utf-8"),
            salt,
            time_cost=profile.time_cost,
            memory_cost=profile.memory_cost,
            parallelism=profile.parallelism,
            hash_len=32,
            type=Type.ID,
        )
        return HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=LABEL + identity.encode()
        ).derive(self._operator_key + stretched)

    def enrol(self, certificate: Certificate, key: SigningKey, password: str) -> str:
        """Keep ``key`` for the identity of ``certificate``, openable with ``password``;
        an enrolled identity is replaced (a new password or a rotated key)."""
        identity = f"{certificate.org}/{certificate.name}"
        if key.public_bytes() != certificate.public_key:
            raise StaffError(f"the certificate of {identity} is not for this key")
        if certificate.is_ca:
            raise StaffError("a CA certificate is not a staff member's identity")
        if self.org is not None and certificate.org != self.org:
            raise StaffError(
                f"{identity} belongs to {certificate.org}: this node holds only {self.org}'s staff"
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise StaffError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
        salt = self._random(16)
        sealed, data_key = seal(key.seed(), associated_data=identity.encode(), random=self._random)
        nonce = self._random(NONCE_SIZE)
        wrapped = Sealed(
            nonce=nonce,
            ciphertext=AESGCM(self._kek(identity, password, salt)).encrypt(
                nonce, data_key, identity.encode()
            ),
        )
        self._entries[identity] = {
            "cert": certificate.pem,
            "password": self._hasher.hash(password),
            "kdf_salt": _b64(salt),
            "data_key": wrapped.to_json(),
            "key": sealed.to_json(),
        }
        self._save()
        return identity

    def remove(self, identity: str) -> None:
        """Forget a staff member (who can then no longer log in here)."""
        if self._entries.pop(identity, None) is None:
            raise StaffError(f"{identity} is not enrolled on this node")
        self._save()

    def unlock(self, identity: str, password: str) -> Unlocked:
        """The certificate and key of ``identity``, opened with ``password``; raises
        WrongPassword for an unknown id or a wrong password."""
        entry = self._entries.get(identity)
        if entry is None:
            # Spend the same time as a real check, so timing does not tell who is enrolled.
            self._hasher.hash(password)
            raise WrongPassword(identity)
        try:
            self._hasher.verify(str(entry["password"]), password)
        except (VerificationError, InvalidHashError) as exc:
            raise WrongPassword(identity) from exc
        try:
            salt = base64.b64decode(str(entry["kdf_salt"]), validate=True)
            kek = self._kek(identity, password, salt)
            data_key = open_sealed(
                Sealed.from_json(entry["data_key"]), kek, associated_data=identity.encode()
            )
            seed = open_sealed(
                Sealed.from_json(entry["key"]), data_key, associated_data=identity.encode()
            )
            certificate = load_certificate(str(entry["cert"]))
            key = SigningKey.from_seed(seed)
        except (CryptoError, KeyError, ValueError, binascii.Error) as exc:
            raise StaffError(
                f"the key of {identity} does not open: the operator key is not the one it "
                "was enrolled under, or the staff file is damaged"
            ) from exc
        return Unlocked(certificate, key)


def staff_store(data_dir: Path, *, operator_key: bytes, org: str | None = None) -> StaffStore:
    """The staff store of a node's data folder."""
    return StaffStore(data_dir / STAFF_FILE, operator_key=operator_key, org=org)
