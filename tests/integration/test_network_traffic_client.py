"""The traffic client (healthledger.node.traffic): a read-only replica holding the
organisations' user identities whose writes the organisations' own peers endorse.

The user keystore and the client folder are checked on their own; the client itself
runs against three real consortium peers in this process (one organisation's keys
each, serving the real API over HTTP) ordering through a real three-server NATS
JetStream cluster (LocalConsortium of test_gateway)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from healthledger.apps import App
from healthledger.apps.epidemic import pseudonym
from healthledger.apps.epidemic.app import APP as EPIDEMIC_APP
from healthledger.apps.epidemic.checks import PATIENT_COLLECTION
from healthledger.apps.epidemic.contract import Epidemic
from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.simulate import person
from healthledger.apps.registry import installed_contracts
from healthledger.apps.supply.app import APP as SUPPLY_APP
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.transaction import ValidationCode
from healthledger.network.traffic import AppOutcome, live_rounds, missing_for
from healthledger.node.consortium_peer import GENESIS_FILE, found_consortium
from healthledger.node.embedded import KEYSTORE_FILE, EmbeddedNode
from healthledger.node.keystore import Keystore
from healthledger.node.peer_directory import PeerDirectory
from healthledger.node.seam import AppNode
from healthledger.node.traffic import TrafficClient, create_client_folder, user_keystore
from tests.integration.test_gateway import (
    CDC,
    COMMISSION,
    HOSPITAL,
    PLANS,
    REGIONS,
    WAIT_S,
    LocalConsortium,
)

pytestmark = pytest.mark.slow


def test_user_keystore_holds_every_user_identity_and_no_peer_key(tmp_path: Path) -> None:
    folders = found_consortium(tmp_path / "peers", plans=PLANS, contracts=installed_contracts())
    keystore = user_keystore(list(folders.values()))
    assert keystore.peers() == []
    held = set(keystore.ids())
    for folder in folders.values():
        own = Keystore.load(folder / KEYSTORE_FILE)
        users = {e.id for e in own.entries() if e.cert.role != "peer"}
        assert users <= held
        assert {i for i, _ in own.peers()}.isdisjoint(held)
    assert set(keystore.cas) == set(folders)
    assert set(keystore.vault_keys) == set(folders)


def test_client_folder_starts_from_the_consortiums_genesis(tmp_path: Path) -> None:
    folders = found_consortium(tmp_path / "peers", plans=PLANS, contracts=installed_contracts())
    client = tmp_path / "client"
    create_client_folder(
        client,
        genesis_file=tmp_path / "peers" / GENESIS_FILE,
        org_folders=list(folders.values()),
        contracts=installed_contracts(),
    )
    peer = EmbeddedNode(folders[CDC], contracts=installed_contracts())
    replica = EmbeddedNode(client, contracts=installed_contracts())
    try:
        assert replica.peer.store.height() == 1
        assert replica.peer.store.header(0).hash == peer.peer.store.header(0).hash
    finally:
        replica.stop()
        peer.stop()
    with pytest.raises(Exception, match="already holds a ledger"):
        create_client_folder(
            client,
            genesis_file=tmp_path / "peers" / GENESIS_FILE,
            org_folders=list(folders.values()),
            contracts=installed_contracts(),
        )


@pytest.fixture
def consortium(tmp_path: Path) -> Iterator[LocalConsortium]:
    network = LocalConsortium(tmp_path).start()
    try:
        yield network
    finally:
        network.stop()


@pytest.fixture
def client(consortium: LocalConsortium, tmp_path: Path) -> Iterator[TrafficClient]:
    folder = tmp_path / "client"
    create_client_folder(
        folder,
        genesis_file=consortium.root / "peers" / GENESIS_FILE,
        org_folders=list(consortium.folders.values()),
        contracts=installed_contracts(),
    )
    node = TrafficClient(
        folder,
        contracts=installed_contracts(),
        servers=consortium.cluster.urls,
        directory=PeerDirectory(dict(consortium.urls)),
    )
    node.start(retry=False)
    try:
        yield node
    finally:
        node.stop()


def test_client_writes_are_endorsed_by_the_organisations_peers(
    consortium: LocalConsortium, client: TrafficClient
) -> None:
    receipt, _ = client.invoke(
        f"{COMMISSION}/admin", "epidemic", "define_regions", {"regions": REGIONS}, timeout=WAIT_S
    )
    assert receipt.code is ValidationCode.VALID
    tx = client.peer.block(receipt.height).transactions[receipt.index]
    # The policy names the commission's and the CDC's peers: each endorsed as itself.
    assert {e.endorser for e in tx.endorsements} == {f"{COMMISSION}/peer0", f"{CDC}/peer0"}
    # The replica validated the block as the peers did: same block at the same height.
    client.gateway_peer.await_peers(list(consortium.nodes), receipt.height + 1)
    for node in consortium.nodes.values():
        assert node.peer.store.header(receipt.height).hash == receipt.block_hash
    # What the simulators read is the committed state.
    assert client.peer.store.get_state("epidemic", "region/440100") is not None


def test_private_data_lands_on_the_owning_organisations_peer_not_on_the_client(
    consortium: LocalConsortium, client: TrafficClient
) -> None:
    client.invoke(
        f"{COMMISSION}/admin", "epidemic", "define_regions", {"regions": REGIONS}, timeout=WAIT_S
    )
    for org, kind, region in ((CDC, "cdc", "440000"), (HOSPITAL, "hospital", "440100")):
        client.invoke(
            f"{COMMISSION}/admin",
            "epidemic",
            "register_org",
            {"org": org, "kind": kind, "region": region},
            timeout=WAIT_S,
        )
    receipt, _ = client.invoke(
        f"{CDC}/admin",
        "epidemic",
        "install_pseudonymisation_key",
        {},
        transient={"key": "11" * 32},
        timeout=WAIT_S,
    )
    assert receipt.code is ValidationCode.VALID
    # The key is settled in the vault of the peer that staged it when that peer commits.
    client.gateway_peer.await_peers([CDC], receipt.height + 1)
    collection = f"{CDC}/{pseudonym.KEY_COLLECTION}"
    assert consortium.nodes[CDC].peer.vaults.read(collection, pseudonym.KEY_NAME) is not None
    assert client.peer.vaults.read(collection, pseudonym.KEY_NAME) is None
    # A case report needs the CDC's peer (it holds the key) and the reporting
    # hospital's vault (the patient's data): it goes through the hospital peer's
    # gateway, which keeps the value the CDC's peer returns beside its endorsement.
    today = day_of_ms(client.clock())
    patient = person(1, "440100", random.Random(1))
    transient = client.keystore.with_salt({"patient": patient})
    signed = client.propose(
        f"{HOSPITAL}/dr-li",
        "epidemic",
        "report_case",
        {
            "disease": "J10.1",
            "classification": "probable",
            "onset_date": iso(today - 2),
            "diagnosis_date": iso(today - 1),
            "region": "440100",
        },
        transient=transient,
    )
    # Asked first: the CDC, which the policy names, then the caller's own organisation.
    assert client.gateway_peer.preferred_orgs(signed) == [CDC, HOSPITAL]
    tx = client.peer.endorse(signed, transient=transient)
    assert [e.endorser for e in tx.endorsements] == [f"{CDC}/peer0"]
    receipt = client.peer.wait(client.peer.submit(tx, precheck=False), tx.tx_id, WAIT_S)
    assert receipt.code is ValidationCode.VALID
    client.gateway_peer.await_peers([HOSPITAL, CDC], receipt.height + 1)
    patients = f"{HOSPITAL}/{PATIENT_COLLECTION}"
    kept = consortium.nodes[HOSPITAL].peer.vaults.read(patients, f"c-{tx.tx_id[:24]}")
    assert kept is not None and kept["id_number"] == patient["id_number"]
    assert consortium.nodes[CDC].peer.vaults.read(patients, f"c-{tx.tx_id[:24]}") is None
    for vault in client.peer.vaults.all():
        assert vault.pending_tx_ids() == []
        assert vault.read(patients, f"c-{tx.tx_id[:24]}") is None


def test_app_needs_name_what_a_small_network_lacks() -> None:
    three = [p.id for p in PLANS]
    assert missing_for(EPIDEMIC_APP, three) == []
    assert missing_for(SUPPLY_APP, three) == [
        "lingnan-bio",
        "pearl-logistics",
        "yuexiu-pharmacy",
        "gd-mpa",
    ]
    assert missing_for(SUPPLY_APP, [p.id for p in DEMO_ORGS]) == []
    assert missing_for(EPIDEMIC_APP, [COMMISSION, CDC, "lingnan-bio"]) == ["a hospital"]


def test_live_rounds_run_until_done_and_stop_an_app_that_cannot_be_endorsed(
    consortium: LocalConsortium, client: TrafficClient
) -> None:
    def regions(node: AppNode, _rng: random.Random) -> Mapping[str, int]:
        receipt, _ = node.invoke(
            f"{COMMISSION}/admin", "epidemic", "define_regions", {"regions": REGIONS}
        )
        return {"writes": int(receipt.code is ValidationCode.VALID)}

    def unendorsable(node: AppNode, rng: random.Random) -> Mapping[str, int]:
        # The commission's admin may not report cases: every peer's contract refuses.
        today = day_of_ms(node.clock())
        args = {
            "disease": "J10.1",
            "classification": "probable",
            "onset_date": iso(today - 2),
            "diagnosis_date": iso(today - 1),
            "region": "440100",
        }
        patient = {"patient": person(2, "440100", rng)}
        node.invoke(f"{COMMISSION}/admin", "epidemic", "report_case", args, transient=patient)
        return {"writes": 1}

    good = AppOutcome("regions", "ran")
    bad = AppOutcome("reports", "ran")
    apps = [
        (good, App(name="regions", title="", contracts=(Epidemic,), live_step=regions)),
        (bad, App(name="reports", title="", contracts=(Epidemic,), live_step=unendorsable)),
    ]
    said: list[str] = []
    done = live_rounds(client, apps, None, 3, random.Random(1), said.append)
    assert done == 3
    assert (good.status, good.live_rounds, good.counts) == ("ran", 3, {"live writes": 3})
    assert (bad.status, bad.live_rounds) == ("stopped", 0)
    assert bad.reason.startswith("live round 1: ")
    assert "gateway" not in bad.reason  # the contract's own refusal, as on one node
    # With every application stopped, rounds end at once, whatever the time asked.
    good.status = "stopped"
    assert live_rounds(client, apps, 3600.0, None, random.Random(1), said.append) == 0
