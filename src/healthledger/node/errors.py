"""Errors a peer reports to its clients."""

from healthledger.errors import HealthledgerError
from healthledger.ledger.transaction import ValidationCode


class NodeError(HealthledgerError):
    """Base class of the node layer's errors."""


class DuplicateTransaction(NodeError):
    """The transaction id is already committed or pending: a replay or resubmission."""


class EndorsementFailed(NodeError):
    """The peer cannot gather endorsements that satisfy the policy."""


class BadRequest(NodeError):
    """The request is malformed, stale, or its signature does not verify."""


class BadSignature(BadRequest):
    """A proposal's signature does not verify against its creator's certificate."""


class TransactionRefused(NodeError):
    """A submitted transaction would be marked invalid: refused before ordering."""

    def __init__(self, code: ValidationCode, tx_id: str) -> None:
        super().__init__(f"transaction {tx_id} would be marked {code}")
        self.code = code
        self.tx_id = tx_id


class CommitTimeout(NodeError):
    """The transaction was ordered but did not commit within the time asked."""


class NodeUnavailable(NodeError):
    """The node is stopping or its orderer cannot take transactions."""
