"""Proposals, read/write sets, endorsements and transactions (ARCHITECTURE.md sections 3-4).

Each record has one JSON form; everything hashed or signed is hashed or signed
over its canonical encoding. A transaction id is the hex SHA-256 of the canonical
signed proposal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from healthledger.crypto.canonical import (
    canonical_json,
    canonical_json_unchecked,
    check_canonical,
)
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.hashing import is_hex_hash, sha256, sha256_hex
from healthledger.crypto.keys import SigningKey, decode_b64, encode_b64
from healthledger.ledger.errors import InvalidTransaction
from healthledger.ledger.memo import cached_value
from healthledger.ledger.merkle import leaf_hash

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
"""Contract, function, organisation and namespace names."""
IDENTITY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}/[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
"""An identity id: ``org/name``."""
NONCE_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_KEY_LENGTH = 512

Version = tuple[int, int]
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


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InvalidTransaction(message)


def _field(obj: Mapping[str, Any], name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if name not in obj:
        raise InvalidTransaction(f"{where}: missing field {name!r}")
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidTransaction(f"{where}: field {name!r} has the wrong type")
    return value


def _exact_keys(obj: Any, allowed: set[str], where: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise InvalidTransaction(f"{where} must be a JSON object")
    extra = set(obj) - allowed
    _require(not extra, f"{where}: unknown field(s) {sorted(extra)}")
    return obj


def check_key(key: object, where: str = "key") -> str:
    """Return ``key`` if it is a valid state key, else raise InvalidTransaction."""
    _require(isinstance(key, str), f"{where} must be a string")
    assert isinstance(key, str)
    _require(0 < len(key) <= MAX_KEY_LENGTH, f"{where} must be 1 to {MAX_KEY_LENGTH} characters")
    _require(key.isprintable(), f"{where} holds unprintable characters")
    return key


@dataclass(frozen=True)
class Proposal:
    """What a client asks the ledger to do, before anyone has run it."""

    contract: str
    """Contract name."""
    function: str
    """Function of the contract."""
    args: Mapping[str, Any]
    """Named arguments, canonical JSON."""
    creator: str
    """Identity id (``org/name``) of the signer."""
    nonce: str
    """32 hex characters, fresh for every proposal."""
    timestamp: int
    """Client time of creation, Unix milliseconds."""
    transient_hash: str | None = None
    """Hex SHA-256 of the canonical transient map, if the call carries one: private
    inputs (personal data) go to the endorser beside the proposal, never on chain;
    the client includes a random salt in the map so this hash reveals nothing."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the proposal."""
        obj = {
            "contract": self.contract,
            "function": self.function,
            "args": dict(self.args),
            "creator": self.creator,
            "nonce": self.nonce,
            "timestamp": self.timestamp,
        }
        if self.transient_hash is not None:
            obj["transient_hash"] = self.transient_hash
        return obj

    def __post_init__(self) -> None:
        # Checked once here, so every later encoding of the proposal can skip the check.
        try:
            check_canonical(self.args)
        except CryptoError as exc:
            raise InvalidTransaction(f"proposal: args: {exc}") from exc

    @classmethod
    def from_json(cls, obj: Any) -> Proposal:
        """Parse and check a proposal's JSON form."""
        where = "proposal"
        obj = _exact_keys(
            obj,
            {"contract", "function", "args", "creator", "nonce", "timestamp", "transient_hash"},
            where,
        )
        contract = _field(obj, "contract", str, where)
        function = _field(obj, "function", str, where)
        args = _field(obj, "args", dict, where)
        creator = _field(obj, "creator", str, where)
        nonce = _field(obj, "nonce", str, where)
        timestamp = _field(obj, "timestamp", int, where)
        _require(bool(NAME_RE.match(contract)), f"{where}: bad contract name {contract!r}")
        _require(bool(NAME_RE.match(function)), f"{where}: bad function name {function!r}")
        _require(bool(IDENTITY_RE.match(creator)), f"{where}: bad creator id {creator!r}")
        _require(bool(NONCE_RE.match(nonce)), f"{where}: nonce must be 32 lowercase hex chars")
        _require(timestamp >= 0, f"{where}: timestamp must be non-negative")
        transient_hash = None
        if "transient_hash" in obj:
            transient_hash = _field(obj, "transient_hash", str, where)
            _require(is_hex_hash(transient_hash), f"{where}: transient_hash must be a hex SHA-256")
        return cls(contract, function, args, creator, nonce, timestamp, transient_hash)


