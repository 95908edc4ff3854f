"""RFC 9457 problem details: every error the API returns, and the exception each maps from.

Every error response is ``application/problem+json`` with ``type``, ``title``,
``status``, ``detail`` and ``instance``; validation problems add ``errors``, a list
of ``{"field", "message"}``. Types are URIs under ``/api/v1/problems/``, each
documented at that address. Status choices:

- 400 unparseable JSON, a stale proposal timestamp, a bad endorsement signature
- 401 a proposal or transaction whose creator signature is missing or does not verify;
  a members' route read with no credentials (``unauthenticated``) or with a signed read
  that is malformed, tampered, stale or replayed (``bad-read-signature``)
- 403 an unknown, revoked or expired identity (also one signing a read), or a caller
  the contract refuses
- 404 an unknown contract, function, block, transaction or route
- 409 a replayed transaction, an MVCC conflict, a contract rule refusing the call in
  the current state, a transaction that committed but was marked invalid, or one
  that committed with a part its contract refused and recorded as evidence
  (``refused-recorded``: the body carries ``tx_id``, ``receipt`` and ``refused``)
- 413 a request body over the limit (1 MiB), refused before it is read
- 422 a request of the wrong shape, invalid contract arguments, and an endorsement
  policy that cannot be satisfied: the request is understood, but no retry of the
  same request will be endorsed until membership or policy changes, so it is a
  property of the request (422) rather than a transient state conflict (409); a
  proof, receipt or transaction id submitted for verification that is malformed
  (``proof-malformed``) or does not verify against this ledger (``proof-invalid``)
- 500 a contract bug or an internal error (never with a stack trace)
- 503 the node or its orderer cannot take transactions; 504 no commit in time
- 507 the peer's disk is full: the transaction was not committed and nothing of it
  was written (a full disk is the operator's to fix, not a state to wait out like 503)
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from healthledger.contracts.errors import (
    AccessDenied,
    ContractError,
    InvalidArguments,
    PolicyError,
    PolicyNotSatisfied,
    Rejected,
    StateError,
    UnknownContract,
    UnknownFunction,
)
from healthledger.contracts.refusal import RefusedInPart
from healthledger.contracts.runtime import ContractFailure
from healthledger.crypto.errors import (
    CanonicalEncodingError,
    CertificateError,
    CryptoError,
    SignatureError,
)
from healthledger.errors import HealthledgerError
from healthledger.ledger.errors import (
    InvalidTransaction,
    LedgerError,
    NotFound,
    ProofError,
    StorageError,
    StorageFull,
    StoreUnavailable,
)
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.errors import (
    BadRequest,
    BadSignature,
    CommitTimeout,
    DuplicateTransaction,
    EndorsementFailed,
    NodeError,
    NodeUnavailable,
    TransactionRefused,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "/api/v1/problems/"

log = logging.getLogger("healthledger.api")


@dataclass(frozen=True)
class ProblemType:
    """One kind of problem: its URI slug, HTTP status, title and what it means."""

    slug: str
    status: int
    title: str
    description: str

    @property
    def uri(self) -> str:
        """The ``type`` member: where this problem type is documented."""
        return PROBLEM_BASE + self.slug

    def to_json(self) -> dict[str, Any]:
        """The documentation of this type."""
        return {
            "type": self.uri,
            "status": self.status,
            "title": self.title,
            "description": self.description,
        }


_TYPES = (
    ProblemType("malformed-json", 400, "Malformed JSON", "The request body is not valid JSON."),
    ProblemType(
        "bad-request",
        400,
        "Bad request",
        "The request cannot be accepted as sent, e.g. a "
        "proposal timestamp outside the node's replay window.",
    ),
    ProblemType(
        "bad-endorsement",
        400,
        "Bad endorsement",
        "An endorsement is by an unknown or revoked endorser, or its signature does not "
        "verify over the transaction's response.",
    ),
    ProblemType(
        "unsigned",
        401,
        "Signature required",
        "Every proposal and transaction must carry its creator's Ed25519 signature.",
    ),
    ProblemType(
        "bad-signature",
        401,
        "Signature does not verify",
        "The creator's signature does not verify over the canonical proposal.",
    ),
    ProblemType(
        "unauthenticated",
        401,
        "Members only",
        "This route is for consortium members. Sign the request as a registered identity "
        "(headers HL-Identity, HL-Timestamp, HL-Nonce and HL-Signature over the method, "
        "path, query, timestamp and nonce) or log in to the console; ``authenticate`` "
        "names the headers.",
    ),
    ProblemType(
        "bad-read-signature",
        401,
        "Signed read refused",
        "The signed read is malformed, its signature does not verify over this request, "
        "its timestamp is outside the node's clock-skew window, or its nonce was already "
        "used (a replay); sign the request afresh.",
    ),
    ProblemType(
        "access-denied",
        403,
        "Access denied",
        "The identity is not registered, is revoked or expired, or the contract does not "
        "allow its organisation or role to make this call.",
    ),
    ProblemType("not-found", 404, "Not found", "No such block, transaction, key or route."),
    ProblemType("unknown-contract", 404, "Unknown contract", "No such contract is deployed."),
    ProblemType(
        "unknown-function",
        404,
        "Unknown function",
        "The contract has no such function, or it is a transaction called as a query "
        "(or the reverse).",
    ),
    ProblemType(
        "no-release",
        404,
        "No public release yet",
        "No public statistics release is recorded on chain yet: a CDC's node records one "
        "a day, and a node that cannot record one never serves figures of its own.",
    ),
    ProblemType("method-not-allowed", 405, "Method not allowed", "Use another HTTP method."),
    ProblemType(
        "duplicate-transaction",
        409,
        "Duplicate transaction",
        "This transaction id is already committed or pending: a replay or resubmission.",
    ),
    ProblemType(
        "mvcc-conflict",
        409,
        "Read conflict",
        "A key the transaction read has changed since it was endorsed; endorse again.",
    ),
    ProblemType(
        "rejected",
        409,
        "Refused by the contract",
        "A business rule of the contract refused the call in the ledger's current state.",
    ),
    ProblemType(
        "refused-recorded",
        409,
        "Refused and recorded as evidence",
        "The transaction committed, but its contract refused some or all of what it "
        "asked (e.g. a pack dispensed twice, an unknown serial) and recorded each refusal "
        "with its reason and an alert: the refusal is on the ledger, and sending the same "
        "request again will not change it. ``refused`` lists each refused part with its "
        "``reason``; ``tx_id`` and ``receipt`` say where the evidence committed; "
        "``result`` is the contract's whole answer (what was accepted as well).",
    ),
    ProblemType(
        "transaction-invalidated",
        409,
        "Committed as invalid",
        "The transaction was ordered and committed but marked invalid by validation; it "
        "changed nothing. The receipt member says why.",
    ),
    ProblemType(
        "payload-too-large",
        413,
        "Request body too large",
        "The request body exceeds the limit and was not read.",
    ),
    ProblemType(
        "validation-error",
        422,
        "Invalid request",
        "The request does not match the expected shape; ``errors`` lists each problem.",
    ),
    ProblemType(
        "invalid-transaction",
        422,
        "Malformed proposal or transaction",
        "The proposal or transaction breaks the ledger's format rules.",
    ),
    ProblemType(
        "non-canonical",
        422,
        "Not canonical JSON",
        "The body holds floats, duplicate keys or other values outside the canonical "
        "JSON profile that everything signed must fit.",
    ),
    ProblemType(
        "invalid-arguments",
        422,
        "Invalid contract arguments",
        "The arguments do not match the function's schema; ``errors`` lists each field.",
    ),
    ProblemType(
        "endorsement-failed",
        422,
        "Endorsement policy not satisfiable",
        "The endorsement policy governing this call cannot be satisfied by the available "
        "endorsers, or the endorsements given do not satisfy it.",
    ),
    ProblemType(
        "illegal-write",
        422,
        "Illegal write",
        "The transaction writes outside its contract's namespace.",
    ),
    ProblemType("policy-error", 422, "Malformed policy", "A policy expression is malformed."),
    ProblemType("certificate-error", 422, "Bad certificate", "A certificate is not acceptable."),
    ProblemType(
        "proof-error",
        422,
        "Proof error",
        "A Merkle proof cannot be made or checked as asked, e.g. sizes that do not fit "
        "the global log (a consistency proof from a larger size to a smaller one).",
    ),
    ProblemType(
        "proof-malformed",
        422,
        "Not a proof",
        "What was submitted for verification is not a transaction id, an inclusion proof "
        "(leafIdx, treeSize, root, leafHash, proof) or a receipt, or one of its fields is "
        "malformed; ``reason`` says which.",
    ),
    ProblemType(
        "proof-invalid",
        422,
        "Proof does not verify",
        "The proof, receipt or transaction id is well formed but does not verify against "
        "this ledger; ``reason`` says why and ``verified`` is false.",
    ),
    ProblemType(
        "contract-failure",
        500,
        "Contract failure",
        "The contract's code failed while running; the call changed nothing.",
    ),
    ProblemType(
        "internal-error",
        500,
        "Internal error",
        "The server failed; the log holds the details under the error id.",
    ),
    ProblemType(
        "unavailable",
        503,
        "Node unavailable",
        "The node or its orderer cannot take transactions now; retry later.",
    ),
    ProblemType(
        "commit-timeout",
        504,
        "Commit timeout",
        "The transaction was submitted but did not commit in the time asked; fetch its "
        "receipt later.",
    ),
    ProblemType(
        "storage-full",
        507,
        "Insufficient storage",
        "The peer's disk is full: the transaction was not committed and nothing of it was "
        "written. Reads keep working; send it again once the operator has freed space.",
    ),
)
PROBLEM_TYPES: Mapping[str, ProblemType] = {t.slug: t for t in _TYPES}
"""Every problem type the API returns, by slug."""


@dataclass(frozen=True)
class Problem:
    """One problem occurrence."""

    type: ProblemType | None
    """None for a plain HTTP status (type ``about:blank``)."""
    status: int
    detail: str
    errors: tuple[Mapping[str, str], ...] = ()
    extensions: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """The type's title, or the HTTP reason phrase."""
        if self.type is not None:
            return self.type.title
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Error"

    def to_json(self, instance: str) -> dict[str, Any]:
        """The RFC 9457 JSON object."""
        body: dict[str, Any] = {
            "type": "about:blank" if self.type is None else self.type.uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "instance": instance,
        }
        if self.errors or self.status == 422:
            body["errors"] = [dict(e) for e in self.errors]
        body.update(self.extensions)
        return body


