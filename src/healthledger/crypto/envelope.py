"""Envelope encryption for the private-data vault (ARCHITECTURE.md sections 1 and 2).

A payload is sealed with AES-256-GCM under a fresh random data key; the data key is
then wrapped for a vault's X25519 public key. Only the wrapped key is kept next to the
sealed payload, so erasing every wrapped copy of a data key erases the payload
(crypto-shredding) while anything on the chain that commits to it stays intact.

Wrapping (one wrap per recipient, ECIES style):

1. a fresh ephemeral X25519 key pair is drawn (one per wrap, or one per
   :class:`KeyWrapper`, which wraps several data keys under one agreement);
2. ``shared = X25519(ephemeral_private, recipient_public)``;
3. ``kek = HKDF-SHA256(ikm=shared, salt=none, info=CONTEXT_LABEL || ephemeral_public
   || recipient_public, length=32)``;
4. ``ciphertext = AES-256-GCM(kek, nonce, data_key, associated_data=none)``, with a
   random nonce per wrap.

Every failure (a malformed record, key or length, a wrong key, tampering) raises
:class:`DecryptionError`, never an exception of the underlying library, so callers
handle one error type. The one exception is an injected random source that returns the
wrong number of bytes: that is a programming error and raises :class:`CryptoError`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from healthledger.crypto.errors import CryptoError, DecryptionError

Random = Callable[[int], bytes]
"""A source of random bytes: called with a length, returns that many bytes."""

FORMAT_VERSION = 1
"""The ``v`` field of the JSON forms of :class:`WrappedKey` and :class:`Sealed`."""

CONTEXT_LABEL = b"healthledger/envelope/v1"
"""Fixed HKDF context label; a new wrapping scheme gets a new label."""

DATA_KEY_SIZE = 32
"""AES-256 data keys are 32 bytes."""

NONCE_SIZE = 12
"""AES-GCM nonces are 96 bits, the size GCM is specified for."""

TAG_SIZE = 16
"""AES-GCM appends a 128-bit authentication tag to every ciphertext."""

X25519_KEY_SIZE = 32
"""Raw X25519 private and public keys are 32 bytes."""

WRAPPED_KEY_CIPHERTEXT_SIZE = DATA_KEY_SIZE + TAG_SIZE
"""A wrapped data key: the 32-byte key plus the GCM tag."""


def _draw(random: Random, size: int, what: str) -> bytes:
    # An injected source that returns the wrong length would silently weaken keys or
    # nonces, so it is a hard error rather than something to pad or truncate.
    data = random(size)
    if not isinstance(data, bytes) or len(data) != size:
        raise CryptoError(f"random source gave a bad {what}: wanted {size} bytes")
    return data


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise DecryptionError(f"{what} must be a base64 string")
    try:
        data = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise DecryptionError(f"{what} is not valid base64") from exc
    # The decoder ignores non-zero padding bits; refusing them keeps one text per value,
    # so a stored record cannot be re-encoded into a different but equivalent string.
    if _b64encode(data) != value:
        raise DecryptionError(f"{what} is not canonical base64")
    return data


def _check_fields(data: object, fields: tuple[str, ...], what: str) -> Mapping[str, object]:
    if not isinstance(data, Mapping):
        raise DecryptionError(f"{what} must be a JSON object")
    expected = {"v", *fields}
    if set(data) != expected:
        raise DecryptionError(f"{what} must have exactly the fields {sorted(expected)}")
    version = data["v"]
    # bool is an int in Python, and True == 1: compare the type too.
    if type(version) is not int or version != FORMAT_VERSION:
        raise DecryptionError(f"{what} has unsupported version {version!r}")
    return data


def _check_bytes(value: object, size: int, what: str) -> None:
    if not isinstance(value, bytes):
        raise DecryptionError(f"{what} must be bytes")
    if len(value) != size:
        raise DecryptionError(f"{what} must be {size} bytes, not {len(value)}")


def _load_public(raw: bytes, what: str) -> X25519PublicKey:
    _check_bytes(raw, X25519_KEY_SIZE, what)
    return X25519PublicKey.from_public_bytes(raw)


def _exchange(private: X25519PrivateKey, public: X25519PublicKey) -> bytes:
    try:
        return private.exchange(public)
    except ValueError as exc:
        # Raised for low-order points, whose shared secret is all zeros and so secret
        # to nobody.
        raise DecryptionError("X25519 key agreement failed: low-order public key") from exc


def _key_encryption_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    # Both public keys go into info: X25519 ignores the top bit of a public key and
    # reduces it mod p, so several encodings give one shared secret; binding the exact
    # bytes makes each of those encodings derive a different key.
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=DATA_KEY_SIZE,
        salt=None,
        info=CONTEXT_LABEL + ephemeral_public + recipient_public,
    )
    return hkdf.derive(shared)


@dataclass(frozen=True)
class VaultKey:
    """A vault's X25519 private key, for which data keys are wrapped."""

    key: X25519PrivateKey

    @classmethod
    def generate(cls, *, random: Random = os.urandom) -> VaultKey:
        """A fresh key from ``random``."""
        return cls(X25519PrivateKey.from_private_bytes(_draw(random, X25519_KEY_SIZE, "key")))

    @classmethod
    def from_bytes(cls, raw: bytes) -> VaultKey:
        """The key of 32 raw private bytes (RFC 7748 scalar, clamped on use)."""
        _check_bytes(raw, X25519_KEY_SIZE, "a vault private key")
        return cls(X25519PrivateKey.from_private_bytes(raw))

    def private_bytes(self) -> bytes:
        """The 32 raw private bytes; whoever holds them can unwrap this vault's keys."""
        return self.key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def public_bytes(self) -> bytes:
        """The 32-byte public key that data keys are wrapped for."""
        return self._public

    @functools.cached_property
    def _public(self) -> bytes:
        # Derived once: every wrap and unwrap names the recipient's public key.
        return self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )


