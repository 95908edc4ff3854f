"""The background workers a server runs are shown to operators: in the API and on the
console's consortium page, each with what it does and the identity it signs as."""

from __future__ import annotations

import re
import time
from pathlib import Path

from fastapi.testclient import TestClient

from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.apps.registry import INSTALLED_APPS, installed_contracts
from healthledger.node.seam import attach
from healthledger.node.workers import WorkerSupervisor
from healthledger.web.console import create_console
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.support.founding import found
from tests.support.members import member_reads
from tests.support.seam import epidemic_seam


def test_the_epidemic_workers_sign_as_a_cdc_epidemiologist_and_are_listed(
    tmp_path: Path,
) -> None:
    node = found(tmp_path / "n", contracts=installed_contracts()).start()
    try:
        configure(epidemic_seam(node), RegionTable.from_source(TEST_REGIONS))
        workers = [
            w for app in INSTALLED_APPS if app.workers for w in app.workers(attach(node, app))
        ]
        assert {w.name: w.acts_as for w in workers} == {
            "epidemic.early-warning": "gd-cdc/epi-wang",
            "epidemic.public-release": "gd-cdc/epi-wang",
        }
        supervisor = WorkerSupervisor(workers)
        supervisor.start()
        try:
            # The release worker records the day's statistics without anyone asking.
            deadline = time.monotonic() + 60
            while not any(node.peer.store.range_state("epidemic", "release/", "release0", 1)):
                assert time.monotonic() < deadline, "no release recorded by the worker"
                time.sleep(0.1)
            with TestClient(create_console(node, workers=supervisor)) as client:
                client.auth = member_reads(node)
                listed = client.get("/api/v1/workers").json()
                assert [w["name"] for w in listed] == [w.name for w in workers]
                assert all(w["acts_as"] == "gd-cdc/epi-wang" and w["running"] for w in listed)
                log_in(client, "gd-mpa/auditor-tang")
                page = client.get("/consortium").text
                assert 'data-worker="epidemic.public-release"' in page
                assert "Records the day&#39;s differentially private" in page
        finally:
            supervisor.stop()
    finally:
        node.stop()


def log_in(client: TestClient, identity: str) -> None:
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    client.post("/login", data={"identity": identity, "csrf": token.group(1)})
