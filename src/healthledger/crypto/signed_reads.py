"""Signed read requests: how a consortium member proves who reads from a node's API.

A member signs each request with its identity's Ed25519 key and sends four headers:

- ``HL-Identity``: the identity id, ``org/name``, registered and active on the ledger;
- ``HL-Timestamp``: Unix milliseconds when the request was signed;
- ``HL-Nonce``: 16 to 64 hex digits, never used before by this identity;
- ``HL-Signature``: base64 of the signature over :func:`read_message`.

The signed message binds the method, the path and the query string exactly as sent
(percent-encoding and all), so a signature cannot be moved to another route or
another question; the node refuses a timestamp outside its clock-skew window and a
nonce it has already seen inside that window, so a captured request cannot be replayed.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

from healthledger.crypto.keys import SigningKey

IDENTITY_HEADER = "HL-Identity"
TIMESTAMP_HEADER = "HL-Timestamp"
NONCE_HEADER = "HL-Nonce"
SIGNATURE_HEADER = "HL-Signature"
READ_HEADERS = (IDENTITY_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)
"""The four headers of a signed read, all required together."""

DOMAIN = "healthledger-read-v1"
"""The first line of every signed message: a read signature is never a proposal's."""
NONCE_RE = re.compile(r"^[0-9a-f]{16,64}$")
"""What a nonce looks like: lower-case hex, 8 to 32 bytes."""


def read_message(
    *, method: str, path: str, query: str, timestamp: int, nonce: str, identity: str
) -> bytes:
    """The bytes a member signs for one request: the domain, then the upper-case
    method, the raw path, the raw query string (empty if none), the timestamp, the
    nonce and the identity id, one per line."""
    lines = (DOMAIN, method.upper(), path, query, str(timestamp), nonce, identity)
    return "\n".join(lines).encode("utf-8")


def wall_clock_ms() -> int:
    """Unix milliseconds now."""
    return time.time_ns() // 1_000_000


def sign_read(
    key: SigningKey,
    *,
    identity: str,
    method: str,
    path: str,
    query: str = "",
    clock: Callable[[], int] = wall_clock_ms,
    random: Callable[[int], bytes] = os.urandom,
) -> dict[str, str]:
    """The headers that sign a ``method`` request of ``path?query`` as ``identity``."""
    timestamp, nonce = clock(), random(16).hex()
    message = read_message(
        method=method, path=path, query=query, timestamp=timestamp, nonce=nonce, identity=identity
    )
    return {
        IDENTITY_HEADER: identity,
        TIMESTAMP_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        SIGNATURE_HEADER: key.sign_b64(message),
    }