@dataclass(frozen=True)
class WrappedKey:
    """A data key wrapped for one recipient's X25519 public key."""

    ephemeral_public: bytes
    """The sender's one-off X25519 public key (32 bytes)."""
    nonce: bytes
    """AES-GCM nonce of the wrap (12 bytes)."""
    ciphertext: bytes
    """The encrypted data key with its GCM tag (48 bytes)."""

    def __post_init__(self) -> None:
        _check_bytes(self.ephemeral_public, X25519_KEY_SIZE, "ephemeral public key")
        _check_bytes(self.nonce, NONCE_SIZE, "wrapped key nonce")
        _check_bytes(self.ciphertext, WRAPPED_KEY_CIPHERTEXT_SIZE, "wrapped key ciphertext")

    def to_json(self) -> dict[str, int | str]:
        """A JSON object of base64 strings with a version field, for storage."""
        return {
            "v": FORMAT_VERSION,
            "ephemeral_public": _b64encode(self.ephemeral_public),
            "nonce": _b64encode(self.nonce),
            "ciphertext": _b64encode(self.ciphertext),
        }

    @classmethod
    def from_json(cls, data: object) -> WrappedKey:
        """Parse the form made by :meth:`to_json`; raise DecryptionError if malformed."""
        fields = _check_fields(data, ("ephemeral_public", "nonce", "ciphertext"), "wrapped key")
        return cls(
            ephemeral_public=_b64decode(fields["ephemeral_public"], "ephemeral_public"),
            nonce=_b64decode(fields["nonce"], "nonce"),
            ciphertext=_b64decode(fields["ciphertext"], "ciphertext"),
        )


@dataclass(frozen=True)
class Sealed:
    """A payload encrypted with AES-256-GCM under a data key."""

    nonce: bytes
    """AES-GCM nonce (12 random bytes)."""
    ciphertext: bytes
    """The encrypted payload followed by its 16-byte GCM tag."""

    def __post_init__(self) -> None:
        _check_bytes(self.nonce, NONCE_SIZE, "sealed nonce")
        if not isinstance(self.ciphertext, bytes) or len(self.ciphertext) < TAG_SIZE:
            raise DecryptionError(f"sealed ciphertext must be at least {TAG_SIZE} bytes")

    def to_json(self) -> dict[str, int | str]:
        """A JSON object of base64 strings with a version field, for storage."""
        return {
            "v": FORMAT_VERSION,
            "nonce": _b64encode(self.nonce),
            "ciphertext": _b64encode(self.ciphertext),
        }

    @classmethod
    def from_json(cls, data: object) -> Sealed:
        """Parse the form made by :meth:`to_json`; raise DecryptionError if malformed."""
        fields = _check_fields(data, ("nonce", "ciphertext"), "sealed payload")
        return cls(
            nonce=_b64decode(fields["nonce"], "nonce"),
            ciphertext=_b64decode(fields["ciphertext"], "ciphertext"),
        )


