"""Admitting a brand-new organisation to a running consortium and bringing its peer
in: ``healthledger network new-org`` makes its keys, ``healthledger network admit``
has the members' admins (each with its own organisation's folder key, through its
own peer's API) propose and approve it, and ``healthledger network join`` installs a
verified snapshot in its folder; its peer then follows the stream to the same head
as everyone, and what its admin signs commits on every peer. An admission short of a
majority admits nobody.

Real consortium peers (one organisation's keys each) over a real three-server NATS
JetStream cluster, serving the real API over HTTP; the commands run as real
processes. ``network.json`` describes these running peers and servers, as ``network
up`` would have written it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from healthledger.crypto.canonical import canonical_json
from healthledger.network.layout import NatsProcess, Network, PeerProcess
from healthledger.node.embedded import KEYSTORE_FILE, NODE_FILE
from healthledger.node.keystore import Keystore
from tests.integration.test_gateway import COMMISSION, HOSPITAL, WAIT_S, LocalConsortium
from tests.integration.test_snapshot import Traffic, healthledger
from tests.support.gs1 import gln_in
from tests.support.members import keystore_reads

NEW = "zhuhai-clinic"
SHORT = "jiangmen-clinic"
"""Proposed, but approved by one organisation of three only."""
CHECKPOINT_EVERY = 2


CLINIC_PREFIXES = {NEW: "6952001", SHORT: "6952002", "shanwei-clinic": "6952003"}
"""Each new clinic's own GS1 company prefix (members' prefixes never overlap)."""


def clinic_prefix(org: str) -> str:
    """The GS1 company prefix of new clinic ``org``."""
    return CLINIC_PREFIXES[org]


def describe(network: LocalConsortium) -> None:
    """Write the ``network.json`` of the running consortium under its root."""
    cluster = network.cluster
    Network(
        orgs=sorted(network.folders),
        nats=[
            NatsProcess(cluster.name(i), p.client, p.cluster, p.monitor)
            for i, p in enumerate(cluster.ports)
        ],
        peers=[
            PeerProcess(org, int(urlsplit(network.urls[org]).port or 0))
            for org in sorted(network.folders)
        ],
        checkpoint_every=CHECKPOINT_EVERY,
    ).save(network.root)


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """Three organisations signing a checkpoint every two blocks, with some history."""
    consortium = LocalConsortium(
        tmp_path_factory.mktemp("admission"), checkpoint_every=CHECKPOINT_EVERY
    )
    try:
        consortium.start()
        describe(consortium)
        Traffic(consortium).run(4)
        consortium.wait_common_head(4)
        yield consortium
    finally:
        consortium.stop()


def new_org(network: LocalConsortium, org: str) -> Path:
    """Make ``org``'s keys with the real command; its folder."""
    made = healthledger(
        "network",
        "new-org",
        "--data",
        str(network.root),
        "--org",
        org,
        "--name",
        f"{org} community clinic",
        "--kind",
        "hospital",
        "--role",
        "doctor",
        "--attribute",
        "region=440400",
        "--gs1-prefix",
        clinic_prefix(org),
    )
    assert made.returncode == 0, made.stderr
    folder = network.root / "peers" / org
    assert sorted(p.name for p in folder.iterdir()) == ["admission.json", KEYSTORE_FILE]
    return folder


def signed_invoke(url: str, keys: Keystore, identity: str, number: int) -> httpx.Response:
    """Register a location through ``url``, signed here by ``identity``'s own key."""
    signed = keys.propose(
        identity,
        "supply",
        "register_location",
        {
            "gln": gln_in(clinic_prefix(identity.split("/")[0]), number),
            "name": f"clinic site {number}",
        },
        timestamp=int(time.time() * 1000),
    )
    return httpx.post(
        f"{url}/api/v1/invoke",
        content=canonical_json(signed.to_json()),
        headers={"Content-Type": "application/json"},
        timeout=WAIT_S,
    )


def is_member(network: LocalConsortium, org: str) -> dict[str, bool]:
    """Whether each running peer holds ``org`` as a member."""
    return {
        name: node.peer.store.get_state("membership", f"org/{org}") is not None
        for name, node in network.nodes.items()
    }


