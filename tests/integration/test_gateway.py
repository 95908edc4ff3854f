"""Endorsement across organisations: a consortium peer's gateway gathers the other
organisations' endorsements over HTTP, checks them and submits; a hostile peer's
forged, disagreeing, malformed or misattributed endorsement is refused with the peer
named; a peer endorses only as itself and only for contracts it has installed.

Three real consortium peers (one organisation's keys each) order through a real
three-server NATS JetStream cluster and serve the real API over HTTP (uvicorn on
threads); the hostile peer is a real HTTP server in front of an honest one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from healthledger.api.app import create_api
from healthledger.apps.registry import installed_contracts
from healthledger.contracts.contract import Contract
from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.keys import encode_b64
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.transaction import (
    ProposalResponse,
    SignedProposal,
    Transaction,
    sign_endorsement,
)
from healthledger.node.consortium_peer import found_consortium, open_consortium_peer
from healthledger.node.embedded import KEYSTORE_FILE, EmbeddedNode
from healthledger.node.gateway import Gateway
from healthledger.node.keystore import Keystore
from healthledger.node.peer_directory import DIRECTORY_FILE, PeerDirectory, write_directories
from healthledger.ordering.nats_cluster import NatsCluster
from tests.support.founding import found
from tests.support.gs1 import gln
from tests.support.members import member_reads

PLANS = DEMO_ORGS[:3]
COMMISSION, CDC, HOSPITAL = (p.id for p in PLANS)
REGIONS = [
    {"code": "440000", "name": "Guangdong", "level": "province", "parent": None},
    {"code": "440100", "name": "Guangzhou", "level": "city", "parent": "440000"},
]
WAIT_S = 90.0
"""Generous bound for a loaded 2-core machine; no test asserts on how long it took."""


def serve(
    app: FastAPI, name: str, tls: tuple[Path, Path] | None = None
) -> tuple[uvicorn.Server, threading.Thread, str]:
    """``app`` served on 127.0.0.1 and a port the OS picks, on a thread; over HTTPS
    with ``tls`` (certificate and key files)."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
        **({} if tls is None else {"ssl_certfile": str(tls[0]), "ssl_keyfile": str(tls[1])}),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=name, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, f"{name} did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"{'http' if tls is None else 'https'}://127.0.0.1:{port}"


def without(contract: str) -> list[type[Contract]]:
    """The installed contracts but ``contract``."""
    return [c for c in installed_contracts() if c.name != contract]


class LocalConsortium:
    """Consortium peers in this process, over a NATS JetStream cluster, each serving
    the API (with demo custody of its own organisation's keys) over HTTP."""

    def __init__(
        self,
        root: Path,
        *,
        checkpoint_every: int = 10,
        contracts: Callable[[str], Sequence[type[Contract]]] = lambda _org: installed_contracts(),
    ) -> None:
        self.root = root
        self.checkpoint_every = checkpoint_every
        self.contracts = contracts
        self.cluster = NatsCluster(root / "nats")
        self.folders: dict[str, Path] = {}
        self.nodes: dict[str, EmbeddedNode] = {}
        self.urls: dict[str, str] = {}
        self._servers: dict[str, tuple[uvicorn.Server, threading.Thread]] = {}

    def start(self) -> LocalConsortium:
        """Start NATS, found the consortium and start every peer and its API."""
        self.cluster.start()
        self.folders = found_consortium(
            self.root / "peers", plans=PLANS, contracts=installed_contracts()
        )
        for org in self.folders:
            self.start_peer(org)
        write_directories(self.root / "peers", self.urls)
        return self

    def start_peer(self, org: str, folder: Path | None = None) -> str:
        """Start the peer of ``org`` on ``folder`` (default: its founding folder)."""
        node = open_consortium_peer(
            folder or self.folders[org],
            contracts=self.contracts(org),
            servers=self.cluster.urls,
            checkpoint_every=self.checkpoint_every,
        )
        node.start()
        deadline = time.monotonic() + WAIT_S
        while not node.peer.accepting:
            assert time.monotonic() < deadline, f"the peer of {org} never took writes"
            time.sleep(0.05)
        server, thread, url = serve(create_api(node, demo_custody=True), f"peer-{org}")
        self.nodes[org] = node
        self._servers[org] = (server, thread)
        self.urls[org] = url
        return url

    def stop_peer(self, org: str) -> None:
        """Stop the API and the peer of ``org``."""
        server, thread = self._servers.pop(org)
        server.should_exit = True
        thread.join(15)
        self.nodes.pop(org).stop()

    def stop(self) -> None:
        """Stop every peer, then NATS."""
        for org in list(self._servers):
            self.stop_peer(org)
        self.cluster.stop()

    def keystore(self, org: str) -> Keystore:
        """The keystore of ``org``'s founding folder."""
        return Keystore.load(self.folders[org] / KEYSTORE_FILE)

    def demo_invoke(
        self, org: str, identity: str, contract: str, function: str, args: dict[str, Any]
    ) -> httpx.Response:
        """Invoke through ``org``'s peer as a demo identity it holds."""
        body = {"identity": identity, "contract": contract, "function": function, "args": args}
        return httpx.post(f"{self.urls[org]}/api/v1/demo/invoke", json=body, timeout=WAIT_S)

    def heads(self) -> dict[str, tuple[int, str | None]]:
        """Each running peer's height and head hash."""
        heads = {}
        for org, node in self.nodes.items():
            head = node.peer.store.head()
            heads[org] = (node.peer.store.height(), None if head is None else head.hash)
        return heads

    def wait_common_head(self, at_least: int) -> tuple[int, str | None]:
        """Wait until every running peer holds the same head at height >= ``at_least``."""
        deadline = time.monotonic() + WAIT_S
        while True:
            heads = set(self.heads().values())
            if len(heads) == 1 and next(iter(heads))[0] >= at_least:
                return next(iter(heads))
            assert time.monotonic() < deadline, f"no common head: {self.heads()}"
            time.sleep(0.1)


