"""Proposals, read/write sets, endorsements and transactions (ARCHITECTURE.md sections 3-4).

Each record has one JSON form; everything hashed or signed is hashed or signed
over its canonical encoding. A transaction id is the hex SHA-256 of the canonical
signed proposal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Literal

from msgspec import UNSET, UnsetType

from healthledger.crypto.canonical import (
    canonical_json,
    canonical_json_unchecked,
    check_canonical,
)
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.hashing import sha256, sha256_hex
from healthledger.crypto.keys import SigningKey, encode_b64
from healthledger.ledger.errors import InvalidTransaction
from healthledger.ledger.memo import cached_value
from healthledger.ledger.merkle import leaf_hash
from healthledger.ledger.wire import (
    IDENTITY_PATTERN,
    MAX_KEY_LENGTH,
    NAME_PATTERN,
    NONCE_PATTERN,
    Count,
    Hash,
    Height,
    IdentityId,
    InvalidField,
    Name,
    Nonce,
    Record,
    Signature,
    StateKey,
    Timestamp,
)

NAME_RE = re.compile(NAME_PATTERN)
"""Contract, function, organisation and namespace names."""
IDENTITY_RE = re.compile(IDENTITY_PATTERN)
"""An identity id: ``org/name``."""
NONCE_RE = re.compile(NONCE_PATTERN)

Version = tuple[Height, Count]
"""Where a key was last written: (block height, transaction index)."""


class ValidationCode(StrEnum):
    """Why a peer accepted or refused a transaction in a block."""

    VALID = "VALID"
    MALFORMED = "MALFORMED"
    DUPLICATE_TXID = "DUPLICATE_TXID"
    UNKNOWN_IDENTITY = "UNKNOWN_IDENTITY"
    IDENTITY_REVOKED = "IDENTITY_REVOKED"
    CERTIFICATE_EXPIRED = "CERTIFICATE_EXPIRED"
    BAD_SIGNATURE = "BAD_SIGNATURE"
    BAD_ENDORSEMENT = "BAD_ENDORSEMENT"
    UNKNOWN_CONTRACT = "UNKNOWN_CONTRACT"
    ENDORSEMENT_POLICY_FAILURE = "ENDORSEMENT_POLICY_FAILURE"
    ILLEGAL_WRITE = "ILLEGAL_WRITE"
    MVCC_READ_CONFLICT = "MVCC_READ_CONFLICT"


def _check_printable(key: str, where: str) -> None:
    if not key.isprintable():
        raise InvalidField(f"{where} holds unprintable characters")


def check_key(key: object, where: str = "key") -> str:
    """Return ``key`` if it is a valid state key, else raise InvalidTransaction."""
    if not isinstance(key, str):
        raise InvalidTransaction(f"{where} must be a string")
    if not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidTransaction(f"{where} must be 1 to {MAX_KEY_LENGTH} characters")
    _check_printable(key, where)
    return key


class Proposal(Record, frozen=True, omit_defaults=True):
    """What a client asks the ledger to do, before anyone has run it."""

    what = "proposal"

    contract: Name
    """Contract name."""
    function: Name
    """Function of the contract."""
    args: dict[str, Any]
    """Named arguments, canonical JSON."""
    creator: IdentityId
    """Identity id (``org/name``) of the signer."""
    nonce: Nonce
    """32 hex characters, fresh for every proposal."""
    timestamp: Timestamp
    """Client time of creation, Unix milliseconds."""
    transient_hash: Hash | None = None
    """Hex SHA-256 of the canonical transient map, if the call carries one: private
    inputs (personal data) go to the endorser beside the proposal, never on chain;
    the client includes a random salt in the map so this hash reveals nothing."""

    def __post_init__(self) -> None:
        # Checked once here, so every later encoding of the proposal can skip the check.
        try:
            check_canonical(self.args)
        except CryptoError as exc:
            raise InvalidField(f"proposal: args: {exc}") from exc


class SignedProposal(Record, frozen=True):
    """A proposal with its creator's Ed25519 signature over the canonical proposal."""

    what = "signed proposal"

    proposal: Proposal
    signature: Signature
    """The creator's signature over the canonical proposal."""

    @classmethod
    def sign(cls, proposal: Proposal, key: SigningKey) -> SignedProposal:
        """Sign ``proposal`` with the creator's key."""
        fields = proposal.to_json()
        # The args were checked when the proposal was made; the other fields here.
        check_canonical({name: value for name, value in fields.items() if name != "args"})
        data = canonical_json_unchecked(fields)
        signed = cls(proposal, Signature(key.sign(data)))
        signed.__dict__["signed_bytes"] = data  # what signed_bytes would encode again
        return signed

    @cached_value
    def signed_bytes(self) -> bytes:
        """The bytes the creator signed."""
        return canonical_json_unchecked(self.proposal.to_json())

    @cached_value
    def canonical(self) -> bytes:
        """The canonical encoding of the signed proposal."""
        # Assembled from the already-checked proposal bytes: a nested value encodes the
        # same as a standalone one, and base64 needs no JSON escaping.
        signature = encode_b64(self.signature).encode("ascii")
        return b'{"proposal":' + self.signed_bytes + b',"signature":"' + signature + b'"}'

    @cached_value
    def tx_id(self) -> str:
        """The transaction id: hex SHA-256 of the canonical signed proposal."""
        return sha256_hex(self.canonical)