def test_an_admission_short_of_a_majority_admits_nobody(
    network: LocalConsortium, tmp_path: Path
) -> None:
    folder = new_org(network, SHORT)
    admitted = healthledger(
        "network", "admit", "--data", str(network.root), "--org", SHORT, "--by", COMMISSION
    )
    assert admitted.returncode == 0, admitted.stderr
    assert f"{SHORT} is pending: approved by {COMMISSION} (2 needed)" in admitted.stdout
    network.wait_common_head(network.nodes[COMMISSION].peer.store.height())
    assert set(is_member(network, SHORT).values()) == {False}
    # Nobody of it can sign, and its peer cannot join.
    refused = signed_invoke(
        network.urls[HOSPITAL], Keystore.load(folder / KEYSTORE_FILE), f"{SHORT}/admin", 1
    )
    assert refused.status_code == 403, refused.text
    assert "not a registered identity" in refused.json()["detail"]
    joined = healthledger(
        "network", "join", "--org", SHORT, "--from", network.urls[COMMISSION], "--data", str(folder)
    )
    assert joined.returncode == 1
    assert joined.stderr.strip().splitlines() == [
        f"error: {SHORT} is not a member of the consortium: have it admitted first "
        "(membership.propose_organisation; on this machine 'healthledger network admit')"
    ]
    assert not (folder / NODE_FILE).exists()
    assert SHORT not in Network.load(network.root).orgs  # a failed join records nothing


def test_a_new_organisation_is_admitted_by_a_majority_and_its_peer_joins(
    network: LocalConsortium,
) -> None:
    folder = new_org(network, NEW)
    admitted = healthledger("network", "admit", "--data", str(network.root), "--org", NEW)
    assert admitted.returncode == 0, admitted.stderr
    assert admitted.stdout.count(f"proposed admitting {NEW}") == 1
    assert f"admitted {NEW}" in admitted.stdout
    assert f"'healthledger network join --org {NEW} --from http://127.0.0.1:" in admitted.stdout
    # Two of three made the majority: the third was not asked.
    assert admitted.stdout.count("approved admitting") == 1
    network.wait_common_head(network.nodes[COMMISSION].peer.store.height())
    assert set(is_member(network, NEW).values()) == {True}
    again = healthledger("network", "admit", "--data", str(network.root), "--org", NEW)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [f"error: {NEW} is already admitted"]

    done = threading.Event()
    thread = Traffic(network).meanwhile(done)  # checkpoints after the admission need blocks
    try:
        joined = healthledger(
            "network",
            "join",
            "--org",
            NEW,
            "--from",
            network.urls[COMMISSION],
            "--data",
            str(folder),
            "--genesis",
            str(network.root / "peers" / "genesis.json"),
            "--jetstream",
            ",".join(network.cluster.urls),
            "--no-start",  # this test runs it in process
        )
    finally:
        done.set()
        thread.join(WAIT_S)
    assert joined.returncode == 0, joined.stderr
    assert "joined:" in joined.stdout and "not checked" not in joined.stdout
    node_file = json.loads((folder / NODE_FILE).read_text())
    assert node_file["org"] == NEW and NEW in node_file["organisations"]
    # Joined into the network's folder: recorded, so status lists it and down stops it.
    recorded = Network.load(network.root)
    [peer] = [p for p in recorded.peers if p.org == NEW]
    assert peer.joined and peer.pid is None and NEW in recorded.orgs
    assert f"healthledger node --data {folder} --port {peer.port}" in joined.stdout

    network.start_peer(NEW, folder)
    try:
        Traffic(network).run(3)
        network.wait_common_head(network.nodes[COMMISSION].peer.store.height())
        # Its admin signs with its own key; the transaction commits on every peer.
        answer = signed_invoke(
            network.urls[NEW], Keystore.load(folder / KEYSTORE_FILE), f"{NEW}/admin", 2
        )
        assert answer.status_code == 200, answer.text
        receipt = answer.json()["receipt"]
        assert receipt["valid"], receipt
        network.wait_common_head(receipt["height"] + 1)
        for org, url in network.urls.items():
            if org not in network.nodes:
                continue
            seen = httpx.get(
                f"{url}/api/v1/transactions/{receipt['tx_id']}",
                timeout=WAIT_S,
                auth=keystore_reads(Keystore.load(folder / KEYSTORE_FILE), f"{NEW}/admin"),
            )
            assert seen.status_code == 200, (org, seen.text)
            assert seen.json()["code"] == "VALID"
            assert seen.json()["location"]["block_hash"] == receipt["block_hash"]
        # Its peer's checkpoints now count with the others'.
        deadline = time.monotonic() + WAIT_S
        while NEW not in network.nodes[COMMISSION].guard.orgs:
            assert time.monotonic() < deadline, network.nodes[COMMISSION].guard.to_json()
            Traffic(network).run(1)
    finally:
        network.stop_peer(NEW)