# --- the hostile peer --------------------------------------------------------------


def hostile_peer(honest_url: str, keys: Keystore, other_keys: Keystore) -> FastAPI:
    """A peer of the organisation of ``keys`` that misbehaves as its URL path says:
    it forwards the endorsement request to the honest peer and spoils the answer."""
    app = FastAPI()
    org_peer, org_key = keys.peers()[0]
    other_peer, other_key = other_keys.peers()[0]

    @app.post("/{mode}/api/v1/network/endorse")
    async def endorse(mode: str, request: Request) -> Response:
        answer = httpx.post(
            honest_url + "/api/v1/network/endorse",
            params=dict(request.query_params),
            content=await request.body(),
            headers={"Content-Type": "application/json"},
            timeout=WAIT_S,
        )
        if answer.status_code != 200:
            return Response(answer.content, answer.status_code, media_type="application/json")
        tx = Transaction.from_json(answer.json())
        raw: Any = tx.to_json()
        if mode == "forged":
            # Claims to be this organisation's peer, signed with another key.
            forged = sign_endorsement(tx.tx_id, tx.response, endorser=org_peer, key=other_key)
            raw["endorsements"] = [forged.to_json()]
        elif mode == "flipped":
            signature = bytearray(tx.endorsements[0].signature)
            signature[0] ^= 1
            raw["endorsements"][0]["signature"] = encode_b64(bytes(signature))
        elif mode == "disagreeing":
            # A different result, validly signed with this organisation's own peer key.
            changed = ProposalResponse(tx.response.rwset, tx.response.events, 999)
            raw["response"] = changed.to_json()
            raw["endorsements"] = [
                sign_endorsement(tx.tx_id, changed, endorser=org_peer, key=org_key).to_json()
            ]
        elif mode == "impostor":
            # Another organisation's valid endorsement, passed off as this one's.
            raw["endorsements"] = [
                sign_endorsement(
                    tx.tx_id, tx.response, endorser=other_peer, key=other_key
                ).to_json()
            ]
        elif mode == "malformed":
            return Response(b'{"signed_proposal": 1, "junk": [', media_type="application/json")
        elif mode == "empty":
            raw["endorsements"] = []
        return JSONResponse(raw)

    return app


# --- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """Three organisations; the hospital's peer has no epidemic contract installed."""
    network = LocalConsortium(
        tmp_path_factory.mktemp("gateway"),
        contracts=lambda org: without("epidemic") if org == HOSPITAL else installed_contracts(),
    )
    try:
        yield network.start()
    finally:
        network.stop()


@pytest.fixture(scope="module")
def hostile_url(consortium: LocalConsortium) -> Iterator[str]:
    """The base URL of a hostile peer of the CDC (modes are path prefixes)."""
    server, thread, url = serve(
        hostile_peer(
            consortium.urls[CDC], consortium.keystore(CDC), consortium.keystore(COMMISSION)
        ),
        "hostile-cdc",
    )
    yield url
    server.should_exit = True
    thread.join(15)


@pytest.fixture
def directory(consortium: LocalConsortium) -> Iterator[Path]:
    """The commission peer's directory file, restored after the test."""
    path = consortium.folders[COMMISSION] / DIRECTORY_FILE
    saved = path.read_bytes()
    yield path
    path.write_bytes(saved)