def transient_digest(transient: Mapping[str, Any]) -> str:
    """The transient_hash of a transient map."""
    return sha256_hex(canonical_json(dict(transient)))


class KeyRead(Record, frozen=True):
    """A key the contract read, with the version it saw (None: absent)."""

    what = "rwset read"

    ns: str
    key: StateKey
    version: Version | None
    """[height, index] of the write the contract saw; null if the key was absent."""

    def __post_init__(self) -> None:
        _check_printable(self.key, "rwset read key")


class KeyWrite(Record, frozen=True, omit_defaults=True):
    """A key the contract wrote (``value``) or deleted (``delete``: true, no value)."""

    what = "rwset write"

    ns: str
    key: StateKey
    value: Any = UNSET
    """The new value (canonical JSON); absent for a delete."""
    delete: Literal[True] | UnsetType = UNSET
    """True for a delete; absent for a write."""

    def __post_init__(self) -> None:
        if self.delete is True and self.value is not UNSET:
            raise InvalidField("rwset write: a delete carries no value")
        if self.delete is not True and self.value is UNSET:
            raise InvalidField("rwset write: missing value")
        _check_printable(self.key, "rwset write key")

    @property
    def deletes(self) -> bool:
        """True if the write deletes the key."""
        return self.delete is True

    @property
    def new_value(self) -> Any:
        """The key's value after the write: None for a delete."""
        return None if self.delete is True else self.value


class PrivateWrite(Record, frozen=True):
    """A private-data write: only salted hashes go on chain."""

    what = "rwset private"

    collection: str
    """Collection name, ``org/name``: the organisation whose vault holds the value."""
    key_hash: Hash
    """Hex SHA-256 of the key."""
    value_hash: Hash
    """Hex SHA-256 of salt plus canonical value (a hiding commitment)."""


class ReadWriteSet(Record, frozen=True):
    """What simulating a proposal read and would write."""

    what = "rwset"

    reads: tuple[KeyRead, ...] = ()
    writes: tuple[KeyWrite, ...] = ()
    private: tuple[PrivateWrite, ...] = ()


class ContractEvent(Record, frozen=True):
    """An event a contract emitted; delivered only if its transaction is valid."""

    what = "event"

    name: str
    payload: Any = None


