"""Request and response bodies of the API, for validation and the OpenAPI document.

The ledger's wire formats (proposal, transaction, receipt, ...) are the records of
``ledger.wire``: the bodies here that carry them are msgspec records built of those,
decoded once from the exact bytes the client sent (``api.bodies``), and their OpenAPI
schemas come from the same records (:func:`record_schemas`). Other bodies are strict
pydantic models (no coercion, no unknown fields).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from pydantic import BaseModel, ConfigDict, Field

from healthledger.api.problems import ApiError, problem
from healthledger.crypto.errors import CryptoError
from healthledger.ledger.errors import InvalidTransaction
from healthledger.ledger.receipt import Receipt
from healthledger.ledger.transaction import (
    IDENTITY_RE,
    NAME_RE,
    Endorsement,
    Proposal,
    ProposalResponse,
    SignedProposal,
    Transaction,
)
from healthledger.ledger.wire import Record, Signature, schema_components

_STRICT = ConfigDict(strict=True, extra="forbid")
MAX_INTEGER = 2**63 - 1
"""The largest height, size or index a request may name: SQLite's largest integer (a
larger one is answered 422, not passed to the store)."""
_SIGNATURE_NOTE = "Base64 Ed25519 signature (64 bytes); required, 401 if missing."
_TRANSIENT_NOTE = (
    "Private inputs for the contract (e.g. a patient's personal data), bound by the "
    "proposal's ``transient_hash`` (hex SHA-256 of the canonical map, which should "
    "carry a random ``_salt``). Given to the endorsing peer only: never ordered, "
    "stored on chain, logged or echoed."
)


class SubmittedProposal(Record, frozen=True):
    """A proposal and its creator's signature as a client sends them; one without a
    signature is answered 401."""

    what = "signed proposal"

    proposal: Proposal
    signature: Annotated[Signature | None, msgspec.Meta(description=_SIGNATURE_NOTE)] = None

    def signed(self, where: str) -> SignedProposal:
        """The signed proposal; 401 if it carries no signature."""
        if self.signature is None:
            raise ApiError(
                problem(
                    "unsigned",
                    f"{where} carries no signature: every proposal is signed by its creator",
                    headers={"WWW-Authenticate": 'Signature realm="healthledger", alg="ed25519"'},
                )
            )
        return SignedProposal(self.proposal, self.signature)


class SignedProposalBody(SubmittedProposal, frozen=True):
    """A proposal, its creator's Ed25519 signature over the canonical proposal, and
    private inputs beside it: the body of ``/proposals/endorse``, ``/invoke`` and
    ``/query``."""

    transient: Annotated[dict[str, Any] | None, msgspec.Meta(description=_TRANSIENT_NOTE)] = None


class TransactionBody(Record, frozen=True):
    """A signed proposal, its response and the endorsements: what
    ``/proposals/endorse`` returns and ``/transactions`` accepts."""

    what = "transaction"

    signed_proposal: SubmittedProposal
    response: ProposalResponse
    endorsements: tuple[Endorsement, ...] = ()

    def transaction(self) -> Transaction:
        """The transaction; 401 if its proposal carries no signature."""
        tx = Transaction(
            self.signed_proposal.signed("the transaction's proposal"),
            self.response,
            self.endorsements,
        )
        try:
            tx.response.canonical  # noqa: B018 - checks the profile once, keeps the bytes
        except CryptoError as exc:
            raise InvalidTransaction(f"response: {exc}") from exc
        return tx


class DemoCallBody(BaseModel):
    """A call the server signs with the demo identity's key (demo custody only)."""

    model_config = _STRICT

    identity: str = Field(pattern=IDENTITY_RE.pattern, description="Demo identity ``org/name``.")
    contract: str = Field(pattern=NAME_RE.pattern)
    function: str = Field(pattern=NAME_RE.pattern)
    args: dict[str, Any] = Field(default_factory=dict)
    transient: dict[str, Any] | None = Field(
        default=None,
        description="Private inputs; the server salts them and binds them by hash.",
    )


