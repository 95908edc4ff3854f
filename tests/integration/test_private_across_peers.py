"""Private data across organisations' peers: a peer that endorses a proposal may write
privately to a collection of the proposal creator's organisation, which it does not
hold; it returns the values beside its endorsement to the creator's gateway only, which
checks them against the salted commitments and keeps them in its own vault. A peer
that returns a tampered, foreign or no value is refused with the peer named; a write to
a third organisation's collection is refused; a contract's refusal reaches the caller
as on a single node.

Three real consortium peers (one organisation's keys and vault each) order through a
real three-server NATS JetStream cluster and serve the real API over HTTP; the hostile
CDC peer is a real HTTP server in front of the honest one (as in test_gateway)."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from healthledger.apps.epidemic.checks import PATIENT_COLLECTION
from healthledger.apps.epidemic.dates import day_of_ms, iso
from healthledger.apps.epidemic.simulate import person
from healthledger.apps.registry import installed_contracts
from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, transaction
from healthledger.crypto.canonical import canonical_json
from healthledger.node.consortium_peer import found_consortium
from healthledger.node.errors import EndorsementFailed
from healthledger.node.gateway import Gateway
from healthledger.node.peer_directory import DIRECTORY_FILE, PeerDirectory, write_directories
from tests.integration.test_gateway import (
    CDC,
    COMMISSION,
    HOSPITAL,
    PLANS,
    REGIONS,
    WAIT_S,
    LocalConsortium,
    serve,
)

pytestmark = pytest.mark.slow

PATIENTS = f"{HOSPITAL}/{PATIENT_COLLECTION}"


class PrivateNotes(Contract):
    """Writes a transient note privately into the collection of the organisation named
    in its arguments; only the CDC's peer may endorse it."""

    name = "private-notes"
    policy = "AND('gd-cdc.peer')"

    @transaction()
    def keep(self, ctx: Context, *, org: str, key: str) -> None:
        """Put transient ``note`` in ``org``'s collection ``notes``."""
        ctx.put_private(f"{org}/notes", key, {"note": ctx.transient.get("note")})
        ctx.put(key, {"kept": True})


def contracts() -> list[type[Contract]]:
    return [*installed_contracts(), PrivateNotes]


class NotesConsortium(LocalConsortium):
    """LocalConsortium whose genesis deploys ``PrivateNotes`` too."""

    def start(self) -> NotesConsortium:
        self.cluster.start()
        self.folders = found_consortium(self.root / "peers", plans=PLANS, contracts=contracts())
        for org in self.folders:
            self.start_peer(org)
        write_directories(self.root / "peers", self.urls)
        return self


def invoke(
    network: LocalConsortium,
    org: str,
    identity: str,
    contract: str,
    function: str,
    args: dict[str, Any],
    transient: dict[str, Any] | None = None,
) -> httpx.Response:
    """Invoke through ``org``'s peer (its gateway) as a demo identity it holds."""
    body: dict[str, Any] = {
        "identity": identity,
        "contract": contract,
        "function": function,
        "args": args,
    }
    if transient is not None:
        body["transient"] = transient
    return httpx.post(f"{network.urls[org]}/api/v1/demo/invoke", json=body, timeout=WAIT_S)


def report_args(network: LocalConsortium) -> dict[str, Any]:
    today = day_of_ms(network.nodes[HOSPITAL].peer.now())
    return {
        "disease": "J10.1",
        "classification": "probable",
        "onset_date": iso(today - 2),
        "diagnosis_date": iso(today - 1),
        "region": "440100",
    }


def vault_rows(network: LocalConsortium, org: str) -> int:
    """Rows (pending or committed) in the vault file of ``org``'s peer."""
    files = list((network.folders[org] / "vaults").glob("*.sqlite"))
    assert files, f"no vault file for {org}"
    total = 0
    for file in files:
        with sqlite3.connect(file) as db:
            total += int(db.execute("SELECT count(*) FROM private").fetchone()[0])
    return total


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotesConsortium]:
    """Three organisations with the epidemic application configured: regions, the CDC
    and the hospital registered, the pseudonymisation key in the CDC's vault."""
    consortium = NotesConsortium(
        tmp_path_factory.mktemp("private"), contracts=lambda _: contracts()
    )
    try:
        consortium.start()
        steps: list[tuple[str, str, str, dict[str, Any], dict[str, Any] | None]] = [
            (COMMISSION, f"{COMMISSION}/admin", "define_regions", {"regions": REGIONS}, None),
            (
                COMMISSION,
                f"{COMMISSION}/admin",
                "register_org",
                {"org": CDC, "kind": "cdc", "region": "440000"},
                None,
            ),
            (
                COMMISSION,
                f"{COMMISSION}/admin",
                "register_org",
                {"org": HOSPITAL, "kind": "hospital", "region": "440100"},
                None,
            ),
            (CDC, f"{CDC}/admin", "install_pseudonymisation_key", {}, {"key": "22" * 32}),
        ]
        for org, identity, function, args, transient in steps:
            answer = invoke(consortium, org, identity, "epidemic", function, args, transient)
            assert answer.status_code == 200, answer.text
        yield consortium
    finally:
        consortium.stop()


