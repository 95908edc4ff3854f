"""Public verification: is this transaction, receipt or inclusion proof genuine for this ledger?

A proof (the ``healthledger proof`` output: ``leafIdx``, ``treeSize``, ``root``,
``leafHash``, ``proof``, hashes in base64) is checked in two steps: the audit path
must lead to the proof's own root (RFC 9162 section 2.1.3.2), and that root must be
this ledger's log root at that size, checked against the log root in the head
block's header, through a consistency proof (section 2.1.4.2) if the proof is for
an older, smaller log. A verdict never raises: it says verified or not, and why, and
whether what was submitted was well formed at all (``well_formed``: the API answers a
malformed submission and one that does not verify with different problems).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from healthledger import verify
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.keys import decode_b64
from healthledger.errors import HealthledgerError
from healthledger.ledger.block import BlockHeader
from healthledger.ledger.errors import NotFound
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.peer import Peer

TX_ID_RE = re.compile(r"^[0-9a-f]{64}$")

Kind = Literal["transaction", "proof", "receipt", "unknown"]


@dataclass(frozen=True)
class Verdict:
    """The outcome of a verification, with the reason in words."""

    verified: bool
    reason: str
    kind: Kind
    details: dict[str, Any] = field(default_factory=dict)
    well_formed: bool = True
    """False when the submission is not a transaction id, proof or receipt, or a field
    of it is malformed; True when it could be checked (verified or not)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "verified": self.verified,
            "reason": self.reason,
            "kind": self.kind,
            "details": self.details,
        }


class _Refusal(HealthledgerError):
    """Internal: the submission is not verified, for the reason given."""


class _Malformed(_Refusal):
    """Internal: the submission cannot even be checked: a field of it is malformed."""


def _hash(obj: dict[str, Any], name: str) -> bytes:
    return _hash_value(obj.get(name), name)


def _hash_value(value: object, name: str) -> bytes:
    try:
        raw = decode_b64(value, what=name)
    except CryptoError as exc:
        raise _Malformed(f"malformed proof: {exc}") from exc
    if len(raw) != 32:
        raise _Malformed(f"malformed proof: {name} is {len(raw)} bytes, not a 32-byte SHA-256")
    return raw


def _int(obj: dict[str, Any], name: str) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Malformed(f"malformed: {name} must be a non-negative integer")
    return value


