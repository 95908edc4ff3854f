"""What the client raises: one hierarchy under :class:`ClientError`.

Every RFC 9457 problem a node answers becomes an instance of the class registered
for its ``type`` (the slug after ``/api/v1/problems/``), carrying the whole problem
document; an unknown type falls back on the class for its HTTP status. Failures
the client finds itself (a key file it cannot open, an endorsed transaction that
is not what was proposed, a proof that does not verify, a node it cannot reach)
have classes of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from healthledger.errors import HealthledgerError


class ClientError(HealthledgerError):
    """Base class of every error of ``healthledger.client``."""


class IdentityError(ClientError):
    """An identity cannot be used: an unreadable key file, a wrong passphrase, a
    certificate that is not for the key, expired, or not yet valid."""


class ConnectionFailed(ClientError):
    """The node could not be reached, or the connection broke before an answer."""


class UnexpectedAnswer(ClientError):
    """The node answered something that is not the API's: not JSON, or the wrong shape."""


class EndorsementMismatch(ClientError):
    """The endorsed transaction the node returned is not the proposal the client
    signed, or an endorsement on it does not verify."""


class ProofNotVerified(ClientError):
    """A receipt's inclusion proof, checked offline, does not verify."""


class ProblemError(ClientError):
    """The node answered with an RFC 9457 problem; ``problem`` is the whole document."""

    slug = ""
    """The problem type this class stands for (empty: any of its status)."""

    def __init__(self, problem: Mapping[str, Any], *, status: int) -> None:
        self.problem = dict(problem)
        self.status = status
        detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}")
        fields = [f"{e['field']}: {e['message']}" for e in self.errors if e["message"]]
        # Name each field problem unless the detail already tells them.
        if fields and not all(e["message"] in detail for e in self.errors):
            detail = f"{detail} ({'; '.join(fields)})"
        super().__init__(detail)

    @property
    def type(self) -> str:
        """The problem's ``type`` URI (``about:blank`` for a plain HTTP status)."""
        value = self.problem.get("type")
        return value if isinstance(value, str) else "about:blank"

    @property
    def detail(self) -> str:
        """The problem's ``detail`` member."""
        return str(self.problem.get("detail") or "")

    @property
    def errors(self) -> list[dict[str, str]]:
        """Each field problem of a validation problem (``field``, ``message``)."""
        value = self.problem.get("errors")
        if not isinstance(value, list):
            return []
        return [
            {"field": str(e.get("field", "")), "message": str(e.get("message", ""))}
            for e in value
            if isinstance(e, Mapping)
        ]


class BadRequest(ProblemError):
    """400: unparseable JSON, a stale proposal timestamp, a bad endorsement."""


class SignatureRequired(ProblemError):
    """401: the proposal is unsigned, or its signature does not verify; or a members'
    route was read unsigned, or with a signed read refused (stale, replayed, tampered)."""


class AccessDenied(ProblemError):
    """403: the identity is unknown, revoked or expired, or may not make this call."""


class NotFound(ProblemError):
    """404: no such block, transaction, contract, function or route."""


class MethodNotAllowed(ProblemError):
    """405: the route exists but not for this HTTP method."""


class Conflict(ProblemError):
    """409: the call conflicts with the ledger's state."""


class DuplicateTransaction(Conflict):
    """409: this transaction id is already committed or pending (a replay)."""


class ReadConflict(Conflict):
    """409: a key the transaction read has changed since; endorse again."""


class Rejected(Conflict):
    """409: a business rule of the contract refused the call."""


class RefusedRecorded(Conflict):
    """409: the transaction committed with parts its contract refused and recorded as
    evidence; ``problem["refused"]`` lists them, ``problem["receipt"]`` says where."""


class TransactionInvalidated(Conflict):
    """409: the transaction committed but was marked invalid and changed nothing."""


class PayloadTooLarge(ProblemError):
    """413: the request body is over the node's limit."""


class InvalidRequest(ProblemError):
    """422: the request, its arguments or its proposal do not have the right shape."""


class EndorsementFailed(InvalidRequest):
    """422: the endorsement policy cannot be satisfied."""


class ProofRefused(InvalidRequest):
    """422: what was submitted for verification is not a proof or does not verify."""


class ServerError(ProblemError):
    """500: the contract or the node failed; the call changed nothing."""


class Unavailable(ProblemError):
    """503: the node or its orderer cannot take transactions now; retry later."""


class CommitTimeout(ProblemError):
    """504: submitted, but not committed in the time asked; fetch the receipt later."""


class StorageFull(ProblemError):
    """507: the peer's disk is full; nothing of the transaction was written."""


_BY_SLUG: Mapping[str, type[ProblemError]] = {
    "malformed-json": BadRequest,
    "bad-request": BadRequest,
    "bad-endorsement": BadRequest,
    "unsigned": SignatureRequired,
    "bad-signature": SignatureRequired,
    "unauthenticated": SignatureRequired,
    "bad-read-signature": SignatureRequired,
    "access-denied": AccessDenied,
    "not-found": NotFound,
    "unknown-contract": NotFound,
    "unknown-function": NotFound,
    "no-release": NotFound,
    "method-not-allowed": MethodNotAllowed,
    "duplicate-transaction": DuplicateTransaction,
    "mvcc-conflict": ReadConflict,
    "rejected": Rejected,
    "refused-recorded": RefusedRecorded,
    "transaction-invalidated": TransactionInvalidated,
    "payload-too-large": PayloadTooLarge,
    "validation-error": InvalidRequest,
    "invalid-transaction": InvalidRequest,
    "non-canonical": InvalidRequest,
    "invalid-arguments": InvalidRequest,
    "endorsement-failed": EndorsementFailed,
    "illegal-write": InvalidRequest,
    "policy-error": InvalidRequest,
    "certificate-error": InvalidRequest,
    "proof-error": InvalidRequest,
    "proof-malformed": ProofRefused,
    "proof-invalid": ProofRefused,
    "contract-failure": ServerError,
    "internal-error": ServerError,
    "unavailable": Unavailable,
    "commit-timeout": CommitTimeout,
    "storage-full": StorageFull,
}
_BY_STATUS: Sequence[tuple[int, type[ProblemError]]] = (
    (400, BadRequest),
    (401, SignatureRequired),
    (403, AccessDenied),
    (404, NotFound),
    (405, MethodNotAllowed),
    (409, Conflict),
    (413, PayloadTooLarge),
    (422, InvalidRequest),
    (503, Unavailable),
    (504, CommitTimeout),
    (507, StorageFull),
)
PROBLEM_PATH = "/api/v1/problems/"


def problem_error(problem: Mapping[str, Any], *, status: int) -> ProblemError:
    """The typed exception of a problem document answered with HTTP ``status``."""
    kind = problem.get("type")
    slug = kind.rsplit(PROBLEM_PATH, 1)[-1] if isinstance(kind, str) else ""
    cls = _BY_SLUG.get(slug) if isinstance(kind, str) and PROBLEM_PATH in kind else None
    if cls is None:
        cls = next((c for code, c in _BY_STATUS if code == status), None)
    if cls is None:
        cls = ServerError if status >= 500 else ProblemError
    return cls(problem, status=status)
