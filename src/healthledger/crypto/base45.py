"""Base45 (RFC 9285): bytes as text in the QR code's alphanumeric alphabet."""

from __future__ import annotations

import struct

from healthledger.crypto.errors import MalformedEncoding

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_LOW = [ALPHABET[n % 45] + ALPHABET[n // 45] for n in range(45 * 45)]
"""The first two characters of a group, by its value modulo 45 * 45."""


def b45encode(data: bytes) -> str:
    """The Base45 text of ``data``: two bytes to three characters, a last byte to two."""
    pairs = len(data) // 2
    out = [
        _LOW[n % 2025] + ALPHABET[n // 2025] for n in struct.unpack(f">{pairs}H", data[: 2 * pairs])
    ]
    if len(data) % 2:
        out.append(_LOW[data[-1]])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """The bytes of Base45 ``text``; refuses characters outside the alphabet, a length
    of 1 modulo 3 and a group whose value does not fit its bytes (RFC 9285 section 4.2)."""
    if len(text) % 3 == 1:
        raise MalformedEncoding("base45", f"a Base45 text cannot be {len(text)} characters long")
    try:
        values = [_VALUE[c] for c in text]
    except KeyError as exc:
        raise MalformedEncoding("base45", f"{exc.args[0]!r} is not a Base45 character") from None
    out = bytearray()
    for i in range(0, len(values), 3):
        group = values[i : i + 3]
        if len(group) == 3:
            n = group[0] + group[1] * 45 + group[2] * 45 * 45
            if n > 0xFFFF:
                raise MalformedEncoding("base45", f"the group at {i} is larger than two bytes")
            out += n.to_bytes(2, "big")
        else:
            n = group[0] + group[1] * 45
            if n > 0xFF:
                raise MalformedEncoding("base45", f"the last group at {i} is larger than a byte")
            out.append(n)
    return bytes(out)