class Verifier:
    """Checks submissions against one peer's ledger."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    def check_text(self, text: str) -> Verdict:
        """Verify a pasted transaction id, or a proof or receipt in JSON."""
        text = text.strip()
        if TX_ID_RE.match(text.lower()):
            return self.check_tx_id(text.lower())
        try:
            value = json.loads(text)
        except ValueError:
            return Verdict(
                False,
                "not a transaction id (64 hex characters) nor JSON",
                "unknown",
                {},
                well_formed=False,
            )
        return self.check(value)

    def check(self, value: Any) -> Verdict:
        """Verify a parsed proof or receipt object (or a bare transaction id string)."""
        if isinstance(value, str) and TX_ID_RE.match(value):
            return self.check_tx_id(value)
        if not isinstance(value, dict):
            return Verdict(
                False,
                "expected a transaction id (64 hex characters) or a JSON object: a proof "
                "or a receipt",
                "unknown",
                {},
                well_formed=False,
            )
        if "leafIdx" in value:
            return self._guard("proof", lambda: self._proof(value))
        if "tx_id" in value:
            return self._guard("receipt", lambda: self._receipt(value))
        return Verdict(
            False,
            "not a proof (leafIdx, treeSize, root, leafHash, proof) nor a receipt (tx_id, ...)",
            "unknown",
            {},
            well_formed=False,
        )

    def check_tx_id(self, tx_id: str) -> Verdict:
        """Verify that ``tx_id`` is in this ledger's log, with a fresh inclusion proof."""
        return self._guard("transaction", lambda: self._tx_id(tx_id))

    @staticmethod
    def _guard(kind: Kind, run: Callable[[], tuple[str, dict[str, Any]]]) -> Verdict:
        try:
            reason, details = run()
        except _Refusal as exc:
            return Verdict(False, str(exc), kind, {}, well_formed=not isinstance(exc, _Malformed))
        return Verdict(True, reason, kind, details)

    # --- the three kinds ------------------------------------------------------------

    def _tx_id(self, tx_id: str) -> tuple[str, dict[str, Any]]:
        try:
            proof = self.peer.inclusion_proof(tx_id)
        except NotFound as exc:
            raise _Refusal(f"no transaction {tx_id} is committed on this ledger") from exc
        return self._proof(proof)

    def _receipt(self, receipt: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        tx_id = receipt.get("tx_id")
        if not isinstance(tx_id, str) or not TX_ID_RE.match(tx_id):
            raise _Malformed("malformed receipt: tx_id must be 64 hex characters")
        location = self.peer.store.tx_location(tx_id)
        if location is None:
            raise _Refusal(f"no transaction {tx_id} is committed on this ledger")
        actual = self.peer.receipt(tx_id).to_json()
        for name in ("height", "index", "log_index", "block_hash", "code", "valid", "timestamp"):
            if name in receipt and receipt[name] != actual[name]:
                raise _Refusal(
                    f"the receipt says {name} = {receipt[name]!r}, but this ledger has "
                    f"{actual[name]!r}"
                )
        reason, details = self._tx_id(tx_id)
        return "receipt matches the ledger; " + reason, details

    def _proof(self, obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        leaf_index, tree_size = _int(obj, "leafIdx"), _int(obj, "treeSize")
        root, leaf = _hash(obj, "root"), _hash(obj, "leafHash")
        path = obj.get("proof")
        if not isinstance(path, list):
            raise _Malformed("malformed proof: proof must be a list of base64 hashes")
        hashes = [_hash_value(p, f"proof[{i}]") for i, p in enumerate(path)]
        try:
            verify.inclusion(
                leaf_index=leaf_index, tree_size=tree_size, leaf_hash=leaf, proof=hashes, root=root
            )
        except verify.VerificationError as exc:
            raise _Refusal(f"the audit path does not lead to the proof's root: {exc}") from exc
        head = self._synced_head()
        how = self._root_is_ours(tree_size, root, head)
        location = self.peer.store.tx_at_log_index(leaf_index)
        tx, _ = self.peer.transaction(location.tx_id)
        if tx.leaf_hash != leaf:
            raise _Refusal(f"log entry {leaf_index} of this ledger has another leaf hash")
        claims: dict[str, object] = {
            "txId": tx.tx_id,
            "txHash": tx.tx_hash.hex(),
            "code": str(location.code),
            "height": location.height,
        }
        for name, value in claims.items():
            if name in obj and obj[name] != value:
                raise _Refusal(
                    f"the proof says {name} = {obj[name]!r}, but log entry {leaf_index} has "
                    f"{value!r}"
                )
        valid = location.code is ValidationCode.VALID
        reason = (
            f"transaction {tx.tx_id} is entry {leaf_index} of this ledger's global log, "
            f"in block {location.height}; {how}"
        )
        if not valid:
            reason += f". It is recorded as invalid ({location.code}) and changed nothing"
        return reason, {
            "tx_id": tx.tx_id,
            "height": location.height,
            "log_index": leaf_index,
            "code": str(location.code),
            "valid": valid,
            "tree_size": tree_size,
            "current_size": head.log_size,
            "current_root": head.log_root,
            "checked_at_height": head.height,
        }

    # --- against the current log --------------------------------------------------------

    def _synced_head(self) -> BlockHeader:
        """The newest header whose log the in-memory log index already covers."""
        head = self.peer.store.head()
        if head is None:
            raise _Refusal("this ledger has no blocks yet")
        while head.log_size > self.peer.chain.log.size and head.height > 0:
            head = self.peer.store.header(head.height - 1)
        return head

    def _root_is_ours(self, tree_size: int, root: bytes, head: BlockHeader) -> str:
        current_root = bytes.fromhex(head.log_root)
        if tree_size > head.log_size:
            raise _Refusal(
                f"the proof is for a log of {tree_size} entries; this ledger's has {head.log_size}"
            )
        if tree_size == head.log_size:
            if root != current_root:
                raise _Refusal(
                    f"the proof's root is not this ledger's log root at size {tree_size}"
                )
            return f"its root is the log root in the header of block {head.height}"
        consistency = self.peer.consistency_proof(tree_size, head.log_size)
        try:
            verify.consistency(
                size1=tree_size,
                size2=head.log_size,
                root1=root,
                root2=current_root,
                proof=[decode_b64(p) for p in consistency["proof"]],
            )
        except verify.VerificationError as exc:
            raise _Refusal(
                f"the proof's root is not a root this ledger's log had at size {tree_size} "
                f"(consistency check against size {head.log_size} failed)"
            ) from exc
        return (
            f"its root (log size {tree_size}) is consistent with the current log root in the "
            f"header of block {head.height} (size {head.log_size})"
        )
