"""Setting up the epidemic application on a node: regions, organisations and the
pseudonymisation key (the embedded demo derives the key on the node)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from healthledger.apps.epidemic.contract import CDC_ORG, COMMISSION_ORG
from healthledger.apps.epidemic.pseudonym import DEMO_KEY_PURPOSE
from healthledger.apps.epidemic.regions import GUANGDONG, RegionTable, province_table
from healthledger.node.seam import AppNode

KINDS = {"hospital": "hospital", "cdc": "cdc", "commission": "commission"}
"""Consortium organisation kinds that take part in case reporting."""
CONFIGURER = f"{COMMISSION_ORG}/admin"


def reporting_orgs(members: Iterable[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(org, kind, region) of the consortium members (their records on chain) that
    report, review or oversee."""
    return [
        (m["id"], KINDS[m["kind"]], str(m["attributes"]["region"]))
        for m in members
        if m["kind"] in KINDS and "region" in m.get("attributes", {})
    ]


def configure(
    node: AppNode,
    regions: RegionTable,
    *,
    orgs: Sequence[tuple[str, str, str]] | None = None,
) -> None:
    """Write ``regions`` and the reporting organisations, and install the demo key."""
    node.invoke(
        CONFIGURER, "epidemic", "define_regions", {"regions": [r.to_json() for r in regions]}
    )
    members = reporting_orgs(node.organisations()) if orgs is None else orgs
    for org, kind, region in members:
        node.invoke(
            CONFIGURER, "epidemic", "register_org", {"org": org, "kind": kind, "region": region}
        )
    install_demo_key(node)


def prepare_network(node: AppNode, orgs: Sequence[str]) -> None:
    """Configure the application with the reporting organisations of a consortium
    network of ``orgs`` (unless its regions are already defined): the embedded demo's
    own set-up registers every demo organisation, and the simulator would then send
    reports to hospitals that a smaller network does not have."""
    if any(True for _ in node.range("region/", limit=1)):
        return
    configure(
        node,
        province_table(GUANGDONG),
        orgs=reporting_orgs(m for m in node.organisations() if m["id"] in orgs),
    )


def install_demo_key(node: AppNode) -> None:
    """Derive the pseudonymisation key from the CDC's vault secret held on this node and
    put it in the CDC's vault (it travels only in the transient map)."""
    node.invoke(
        f"{CDC_ORG}/admin",
        "epidemic",
        "install_pseudonymisation_key",
        {},
        transient={"key": node.derived_secret(CDC_ORG, DEMO_KEY_PURPOSE).hex()},
    )