class InvokeOut(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The receipt of a committed transaction and its function's return value."""

    receipt: Receipt
    custody: Annotated[
        Literal["client", "demo"],
        msgspec.Meta(description="``demo`` when the server signed with a key it holds."),
    ]
    result: Any = None


MAX_BATCH = 200
"""Calls one batch request may carry (a request body is at most 1 MiB besides)."""

_PROBLEM_NOTE = "RFC 9457 problem details: why this call was refused (the others go on)."


class ProposalBatchBody(Record, frozen=True):
    """Signed proposals to endorse, each as ``/proposals/endorse`` takes one."""

    what = "batch of proposals"

    proposals: Annotated[list[SignedProposalBody], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class TransactionBatchBody(Record, frozen=True):
    """Endorsed transactions to order, each as ``/transactions`` takes one."""

    what = "batch of transactions"

    transactions: Annotated[list[TransactionBody], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class EndorsedItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One proposal of a batch: its endorsed transaction, or why it was refused."""

    transaction: Transaction | None = None
    problem: Annotated[dict[str, Any] | None, msgspec.Meta(description=_PROBLEM_NOTE)] = None


class EndorsedBatchOut(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The answer to a batch of proposals, one item per proposal in the order sent."""

    results: list[EndorsedItem]
    endorsed: int
    refused: int


class CommittedItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One transaction of a batch: its receipt once committed valid, or why it was
    refused (before ordering, invalidated at commit, or not committed in time)."""

    receipt: Receipt | None = None
    problem: Annotated[dict[str, Any] | None, msgspec.Meta(description=_PROBLEM_NOTE)] = None


class CommittedBatchOut(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The answer to a batch of transactions, one item per transaction in the order sent."""

    results: list[CommittedItem]
    committed: int
    refused: int


RECORD_BODIES: tuple[type[Any], ...] = (
    SignedProposalBody,
    TransactionBody,
    Transaction,
    Receipt,
    InvokeOut,
    ProposalBatchBody,
    TransactionBatchBody,
    EndorsedBatchOut,
    CommittedBatchOut,
)
"""Bodies the API reads or answers in the ledger's wire formats (msgspec records)."""


def record_schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schemas of :data:`RECORD_BODIES` and every record they refer to, as
    OpenAPI components (``api.openapi`` adds them to the document)."""
    _, components = schema_components(RECORD_BODIES)
    return components


def schema_ref(name: str) -> dict[str, str]:
    """A reference to the component schema ``name``."""
    return {"$ref": f"#/components/schemas/{name}"}


def json_request(name: str) -> dict[str, Any]:
    """``openapi_extra`` of a route whose JSON body is the record ``name`` (read by the
    route itself, once, with :func:`api.bodies.read_record`)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema_ref(name)}},
        }
    }


def json_response(name: str, description: str) -> dict[str, Any]:
    """A ``responses`` entry whose JSON body is the record ``name``."""
    return {
        "description": description,
        "content": {"application/json": {"schema": schema_ref(name)}},
    }


class QueryOut(BaseModel):
    """A query function's return value."""

    result: Any = None
    custody: Literal["client", "demo"]


class SubmittedOut(BaseModel):
    """A transaction accepted for ordering (``wait=false``)."""

    tx_id: str
    status: Literal["submitted"]
    receipt: str = Field(description="Where to fetch the receipt once committed.")


class StatusOut(BaseModel):
    """The node's view of the chain head."""

    height: int = Field(description="Committed blocks (the next block's height).")
    head_hash: str | None
    head_timestamp: int | None
    state_root: str | None
    log_size: int = Field(description="Transactions in the global log.")
    log_root: str | None = Field(description="Hex RFC 9162 root of the global log.")
    genesis_hash: str | None = Field(
        description="Hash of block 0: the chain this node holds (a client checks it "
        "talks to the consortium it expects)."
    )
    accepting_writes: bool = Field(description="False while ordering is unavailable.")
    ordering_error: str | None = Field(description="Why ordering is unavailable, if it is.")
    custody: Literal["client", "demo"]
    custody_notice: str | None


class FieldProblem(BaseModel):
    """One field of a request and what is wrong with it."""

    field: str = Field(description="Where: a dotted path or a JSON pointer.")
    message: str


class ProblemOut(BaseModel):
    """RFC 9457 problem details: the body of every error response (``application/problem+json``).

    Extension members beside the standard ones: ``errors`` (422: each field),
    ``tx_id`` and ``receipt`` (a transaction that committed: where; or, with a commit
    timeout, where to fetch the receipt later), ``refused`` and ``result``
    (``refused-recorded``: each refused part with its ``reason``, and the contract's
    whole answer), ``verified``, ``reason``, ``kind`` and ``details`` (a proof that
    does not verify), ``code`` (a validation code), ``error_id`` (500: the log entry).
    """

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = Field(
        description="URI of the problem type, documented at that address; ``about:blank`` "
        "for a bare HTTP status."
    )
    title: str
    status: int
    detail: str
    instance: str = Field(description="The path of the request.")
    errors: list[FieldProblem] | None = None
    tx_id: str | None = None
    refused: list[dict[str, Any]] | None = None


PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"
PROBLEM_CONTENT: dict[str, Any] = {
    "application/problem+json": {"schema": {"$ref": PROBLEM_SCHEMA_REF}}
}
"""How an error response body is documented (``api.openapi`` adds the schema)."""

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed JSON or request",
    401: "Missing or non-verifying signature",
    403: "Identity unknown, revoked or refused",
    404: "Not found",
    409: "Duplicate, conflict, refused by the contract (``rejected``), or committed with a "
    "part the contract refused and recorded as evidence (``refused-recorded``)",
    413: "Request body too large",
    422: "Invalid request, arguments or unsatisfiable endorsement policy",
    500: "Contract failure or internal error",
    503: "Node unavailable, or a consortium peer that stopped serving its chain",
    504: "Commit timeout",
}
"""What each error status means, as the OpenAPI document says it."""


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of these error statuses, as problem details."""
    return {
        code: {"content": PROBLEM_CONTENT, "description": ERROR_DESCRIPTIONS[code]}
        for code in codes
    }


PROBLEM_RESPONSES = problem_responses(400, 401, 403, 404, 409, 413, 422, 500, 503, 504)
"""The error responses every write route documents."""
