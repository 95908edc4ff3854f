"""Credentials of a consortium member for tests that read the API's members' routes."""

from __future__ import annotations

from typing import Protocol

from healthledger.client.read_auth import SignedReads
from healthledger.node.keystore import Keystore

MEMBER = "gd-mpa/auditor-tang"
"""The demo identity tests read as (a regulator's auditor), when the keystore holds it."""


class HoldsKeys(Protocol):
    """A node whose keystore holds its identities' keys (embedded or consortium)."""

    @property
    def keystore(self) -> Keystore:
        """The keys."""


def keystore_reads(keystore: Keystore, identity: str | None = None) -> SignedReads:
    """Signed reads (an httpx ``auth``) as ``identity``, else as the auditor, else as
    the first organisation admin (else anyone) whose key ``keystore`` holds."""
    held = keystore.ids()
    if identity is None:
        admins = [i for i in held if i.endswith("/admin")]
        identity = MEMBER if MEMBER in held else (admins or held)[0]
    entry = keystore.get(identity)
    if entry is None:
        raise LookupError(f"the keystore holds no key for {identity}")
    return SignedReads.of(entry)


def member_reads(node: HoldsKeys, identity: str | None = None) -> SignedReads:
    """Signed reads as a member whose key ``node``'s keystore holds (see keystore_reads)."""
    return keystore_reads(node.keystore, identity)
