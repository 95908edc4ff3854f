"""Founding a consortium: each planned organisation with its own CA, identities per
role and vault key, and the genesis transaction that names them; and the keys of an
organisation admitted later. What organisations a consortium has is the caller's
plan (the demo's is in :mod:`healthledger.demo.organisations`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from healthledger.contracts.contract import Contract
from healthledger.contracts.genesis import OrganisationSpec, genesis_transaction
from healthledger.crypto.certs import (
    issue_ca_certificate,
    issue_identity_certificate,
    load_certificate,
)
from healthledger.crypto.envelope import VaultKey
from healthledger.crypto.keys import SigningKey, encode_b64
from healthledger.ledger.transaction import Transaction
from healthledger.node.keystore import CaEntry, KeyEntry, Keystore

YEAR_MS = 365 * 24 * 3600 * 1000


@dataclass(frozen=True)
class OrgPlan:
    """A demo organisation and the people and machines it registers."""

    id: str
    name: str
    kind: str
    identities: tuple[tuple[str, str], ...]
    """(name, role) pairs; every organisation also gets ``admin`` and ``peer0``."""
    region: str = "440000"
    """GB/T 2260 code of the organisation's region."""
    gs1_prefixes: tuple[str, ...] = ()
    """GS1 company prefixes it holds (makers and holders of places)."""


@dataclass(frozen=True)
class Consortium:
    """Everything made to found a consortium: keys, certificates and genesis."""

    keystore: Keystore
    organisations: tuple[OrganisationSpec, ...]
    genesis: Transaction


def create_consortium(
    *,
    plans: Sequence[OrgPlan],
    contracts: Sequence[type[Contract]],
    now_ms: int,
    random: Callable[[int], bytes] = os.urandom,
    founder: str | None = None,
) -> Consortium:
    """Make CAs, identities and vault keys for ``plans`` and the genesis transaction,
    signed by ``founder`` (by default the first organisation's admin)."""
    if not plans:
        raise ValueError("a consortium needs at least one organisation")
    founder = founder or f"{plans[0].id}/admin"
    not_before, not_after = now_ms - 24 * 3600 * 1000, now_ms + 5 * YEAR_MS
    keystore = Keystore({}, {}, random=random)
    organisations = []
    certs = []
    for plan in plans:
        ca_key = SigningKey.from_seed(random(32))
        ca_pem = issue_ca_certificate(
            org=plan.id, key=ca_key, not_before_ms=not_before, not_after_ms=not_after
        )
        organisations.append(
            OrganisationSpec(
                plan.id,
                plan.name,
                plan.kind,
                ca_pem,
                {"region": plan.region},
                gs1_prefixes=plan.gs1_prefixes,
            )
        )
        keystore.cas[plan.id] = CaEntry(plan.id, ca_pem, ca_key)
        members = (("admin", "admin"), ("peer0", "peer"), *plan.identities)
        for serial, (name, role) in enumerate(members, start=2):
            key = SigningKey.from_seed(random(32))
            pem = issue_identity_certificate(
                ca_pem=ca_pem,
                ca_key=ca_key,
                role=role,
                name=name,
                public_key=key.public_bytes(),
                not_before_ms=not_before,
                not_after_ms=not_after,
                serial=serial,
                attributes={"region": plan.region},
            )
            certs.append(pem)
            keystore.add(KeyEntry(f"{plan.id}/{name}", load_certificate(pem), key))
        vault_key = VaultKey.from_bytes(random(32))
        keystore.vault_keys[plan.id] = {
            "x25519": encode_b64(vault_key.private_bytes()),
            "secret": encode_b64(random(32)),
        }
    founder_entry = keystore.get(founder)
    if founder_entry is None:
        raise ValueError(f"founder {founder} is not among the identities")
    genesis = genesis_transaction(
        organisations=organisations,
        identity_certs=certs,
        contracts=contracts,
        founder=founder,
        founder_key=founder_entry.key,
        timestamp=now_ms,
        nonce=random(16).hex(),
    )
    return Consortium(keystore, tuple(organisations), genesis)


def issue_identity(
    keystore: Keystore,
    *,
    org: str,
    name: str,
    role: str,
    now_ms: int,
    attributes: Mapping[str, str] | None = None,
    random: Callable[[int], bytes] = os.urandom,
) -> KeyEntry:
    """A new identity ``org/name``: a fresh key and a certificate from the org's CA,
    whose key ``keystore`` must hold; the entry is added to ``keystore``. Registering
    it on the ledger (membership.register_identity) is up to the caller."""
    ca = keystore.cas.get(org)
    if ca is None:
        raise KeyError(f"the keystore holds no CA key of {org}")
    key = SigningKey.from_seed(random(32))
    pem = issue_identity_certificate(
        ca_pem=ca.cert_pem,
        ca_key=ca.key,
        role=role,
        name=name,
        public_key=key.public_bytes(),
        not_before_ms=now_ms - 24 * 3600 * 1000,
        not_after_ms=now_ms + 5 * YEAR_MS,
        # Random serials keep certificates of one CA distinct across demo runs.
        serial=int.from_bytes(random(8), "big") | 1 << 63,
        attributes=dict(attributes or {}),
    )
    entry = KeyEntry(f"{org}/{name}", load_certificate(pem), key)
    keystore.add(entry)
    return entry


def new_organisation(
    *,
    org: str,
    name: str,
    kind: str,
    now_ms: int,
    attributes: Mapping[str, str] | None = None,
    random: Callable[[int], bytes] = os.urandom,
) -> tuple[OrganisationSpec, Keystore]:
    """Keys of an organisation that is not a member yet: its CA, its first admin
    (``org/admin``) and peer (``org/peer0``), and its vault key, in a keystore of its
    own; the spec names it for a proposal to admit it (membership.propose_organisation)."""
    ca_key = SigningKey.from_seed(random(32))
    ca_pem = issue_ca_certificate(
        org=org,
        key=ca_key,
        not_before_ms=now_ms - 24 * 3600 * 1000,
        not_after_ms=now_ms + 5 * YEAR_MS,
    )
    keystore = Keystore({}, {}, cas={org: CaEntry(org, ca_pem, ca_key)}, random=random)
    for identity, role in (("admin", "admin"), ("peer0", "peer")):
        issue_identity(
            keystore,
            org=org,
            name=identity,
            role=role,
            now_ms=now_ms,
            attributes=attributes,
            random=random,
        )
    vault_key = VaultKey.from_bytes(random(32))
    keystore.vault_keys[org] = {
        "x25519": encode_b64(vault_key.private_bytes()),
        "secret": encode_b64(random(32)),
    }
    return OrganisationSpec(org, name, kind, ca_pem, dict(attributes or {})), keystore
