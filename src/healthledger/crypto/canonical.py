"""The canonical JSON profile (ARCHITECTURE.md section 4).

RFC 8785 (JCS) restricted so that a sorted, compact serialisation *is* the canonical
form: no floats (integers only, within the IEEE-754 safe range that JCS numbers can
carry exactly), object keys ASCII only (so UTF-16 and code-point ordering agree),
strings valid Unicode without lone surrogates. Everything hashed or signed is
hashed or signed over these bytes.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from healthledger.crypto.errors import CanonicalEncodingError

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer a JCS number represents exactly."""

MAX_DEPTH = 64
"""Nesting beyond this is refused: no record of ours is that deep."""


def _as_base(value: Any) -> Any:
    """A subclass of str or int (not an enum: msgspec encodes those) as its base value,
    as the json module encodes it; anything else has no JSON form."""
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    raise TypeError(f"type {type(value).__name__} has no canonical JSON form")


_ENCODER = msgspec.json.Encoder(order="sorted", enc_hook=_as_base)
"""Sorted keys, no whitespace, strings as UTF-8 with only the escapes JSON requires: for a
value of the profile, byte for byte what ``json.dumps(value, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` gives (a property test holds them equal),
about seven times faster. Everything hashed or signed passes through here."""


def check_canonical(value: Any, *, _depth: int = 0) -> None:
    """Raise CanonicalEncodingError unless ``value`` fits the canonical profile."""
    # Hot path (every write, proposal and response of every transaction): the common
    # exact types first, and an ASCII string (str.isascii is a flag test in CPython)
    # cannot hold a lone surrogate, so only other strings are encoded to look for one.
    # The checks, their order and their errors are those of _check_other.
    kind = type(value)
    if kind is str:
        if not value.isascii():
            _check_string(value)
        return
    if kind is dict:
        if _depth >= MAX_DEPTH:
            _check_depth(_depth)
        for key, item in value.items():
            if type(key) is not str or not key.isascii():
                _check_key(key)
            if type(item) is str:  # the commonest leaf, checked here without a call
                if not item.isascii():
                    _check_string(item)
            else:
                check_canonical(item, _depth=_depth + 1)
        return
    if kind is list or kind is tuple:
        if _depth >= MAX_DEPTH:
            _check_depth(_depth)
        for item in value:
            if type(item) is str:
                if not item.isascii():
                    _check_string(item)
            else:
                check_canonical(item, _depth=_depth + 1)
        return
    if kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalEncodingError(f"integer {value} outside ±(2**53 - 1)")
        return
    if value is None or kind is bool:
        return
    _check_other(value, _depth)


def _check_other(value: Any, depth: int) -> None:
    """The profile for subclasses of the JSON types, floats and everything else."""
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalEncodingError(f"integer {value} outside ±(2**53 - 1)")
        return
    if isinstance(value, str):
        _check_string(value)
        return
    if isinstance(value, float):
        raise CanonicalEncodingError(
            "floats are not allowed: use integers in minor units or decimal strings"
        )
    if isinstance(value, dict):
        _check_depth(depth)
        for key, item in value.items():
            _check_key(key)
            check_canonical(item, _depth=depth + 1)
        return
    if isinstance(value, list | tuple):
        _check_depth(depth)
        for item in value:
            check_canonical(item, _depth=depth + 1)
        return
    raise CanonicalEncodingError(f"type {type(value).__name__} has no canonical JSON form")


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise CanonicalEncodingError(f"object key {key!r} is not a string")
    if not key.isascii():
        raise CanonicalEncodingError(f"object key {key!r} is not ASCII")


def _check_depth(depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise CanonicalEncodingError(f"nesting deeper than {MAX_DEPTH} levels")


def _check_string(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CanonicalEncodingError("string holds a lone surrogate") from exc


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` in the canonical JSON profile, as UTF-8 bytes."""
    check_canonical(value)
    return _ENCODER.encode(value)


def canonical_json_unchecked(value: Any) -> bytes:
    """Encode a value already known to fit the profile (built by our own code)."""
    return _ENCODER.encode(value)


def parse_canonical(data: bytes) -> Any:
    """Parse JSON bytes, refusing floats, duplicate keys and non-canonical values."""

    def no_float(text: str) -> Any:
        raise CanonicalEncodingError(f"float {text} is not allowed")

    def no_constant(text: str) -> Any:
        raise CanonicalEncodingError(f"{text} is not allowed")

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, item in pairs:
            if key in result:
                raise CanonicalEncodingError(f"duplicate object key {key!r}")
            result[key] = item
        return result

    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CanonicalEncodingError("JSON text must be UTF-8") from exc
    if text.startswith("\ufeff"):
        raise CanonicalEncodingError("JSON text must not start with a byte order mark")
    try:
        value = json.loads(
            text,
            parse_float=no_float,
            parse_constant=no_constant,
            object_pairs_hook=unique_keys,
        )
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, CanonicalEncodingError):
            raise
        raise CanonicalEncodingError(f"not valid JSON: {exc}") from exc
    check_canonical(value)
    return value


def is_canonical(data: bytes) -> bool:
    """True if ``data`` is exactly the canonical encoding of the value it holds."""
    try:
        return canonical_json(parse_canonical(data)) == data
    except CanonicalEncodingError:
        return False
