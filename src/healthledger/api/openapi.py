"""The OpenAPI document, made to say what the server answers.

FastAPI documents what each route declares. The rules below hold for every route, so
they are applied here once, to the whole document, instead of route by route:

- the bodies in the ledger's wire formats are documented by the JSON Schemas of
  the ledger's records (``api.schemas.record_schemas``), which routes refer to;
- every error response is RFC 9457 problem details (``application/problem+json``,
  the ``Problem`` schema), as the problem handlers answer it; FastAPI's own
  ``HTTPValidationError`` never is;
- every operation for consortium members only (``api.read_access``) may answer 401
  (no credentials, or a signed read refused) and 403 (an unknown or revoked identity),
  and names the two ways to authenticate as its ``security``: a signed read or a
  console session; a public one needs none;
- every operation may answer 500 (an internal error) and, except on the paths a
  consortium peer keeps serving after it stopped serving its chain, 503; one that
  takes parameters or a body may answer 422 (a request of the wrong shape); one that
  takes a body may answer 400 (malformed JSON) and 413 (a body over the limit).

A route declares what is its own: its success media type and schema, and the error
statuses its logic answers (403, 404, 409, ...), with a description; the body of
each is documented here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI

from healthledger.api.schemas import (
    ERROR_DESCRIPTIONS,
    PROBLEM_CONTENT,
    ProblemOut,
    record_schemas,
)

SECURITY_SCHEMES: dict[str, Any] = {
    "SignedRead": {
        "type": "apiKey",
        "in": "header",
        "name": "HL-Signature",
        "description": "A signed read: HL-Identity (a registered identity id), HL-Timestamp "
        "(Unix ms, within 60 s of the node's clock), HL-Nonce (16-64 hex digits, used once) "
        "and HL-Signature (base64 Ed25519 over 'healthledger-read-v1', method, raw path, raw "
        "query, timestamp, nonce and identity, one per line).",
    },
    "ConsoleSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": "healthledger_session",
        "description": "The session cookie of a console login.",
    },
}
MEMBERS_SECURITY: list[dict[str, list[str]]] = [{"SignedRead": []}, {"ConsoleSession": []}]


ERROR_DESCRIPTIONS_401 = (
    "Members only: no credentials (``unauthenticated``), or a signed read that is "
    "malformed, tampered, stale or replayed (``bad-read-signature``)"
)
_FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def problem_schemas() -> dict[str, Any]:
    """The ``Problem`` schema and the schemas it refers to, as OpenAPI components."""
    schema = ProblemOut.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {})
    return {**nested, "Problem": schema}


def _error_statuses(path: str, op: dict[str, Any], always_served: Sequence[str]) -> list[int]:
    statuses = [500]
    if not path.startswith(tuple(always_served)):
        statuses.append(503)
    if "requestBody" in op:
        statuses += [400, 413, 422]
    elif op.get("parameters"):
        statuses.append(422)
    return statuses


def _is_error(status: str) -> bool:
    return status == "default" or (status.isdigit() and int(status) >= 400)


def truthful(
    spec: dict[str, Any],
    *,
    always_served: Sequence[str] = (),
    members_only: Callable[[str, str], bool] | None = None,
) -> dict[str, Any]:
    """``spec`` with the rules above applied (changed in place, and returned);
    ``members_only(method, path)``: whether an operation is for members only."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    if members_only is not None:
        components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for name in _FASTAPI_ERRORS:
        schemas.pop(name, None)
    schemas.update(problem_schemas())
    schemas.update(record_schemas())
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method not in _METHODS:
                continue
            responses = op.setdefault("responses", {})
            statuses = _error_statuses(path, op, always_served)
            if members_only is not None and members_only(method, path):
                op["security"] = MEMBERS_SECURITY
                statuses += [401, 403]
                responses.setdefault("401", {"description": ERROR_DESCRIPTIONS_401})
            for status in statuses:
                responses.setdefault(str(status), {"description": ERROR_DESCRIPTIONS[status]})
            for status, response in responses.items():
                if _is_error(str(status)):
                    response["content"] = {k: dict(v) for k, v in PROBLEM_CONTENT.items()}
                    if response.get("description") in (None, "", "Validation Error"):
                        code = int(status) if str(status).isdigit() else 0
                        response["description"] = ERROR_DESCRIPTIONS.get(code, "Error")
    return spec


def install_truthful_openapi(
    app: FastAPI,
    *,
    always_served: Sequence[str] = (),
    members_only: Callable[[str, str], bool] | None = None,
) -> None:
    """Make ``app.openapi()`` return the document with the rules applied (computed once,
    when first asked, so that routes added after this call are documented too)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = truthful(
                generate(), always_served=always_served, members_only=members_only
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