def _spoiled_request(network: LocalConsortium, tmp_path: Path) -> Path:
    """An admission request whose admin certificate is another organisation's."""
    made = healthledger(
        "network",
        "new-org",
        "--data",
        str(network.root),
        "--org",
        "foshan-clinic",
        "--name",
        "Foshan clinic",
        "--kind",
        "hospital",
        "--out",
        str(tmp_path / "foshan"),
    )
    assert made.returncode == 0, made.stderr
    request = json.loads((tmp_path / "foshan" / "admission.json").read_text())
    hospital = Keystore.load(network.folders[HOSPITAL] / KEYSTORE_FILE).get(f"{HOSPITAL}/admin")
    assert hospital is not None
    request["admin_cert"] = hospital.cert.pem
    spoiled = tmp_path / "spoiled.json"
    spoiled.write_text(json.dumps(request))
    return spoiled


BAD_NEW_ORG = {
    "bad id": (["--org", "Bad Id"], "bad organisation id 'Bad Id'"),
    "member id": (["--org", COMMISSION], f"{COMMISSION} is already an organisation"),
    "bad kind": (["--kind", "casino"], "kind 'casino' is not one of"),
    "bad role": (["--role", "ca"], "bad role 'ca'"),
    "bad attribute": (["--attribute", "region"], "--attribute 'region' is not KEY=VALUE"),
    "empty name": (["--name", " "], "--name must not be empty"),
    "used folder": (["--out", "{root}/peers/gd-cdc"], "exists and is not an empty folder"),
    "no network": (["--data", "{root}/nowhere"], "nowhere does not exist"),
}


@pytest.mark.parametrize("case", sorted(BAD_NEW_ORG))
def test_bad_new_org_input_is_refused_in_one_line(network: LocalConsortium, case: str) -> None:
    changes, reason = BAD_NEW_ORG[case]
    args = {"--data": str(network.root), "--org": "shantou-clinic", "--name": "Shantou"}
    args |= {"--kind": "hospital"}
    extra: list[str] = []
    for flag, value in zip(changes[::2], changes[1::2], strict=True):
        value = value.replace("{root}", str(network.root))
        if flag in args:
            args[flag] = value
        else:
            extra += [flag, value]
    made = healthledger("network", "new-org", *[x for kv in args.items() for x in kv], *extra)
    assert made.returncode == 2
    lines = made.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and reason in lines[0], made.stderr
    assert not (network.root / "peers" / "shantou-clinic").exists()


def test_bad_admit_input_is_refused_in_one_line(network: LocalConsortium, tmp_path: Path) -> None:
    root = str(network.root)
    made = new_org(network, "shanwei-clinic")
    garbled = tmp_path / "garbled.json"
    garbled.write_text("{not json")
    cases = [
        (["--org", "nobody"], 2, "admission.json does not exist: make the organisation's keys"),
        (["--org", "shanwei-clinic", "--by", "gd-nowhere"], 2, "not in this network: gd-nowhere"),
        (
            ["--org", "shanwei-clinic", "--by", f"{COMMISSION},{COMMISSION}"],
            2,
            "names an organisation twice",
        ),
        (["--org", "shanwei-clinic", "--request", str(garbled)], 2, "is not JSON"),
        (
            [
                "--org",
                "foshan-clinic",
                "--request",
                str(made / "admission.json"),
            ],
            2,
            "asks to admit shanwei-clinic, not foshan-clinic",
        ),
        (
            ["--org", "foshan-clinic", "--request", str(_spoiled_request(network, tmp_path))],
            1,
            f"propose_organisation refused: admin_cert is a certificate of {HOSPITAL}, "
            "not of foshan-clinic",
        ),
    ]
    height = network.nodes[COMMISSION].peer.store.height()
    for args, code, reason in cases:
        answer = healthledger("network", "admit", "--data", root, *args)
        lines = answer.stderr.strip().splitlines()
        assert answer.returncode == code, answer.stderr
        assert len(lines) == 1 and lines[0].startswith("error: "), answer.stderr
        assert reason in lines[0], answer.stderr
    assert network.nodes[COMMISSION].peer.store.height() == height  # nothing was ordered
