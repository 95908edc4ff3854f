"""The Orderer protocol: puts transactions in one total order and cuts blocks.

Implementations: ``solo`` (in process, for the embedded node) and ``jetstream``
(a NATS JetStream cluster). An orderer never validates; it only
orders and batches. Batches carry their own timestamp so that every peer builds
the same block from the same batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from healthledger.errors import HealthledgerError
from healthledger.ledger.transaction import Transaction


class OrderingError(HealthledgerError):
    """The orderer cannot take a transaction now (stopped, full or unreachable)."""


@dataclass(frozen=True)
class Batch:
    """Transactions cut into one block, in order, with the ordering time."""

    sequence: int
    """0, 1, 2, ... in delivery order."""
    transactions: tuple[Transaction, ...]
    timestamp: int
    """Unix milliseconds at which the batch was cut."""
    stream_seq: int | None = None
    """Stream sequence of the message that closed the batch (``jetstream``; None for
    ``solo``). A peer that records it with the block resumes after it on restart."""


Deliver = Callable[[Batch], None]


class Orderer(Protocol):
    """Orders transactions and delivers batches to one peer."""

    persistent: bool
    """True if a transaction it has taken is stored outside this process and may be
    delivered even after this process dies (JetStream); False if it lives in this
    process until its block commits (solo), so a crash before then drops it."""

    def start(self, deliver: Deliver) -> None:
        """Begin delivering batches, in order, to ``deliver``."""
        ...

    def submit(self, tx: Transaction) -> None:
        """Queue ``tx`` for ordering; raise OrderingError if it cannot be taken."""
        ...

    def submit_many(self, transactions: Sequence[Transaction]) -> list[OrderingError | None]:
        """Queue several transactions at once; for each (in the order given), None if
        it was taken, else the OrderingError that says why not. Like transactions
        submitted from several threads, they may be ordered in any order among
        themselves."""
        ...

    def stop(self) -> None:
        """Stop after delivering what has been cut; later submits raise OrderingError."""
        ...
