"""Setting up the epidemic application on a node: regions, organisations and the
pseudonymisation key (the embedded demo derives the key on the node)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from healthledger.apps.epidemic.contract import CDC_ORG, COMMISSION_ORG
from healthledger.apps.epidemic.pseudonym import demo_key
from healthledger.apps.epidemic.regions import GUANGDONG, RegionTable, province_table
from healthledger.crypto.keys import decode_b64
from healthledger.node.consortium import DEMO_ORGS, OrgPlan
from healthledger.node.embedded import EmbeddedNode

KINDS = {"hospital": "hospital", "cdc": "cdc", "commission": "commission"}
"""Consortium organisation kinds that take part in case reporting."""
CONFIGURER = f"{COMMISSION_ORG}/admin"


def reporting_orgs(plans: Iterable[OrgPlan] = DEMO_ORGS) -> list[tuple[str, str, str]]:
    """(org, kind, region) of the organisations that report, review or oversee."""
    return [(p.id, KINDS[p.kind], p.region) for p in plans if p.kind in KINDS]


def configure(
    node: EmbeddedNode,
    regions: RegionTable,
    *,
    orgs: Sequence[tuple[str, str, str]] | None = None,
) -> None:
    """Write ``regions`` and the reporting organisations, and install the demo key."""
    node.invoke(
        CONFIGURER, "epidemic", "define_regions", {"regions": [r.to_json() for r in regions]}
    )
    for org, kind, region in reporting_orgs() if orgs is None else orgs:
        node.invoke(
            CONFIGURER, "epidemic", "register_org", {"org": org, "kind": kind, "region": region}
        )
    install_demo_key(node)


def prepare_network(node: EmbeddedNode, orgs: Sequence[str]) -> None:
    """Configure the application with the reporting organisations of a consortium
    network of ``orgs`` (unless its regions are already defined): the embedded demo's
    own set-up registers every demo organisation, and the simulator would then send
    reports to hospitals that a smaller network does not have."""
    if any(True for _ in node.peer.store.range_state("epidemic", "region/", "region0", 1)):
        return
    configure(
        node, province_table(GUANGDONG), orgs=reporting_orgs(p for p in DEMO_ORGS if p.id in orgs)
    )


def install_demo_key(node: EmbeddedNode) -> None:
    """Derive the pseudonymisation key from the CDC's vault secret held on this node and
    put it in the CDC's vault (it travels only in the transient map)."""
    secret = decode_b64(node.keystore.vault_keys[CDC_ORG]["secret"])
    node.invoke(
        f"{CDC_ORG}/admin",
        "epidemic",
        "install_pseudonymisation_key",
        {},
        transient={"key": demo_key(secret).hex()},
    )