@pytest.fixture
def hospital_directory(network: NotesConsortium) -> Iterator[Path]:
    """The hospital peer's directory file, restored after the test."""
    path = network.folders[HOSPITAL] / DIRECTORY_FILE
    saved = path.read_bytes()
    yield path
    path.write_bytes(saved)


def test_a_hospital_report_commits_and_the_patient_stays_in_the_hospitals_vault(
    network: NotesConsortium,
) -> None:
    patient = person(7, "440100", random.Random(7))
    answer = invoke(
        network,
        HOSPITAL,
        f"{HOSPITAL}/dr-li",
        "epidemic",
        "report_case",
        report_args(network),
        {"patient": patient},
    )
    assert answer.status_code == 200, answer.text
    receipt = answer.json()["receipt"]
    assert receipt["valid"]
    case_id = answer.json()["result"]["case_id"]
    network.wait_common_head(receipt["height"] + 1)

    for node in network.nodes.values():
        tx = node.peer.block(receipt["height"]).transactions[receipt["index"]]
        # Endorsed by the CDC's peer only (it holds the key); on chain a commitment.
        assert [e.endorser for e in tx.endorsements] == [f"{CDC}/peer0"]
        assert [w.collection for w in tx.response.rwset.private] == [PATIENTS]
    # The hospital's vault holds the value, settled at commit; no other peer holds it.
    kept = network.nodes[HOSPITAL].peer.vaults.read(PATIENTS, case_id)
    assert kept is not None
    assert {k: kept[k] for k in patient} == patient
    assert kept["pid"].startswith("p1-")
    assert network.nodes[HOSPITAL].peer.vaults.vault(HOSPITAL).pending_tx_ids() == []
    for org in (CDC, COMMISSION):
        assert network.nodes[org].peer.vaults.read(PATIENTS, case_id) is None
        assert network.nodes[org].peer.vaults.vault(HOSPITAL) is None

    # The patient's name, ID number and phone are in no file of any peer (ledger,
    # vaults, write-ahead logs) nor in the ordering stream's store: the hospital's vault
    # holds them sealed.
    secrets = [patient["name"], patient["id_number"], patient["phone"]]
    scanned = 0
    for file in network.root.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            scanned += 1
            for secret in secrets:
                assert secret.encode() not in data, f"{file} holds the patient's data"
    assert scanned > 10


def test_the_endorse_answer_carries_the_value_beside_the_transaction_not_in_it(
    network: NotesConsortium,
) -> None:
    patient = person(8, "440100", random.Random(8))
    keys = network.keystore(HOSPITAL)
    transient = keys.with_salt({"patient": patient})
    signed = keys.propose(
        f"{HOSPITAL}/dr-li",
        "epidemic",
        "report_case",
        report_args(network),
        timestamp=int(time.time() * 1000),
        transient=transient,
    )
    body = {**signed.to_json(), "transient": transient}
    answer = httpx.post(
        f"{network.urls[CDC]}/api/v1/network/endorse",
        params={"org": CDC},
        content=canonical_json(body),
        headers={"Content-Type": "application/json"},
        timeout=WAIT_S,
    )
    assert answer.status_code == 200, answer.text
    raw = answer.json()
    private = raw.pop("private")
    assert [(p["collection"], p["value"]["phone"]) for p in private] == [
        (PATIENTS, patient["phone"])
    ]
    assert patient["phone"] not in canonical_json(raw).decode()
    # The CDC's peer staged nothing of the hospital's: it holds no such vault.
    assert network.nodes[CDC].peer.vaults.read(PATIENTS, f"c-{signed.tx_id[:24]}") is None


def hostile_cdc(honest_url: str) -> FastAPI:
    """A CDC peer that spoils the private values of its honest twin's answer as its URL
    path says."""
    app = FastAPI()

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
        raw = answer.json()
        if mode == "tampered":
            raw["private"][0]["value"]["phone"] = "+86 139 0000 0000"
        elif mode == "foreign":
            raw["private"][0]["collection"] = f"{COMMISSION}/{PATIENT_COLLECTION}"
        elif mode == "withheld":
            del raw["private"]
        elif mode == "malformed":
            raw["private"] = {"not": "a list"}
        return JSONResponse(raw)

    return app


