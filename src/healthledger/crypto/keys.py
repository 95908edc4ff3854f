"""Ed25519 signing keys and signature checks."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from healthledger.crypto.errors import SignatureError

SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key."""

    key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh random key."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """The key of a 32-byte seed (RFC 8032 private key)."""
        if len(seed) != 32:
            raise SignatureError("an Ed25519 seed is 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Load an unencrypted PKCS#8 PEM private key."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            raise SignatureError(f"not an Ed25519 private key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SignatureError("not an Ed25519 private key")
        return cls(key)

    def seed(self) -> bytes:
        """The 32-byte seed of this key."""
        return self.key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def to_pem(self) -> bytes:
        """Unencrypted PKCS#8 PEM."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_bytes(self) -> bytes:
        """The 32-byte public key."""
        return self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def sign(self, message: bytes) -> bytes:
        """A 64-byte Ed25519 signature over ``message``."""
        return self.key.sign(message)

    def sign_b64(self, message: bytes) -> str:
        """The signature over ``message`` in standard base64."""
        return base64.b64encode(self.key.sign(message)).decode("ascii")


def load_public_key(public: bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from its 32 raw bytes."""
    if len(public) != PUBLIC_KEY_SIZE:
        raise SignatureError(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(public)
    except ValueError as exc:
        raise SignatureError(f"malformed public key: {exc}") from exc


def verify_signature(public: Ed25519PublicKey | bytes, signature: bytes, message: bytes) -> None:
    """Return None if ``signature`` is ``public``'s over ``message``; raise SignatureError."""
    key = load_public_key(public) if isinstance(public, bytes) else public
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureError(f"an Ed25519 signature is {SIGNATURE_SIZE} bytes")
    try:
        key.verify(signature, message)
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify") from exc


VERIFIED_MEMO_SIZE = 65_536
"""Signatures a ``VerifiedSignatures`` memo remembers before it starts afresh."""


class VerifiedSignatures:
    """Signature checks that passed, remembered by their exact inputs.

    Ed25519 verification is a pure function of (public key, signature, message),
    so a peer that has verified a proposal's signature when endorsing it need not
    verify the same bytes again in its precheck and in its block. Only successes
    are kept, keyed by SHA-256 over the key, signature and message; the memo is
    bounded and lives in one process."""

    def __init__(self, *, max_entries: int = VERIFIED_MEMO_SIZE) -> None:
        self._max_entries = max_entries
        self._passed: set[bytes] = set()
        self.verified = 0
        """Verifications actually made (not found among those that passed): a figure
        for benchmarks (threads may race on it; it is not used for any decision)."""

    def verify(self, public: Ed25519PublicKey, signature: bytes, message: bytes) -> None:
        """As ``verify_signature``, skipping the check if these exact inputs passed it."""
        if len(signature) != SIGNATURE_SIZE:
            # Fixed sizes keep key || signature || message unambiguous.
            raise SignatureError(f"an Ed25519 signature is {SIGNATURE_SIZE} bytes")
        digest = hashlib.sha256(
            public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            + signature
            + message
        ).digest()
        if digest in self._passed:
            return
        self.verified += 1
        verify_signature(public, signature, message)
        self._remember(digest)

    def made(self, public: bytes, signature: bytes, message: bytes) -> None:
        """Remember a signature this process has just made over ``message`` with the
        private key whose raw public key is ``public``: it verifies under that key by
        construction, so a peer need not verify its own endorsement again in its
        precheck and its block. Filed under that key alone, so a check against any
        other key (a certificate naming another) still verifies it."""
        if len(signature) != SIGNATURE_SIZE or len(public) != PUBLIC_KEY_SIZE:
            return
        self._remember(hashlib.sha256(public + signature + message).digest())

    def _remember(self, digest: bytes) -> None:
        if len(self._passed) >= self._max_entries:
            self._passed.clear()
        self._passed.add(digest)

    def check(self, public: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
        """True if the signature verifies (ledger.validation.SignatureCheck)."""
        try:
            self.verify(public, signature, message)
        except SignatureError:
            return False
        return True


def decode_b64(text: object, *, what: str = "value") -> bytes:
    """Decode standard base64 strictly, naming ``what`` in the error."""
    if not isinstance(text, str):
        raise SignatureError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise SignatureError(f"{what} is not valid base64") from exc
    # One spelling per value: otherwise ids hashed over the text would be malleable.
    if base64.b64encode(raw).decode("ascii") != text:
        raise SignatureError(f"{what} is not canonical base64")
    return raw


def encode_b64(data: bytes) -> str:
    """Standard base64 with padding."""
    return base64.b64encode(data).decode("ascii")
