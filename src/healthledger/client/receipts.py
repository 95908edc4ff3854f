"""Receipts, the evidence that a transaction is in the ledger, and its offline check."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from healthledger import verify
from healthledger.client.errors import ProofNotVerified, UnexpectedAnswer


@dataclass(frozen=True)
class Receipt:
    """Where a transaction committed and how every peer judged it."""

    tx_id: str
    """The transaction id (hex SHA-256 of the canonical signed proposal)."""
    height: int
    """Height of the block holding it."""
    index: int
    """Its position in that block."""
    code: str
    """Validation code: ``VALID`` or why it changed nothing."""
    valid: bool
    block_hash: str
    log_index: int
    """Its leaf in the global log."""
    timestamp: int
    """The block's ordering time, Unix milliseconds."""

    @classmethod
    def from_json(cls, obj: Any) -> Receipt:
        """A receipt from its JSON form; UnexpectedAnswer if it is not one."""
        try:
            return cls(
                tx_id=_typed(obj, "tx_id", str),
                height=_typed(obj, "height", int),
                index=_typed(obj, "index", int),
                code=_typed(obj, "code", str),
                valid=_typed(obj, "valid", bool),
                block_hash=_typed(obj, "block_hash", str),
                log_index=_typed(obj, "log_index", int),
                timestamp=_typed(obj, "timestamp", int),
            )
        except (KeyError, TypeError) as exc:
            raise UnexpectedAnswer(f"not a receipt: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        """The JSON form a node serves."""
        return {
            "tx_id": self.tx_id,
            "height": self.height,
            "index": self.index,
            "code": self.code,
            "valid": self.valid,
            "block_hash": self.block_hash,
            "log_index": self.log_index,
            "timestamp": self.timestamp,
        }


def _typed(obj: Any, name: str, kind: type) -> Any:
    if not isinstance(obj, Mapping):
        raise TypeError("a JSON object is expected")
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name} must be {kind.__name__}")
    return value


@dataclass(frozen=True)
class Committed:
    """A committed call: its receipt and what the contract function returned."""

    receipt: Receipt
    result: Any

    @property
    def tx_id(self) -> str:
        """The transaction id."""
        return self.receipt.tx_id


@dataclass(frozen=True)
class Evidence:
    """What proves a receipt offline: the transaction, the header of its block and an
    RFC 9162 inclusion proof at that block's log size. Kept as JSON, it can be checked
    again later, anywhere, with :meth:`verify`."""

    receipt: Receipt
    transaction: Mapping[str, Any]
    header: Mapping[str, Any]
    proof: Mapping[str, Any]

    def verify(self) -> None:
        """Return None if the evidence holds; ProofNotVerified saying why not. Trust in
        the header itself comes from a checkpoint or a consistency proof."""
        try:
            verify.receipt(
                receipt=self.receipt.to_json(),
                transaction=self.transaction,
                header=self.header,
                proof=self.proof,
            )
        except verify.VerificationError as exc:
            raise ProofNotVerified(
                f"the receipt of {self.receipt.tx_id} does not verify: {exc}"
            ) from exc

    def to_json(self) -> dict[str, Any]:
        """The JSON form, for keeping beside the record it proves."""
        return {
            "receipt": self.receipt.to_json(),
            "transaction": dict(self.transaction),
            "header": dict(self.header),
            "proof": dict(self.proof),
        }

    @classmethod
    def from_json(cls, obj: Any) -> Evidence:
        """Evidence from its JSON form."""
        if not isinstance(obj, Mapping) or not all(
            isinstance(obj.get(k), Mapping) for k in ("receipt", "transaction", "header", "proof")
        ):
            raise UnexpectedAnswer("evidence is an object of receipt, transaction, header, proof")
        return cls(
            Receipt.from_json(obj["receipt"]), obj["transaction"], obj["header"], obj["proof"]
        )
