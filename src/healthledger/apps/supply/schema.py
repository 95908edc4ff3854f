"""Validation of EPCIS 2.0 JSON-LD documents against the standard's JSON Schema.

The schema (``EPCIS-JSON-Schema.json`` of the GS1 EPCIS 2.0 repository) is
self-contained and ships inside the package (``data/``); another copy may be given in
configuration. Documents are validated offline, no reference ever fetched. Validation runs in
``jsonschema-rs`` (compiled): capture validates every document it takes, and the
pure-Python validator cost more than everything else on the capture path together.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs

from healthledger.contracts.errors import InvalidArguments

SCHEMA_FILE = "EPCIS-JSON-Schema.json"
_MAX_MESSAGE = 300
_WHOLE_VALUE_KINDS = {
    # These messages embed the whole offending value, which may be a whole event.
    jsonschema_rs.ValidationErrorKind.AnyOf: "matches none of the allowed forms (anyOf)",
    jsonschema_rs.ValidationErrorKind.OneOfNotValid: "matches none of the allowed forms (oneOf)",
    jsonschema_rs.ValidationErrorKind.OneOfMultipleValid: "matches more than one allowed form",
    jsonschema_rs.ValidationErrorKind.Not: "matches a form that is not allowed",
}


def default_schema_path() -> Path:
    """The copy of the schema that ships inside the package."""
    return Path(__file__).resolve().parent / "data" / SCHEMA_FILE


@dataclass(frozen=True)
class Violation:
    """One way a document breaks the schema."""

    path: str
    """JSON Pointer of the offending value ("" is the document itself)."""
    message: str


class EpcisSchema:
    """The EPCIS 2.0 JSON Schema, ready to validate documents."""

    def __init__(self, *, path: Path) -> None:
        try:
            schema = json.loads(path.read_text(encoding="utf-8"))
            self._validator = jsonschema_rs.validator_for(schema, offline=True)
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot load the EPCIS JSON Schema from {path}: {exc}") from exc

    def is_valid(self, document: Any) -> bool:
        """Whether ``document`` is valid (the fast answer, without the list of violations)."""
        return bool(self._validator.is_valid(document))

    def violations(self, document: Any) -> list[Violation]:
        """Every violation, by path then message; empty if the document is valid."""
        found = {
            Violation(_pointer(error.instance_path), _message(error))
            for error in self._validator.iter_errors(document)
        }
        return sorted(found, key=lambda v: (v.path, v.message))

    def check(self, document: Any) -> None:
        """Raise InvalidArguments listing each violation (``field`` + ``message``)."""
        try:
            if self.is_valid(document):
                return
            found = self.violations(document)
        except UnicodeEncodeError as exc:
            # JSON's \ud800 escapes decode to lone surrogates, which the validator
            # cannot take as text.
            message = "holds a lone surrogate (a \\ud800-\\udfff escape): not Unicode text"
            raise InvalidArguments(
                f"EPCIS document {message}", [{"field": "/", "message": message}]
            ) from exc
        errors = [{"field": v.path or "/", "message": v.message} for v in found]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise InvalidArguments(
            f"EPCIS document breaks the EPCIS 2.0 schema: {summary}{more}", errors
        )


def _message(error: jsonschema_rs.ValidationError) -> str:
    for kind, message in _WHOLE_VALUE_KINDS.items():
        if isinstance(error.kind, kind):
            return message
    text = str(error.message)
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _pointer(path: list[str | int]) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)