@dataclass(frozen=True)
class SignedProposal:
    """A proposal with its creator's Ed25519 signature over the canonical proposal."""

    proposal: Proposal
    signature: bytes

    @classmethod
    def sign(cls, proposal: Proposal, key: SigningKey) -> SignedProposal:
        """Sign ``proposal`` with the creator's key."""
        return cls(proposal, key.sign(canonical_json(proposal.to_json())))

    def to_json(self) -> dict[str, Any]:
        """The JSON form: the proposal and a base64 signature."""
        return {"proposal": self.proposal.to_json(), "signature": encode_b64(self.signature)}

    @classmethod
    def from_json(cls, obj: Any) -> SignedProposal:
        """Parse a signed proposal's JSON form."""
        obj = _exact_keys(obj, {"proposal", "signature"}, "signed proposal")
        proposal = Proposal.from_json(obj.get("proposal"))
        return cls(proposal, _decode_signature(obj.get("signature"), "proposal signature"))

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


def _decode_signature(value: object, what: str) -> bytes:
    try:
        raw = decode_b64(value, what=what)
    except CryptoError as exc:
        raise InvalidTransaction(str(exc)) from exc
    _require(len(raw) == 64, f"{what} must be 64 bytes")
    return raw


@dataclass(frozen=True)
class KeyRead:
    """A key the contract read, with the version it saw (None: absent)."""

    ns: str
    key: str
    version: Version | None

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "ns": self.ns,
            "key": self.key,
            "version": None if self.version is None else list(self.version),
        }


@dataclass(frozen=True)
class KeyWrite:
    """A key the contract wrote (value) or deleted (value None, delete True)."""

    ns: str
    key: str
    value: Any
    delete: bool = False

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        if self.delete:
            return {"ns": self.ns, "key": self.key, "delete": True}
        return {"ns": self.ns, "key": self.key, "value": self.value}


@dataclass(frozen=True)
class PrivateWrite:
    """A private-data write: only salted hashes go on chain."""

    collection: str
    """Collection name, ``org/name``: the organisation whose vault holds the value."""
    key_hash: str
    """Hex SHA-256 of the key."""
    value_hash: str
    """Hex SHA-256 of salt plus canonical value (a hiding commitment)."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "collection": self.collection,
            "key_hash": self.key_hash,
            "value_hash": self.value_hash,
        }


@dataclass(frozen=True)
class ReadWriteSet:
    """What simulating a proposal read and would write."""

    reads: tuple[KeyRead, ...] = ()
    writes: tuple[KeyWrite, ...] = ()
    private: tuple[PrivateWrite, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "reads": [r.to_json() for r in self.reads],
            "writes": [w.to_json() for w in self.writes],
            "private": [p.to_json() for p in self.private],
        }

    @classmethod
    def from_json(cls, obj: Any) -> ReadWriteSet:
        """Parse a read/write set."""
        obj = _exact_keys(obj, {"reads", "writes", "private"}, "rwset")
        reads = []
        for item in _field(obj, "reads", list, "rwset"):
            item = _exact_keys(item, {"ns", "key", "version"}, "rwset read")
            version = item.get("version")
            if version is not None:
                _require(
                    isinstance(version, list)
                    and len(version) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in version),
                    "rwset read: version must be [height, index] or null",
                )
                version = (version[0], version[1])
            reads.append(
                KeyRead(
                    _field(item, "ns", str, "rwset read"),
                    check_key(item.get("key"), "rwset read key"),
                    version,
                )
            )
        writes = []
        for item in _field(obj, "writes", list, "rwset"):
            item = _exact_keys(item, {"ns", "key", "value", "delete"}, "rwset write")
            ns = _field(item, "ns", str, "rwset write")
            key = check_key(item.get("key"), "rwset write key")
            if item.get("delete") is True:
                _require("value" not in item, "rwset write: a delete carries no value")
                writes.append(KeyWrite(ns, key, None, True))
            else:
                _require("delete" not in item, "rwset write: delete must be true if present")
                _require("value" in item, "rwset write: missing value")
                writes.append(KeyWrite(ns, key, item["value"]))
        private = []
        for item in _field(obj, "private", list, "rwset"):
            item = _exact_keys(item, {"collection", "key_hash", "value_hash"}, "rwset private")
            private.append(
                PrivateWrite(
                    _field(item, "collection", str, "rwset private"),
                    _field(item, "key_hash", str, "rwset private"),
                    _field(item, "value_hash", str, "rwset private"),
                )
            )
        return cls(tuple(reads), tuple(writes), tuple(private))


@dataclass(frozen=True)
class ContractEvent:
    """An event a contract emitted; delivered only if its transaction is valid."""

    name: str
    payload: Any

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"name": self.name, "payload": self.payload}


@dataclass(frozen=True)
class ProposalResponse:
    """The outcome of simulating a proposal: read/write set, events and return value."""

    rwset: ReadWriteSet
    events: tuple[ContractEvent, ...] = ()
    result: Any = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "rwset": self.rwset.to_json(),
            "events": [e.to_json() for e in self.events],
            "result": self.result,
        }

    @classmethod
    def from_json(cls, obj: Any) -> ProposalResponse:
        """Parse a proposal response."""
        obj = _exact_keys(obj, {"rwset", "events", "result"}, "response")
        events = []
        for item in _field(obj, "events", list, "response"):
            item = _exact_keys(item, {"name", "payload"}, "event")
            events.append(ContractEvent(_field(item, "name", str, "event"), item.get("payload")))
        return cls(ReadWriteSet.from_json(obj.get("rwset")), tuple(events), obj.get("result"))

    @cached_value
    def canonical(self) -> bytes:
        """The canonical encoding of the response (checked once, then reused by the
        endorsement payload and the transaction encoding)."""
        return canonical_json(self.to_json())


def endorsement_payload(tx_id: str, response: ProposalResponse) -> bytes:
    """The bytes an endorser signs: the transaction id and the response it computed."""
    # Same bytes as canonical_json({"tx_id": ..., "response": ...}): keys in sorted order.
    return (
        b'{"response":' + response.canonical + b',"tx_id":' + canonical_json_unchecked(tx_id) + b"}"
    )


@dataclass(frozen=True)
class Endorsement:
    """An endorsing identity's signature over (tx id, response)."""

    endorser: str
    """Identity id of the endorser (``org/name``)."""
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {"endorser": self.endorser, "signature": encode_b64(self.signature)}

    @classmethod
    def from_json(cls, obj: Any) -> Endorsement:
        """Parse an endorsement."""
        obj = _exact_keys(obj, {"endorser", "signature"}, "endorsement")
        endorser = _field(obj, "endorser", str, "endorsement")
        _require(bool(IDENTITY_RE.match(endorser)), f"endorsement: bad endorser id {endorser!r}")
        return cls(endorser, _decode_signature(obj.get("signature"), "endorsement signature"))


