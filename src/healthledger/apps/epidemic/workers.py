"""The epidemic application's background workers, run by the node (never by a page).

Both sign as the first CDC epidemiologist whose key this node holds, so a node that
holds none (a hospital's peer, say) runs neither:

* ``epidemic.early-warning`` scans new reports as blocks commit and records each new
  alert on chain (``epidemic.raise_alert``);
* ``epidemic.public-release`` records the day's differentially private public
  statistics on chain once a day (``epidemic.record_release``), so the public pages
  only ever read what is on chain: no GET writes.
"""

from __future__ import annotations

import logging
import threading

from healthledger.apps.epidemic.dashboard import Dashboard
from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.apps.epidemic.disclosure import PublicStatistics, Release, all_cells
from healthledger.apps.epidemic.releases import ChainReleases, cdc_staff, release_inputs
from healthledger.apps.epidemic.warning import LiveWarning
from healthledger.node.seam import AppNode, Worker

RELEASE_CHECK_S = 60.0
"""How often the release worker looks whether the day's release is on chain yet."""
LOG = logging.getLogger(__name__)


def shared_dashboard(node: AppNode) -> Dashboard:
    """The application's one dashboard (and read model) on this node."""
    return node.shared("dashboard", lambda: Dashboard(node))


def publish_release(node: AppNode, publisher: str, statistics: PublicStatistics) -> Release | None:
    """Record today's release on chain if it is not there yet (drawing its noise once);
    the release on chain for today."""
    names, cities = release_inputs(node)
    dashboard = shared_dashboard(node)
    return statistics.release(
        day_of_ms(node.clock()), lambda: all_cells(dashboard.city_counts(), cities), names
    )


def workers(node: AppNode) -> list[Worker]:
    """The workers this node runs for the application (none without a CDC's key)."""
    staff = cdc_staff(node)
    if not staff:
        return []
    publisher = staff[0]
    warning = LiveWarning(node, publisher)
    statistics = PublicStatistics(ChainReleases(node, publisher))

    def publish(stop: threading.Event) -> None:
        while not stop.is_set():
            publish_release(node, publisher, statistics)
            stop.wait(RELEASE_CHECK_S)

    return [
        Worker(
            "epidemic.early-warning",
            "Scans new case reports as blocks commit and records each new EARS alert on chain.",
            warning.run,
            acts_as=publisher,
        ),
        Worker(
            "epidemic.public-release",
            "Records the day's differentially private public statistics on chain, once a day.",
            publish,
            acts_as=publisher,
        ),
    ]