# --- tests -------------------------------------------------------------------------


def define_regions_proposal(consortium: LocalConsortium, who: str = "admin") -> SignedProposal:
    """``epidemic.define_regions`` signed by the commission's ``who``, now: a proposal
    whose policy needs the commission's and the CDC's peers."""
    return consortium.keystore(COMMISSION).propose(
        f"{COMMISSION}/{who}",
        "epidemic",
        "define_regions",
        {"regions": REGIONS},
        timestamp=int(time.time() * 1000),
    )


def test_a_transaction_needing_two_organisations_commits_through_the_gateway(
    consortium: LocalConsortium,
) -> None:
    before = consortium.wait_common_head(1)[0]
    # define_regions: AND('gd-commission.peer', 'gd-cdc.peer'); the commission's peer
    # holds only the commission's keys, so the CDC's endorsement comes over HTTP.
    answer = consortium.demo_invoke(
        COMMISSION, f"{COMMISSION}/admin", "epidemic", "define_regions", {"regions": REGIONS}
    )
    assert answer.status_code == 200, answer.text
    receipt = answer.json()["receipt"]
    assert receipt["valid"] and answer.json()["result"] == len(REGIONS)
    height, _ = consortium.wait_common_head(receipt["height"] + 1)
    assert height > before
    for node in consortium.nodes.values():
        tx = node.peer.block(receipt["height"]).transactions[receipt["index"]]
        assert {e.endorser for e in tx.endorsements} == {f"{COMMISSION}/peer0", f"{CDC}/peer0"}
        assert node.peer.store.get_state("epidemic", "region/440100") is not None


def test_a_client_signed_invoke_on_a_peer_without_the_contract_gathers_both(
    consortium: LocalConsortium,
) -> None:
    # The hospital's peer has not installed epidemic: the commission's and the CDC's
    # peers simulate and endorse, the hospital's peer checks and orders.
    keys = consortium.keystore(COMMISSION)
    signed = keys.propose(
        f"{COMMISSION}/admin",
        "epidemic",
        "define_regions",
        {"regions": REGIONS[:1]},
        timestamp=int(time.time() * 1000),
    )
    answer = httpx.post(
        f"{consortium.urls[HOSPITAL]}/api/v1/invoke",
        content=canonical_json(signed.to_json()),
        headers={"Content-Type": "application/json"},
        timeout=WAIT_S,
    )
    assert answer.status_code == 200, answer.text
    receipt = answer.json()["receipt"]
    tx = consortium.nodes[HOSPITAL].peer.block(receipt["height"]).transactions[receipt["index"]]
    assert {e.endorser for e in tx.endorsements} == {f"{COMMISSION}/peer0", f"{CDC}/peer0"}


