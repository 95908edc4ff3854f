"""healthledger.client: what an integrating system imports to write to and read from a
healthledger node over HTTP (ARCHITECTURE.md sections 2 and 7).

Load an :class:`Identity` (a certificate and an encrypted PKCS#8 key file), sign
proposals locally, have them endorsed, ordered and committed through a node, check
each receipt's inclusion proof offline, and follow the event stream with resume.
Every problem answer is a typed :class:`ProblemError`; everything this package raises
is a :class:`ClientError`, a :class:`healthledger.errors.HealthledgerError`. It
depends only on ``crypto`` and ``ledger`` (and ``healthledger.verify``).
"""

from healthledger.client.errors import (
    AccessDenied,
    BadRequest,
    ClientError,
    CommitTimeout,
    Conflict,
    ConnectionFailed,
    DuplicateTransaction,
    EndorsementFailed,
    EndorsementMismatch,
    IdentityError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ProblemError,
    ProofNotVerified,
    ProofRefused,
    ReadConflict,
    RefusedRecorded,
    Rejected,
    ServerError,
    SignatureRequired,
    StorageFull,
    TransactionInvalidated,
    Unavailable,
    UnexpectedAnswer,
)
from healthledger.client.events import Event
from healthledger.client.http import AsyncClient, Client
from healthledger.client.identity import Identity, SignedCall
from healthledger.client.receipts import Committed, Evidence, Receipt

__all__ = [
    "AccessDenied",
    "AsyncClient",
    "BadRequest",
    "Client",
    "ClientError",
    "CommitTimeout",
    "Committed",
    "Conflict",
    "ConnectionFailed",
    "DuplicateTransaction",
    "EndorsementFailed",
    "EndorsementMismatch",
    "Event",
    "Evidence",
    "Identity",
    "IdentityError",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "ProblemError",
    "ProofNotVerified",
    "ProofRefused",
    "ReadConflict",
    "Receipt",
    "RefusedRecorded",
    "Rejected",
    "ServerError",
    "SignatureRequired",
    "SignedCall",
    "StorageFull",
    "TransactionInvalidated",
    "Unavailable",
    "UnexpectedAnswer",
]
