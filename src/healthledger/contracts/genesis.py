"""The genesis transaction: the consortium's organisations, first identities and
deployed contracts, which every peer takes as its root of trust."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from healthledger.contracts.contract import Contract
from healthledger.contracts.errors import Rejected
from healthledger.contracts.rules import (
    LIFECYCLE,
    MEMBERSHIP,
    definition_key,
    identity_key,
    org_key,
)
from healthledger.contracts.system.approval import majority_policy
from healthledger.contracts.system.lifecycle import CONFIG_KEY, definition_of
from healthledger.contracts.system.membership import identity_record, organisation_record
from healthledger.contracts.system.prefixes import checked_prefixes, first_clash
from healthledger.crypto.certs import load_certificate
from healthledger.crypto.keys import SigningKey
from healthledger.ledger.transaction import (
    KeyWrite,
    Proposal,
    ProposalResponse,
    ReadWriteSet,
    SignedProposal,
    Transaction,
)


@dataclass(frozen=True)
class OrganisationSpec:
    """A founding member."""

    id: str
    name: str
    kind: str
    """commission, cdc, hospital, manufacturer, distributor, pharmacy, insurer, charity or
    regulator."""
    ca_cert: str
    attributes: dict[str, str] = field(default_factory=dict)
    gs1_prefixes: tuple[str, ...] = ()
    """GS1 company prefixes it holds: it is the brand owner of the GTINs and the owner of
    the GLNs inside them."""


def genesis_transaction(
    *,
    organisations: Sequence[OrganisationSpec],
    identity_certs: Sequence[str],
    contracts: Sequence[type[Contract]],
    founder: str,
    founder_key: SigningKey,
    timestamp: int,
    nonce: str,
    lifecycle_policy: str | None = None,
) -> Transaction:
    """The genesis transaction, signed by ``founder`` (one of ``identity_certs``)."""
    writes: dict[tuple[str, str], Any] = {}
    records: list[dict[str, Any]] = []
    for org in organisations:
        load_certificate(org.ca_cert)
        record = organisation_record(
            id=org.id,
            name=org.name,
            kind=org.kind,
            ca_cert=org.ca_cert,
            attributes=org.attributes,
            joined_at=timestamp,
            gs1_prefixes=checked_prefixes(org.gs1_prefixes),
        )
        clash = first_clash(record["gs1_prefixes"], records, org=org.id)
        if clash is not None:
            raise Rejected(clash)
        records.append(record)
        writes[(MEMBERSHIP, org_key(org.id))] = record
    for pem in identity_certs:
        record = identity_record(pem, registered_at=timestamp)
        writes[(MEMBERSHIP, identity_key(record["id"]))] = record
    policy = lifecycle_policy or majority_policy([o.id for o in organisations])
    writes[(LIFECYCLE, CONFIG_KEY)] = {"policy": policy}
    for contract in contracts:
        writes[(LIFECYCLE, definition_key(contract.name))] = definition_of(contract)
    proposal = Proposal(
        contract="genesis",
        function="init",
        args={"organisations": [o.id for o in organisations]},
        creator=founder,
        nonce=nonce,
        timestamp=timestamp,
    )
    rwset = ReadWriteSet(
        writes=tuple(KeyWrite(ns, key, value) for (ns, key), value in sorted(writes.items()))
    )
    return Transaction(SignedProposal.sign(proposal, founder_key), ProposalResponse(rwset))