def test_a_client_side_gateway_gathers_endorsements_and_submits(
    consortium: LocalConsortium,
) -> None:
    # A client with no peer of its own: it reads policies and certificates from a
    # ledger (here the hospital peer's store), asks the peers, then submits.
    gateway = Gateway(
        state=consortium.nodes[HOSPITAL].peer.store,
        directory=lambda: PeerDirectory(consortium.urls),
    )
    signed = define_regions_proposal(consortium, "officer-chen")
    try:
        tx = gateway.endorse(signed)
    finally:
        gateway.close()
    assert {e.endorser for e in tx.endorsements} == {f"{COMMISSION}/peer0", f"{CDC}/peer0"}
    answer = httpx.post(
        f"{consortium.urls[HOSPITAL]}/api/v1/transactions",
        content=canonical_json(tx.to_json()),
        headers={"Content-Type": "application/json"},
        timeout=WAIT_S,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["valid"]


def test_an_invoke_one_organisation_can_endorse_alone_asks_no_other_peer(
    consortium: LocalConsortium, directory: Path
) -> None:
    # supply's policy is OR('*.peer'): the local peer suffices, even with no directory.
    PeerDirectory({}).save(directory)
    answer = consortium.demo_invoke(
        COMMISSION,
        f"{COMMISSION}/admin",
        "supply",
        "register_location",
        {"gln": gln(COMMISSION, 1), "name": "depot"},
    )
    assert answer.status_code == 200, answer.text
    receipt = answer.json()["receipt"]
    tx = consortium.nodes[COMMISSION].peer.block(receipt["height"]).transactions[receipt["index"]]
    assert [e.endorser for e in tx.endorsements] == [f"{COMMISSION}/peer0"]


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("forged", "whose signature does not verify"),
        ("flipped", "whose signature does not verify"),
        ("disagreeing", "disagrees with the other endorsers"),
        ("impostor", f"not as a peer of {CDC}"),
        ("malformed", "sent a malformed endorsement"),
        ("empty", "sent no endorsement"),
    ],
)
def test_a_bad_endorsement_is_refused_with_the_peer_named(
    consortium: LocalConsortium, hostile_url: str, directory: Path, mode: str, reason: str
) -> None:
    urls = {**consortium.urls, CDC: f"{hostile_url}/{mode}"}
    PeerDirectory(urls).save(directory)
    height = consortium.nodes[COMMISSION].peer.store.height()
    answer = consortium.demo_invoke(
        COMMISSION, f"{COMMISSION}/admin", "epidemic", "define_regions", {"regions": REGIONS}
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/endorsement-failed")
    assert f"the peer of {CDC} ({hostile_url}/{mode})" in problem["detail"]
    assert reason in problem["detail"]
    # Nothing was ordered: no transaction of the commission's admin after this point.
    for h in range(height, consortium.nodes[COMMISSION].peer.store.height()):
        block = consortium.nodes[COMMISSION].peer.block(h)
        assert all(tx.proposal.function != "define_regions" for tx in block.transactions)


def test_an_unreachable_peer_is_named(consortium: LocalConsortium, directory: Path) -> None:
    PeerDirectory({**consortium.urls, CDC: "http://127.0.0.1:9"}).save(directory)
    answer = consortium.demo_invoke(
        COMMISSION, f"{COMMISSION}/admin", "epidemic", "define_regions", {"regions": REGIONS}
    )
    assert answer.status_code == 422, answer.text
    assert f"the peer of {CDC} (http://127.0.0.1:9) is unreachable" in answer.json()["detail"]


def _endorse_at(url: str, org: str | None, body: bytes) -> httpx.Response:
    params = {} if org is None else {"org": org}
    return httpx.post(
        f"{url}/api/v1/network/endorse",
        params=params,
        content=body,
        headers={"Content-Type": "application/json"},
        timeout=WAIT_S,
    )


def test_a_peer_refuses_to_endorse_a_contract_it_has_not_installed(
    consortium: LocalConsortium,
) -> None:
    signed = define_regions_proposal(consortium)
    answer = _endorse_at(consortium.urls[HOSPITAL], HOSPITAL, canonical_json(signed.to_json()))
    assert answer.status_code == 404, answer.text
    assert answer.json()["type"].endswith("/unknown-contract")
    assert "no contract named 'epidemic' is installed" in answer.json()["detail"]
    # The same proposal is endorsed by a peer that has it, as that peer only.
    answer = _endorse_at(consortium.urls[CDC], CDC, canonical_json(signed.to_json()))
    assert answer.status_code == 200, answer.text
    assert [e["endorser"] for e in answer.json()["endorsements"]] == [f"{CDC}/peer0"]


def test_a_peer_endorses_only_under_its_own_identity(consortium: LocalConsortium) -> None:
    signed = define_regions_proposal(consortium)
    answer = _endorse_at(consortium.urls[CDC], COMMISSION, canonical_json(signed.to_json()))
    assert answer.status_code == 403, answer.text
    assert f"it endorses only as {CDC}, not as {COMMISSION}" in answer.json()["detail"]


def test_a_badly_signed_proposal_is_not_endorsed(consortium: LocalConsortium) -> None:
    signed = define_regions_proposal(consortium)
    raw = signed.to_json()
    raw["proposal"]["args"] = {"regions": REGIONS[:1]}  # no longer what was signed
    answer = _endorse_at(consortium.urls[CDC], CDC, canonical_json(raw))
    assert answer.status_code == 401, answer.text


def test_an_embedded_node_serves_no_network_routes_and_endorses_as_before(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    node = found(
        tmp_path / "embedded",
        contracts=installed_contracts(),
        batch_timeout_s=0.01,
    ).start()
    try:
        with TestClient(create_api(node, demo_custody=True)) as client:
            client.auth = member_reads(node)
            for answer in (
                client.get("/api/v1/snapshot"),
                client.get("/api/v1/network/peers"),
                client.get("/api/v1/network/checkpoints/2"),
            ):
                assert answer.status_code == 404, answer.text
                assert answer.json()["detail"] == "this node is not a consortium peer"
            # The embedded node holds every organisation's keys: no gateway is involved.
            answer = client.post(
                "/api/v1/demo/invoke",
                json={
                    "identity": f"{COMMISSION}/admin",
                    "contract": "epidemic",
                    "function": "define_regions",
                    "args": {"regions": REGIONS},
                },
            )
            assert answer.status_code == 200, answer.text
    finally:
        node.stop()
