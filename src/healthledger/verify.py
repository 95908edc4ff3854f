"""Verify what a healthledger peer hands out, offline, with public code.

The small public verification surface (ARCHITECTURE.md section 2): each function takes
keyword arguments only, returns None when what it was given verifies, and raises one
:class:`VerificationError` saying why when it does not (the ledger's own error, naming
the defect, is its ``__cause__``). Inputs are the JSON forms a peer serves (blocks,
headers, transactions, receipts, ``healthledger proof`` output) or, for the RFC 9162
proofs, their decoded hashes. It depends only on ``crypto`` and ``ledger``.

- :func:`transaction`: a transaction has the id it is claimed to have;
- :func:`block`: a block follows the block before it (links and roots);
- :func:`inclusion`, :func:`consistency`: RFC 9162 proofs of the global log;
- :func:`receipt`: a receipt names a transaction that is in the block it names;
- :func:`checkpoint`: a C2SP signed checkpoint note is signed by a given key;
- :func:`audit`: a whole ledger store re-derives, block by block, to what it holds;
- :func:`credential`: a health credential (EU DCC, SMART Health Card, SD-JWT VC) is
  valid offline against a trust source and a cached status source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.status import StatusSource
from healthledger.crypto.credentials.trust import TrustStore
from healthledger.crypto.credentials.verdict import Verdict
from healthledger.crypto.credentials.verifier import verify_credential
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.keys import decode_b64
from healthledger.errors import HealthledgerError
from healthledger.ledger.audit import Progress, audit_store
from healthledger.ledger.block import Block, BlockHeader, verify_block
from healthledger.ledger.checkpoint import CheckpointError, open_note
from healthledger.ledger.errors import LedgerError
from healthledger.ledger.merkle import verify_consistency, verify_inclusion
from healthledger.ledger.receipt import Receipt
from healthledger.ledger.transaction import Transaction
from healthledger.ledger.validation import Validator

__all__ = [
    "VerificationError",
    "audit",
    "block",
    "checkpoint",
    "consistency",
    "credential",
    "inclusion",
    "receipt",
    "transaction",
]


class VerificationError(HealthledgerError):
    """What was given does not verify, or is malformed; the message says why. For a
    credential, ``verdict`` holds the whole verdict with its reason codes."""

    def __init__(self, message: str, *, verdict: Verdict | None = None) -> None:
        super().__init__(message)
        self.verdict = verdict


def transaction(*, transaction: Mapping[str, Any], tx_id: str) -> None:
    """Check that ``transaction`` (its JSON form) is a well-formed transaction, in the
    canonical profile, whose id (the hex SHA-256 of its canonical signed proposal) is
    ``tx_id``. Who signed it is the validator's question, not this one's."""
    parsed = _transaction(transaction)
    if parsed.tx_id != tx_id:
        raise VerificationError(f"the transaction's id is {parsed.tx_id}, not {tx_id}")


def block(*, previous: Mapping[str, Any] | None, block: Mapping[str, Any]) -> None:
    """Check that ``block`` (its JSON form) follows the block whose header is
    ``previous`` (None: that ``block`` is a genesis block): its height, prev_hash,
    tx_root, state_root and log_size (ledger.block.verify_block)."""
    try:
        previous_header = None if previous is None else BlockHeader.from_json(previous)
        verify_block(previous_header, Block.from_json(block))
    except (LedgerError, CryptoError) as exc:
        raise VerificationError(str(exc)) from exc


def inclusion(
    *, leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an RFC 9162 inclusion proof: ``leaf_hash`` is leaf ``leaf_index`` of the
    log of ``tree_size`` leaves whose root is ``root``."""
    try:
        verify_inclusion(
            leaf_index=leaf_index, tree_size=tree_size, leaf_hash=leaf_hash, proof=proof, root=root
        )
    except LedgerError as exc:
        raise VerificationError(str(exc)) from exc