class ProposalResponse(Record, frozen=True):
    """The outcome of simulating a proposal: read/write set, events and return value."""

    what = "response"

    rwset: ReadWriteSet
    events: tuple[ContractEvent, ...] = ()
    result: Any = None
    """The function's return value (canonical JSON)."""

    @classmethod
    def from_json(cls, obj: Any) -> ProposalResponse:
        """Decode a response and check it is in the canonical profile."""
        response = super().from_json(obj)
        _check_response(response)
        return response

    @cached_value
    def canonical(self) -> bytes:
        """The canonical encoding of the response (checked once, then reused by the
        endorsement payload and the transaction encoding)."""
        return canonical_json(self.to_json())


def _check_response(response: ProposalResponse) -> None:
    try:
        response.canonical  # noqa: B018 - checks the profile once and keeps the bytes
    except CryptoError as exc:
        raise InvalidTransaction(f"response: {exc}") from exc


def endorsement_payload(tx_id: str, response: ProposalResponse) -> bytes:
    """The bytes an endorser signs: the transaction id and the response it computed."""
    # Same bytes as canonical_json({"tx_id": ..., "response": ...}): keys in sorted order.
    return (
        b'{"response":' + response.canonical + b',"tx_id":' + canonical_json_unchecked(tx_id) + b"}"
    )


class Endorsement(Record, frozen=True):
    """An endorsing identity's signature over (tx id, response)."""

    what = "endorsement"

    endorser: IdentityId
    """Identity id of the endorser (``org/name``)."""
    signature: Signature
    """The endorser's signature over :func:`endorsement_payload`."""


class Transaction(Record, frozen=True):
    """A signed proposal, the response it produced, and the endorsements of that response."""

    what = "transaction"

    signed_proposal: SignedProposal
    response: ProposalResponse
    endorsements: tuple[Endorsement, ...] = ()

    @property
    def proposal(self) -> Proposal:
        """The proposal."""
        return self.signed_proposal.proposal

    @property
    def tx_id(self) -> str:
        """The transaction id."""
        return self.signed_proposal.tx_id

    @classmethod
    def from_json(cls, obj: Any) -> Transaction:
        """Decode a transaction and check its response is in the canonical profile."""
        tx = super().from_json(obj)
        _check_response(tx.response)
        return tx

    @cached_value
    def canonical(self) -> bytes:
        """The canonical encoding of the whole transaction."""
        # Assembled from the parts' cached canonical bytes (keys in sorted order), so the
        # response, the largest part, is checked and encoded once per transaction.
        # Endorsements hold only checked ids and base64 text.
        endorsements = canonical_json_unchecked([e.to_json() for e in self.endorsements])
        return (
            b'{"endorsements":'
            + endorsements
            + b',"response":'
            + self.response.canonical
            + b',"signed_proposal":'
            + self.signed_proposal.canonical
            + b"}"
        )

    @cached_value
    def tx_hash(self) -> bytes:
        """SHA-256 of the canonical transaction: the leaf of the Merkle trees."""
        return sha256(self.canonical)

    @cached_value
    def leaf_hash(self) -> bytes:
        """RFC 9162 leaf hash of the transaction hash, as in tx_root and the global log."""
        return leaf_hash(self.tx_hash)

    @cached_value
    def endorsed_bytes(self) -> bytes:
        """What each endorser signed: :func:`endorsement_payload` of its id and response."""
        return endorsement_payload(self.tx_id, self.response)


def sign_endorsement(
    tx_id: str, response: ProposalResponse, *, endorser: str, key: SigningKey
) -> Endorsement:
    """Endorse ``response`` to ``tx_id`` as ``endorser``."""
    return Endorsement(endorser, Signature(key.sign(endorsement_payload(tx_id, response))))


def unique_endorsers(endorsements: Sequence[Endorsement]) -> list[Endorsement]:
    """Endorsements with duplicates of one endorser dropped (first kept)."""
    seen: set[str] = set()
    result = []
    for endorsement in endorsements:
        if endorsement.endorser not in seen:
            seen.add(endorsement.endorser)
            result.append(endorsement)
    return result
