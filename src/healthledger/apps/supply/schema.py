"""Validation of EPCIS 2.0 JSON-LD documents against the standard's JSON Schema.

The schema (``EPCIS-JSON-Schema.json`` of the GS1 EPCIS 2.0 repository) is
self-contained: it is read from a path given in configuration and validated
offline, with no reference ever fetched over the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs shipped for jsonschema

from healthledger.contracts.errors import InvalidArguments

SCHEMA_FILE = "EPCIS-JSON-Schema.json"


def default_schema_path() -> Path | None:
    """The conformance copy of the schema beside the repository, if this is a checkout."""
    candidate = (
        Path(__file__).resolve().parents[4].parent / "shared" / "conformance" / "epcis2"
    ) / SCHEMA_FILE
    return candidate if candidate.is_file() else None


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
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot load the EPCIS JSON Schema from {path}: {exc}") from exc
        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
        self._validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)

    def violations(self, document: Any) -> list[Violation]:
        """Every violation, by path then message; empty if the document is valid."""
        found = {
            Violation(_pointer(error.absolute_path), _message(error))
            for error in self._validator.iter_errors(document)
        }
        return sorted(found, key=lambda v: (v.path, v.message))

    def check(self, document: Any) -> None:
        """Raise InvalidArguments listing each violation (``field`` + ``message``)."""
        found = self.violations(document)
        if found:
            errors = [{"field": v.path or "/", "message": v.message} for v in found]
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
            more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
            raise InvalidArguments(
                f"EPCIS document breaks the EPCIS 2.0 schema: {summary}{more}", errors
            )


def _message(error: jsonschema.ValidationError) -> str:
    # These messages embed the whole offending value, which may be a whole event.
    if error.validator in ("anyOf", "oneOf"):
        return f"matches none of the allowed forms ({error.validator})"
    if error.validator == "not":
        return "matches a form that is not allowed"
    message = str(error.message)
    return message if len(message) <= 300 else message[:297] + "..."


def _pointer(path: Any) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)