def seal(
    plaintext: bytes, *, associated_data: bytes, random: Random = os.urandom
) -> tuple[Sealed, bytes]:
    """Encrypt ``plaintext`` under a fresh data key; return the sealed payload and the key.

    ``associated_data`` (e.g. the record id) is authenticated but not stored: the same
    bytes must be given to :func:`open_sealed`, so a sealed payload cannot be moved to
    another record.
    """
    data_key = _draw(random, DATA_KEY_SIZE, "data key")
    # A random 96-bit nonce is safe here because each data key encrypts one payload.
    nonce = _draw(random, NONCE_SIZE, "nonce")
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, associated_data)
    return Sealed(nonce=nonce, ciphertext=ciphertext), data_key


def open_sealed(sealed: Sealed, data_key: bytes, *, associated_data: bytes) -> bytes:
    """Decrypt ``sealed``; raise DecryptionError for a wrong key, wrong AD or tampering."""
    _check_bytes(data_key, DATA_KEY_SIZE, "data key")
    try:
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, associated_data)
    except InvalidTag as exc:
        raise DecryptionError(
            "sealed payload does not open: wrong data key, wrong associated data or tampered"
        ) from exc


class KeyWrapper:
    """Wraps data keys for one recipient under one ephemeral X25519 key: the key
    agreement and the key-encryption key are made once (steps 1-3), then each wrap is
    one AES-256-GCM encryption with a nonce of its own (step 4), so a vault sealing many
    values pays for one X25519 exchange instead of one each. Every data key is still
    wrapped on its own: erasing one wrapped copy erases that key only. Keep a wrapper
    for a bounded number of wraps (random 96-bit nonces under one key)."""

    def __init__(self, recipient_public: bytes, *, random: Random = os.urandom) -> None:
        recipient = _load_public(recipient_public, "recipient public key")
        ephemeral = X25519PrivateKey.from_private_bytes(
            _draw(random, X25519_KEY_SIZE, "ephemeral key")
        )
        self._ephemeral_public = ephemeral.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        shared = _exchange(ephemeral, recipient)
        self._kek = AESGCM(_key_encryption_key(shared, self._ephemeral_public, recipient_public))
        self._random = random

    def wrap(self, data_key: bytes) -> WrappedKey:
        """Wrap ``data_key`` so that only the recipient's vault key can unwrap it."""
        _check_bytes(data_key, DATA_KEY_SIZE, "data key")
        # A random nonce per wrap: one key-encryption key serves several wraps.
        nonce = _draw(self._random, NONCE_SIZE, "nonce")
        ciphertext = self._kek.encrypt(nonce, data_key, None)
        return WrappedKey(
            ephemeral_public=self._ephemeral_public, nonce=nonce, ciphertext=ciphertext
        )


def wrap_key(
    data_key: bytes, recipient_public: bytes, *, random: Random = os.urandom
) -> WrappedKey:
    """Wrap ``data_key`` so that only the vault key of ``recipient_public`` can unwrap it,
    under a fresh ephemeral key of its own."""
    _check_bytes(data_key, DATA_KEY_SIZE, "data key")
    return KeyWrapper(recipient_public, random=random).wrap(data_key)


def unwrap_key(wrapped: WrappedKey, recipient: VaultKey) -> bytes:
    """Recover the data key from ``wrapped``; raise DecryptionError if it does not open."""
    ephemeral = _load_public(wrapped.ephemeral_public, "ephemeral public key")
    shared = _exchange(recipient.key, ephemeral)
    kek = _key_encryption_key(shared, wrapped.ephemeral_public, recipient.public_bytes())
    try:
        data_key = AESGCM(kek).decrypt(wrapped.nonce, wrapped.ciphertext, None)
    except InvalidTag as exc:
        raise DecryptionError(
            "wrapped key does not open: wrong vault key or tampered wrapped key"
        ) from exc
    # The ciphertext length is checked on construction, so this is a 32-byte key.
    return data_key
