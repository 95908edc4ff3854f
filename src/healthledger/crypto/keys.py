"""Ed25519 signing keys and signature checks."""

from __future__ import annotations

import base64
import binascii
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
