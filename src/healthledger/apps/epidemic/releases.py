"""Public releases kept on chain: each day's differentially private counts are
recorded by a CDC (``epidemic.record_release``) the first time they are asked for on a
node that holds a CDC's key, and served from the chain after that, across restarts and
peers; a node without such a key serves the latest release on chain (see disclosure.py)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass

from healthledger.apps.epidemic.dashboard import regions_on_chain, state_prefix
from healthledger.apps.epidemic.disclosure import MECHANISM, Release
from healthledger.apps.epidemic.warning import city_of
from healthledger.contracts.errors import Rejected
from healthledger.node.seam import AppNode, TransactionRefused

REVIEW_ROLE = "epidemiologist"


def release_inputs(node: AppNode) -> tuple[dict[str, str], set[str]]:
    """Region names by code, and the cities a release counts in (from the region table
    on chain)."""
    regions = regions_on_chain(node)
    names = {code: str(r["name"]) for code, r in regions.items()}
    cities = {city_of(code, regions) for code, r in regions.items() if r["level"] != "province"}
    return names, cities


def cdc_staff(node: AppNode, role: str = REVIEW_ROLE) -> list[str]:
    """Identities held on this node (demo custody) of ``role`` in an organisation
    registered on chain as a CDC, province-level CDCs first."""
    orgs = state_prefix(node, "org/")
    cdcs = {
        key.split("/", 1)[1]: str(record["region"])
        for key, record in orgs.items()
        if record["kind"] == "cdc"
    }
    staff = [
        (len(cdcs[identity.split("/", 1)[0]].rstrip("0")), identity)
        for identity in node.identities(role=role)
        if identity.split("/", 1)[0] in cdcs
    ]
    return [identity for _, identity in sorted(staff)]


@dataclass(frozen=True)
class Spent:
    """The privacy budget spent by the releases on chain."""

    releases: int
    epsilon: float


class ChainReleases:
    """Releases as recorded on chain, recorded by ``publisher`` (a CDC epidemiologist
    whose key this node holds); without one, releases are served but not recorded."""

    def __init__(self, node: AppNode, publisher: str | None) -> None:
        self._node = node
        self._publisher = publisher

    @property
    def publishes(self) -> bool:
        """True if this node holds a CDC epidemiologist's key to record releases with."""
        return self._publisher is not None

    def latest(self, day: int, names: Mapping[str, str]) -> Release | None:
        """The most recent release recorded on chain on or before ``day``."""
        days = [int(key.split("/", 1)[1]) for key in state_prefix(self._node, "release/")]
        earlier = [d for d in days if d <= day]
        return self.load(max(earlier), names) if earlier else None

    def load(self, day: int, names: Mapping[str, str]) -> Release | None:
        """The release of ``day`` recorded on chain, with region names."""
        record = self._node.get(f"release/{day}")
        if record is None:
            return None
        rows = tuple(
            {
                "region": row["region"],
                "name": names.get(row["region"], row["region"]),
                "disease": row["disease"],
                "count": row["count"],
            }
            for row in record["rows"]
        )
        return Release(
            day=day,
            epsilon=record["epsilon_milli"] / 1000,
            suppress_below=record["suppress_below"],
            rows=rows,
            recorded_by=str(record["by"]).split("/", 1)[0],
        )

    def save(self, release: Release) -> Release:
        """Record ``release``; if the day's release is on chain already, that one."""
        if self._publisher is None:
            return release
        names = {row["region"]: str(row["name"]) for row in release.rows}
        args = {
            "day": release.day,
            "epsilon_milli": round(release.epsilon * 1000),
            "suppress_below": release.suppress_below,
            "mechanism": MECHANISM,
            "rows": [
                {"region": r["region"], "disease": r["disease"], "count": r["count"]}
                for r in release.rows
            ],
        }
        # Another peer or thread recorded the day's release first (refused at endorsement,
        # or committed invalid on a read conflict): serve that one.
        with suppress(Rejected, TransactionRefused):
            self._node.invoke(self._publisher, "epidemic", "record_release", args)
        recorded = self.load(release.day, names)
        return release if recorded is None else recorded

    def spent(self) -> Spent:
        """How many releases are on chain and the ε they spent in total."""
        releases = state_prefix(self._node, "release/").values()
        total_milli = sum(int(r["epsilon_milli"]) for r in releases)
        return Spent(releases=len(releases), epsilon=total_milli / 1000)
