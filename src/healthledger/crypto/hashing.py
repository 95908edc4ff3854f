"""SHA-256, the one hash function of the ledger."""

from __future__ import annotations

import hashlib
from typing import Any

from healthledger.crypto.canonical import canonical_json

ZERO_HASH = "0" * 64
"""The hex hash that stands before the first block."""


def sha256(data: bytes) -> bytes:
    """SHA-256 digest of ``data``."""
    return hashlib.sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    """SHA-256 digest of ``data`` as 64 lowercase hex characters."""
    return hashlib.sha256(data).hexdigest()


def hash_canonical(value: Any) -> str:
    """Hex SHA-256 of the canonical JSON encoding of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def is_hex_hash(text: object) -> bool:
    """True if ``text`` is a 64-character lowercase hex SHA-256 digest."""
    return isinstance(text, str) and len(text) == 64 and all(c in "0123456789abcdef" for c in text)
