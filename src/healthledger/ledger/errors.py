"""Errors raised by the ledger layer."""


class LedgerError(Exception):
    """Base class for every error of the ledger layer."""


class ProofError(LedgerError):
    """A Merkle inclusion or consistency proof is malformed or does not verify."""


class InvalidBlock(LedgerError):
    """A block breaks a hash link, a Merkle root or a validation decision."""


class InvalidTransaction(LedgerError):
    """A transaction is malformed or fails validation."""


class StorageError(LedgerError):
    """The block store or world state cannot be read or written as asked."""


class NotFound(LedgerError):
    """A block, transaction or key that was asked for does not exist."""