def problem(
    slug: str,
    detail: str,
    *,
    errors: Sequence[Mapping[str, str]] = (),
    extensions: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Problem:
    """A problem of the registered type ``slug``."""
    kind = PROBLEM_TYPES[slug]
    return Problem(kind, kind.status, detail, tuple(errors), extensions or {}, headers or {})


class ApiError(HealthledgerError):
    """An error the API layer raises itself, carrying the problem to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


_CODE_PROBLEMS: Mapping[ValidationCode, tuple[str, str]] = {
    ValidationCode.MALFORMED: ("invalid-transaction", "the transaction is malformed"),
    ValidationCode.DUPLICATE_TXID: ("duplicate-transaction", "already committed: a replay"),
    ValidationCode.UNKNOWN_IDENTITY: ("access-denied", "its creator is not registered"),
    ValidationCode.IDENTITY_REVOKED: ("access-denied", "its creator has been revoked"),
    ValidationCode.CERTIFICATE_EXPIRED: ("access-denied", "its creator's certificate expired"),
    ValidationCode.BAD_SIGNATURE: ("bad-signature", "the creator's signature does not verify"),
    ValidationCode.BAD_ENDORSEMENT: ("bad-endorsement", "an endorsement does not verify"),
    ValidationCode.UNKNOWN_CONTRACT: ("unknown-contract", "its contract is not deployed"),
    ValidationCode.ENDORSEMENT_POLICY_FAILURE: (
        "endorsement-failed",
        "its endorsements do not satisfy the endorsement policy",
    ),
    ValidationCode.ILLEGAL_WRITE: ("illegal-write", "it writes outside its contract"),
    ValidationCode.MVCC_READ_CONFLICT: ("mvcc-conflict", "a key it read has changed since"),
}

_WWW_AUTHENTICATE = {"WWW-Authenticate": 'Signature realm="healthledger", alg="ed25519"'}

# Most specific first: the first class an exception is an instance of decides.
_BY_CLASS: tuple[tuple[type[BaseException], str], ...] = (
    (InvalidArguments, "invalid-arguments"),
    (UnknownContract, "unknown-contract"),
    (UnknownFunction, "unknown-function"),
    (AccessDenied, "access-denied"),
    (PolicyNotSatisfied, "endorsement-failed"),
    (PolicyError, "policy-error"),
    (Rejected, "rejected"),
    (ContractFailure, "contract-failure"),
    (StateError, "contract-failure"),
    (ContractError, "rejected"),
    (DuplicateTransaction, "duplicate-transaction"),
    (EndorsementFailed, "endorsement-failed"),
    (CommitTimeout, "commit-timeout"),
    (StorageFull, "storage-full"),
    (StoreUnavailable, "unavailable"),
    (NodeUnavailable, "unavailable"),
    (BadRequest, "bad-request"),
    (InvalidTransaction, "invalid-transaction"),
    (NotFound, "not-found"),
    (ProofError, "proof-error"),
    (CanonicalEncodingError, "non-canonical"),
    (SignatureError, "bad-signature"),
    (CertificateError, "certificate-error"),
)
# These may carry internal detail (paths, SQL): report them without it.
_OPAQUE: tuple[type[BaseException], ...] = (StorageError, LedgerError, NodeError, CryptoError)


def problem_for(exc: BaseException) -> Problem:
    """The problem to report for ``exc``; anything unknown is a 500 without detail."""
    if isinstance(exc, ApiError):
        return exc.problem
    if isinstance(exc, TransactionRefused):
        slug, why = _CODE_PROBLEMS[exc.code]
        headers = _WWW_AUTHENTICATE if PROBLEM_TYPES[slug].status == 401 else None
        return problem(
            slug,
            f"refused before ordering: {why} ({exc.code})",
            extensions={"tx_id": exc.tx_id, "code": str(exc.code)},
            headers=headers,
        )
    if isinstance(exc, RefusedInPart):
        location = f"/api/v1/transactions/{exc.tx_id}/receipt"
        return problem(
            "refused-recorded",
            str(exc),
            extensions={
                "tx_id": exc.tx_id,
                "receipt": exc.receipt,
                "refused": exc.refused,
                "result": exc.result,
            },
            headers={"Location": location},
        )
    if isinstance(exc, RequestValidationError):
        return _request_validation_problem(exc)
    if isinstance(exc, StarletteHTTPException):
        return _http_problem(exc)
    if isinstance(exc, BadSignature):
        return problem("bad-signature", str(exc), headers=_WWW_AUTHENTICATE)
    if isinstance(exc, InvalidArguments):
        errors = [
            {"field": f"args.{e.get('field', '')}", "message": e.get("message", "")}
            for e in exc.errors
        ]
        return problem("invalid-arguments", str(exc), errors=errors)
    for cls, slug in _BY_CLASS:
        if isinstance(exc, cls):
            headers = _WWW_AUTHENTICATE if PROBLEM_TYPES[slug].status == 401 else None
            return problem(slug, str(exc), headers=headers)
    error_id = secrets.token_hex(8)
    if isinstance(exc, _OPAQUE):
        log.error("ledger error %s: %s: %s", error_id, type(exc).__name__, exc)
    else:
        log.error("internal error %s", error_id, exc_info=exc)
    return problem(
        "internal-error",
        f"the server failed to handle this request (error id {error_id})",
        extensions={"error_id": error_id},
    )


def _request_validation_problem(exc: RequestValidationError) -> Problem:
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        first = raw[0]
        context = first.get("ctx") or {}
        loc: Sequence[Any] = first.get("loc") or ()
        where = f" at position {loc[-1]}" if len(loc) > 1 else ""
        return problem("malformed-json", f"{context.get('error', 'invalid JSON')}{where}")
    errors = [
        {"field": ".".join(str(p) for p in e.get("loc", ())), "message": str(e.get("msg", ""))}
        for e in raw
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return problem("validation-error", f"{len(errors)} problem(s): {summary}", errors=errors)


def _http_problem(exc: StarletteHTTPException) -> Problem:
    slug = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}.get(
        exc.status_code
    )
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers or {})
    if slug is None:
        return Problem(None, exc.status_code, detail, headers=headers)
    return problem(slug, detail, headers=headers)


def problem_response(request: Request, found: Problem) -> JSONResponse:
    """The ``application/problem+json`` response for ``found``."""
    return JSONResponse(
        found.to_json(request.url.path),
        status_code=found.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(found.headers),
    )


HtmlRenderer = Callable[[Request, Problem], Awaitable[Response] | Response]
"""Renders a problem for a browser (the web console supplies one)."""

HANDLED: tuple[type[Exception], ...] = (
    ApiError,
    TransactionRefused,
    RequestValidationError,
    StarletteHTTPException,
    ContractError,
    NodeError,
    LedgerError,
    CryptoError,
    Exception,
)


DOWNLOAD_SUFFIXES = (".json", ".csv", ".png", ".svg")
"""A console path ending so is a data download: its errors are problem details too."""


def is_api_path(path: str) -> bool:
    """True for paths answered in JSON (the API, its docs, the metrics and downloads)."""
    return (
        path.startswith("/api/")
        or path in {"/metrics", "/openapi.json"}
        or path.endswith(DOWNLOAD_SUFFIXES)
    )


def install_problem_handlers(app: FastAPI, *, html: HtmlRenderer | None = None) -> None:
    """Answer every error of ``app`` with problem details (or ``html`` off the API paths)."""

    async def handle(request: Request, exc: Exception) -> Response:
        found = problem_for(exc)
        if found.status >= 500:
            log.warning(
                "%s %s -> %d %s: %s",
                request.method,
                request.url.path,
                found.status,
                found.title,
                found.detail,
            )
        if html is not None and not is_api_path(request.url.path):
            rendered = html(request, found)
            return await rendered if isinstance(rendered, Awaitable) else rendered
        return problem_response(request, found)

    for cls in HANDLED:
        app.add_exception_handler(cls, handle)