@dataclass(frozen=True)
class Transaction:
    """A signed proposal, the response it produced, and the endorsements of that response."""

    signed_proposal: SignedProposal
    response: ProposalResponse
    endorsements: tuple[Endorsement, ...] = field(default=())

    @property
    def proposal(self) -> Proposal:
        """The proposal."""
        return self.signed_proposal.proposal

    @property
    def tx_id(self) -> str:
        """The transaction id."""
        return self.signed_proposal.tx_id

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "signed_proposal": self.signed_proposal.to_json(),
            "response": self.response.to_json(),
            "endorsements": [e.to_json() for e in self.endorsements],
        }

    @classmethod
    def from_json(cls, obj: Any) -> Transaction:
        """Parse and structurally check a transaction."""
        obj = _exact_keys(obj, {"signed_proposal", "response", "endorsements"}, "transaction")
        endorsements = _field(obj, "endorsements", list, "transaction")
        tx = cls(
            SignedProposal.from_json(obj.get("signed_proposal")),
            ProposalResponse.from_json(obj.get("response")),
            tuple(Endorsement.from_json(e) for e in endorsements),
        )
        try:
            tx.response.canonical  # noqa: B018 - checks the profile once and keeps the bytes
        except CryptoError as exc:
            raise InvalidTransaction(f"response: {exc}") from exc
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


def sign_endorsement(
    tx_id: str, response: ProposalResponse, *, endorser: str, key: SigningKey
) -> Endorsement:
    """Endorse ``response`` to ``tx_id`` as ``endorser``."""
    return Endorsement(endorser, key.sign(endorsement_payload(tx_id, response)))


def unique_endorsers(endorsements: Sequence[Endorsement]) -> list[Endorsement]:
    """Endorsements with duplicates of one endorser dropped (first kept)."""
    seen: set[str] = set()
    result = []
    for endorsement in endorsements:
        if endorsement.endorser not in seen:
            seen.add(endorsement.endorser)
            result.append(endorsement)
    return result
