"""Errors a peer reports to its clients."""


class NodeError(Exception):
    """Base class of the node layer's errors."""


class DuplicateTransaction(NodeError):
    """The transaction id is already committed or pending: a replay or resubmission."""


class EndorsementFailed(NodeError):
    """The peer cannot gather endorsements that satisfy the policy."""


class BadRequest(NodeError):
    """The request is malformed or its signature does not verify."""


class CommitTimeout(NodeError):
    """The transaction was ordered but did not commit within the time asked."""


class NodeUnavailable(NodeError):
    """The node is stopping or its orderer cannot take transactions."""
