"""The ledger's wire records and their domain types: one typed definition per format.

Every format the ledger hashes, signs or serves (proposal, transaction, endorsement,
block header, block, receipt, checkpoint) is a frozen :class:`Record`, a
``msgspec.Struct`` whose fields carry domain types (:data:`Hash`, :data:`Height`,
:data:`Timestamp`, ...). From that one definition come:

- the JSON form (:meth:`Record.to_json`), whose canonical encoding
  (``crypto.canonical``, RFC 8785 profile) is what is hashed and signed;
- the typed, strict decoding of a JSON form (:meth:`Record.from_json`): no coercion,
  no unknown fields, every constraint of the domain types checked, and a refusal that
  names the JSON path of the field at fault (:class:`MalformedRecord`);
- the JSON Schema the API documents (:func:`schema_components`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable
from typing import Annotated, Any, ClassVar, TypeVar

import msgspec

from healthledger.crypto.canonical import MAX_SAFE_INTEGER
from healthledger.ledger.errors import InvalidBlock, InvalidTransaction, LedgerError

HEX_HASH_PATTERN = "^[0-9a-f]{64}$"
NAME_PATTERN = "^[a-z][a-z0-9_-]{0,62}$"
IDENTITY_PATTERN = "^[a-z][a-z0-9_-]{0,62}/[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$"
NONCE_PATTERN = "^[0-9a-f]{32}$"
SIGNATURE_PATTERN = "^[A-Za-z0-9+/]{85}[AQgw]==$"
"""Standard base64 of exactly 64 bytes, in its one canonical spelling (the last
character's four spare bits zero)."""
MAX_KEY_LENGTH = 512

Hash = Annotated[
    str, msgspec.Meta(pattern=HEX_HASH_PATTERN, description="Hex SHA-256: 64 lowercase hex digits.")
]
"""A SHA-256 digest in lowercase hex."""
Height = Annotated[
    int, msgspec.Meta(ge=0, le=MAX_SAFE_INTEGER, description="Block height: 0 for genesis.")
]
"""A block height."""
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INTEGER)]
"""A size or an index: a non-negative integer a JCS number carries exactly."""
Timestamp = Annotated[
    int, msgspec.Meta(ge=0, le=MAX_SAFE_INTEGER, description="Unix time in milliseconds.")
]
"""A point in time, Unix milliseconds."""
Name = Annotated[
    str, msgspec.Meta(pattern=NAME_PATTERN, description="A contract, function or org name.")
]
"""A contract, function, organisation or namespace name."""
IdentityId = Annotated[
    str, msgspec.Meta(pattern=IDENTITY_PATTERN, description="An identity id, ``org/name``.")
]
"""An identity id: ``org/name``."""
Nonce = Annotated[
    str, msgspec.Meta(pattern=NONCE_PATTERN, description="32 lowercase hex characters.")
]
"""A proposal's nonce, fresh for every proposal."""
StateKey = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_KEY_LENGTH)]
"""A state key: 1 to 512 printable characters."""


class Signature(bytes):
    """A 64-byte Ed25519 signature; on the wire, its canonical standard base64."""

    __slots__ = ()


def _decode_signature(value: object) -> Signature:
    if not isinstance(value, str):
        raise TypeError("Expected a base64 `str`")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not valid base64") from exc
    # One spelling per value, as crypto.keys.decode_b64 insists.
    if base64.b64encode(raw).decode("ascii") != value:
        raise ValueError("not canonical base64")
    if len(raw) != 64:
        raise ValueError("a signature must be 64 bytes")
    return Signature(raw)


def _dec_hook(kind: type, value: Any) -> Any:
    if kind is Signature:
        return _decode_signature(value)
    raise NotImplementedError(f"no decoding for {kind.__name__}")


