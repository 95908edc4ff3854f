"""Errors raised by the ledger layer."""

from healthledger.errors import HealthledgerError


class LedgerError(HealthledgerError):
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


class StorageFull(StorageError):
    """The disk holding the store is full: the write was rolled back, nothing of it
    is on disk, and the store is as it was before."""


class StoreUnavailable(StorageError):
    """The store's database server cannot be reached (PostgreSQL): what was being
    written was not committed, and the store connects again on its next use."""


class CorruptStore(StorageError):
    """The store on disk is damaged (a page fails SQLite's check, the write-ahead log
    lost committed frames, or a stored block fails its self-check): the node must not
    serve it until it is restored."""