def consistency(
    *, size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check an RFC 9162 consistency proof: the log of ``size2`` leaves with ``root2``
    extends the log of ``size1`` leaves with ``root1``."""
    try:
        verify_consistency(size1=size1, size2=size2, root1=root1, root2=root2, proof=proof)
    except LedgerError as exc:
        raise VerificationError(str(exc)) from exc


def receipt(
    *,
    receipt: Mapping[str, Any],
    transaction: Mapping[str, Any],
    header: Mapping[str, Any],
    proof: Mapping[str, Any],
) -> None:
    """Check a receipt against the transaction it names, the header of the block it
    names and an inclusion proof (``healthledger proof`` output) at that block's log
    size: the transaction has the receipt's ``tx_id``; the header has its
    ``block_hash``, ``height`` and ``timestamp``; the proof's leaf is the transaction's,
    at the receipt's ``log_index``, and leads to the header's log root.

    Trust in ``header`` comes from elsewhere (a checkpoint, or a consistency proof to a
    log root already trusted). The receipt's ``index`` and ``code`` are the peer's word:
    the header commits to them only through the whole block (see :func:`block`)."""
    try:
        claimed = Receipt.from_json(receipt)
    except LedgerError as exc:
        raise VerificationError(f"malformed receipt: {exc}") from exc
    tx_id = claimed.tx_id
    parsed = _transaction(transaction)
    if parsed.tx_id != tx_id:
        raise VerificationError(f"the receipt is for {tx_id}, the transaction is {parsed.tx_id}")
    try:
        block_header = BlockHeader.from_json(header)
    except LedgerError as exc:
        raise VerificationError(f"malformed header: {exc}") from exc
    claims = {
        "block_hash": block_header.hash,
        "height": block_header.height,
        "timestamp": block_header.timestamp,
    }
    for name, value in claims.items():
        if getattr(claimed, name) != value:
            raise VerificationError(
                f"the receipt says {name} = {getattr(claimed, name)!r}, the header gives {value!r}"
            )
    log_index = claimed.log_index
    if proof.get("leafIdx") != log_index:
        raise VerificationError(
            f"the proof is for log entry {proof.get('leafIdx')!r}, the receipt's is {log_index}"
        )
    if proof.get("treeSize") != block_header.log_size:
        raise VerificationError(
            f"the proof is for a log of {proof.get('treeSize')!r} entries; block "
            f"{block_header.height}'s log has {block_header.log_size}"
        )
    leaf, root, path = _proof_hashes(proof)
    if leaf != parsed.leaf_hash:
        raise VerificationError("the proof's leaf is not the transaction's leaf hash")
    if root.hex() != block_header.log_root:
        raise VerificationError(
            f"the proof's root is not the log root of block {block_header.height}"
        )
    inclusion(
        leaf_index=log_index, tree_size=block_header.log_size, leaf_hash=leaf, proof=path, root=root
    )


def checkpoint(*, note: str, name: str, public_key: bytes, origin: str) -> None:
    """Check a C2SP signed checkpoint note: a well-formed checkpoint of the chain
    ``origin`` (``healthledger/<genesis block hash>``), signed by the Ed25519
    ``public_key`` under the key name ``name``."""
    try:
        open_note(note, name=name, public_key=public_key, origin=origin)
    except CheckpointError as exc:
        raise VerificationError(str(exc)) from exc


def audit(
    *,
    path: Path | str,
    validator: Validator,
    progress: Progress | None = None,
    workers: int | None = None,
) -> None:
    """Audit the ledger store at ``path`` offline: every block re-derives from the one
    before it and replays through ``validator`` (the one every peer uses) to the same
    decisions, and every stored row is one the replay wrote (ledger.audit)."""
    try:
        audit_store(path, validator=validator, progress=progress, workers=workers)
    except LedgerError as exc:
        raise VerificationError(str(exc)) from exc


def credential(
    *,
    text: str | Sequence[str],
    trust: TrustStore,
    status: StatusSource | None = None,
    at: int,
    policy: Policy | None = None,
) -> Verdict:
    """Verify a health credential offline at Unix time ``at``: ``text`` is an ``HC1:``
    EU DCC, a SMART Health Card (``shc:/`` QR text, every chunk of a chunked one, a JWS
    or a ``.smart-health-card`` file) or an SD-JWT VC; ``trust`` the signer keys
    (``healthledger.crypto.credentials.trust.load_trust`` reads PEM certificates, a JWKS
    or a trust list); ``status`` the cached revocation lists, with their age. Returns the
    verdict of a valid credential (its warnings, claims and status age); raises
    :class:`VerificationError` carrying the verdict, whose reason codes say why not."""
    texts = [text] if isinstance(text, str) else list(text)
    verdict = verify_credential(texts, trust=trust, status=status, at=at, policy=policy)
    if not verdict.valid:
        reasons = "; ".join(f"{f.code.value}: {f.message}" for f in verdict.refusals)
        raise VerificationError(f"the credential is refused ({reasons})", verdict=verdict)
    return verdict


def _transaction(obj: Mapping[str, Any]) -> Transaction:
    try:
        return Transaction.from_json(obj)
    except (LedgerError, CryptoError) as exc:
        raise VerificationError(f"malformed transaction: {exc}") from exc


def _proof_hashes(proof: Mapping[str, Any]) -> tuple[bytes, bytes, list[bytes]]:
    """The leaf hash, root and audit path of a proof in its JSON form (base64)."""
    path = proof.get("proof")
    if not isinstance(path, list):
        raise VerificationError("malformed proof: proof must be a list of base64 hashes")
    try:
        return (
            decode_b64(proof.get("leafHash"), what="leafHash"),
            decode_b64(proof.get("root"), what="root"),
            [decode_b64(p, what=f"proof[{i}]") for i, p in enumerate(path)],
        )
    except CryptoError as exc:
        raise VerificationError(f"malformed proof: {exc}") from exc
