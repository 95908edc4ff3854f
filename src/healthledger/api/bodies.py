"""Request bodies in the ledger's wire formats, read once and decoded once.

The exact bytes the client sent are parsed in the canonical JSON profile (no floats,
no duplicate keys: what the ledger verifies is what was signed) and decoded, strictly,
into the records of ``ledger.wire``. A body that does not decode is answered 422
``validation-error`` listing every field at fault, found with the JSON Schema of the
same records (the one the OpenAPI document shows); a field's content is never echoed,
as it may be personal data.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from functools import cache
from typing import Any, TypeVar, cast

import jsonschema_rs
from fastapi import Request

from healthledger.api.problems import ApiError, problem
from healthledger.api.schemas import SignedProposalBody, TransactionBody
from healthledger.crypto.canonical import parse_canonical
from healthledger.crypto.errors import CanonicalEncodingError
from healthledger.ledger.transaction import SignedProposal, Transaction
from healthledger.ledger.wire import MalformedRecord, decode, schema_components

T = TypeVar("T")

_JSON_TYPES = ("application/json",)


async def read_json(request: Request) -> Any:
    """The body parsed in the canonical JSON profile: 400 if it is not JSON, 422
    (``non-canonical``) if it breaks the profile, 422 if it is missing."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type and media_type not in _JSON_TYPES and not media_type.endswith("+json"):
        raise ApiError(
            problem(
                "validation-error",
                "1 problem(s): body: the body must be JSON (application/json)",
                errors=[{"field": "body", "message": "the body must be JSON"}],
            )
        )
    data = await request.body()
    if not data:
        raise ApiError(
            problem(
                "validation-error",
                "1 problem(s): body: Field required",
                errors=[{"field": "body", "message": "Field required"}],
            )
        )
    try:
        return parse_canonical(data)
    except CanonicalEncodingError as exc:
        if isinstance(exc.__cause__, json.JSONDecodeError | UnicodeDecodeError):
            raise ApiError(problem("malformed-json", str(exc.__cause__))) from exc
        raise


async def read_record(request: Request, kind: type[T]) -> T:
    """The body decoded as ``kind`` (see :func:`decode_body`)."""
    return decode_body(await read_json(request), kind)


def decode_body(raw: Any, kind: type[T]) -> T:
    """``raw`` (a parsed body) decoded as ``kind``; 422 naming each field at fault."""
    try:
        return decode(raw, kind)
    except MalformedRecord as exc:
        errors = field_errors(raw, kind) or [{"field": _dotted(exc.field), "message": exc.reason}]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        raise ApiError(
            problem("validation-error", f"{len(errors)} problem(s): {summary}", errors=errors)
        ) from exc


def _dotted(path: str) -> str:
    """``$.a.b[0]`` as ``body.a.b.0``."""
    return "body" + path.removeprefix("$").replace("[", ".").replace("]", "")


@cache
def _validator(kind: Hashable) -> Any:
    """The JSON Schema validator of a record type (built once per type)."""
    (schema,), components = schema_components(
        [cast("type[Any]", kind)], ref_template="#/$defs/{name}"
    )
    return jsonschema_rs.validator_for({**schema, "$defs": components})


def _message(kind: Any) -> str:
    name = type(kind).__name__
    if name == "Type":
        return f"must be of type {' or '.join(str(t) for t in kind.types)}"
    if name == "Pattern":
        return f"must match {kind.pattern}"
    if name in ("Minimum", "Maximum", "MinLength", "MaxLength", "MinItems", "MaxItems"):
        limit = getattr(kind, "limit", None)
        words = {
            "Minimum": "at least",
            "Maximum": "at most",
            "MinLength": "at least this many characters:",
            "MaxLength": "at most this many characters:",
            "MinItems": "at least this many items:",
            "MaxItems": "at most this many items:",
        }
        return f"must be {words[name]} {limit}"
    if name in ("Enum", "Constant"):
        return "is not one of the allowed values"
    return f"is not valid ({name})"


def field_errors(raw: Any, kind: type[Any]) -> list[dict[str, str]]:
    """Every field of ``raw`` the JSON Schema of ``kind`` refuses: ``body.<path>`` and
    what is wrong, never the field's content."""
    errors = []
    for error in _validator(cast("Hashable", kind)).iter_errors(raw):
        path = "body" + "".join(f".{part}" for part in error.instance_path)
        name = type(error.kind).__name__
        if name == "AdditionalProperties":
            errors += [
                {"field": f"{path}.{u}", "message": "unknown field"} for u in error.kind.unexpected
            ]
        elif name == "Required":
            errors.append({"field": f"{path}.{error.kind.property}", "message": "Field required"})
        else:
            errors.append({"field": path, "message": _message(error.kind)})
    return errors


def _blank_signature_as_missing(raw: Any) -> Any:
    # An empty signature is no signature: answered 401, as a missing one is.
    if isinstance(raw, dict) and raw.get("signature") == "":
        return {**raw, "signature": None}
    return raw


async def read_signed_call(request: Request) -> tuple[SignedProposal, dict[str, Any] | None]:
    """A signed proposal and the private inputs beside it (``transient``, bound by the
    proposal's transient_hash, which the endorsing peer checks); 401 if unsigned, 422
    if malformed."""
    body = decode_body(_blank_signature_as_missing(await read_json(request)), SignedProposalBody)
    return body.signed("the proposal"), body.transient


async def read_signed_proposal(request: Request) -> SignedProposal:
    """A signed proposal without private inputs (a query takes none); 401 if unsigned."""
    signed, transient = await read_signed_call(request)
    if transient is not None:
        raise ApiError(
            problem(
                "validation-error",
                "1 problem(s): body.transient: a query takes no private inputs",
                errors=[{"field": "body.transient", "message": "a query takes no private inputs"}],
            )
        )
    return signed


async def read_transaction(request: Request) -> Transaction:
    """An endorsed transaction; 401 if its proposal is unsigned, 422 if malformed."""
    raw = await read_json(request)
    if isinstance(raw, dict):
        raw = {**raw, "signed_proposal": _blank_signature_as_missing(raw.get("signed_proposal"))}
        if raw["signed_proposal"] is None:
            del raw["signed_proposal"]
    return decode_body(raw, TransactionBody).transaction()
