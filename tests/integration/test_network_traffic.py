"""``healthledger network traffic``: the demo's traffic over a consortium that
``network up`` started (three real NATS servers, one real peer process per
organisation), after which every peer holds the same head.

With three organisations the supply simulator is skipped (its maker, distributor,
pharmacy and regulator are not in the network). The epidemic simulator configures
the application (regions, organisations, the CDC's pseudonymisation key) and reports
its outbreak: each report goes through the hospital peer's gateway, the CDC's peer
(which holds the key) endorses it and returns the patient's data beside its
endorsement, and the hospital's gateway keeps that data in the hospital's vault. The
one transaction that commits invalid is the platform traffic's deliberate one: a
nurse's transaction ordered after her revocation (IDENTITY_REVOKED)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import healthledger

pytestmark = pytest.mark.slow


def private_rows(vault: Path, collection: str | None = None) -> int:
    """Rows of private data in a vault file (of ``collection`` only, if given)."""
    with sqlite3.connect(vault) as db:
        if collection is None:
            return int(db.execute("SELECT count(*) FROM private").fetchone()[0])
        query = (
            "SELECT count(*) FROM private AS p WHERE collection=? AND NOT EXISTS "
            "(SELECT 1 FROM pending AS m WHERE (m.tx_id, m.collection, m.key) = "
            "(p.tx_id, p.collection, p.key))"
        )
        return int(db.execute(query, (collection,)).fetchone()[0])


def test_traffic_brings_three_organisations_to_a_common_head(network_dir: Path) -> None:
    up = healthledger("network", "up", "--orgs", "3", "--data", str(network_dir))
    assert up.returncode == 0, up.stderr
    run = healthledger(
        "network", "traffic", "--data", str(network_dir), "--seed", "7", "--rounds", "1", "--json"
    )
    assert run.returncode == 0, run.stderr
    report: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])

    codes = report["codes"]
    assert codes.pop("VALID") > 0
    assert codes == {"IDENTITY_REVOKED": 1}, report  # the demo's deliberate revocation
    assert report["platform"]["status"] == "ran"
    apps = {a["name"]: a for a in report["apps"]}
    assert apps["supply"]["status"] == "skipped"
    assert "lingnan-bio" in apps["supply"]["reason"]
    epidemic = apps["epidemic"]
    assert epidemic["status"] == "ran", epidemic
    assert epidemic["counts"]["cases"] > 0, epidemic

    status = healthledger("network", "status", "--data", str(network_dir), "--json")
    assert status.returncode == 0, status.stderr
    peers = json.loads(status.stdout)["peers"]
    assert len(peers) == 3
    assert {(p["height"], p["block_hash"]) for p in peers} == {
        (report["height"], report["head_hash"])
    }
    assert report["common_head"] is True
    assert report["holds_client_head"] is True

    # The CDC's pseudonymisation key is in the CDC peer's vault, every reported
    # patient in the hospital peer's (settled: the reports committed VALID, see the
    # codes above); the client holds no private data (its vaults, if any, are empty).
    vaults = network_dir / "peers"
    assert private_rows(vaults / "gd-cdc" / "vaults" / "gd-cdc.sqlite") >= 1
    hospital_vault = vaults / "gz-first-hospital" / "vaults" / "gz-first-hospital.sqlite"
    assert (
        private_rows(hospital_vault, "gz-first-hospital/epidemic-patients")
        >= (epidemic["counts"]["cases"])
    )
    for org in ("gd-cdc", "gd-commission"):
        for vault in (vaults / org / "vaults").glob("*.sqlite"):
            assert private_rows(vault, "gz-first-hospital/epidemic-patients") == 0
    for vault in (network_dir / "traffic" / "vaults").glob("*.sqlite"):
        assert private_rows(vault) == 0

    # A second run follows on from where the first one ended (the platform's traffic
    # only: supply is skipped in this network, and the other simulators ran above).
    again = healthledger(
        "network", "traffic", "--data", str(network_dir), "--app", "supply", "--json"
    )
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout.strip().splitlines()[-1])
    assert second["height"] > report["height"]
    assert set(second["codes"]) <= {"VALID", "IDENTITY_REVOKED"}, second
    assert second["common_head"] is True

    down = healthledger("network", "down", "--data", str(network_dir))
    assert down.returncode == 0, down.stderr
    stopped = healthledger("network", "traffic", "--data", str(network_dir))
    assert stopped.returncode == 1
    assert "is not running" in stopped.stderr
    assert "Traceback" not in stopped.stderr


def test_supply_traffic_runs_over_ten_organisations(network_dir: Path) -> None:
    up = healthledger("network", "up", "--orgs", "10", "--data", str(network_dir))
    assert up.returncode == 0, up.stderr
    run = healthledger(
        "network",
        "traffic",
        "--data",
        str(network_dir),
        "--seed",
        "3",
        "--rounds",
        "2",
        "--app",
        "supply",
        "--json",
    )
    assert run.returncode == 0, run.stderr
    report: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    supply = {a["name"]: a for a in report["apps"]}["supply"]
    # Maker, carrier, pharmacy, hospital and regulator each acted through their peers.
    assert supply["status"] == "ran", supply
    assert supply["counts"]["events"] > 0
    assert supply["counts"]["recalls"] >= 1
    assert supply["live_rounds"] == 2
    codes = report["codes"]
    assert codes.pop("VALID") > 0
    assert codes == {"IDENTITY_REVOKED": 1}, report
    status = healthledger("network", "status", "--data", str(network_dir), "--json")
    assert status.returncode == 0, status.stderr
    peers = json.loads(status.stdout)["peers"]
    assert len(peers) == 10
    assert {(p["height"], p["block_hash"]) for p in peers} == {
        (report["height"], report["head_hash"])
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "{missing}"], "does not exist"),
        (["--data", "{empty}"], "holds no network"),
        (["--data", "{file}"], "is not a folder"),
        (["--data", "{empty}", "--rounds", "-1"], "--rounds must be 0 or more"),
        (["--data", "{empty}", "--seconds", "-2"], "--seconds must be 0 or more"),
        (["--data", "{empty}", "--seconds", "soon"], "Invalid value for '--seconds'"),
        (["--data", "{empty}", "--rounds", "x"], "Invalid value for '--rounds'"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("not a network")
    places = {k: str(tmp_path / k) for k in ("missing", "empty", "file")}
    result = healthledger("network", "traffic", *(a.format(**places) for a in args))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if "Invalid value" not in message:  # click's own usage errors have their frame
        assert len(result.stderr.strip().splitlines()) == 1


def test_an_unknown_application_is_refused_in_one_line(tmp_path: Path) -> None:
    run = healthledger("network", "traffic", "--data", str(tmp_path), "--app", "nope")
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: no application named nope (there are supply, epidemic, credentials)"
    ]