@pytest.fixture(scope="module")
def hostile_url(network: NotesConsortium) -> Iterator[str]:
    server, thread, url = serve(hostile_cdc(network.urls[CDC]), "hostile-cdc")
    yield url
    server.should_exit = True
    thread.join(15)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("tampered", "does not match the commitment in the read/write set"),
        ("foreign", "which is not of the proposal creator's organisation"),
        ("malformed", "sent a malformed endorsement: 'private' is not a list"),
        ("withheld", f"wrote to collection '{PATIENTS}' without returning its value"),
    ],
)
def test_a_cdc_peer_returning_a_spoilt_value_is_refused_and_named(
    network: NotesConsortium, hostile_url: str, hospital_directory: Path, mode: str, reason: str
) -> None:
    PeerDirectory({**network.urls, CDC: f"{hostile_url}/{mode}"}).save(hospital_directory)
    rows = vault_rows(network, HOSPITAL)
    height = network.nodes[HOSPITAL].peer.store.height()
    answer = invoke(
        network,
        HOSPITAL,
        f"{HOSPITAL}/dr-li",
        "epidemic",
        "report_case",
        report_args(network),
        {"patient": person(9, "440100", random.Random(9))},
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/endorsement-failed")
    assert f"the peer of {CDC} ({hostile_url}/{mode})" in problem["detail"]
    assert reason in problem["detail"]
    assert "+86" not in answer.text  # the value is never echoed
    # Nothing kept, nothing ordered.
    assert vault_rows(network, HOSPITAL) == rows
    for h in range(height, network.nodes[HOSPITAL].peer.store.height()):
        block = network.nodes[HOSPITAL].peer.block(h)
        assert all(tx.proposal.function != "report_case" for tx in block.transactions)


def test_a_write_to_a_third_organisations_collection_is_refused(
    network: NotesConsortium,
) -> None:
    rows = {org: vault_rows(network, org) for org in network.nodes}
    answer = invoke(
        network,
        HOSPITAL,
        f"{HOSPITAL}/dr-li",
        PrivateNotes.name,
        "keep",
        {"org": COMMISSION, "key": "n-1"},
        {"note": "for the commission"},
    )
    assert answer.status_code == 403, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/access-denied")
    assert f"collection '{COMMISSION}/notes'" in problem["detail"]
    assert (
        f"not a collection of the proposal creator's organisation ({HOSPITAL})"
        in (problem["detail"])
    )
    assert {org: vault_rows(network, org) for org in network.nodes} == rows
    # The same contract writing to the creator's own collection commits, the value
    # kept by the creator's peer.
    answer = invoke(
        network,
        HOSPITAL,
        f"{HOSPITAL}/dr-li",
        PrivateNotes.name,
        "keep",
        {"org": HOSPITAL, "key": "n-2"},
        {"note": "for the hospital"},
    )
    assert answer.status_code == 200, answer.text
    network.wait_common_head(answer.json()["receipt"]["height"] + 1)
    # The hospital's peer simulated it too: both endorsers committed to the same salt
    # (their read/write sets agree), and the value is kept once.
    assert network.nodes[HOSPITAL].peer.vaults.read(f"{HOSPITAL}/notes", "n-2") == {
        "note": "for the hospital"
    }
    assert vault_rows(network, HOSPITAL) == rows[HOSPITAL] + 1


def test_a_contract_refusal_reaches_the_caller_as_on_a_single_node(
    network: NotesConsortium,
) -> None:
    # Both the hospital's peer and the CDC's refuse the arguments: the caller gets the
    # contract's own problem, not a gateway failure.
    args = {**report_args(network), "disease": "not-a-disease"}
    answer = invoke(
        network,
        HOSPITAL,
        f"{HOSPITAL}/dr-li",
        "epidemic",
        "report_case",
        args,
        {"patient": person(10, "440100", random.Random(10))},
    )
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert problem["type"].endswith("/invalid-arguments"), problem
    assert any(e["field"] == "args.disease" for e in problem["errors"]), problem


def test_a_gateway_holding_no_vault_for_the_values_refuses_to_use_them(
    network: NotesConsortium,
) -> None:
    # A client-side gateway (no peer, no vault) asks the CDC's peer directly: it may
    # not take the hospital's patient data, so it refuses rather than lose it.
    gateway = Gateway(
        state=network.nodes[COMMISSION].peer.store,
        directory=lambda: PeerDirectory({CDC: network.urls[CDC]}),
    )
    keys = network.keystore(HOSPITAL)
    transient = keys.with_salt({"patient": person(11, "440100", random.Random(11))})
    signed = keys.propose(
        f"{HOSPITAL}/dr-li",
        "epidemic",
        "report_case",
        report_args(network),
        timestamp=int(time.time() * 1000),
        transient=transient,
    )
    try:
        with pytest.raises(EndorsementFailed, match="send it through that organisation's"):
            gateway.endorse(signed, transient)
    finally:
        gateway.close()