def _enc_hook(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise NotImplementedError(f"no JSON form for {type(value).__name__}")


def _schema_hook(kind: type) -> dict[str, Any]:
    if kind is Signature:
        return {
            "type": "string",
            "contentEncoding": "base64",
            "pattern": SIGNATURE_PATTERN,
            "description": "Ed25519 signature (64 bytes), standard base64.",
        }
    raise NotImplementedError(f"no schema for {kind.__name__}")


class MalformedRecord(LedgerError):
    """Mixin of the refusals of a JSON form that does not decode as its record: ``field``
    is the JSON path of the field at fault (``$`` for the whole value)."""

    field: str
    reason: str


class MalformedTransaction(InvalidTransaction, MalformedRecord):
    """A proposal, transaction or one of its parts does not decode."""

    def __init__(self, message: str, *, field: str = "$", reason: str = "") -> None:
        """``field``: the JSON path at fault; ``reason``: what is wrong with it."""
        super().__init__(message)
        self.field = field
        self.reason = reason or message


class MalformedBlock(InvalidBlock, MalformedRecord):
    """A block, block header or receipt does not decode."""

    def __init__(self, message: str, *, field: str = "$", reason: str = "") -> None:
        """``field``: the JSON path at fault; ``reason``: what is wrong with it."""
        super().__init__(message)
        self.field = field
        self.reason = reason or message


class InvalidField(MalformedTransaction, ValueError):
    """A field breaks a rule its type cannot say (raised while a record is built; while
    it is decoded, msgspec adds the field's path)."""


R = TypeVar("R", bound="Record")


class Record(msgspec.Struct, frozen=True, forbid_unknown_fields=True, dict=True, weakref=False):
    """A frozen wire record: its JSON form and its strict decoding come from its fields.

    ``dict=True`` gives each instance a ``__dict__`` for its cached derived values
    (canonical bytes, hashes: see ``ledger.memo``)."""

    malformed: ClassVar[type[MalformedTransaction] | type[MalformedBlock]] = MalformedTransaction
    """The error a JSON form that does not decode raises."""
    what: ClassVar[str] = "record"
    """How a refusal names the record."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form: what the canonical encoding of the record encodes (arrays of
        the record's own fields come as tuples)."""
        value: dict[str, Any] = msgspec.to_builtins(self, enc_hook=_enc_hook)
        return value

    @classmethod
    def from_json(cls: type[R], obj: Any) -> R:
        """The record whose JSON form (parsed JSON values) is ``obj``; ``malformed``,
        naming the field's path, if it is not one."""
        return decode(obj, cls)


def _path_of(message: str) -> tuple[str, str]:
    reason, sep, path = message.rpartition(" - at `")
    if not sep:
        return message, "$"
    return reason, path.rstrip("`")


def _refusal(kind: type[Any], exc: msgspec.ValidationError) -> LedgerError:
    reason, path = _path_of(str(exc))
    malformed: type[MalformedTransaction] | type[MalformedBlock] = getattr(
        kind, "malformed", MalformedTransaction
    )
    what = getattr(kind, "what", "record")
    where = "" if path == "$" else f" at {path}"
    return malformed(f"{what}: {reason}{where}", field=path, reason=reason)


T = TypeVar("T")


def decode(obj: Any, kind: type[T]) -> T:
    """Decode parsed JSON values ``obj`` as ``kind`` (a record, or a type built of
    records), strictly; the record's ``malformed`` error naming the path if not."""
    try:
        return msgspec.convert(obj, kind, strict=True, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise _refusal(kind, exc) from exc


def decode_bytes(data: bytes, kind: type[T]) -> T:
    """Decode JSON bytes as ``kind`` strictly (see :func:`decode`). For bytes this
    node wrote itself: it does not refuse duplicate keys as ``parse_canonical`` does."""
    try:
        return msgspec.json.decode(data, type=kind, strict=True, dec_hook=_dec_hook)
    except msgspec.ValidationError as exc:
        raise _refusal(kind, exc) from exc
    except msgspec.DecodeError as exc:
        malformed: Callable[[str], LedgerError] = getattr(kind, "malformed", MalformedTransaction)
        raise malformed(f"not JSON: {exc}") from exc


def schema_components(
    kinds: Iterable[type[Any]], *, ref_template: str = "#/components/schemas/{name}"
) -> tuple[tuple[dict[str, Any], ...], dict[str, dict[str, Any]]]:
    """JSON Schemas of ``kinds`` and of every record they refer to, for an OpenAPI
    document's components."""
    schemas, components = msgspec.json.schema_components(
        tuple(kinds), schema_hook=_schema_hook, ref_template=ref_template
    )
    return schemas, components
