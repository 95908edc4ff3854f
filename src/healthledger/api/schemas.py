"""Request and response bodies of the API, for validation and the OpenAPI document.

Request models are strict (no coercion, no unknown fields) and mirror the ledger's
JSON forms; they check shape and types only. The ledger's own parsers
(``SignedProposal.from_json``, ``Transaction.from_json``) then read the exact
bytes the client sent, parsed in the canonical JSON profile, so that what is
verified is what was signed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from healthledger.ledger.transaction import IDENTITY_RE, NAME_RE, NONCE_RE

_STRICT = ConfigDict(strict=True, extra="forbid")
MAX_INTEGER = 2**63 - 1
"""The largest height, size or index a request may name: SQLite's largest integer (a
larger one is answered 422, not passed to the store)."""
_B64 = r"^[A-Za-z0-9+/]*={0,2}$"


class ProposalBody(BaseModel):
    """What a client asks the ledger to do."""

    model_config = _STRICT

    contract: str = Field(pattern=NAME_RE.pattern, description="Contract name.")
    function: str = Field(pattern=NAME_RE.pattern, description="Function of the contract.")
    args: dict[str, Any] = Field(description="Named arguments (canonical JSON: no floats).")
    creator: str = Field(pattern=IDENTITY_RE.pattern, description="Signer, ``org/name``.")
    nonce: str = Field(pattern=NONCE_RE.pattern, description="32 lowercase hex characters.")
    timestamp: int = Field(ge=0, description="Client time, Unix milliseconds.")
    transient_hash: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Hex SHA-256 of the canonical ``transient`` map sent beside the proposal.",
    )


class SignedProposalBody(BaseModel):
    """A proposal and its creator's Ed25519 signature over the canonical proposal."""

    model_config = _STRICT

    proposal: ProposalBody
    signature: str | None = Field(
        default=None,
        pattern=_B64,
        description="Base64 Ed25519 signature (64 bytes); required, 401 if missing.",
    )
    transient: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Private inputs for the contract (e.g. a patient's personal data), bound by the "
            "proposal's ``transient_hash`` (hex SHA-256 of the canonical map, which should "
            "carry a random ``_salt``). Given to the endorsing peer only: never ordered, "
            "stored on chain, logged or echoed."
        ),
    )


class KeyReadBody(BaseModel):
    """A key read during simulation, with the version seen."""

    model_config = _STRICT

    ns: str
    key: str
    version: list[int] | None = Field(description="[height, index], or null if absent.")


class KeyWriteBody(BaseModel):
    """A key written (``value``) or deleted (``delete: true``)."""

    model_config = _STRICT

    ns: str
    key: str
    value: Any = None
    delete: Literal[True] | None = None


class PrivateWriteBody(BaseModel):
    """Salted hashes of a private-data write."""

    model_config = _STRICT

    collection: str
    key_hash: str
    value_hash: str


class ReadWriteSetBody(BaseModel):
    """What simulating the proposal read and would write."""

    model_config = _STRICT

    reads: list[KeyReadBody]
    writes: list[KeyWriteBody]
    private: list[PrivateWriteBody]


class ContractEventBody(BaseModel):
    """An event the contract emitted."""

    model_config = _STRICT

    name: str
    payload: Any = None


class ProposalResponseBody(BaseModel):
    """The endorsed outcome of the proposal."""

    model_config = _STRICT

    rwset: ReadWriteSetBody
    events: list[ContractEventBody]
    result: Any = None


class EndorsementBody(BaseModel):
    """An endorser's signature over (tx id, response)."""

    model_config = _STRICT

    endorser: str = Field(pattern=IDENTITY_RE.pattern)
    signature: str = Field(pattern=_B64)


class TransactionBody(BaseModel):
    """A signed proposal, its response and the endorsements: what ``/proposals/endorse``
    returns and ``/transactions`` accepts."""

    model_config = _STRICT

    signed_proposal: SignedProposalBody
    response: ProposalResponseBody
    endorsements: list[EndorsementBody]


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


class ReceiptOut(BaseModel):
    """Where a transaction committed and how it was judged."""

    tx_id: str
    height: int
    index: int
    code: str
    valid: bool
    block_hash: str
    log_index: int
    timestamp: int


class InvokeOut(BaseModel):
    """The receipt of a committed transaction and its function's return value."""

    receipt: ReceiptOut
    result: Any = None
    custody: Literal["client", "demo"] = Field(
        description="``demo`` when the server signed with a key it holds (demo custody)."
    )


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
