"""Fault: one stored block of one consortium peer tampered with on disk.

Changed in place, the block no longer re-derives: the peer's own self-check finds it,
and the peer stops serving. Rewritten consistently (a fork that passes the self-check),
the peer's next checkpoints differ from the other organisations': the others raise the
alarm and the forked peer, in the minority, stops serving. Either way the API answers
503 with the reason (status, metrics and the checkpoint view stay up) until an
operator restores the ledger from a healthy peer; the peer then catches up and every
peer holds the same chain, every acknowledged transaction in it exactly once."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nats
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from msgspec.structs import replace
from playwright.sync_api import expect, sync_playwright

from healthledger.api.app import create_api
from healthledger.apps.registry import installed_contracts
from healthledger.crypto.canonical import canonical_json, parse_canonical
from healthledger.crypto.keys import SigningKey
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.block import Block
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.checkpoint import NOTE_SUFFIX, Checkpoint, sign_note
from healthledger.node.checkpoint_guard import CheckpointState
from healthledger.node.consortium_peer import ConsortiumNode, found_consortium
from healthledger.node.embedded import CHECKPOINT_DIR, KEYSTORE_FILE, LEDGER_FILE
from healthledger.node.keystore import Keystore
from healthledger.ordering.nats_cluster import NatsCluster
from healthledger.web.console import create_console
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.jetstream_peer import Load, assert_same_chains, gln, open_peer, wait_for
from tests.support.members import member_reads
from tests.support.nats_cluster import fresh_cluster, nats_cluster

pytestmark = pytest.mark.slow

__all__ = ["nats_cluster"]


@pytest.fixture
def consortium(tmp_path: Path) -> list[Path]:
    """Three organisations' peer folders with one genesis."""
    folders = found_consortium(tmp_path, plans=DEMO_ORGS[:3], contracts=installed_contracts())
    return list(folders.values())


def tamper_in_place(folder: Path, height: int) -> bytes:
    """Change one transaction's bytes in stored block ``height``; the original body."""
    db = sqlite3.connect(folder / LEDGER_FILE, timeout=30)
    try:
        body = bytes(db.execute("SELECT body FROM blocks WHERE height=?", (height,)).fetchone()[0])
        tampered = body.replace(b'"name":"site ', b'"name":"SITE ', 1)
        assert tampered != body
        with db:
            db.execute("UPDATE blocks SET body=? WHERE height=?", (tampered, height))
    finally:
        db.close()
    return body


def fork_head(folder: Path) -> int:
    """Rewrite the head block of a stopped peer with another timestamp, consistently
    (body, header and hash agree): a forked chain that passes the self-check."""
    db = sqlite3.connect(folder / LEDGER_FILE, timeout=30)
    try:
        height, body = db.execute(
            "SELECT height, body FROM blocks ORDER BY height DESC LIMIT 1"
        ).fetchone()
        block = Block.from_json(parse_canonical(bytes(body)))
        header = replace(block.header, timestamp=block.header.timestamp + 1)
        forked = Block(header, block.transactions, block.codes)
        with db:
            db.execute(
                "UPDATE blocks SET hash=?, header=?, body=? WHERE height=?",
                (header.hash, canonical_json(header.to_json()).decode(), forked.canonical, height),
            )
    finally:
        db.close()
    return int(height)


def restore_from(healthy: Path, broken: Path) -> None:
    """What the operator does (operator guide 4.2): copy a healthy peer's ledger over
    the broken one's, and move the broken peer's checkpoints aside (they are evidence of
    the chain it held; its start compares its latest one with the restored ledger)."""
    notes = broken / CHECKPOINT_DIR
    if notes.exists():
        notes.rename(broken / f"{CHECKPOINT_DIR}.forked")
    for suffix in ("-wal", "-shm"):
        (broken / (LEDGER_FILE + suffix)).unlink(missing_ok=True)
    source = sqlite3.connect(healthy / LEDGER_FILE, timeout=30)
    target = sqlite3.connect(broken / LEDGER_FILE, timeout=30)
    try:
        source.backup(target)
    finally:
        source.close()
        target.close()


@pytest.fixture
def api_of() -> Iterator[list[TestClient]]:
    clients: list[TestClient] = []
    yield clients
    for client in clients:
        client.__exit__(None, None, None)


def client_of(
    node: ConsortiumNode, clients: list[TestClient], *, console: bool = False
) -> TestClient:
    """The peer's API (with ``console``, and its web console), demo custody on,
    opening no socket."""
    app = create_console(node) if console else create_api(node, demo_custody=True)
    client = TestClient(app, raise_server_exceptions=False)
    client.auth = member_reads(node)
    client.__enter__()
    clients.append(client)
    return client


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """``app`` served by uvicorn on a thread, on a port the OS picks; its base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, name="console-server", daemon=True)
    thread.start()
    wait_for(lambda: server.started, "the console serves", timeout=30)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def assert_banner_in_chromium(node: ConsortiumNode, text: str) -> None:
    """The console of ``node``, opened in headless Chromium, shows the alarm banner."""
    with served(create_console(node)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{url}/login")
            expect(page.get_by_test_id("checkpoint-alarm")).to_contain_text(text)
        finally:
            browser.close()


def assert_stopped_serving(api: TestClient, node: ConsortiumNode, state: str) -> None:
    """Reads and writes answer 503 problem details with the reason; status, metrics
    and the checkpoint view stay up and say why."""
    read = api.get("/api/v1/blocks")
    assert read.status_code == 503
    assert read.headers["content-type"].startswith("application/problem+json")
    assert "stopped serving" in read.json()["detail"]
    assert read.json()["checkpoint_state"] == state
    org = node.org
    write = api.post(
        "/api/v1/demo/invoke",
        json={
            "identity": f"{org}/admin",
            "contract": "supply",
            "function": "register_location",
            "args": {"gln": gln(org, 99_999), "name": "refused"},
        },
    )
    assert write.status_code == 503
    status = api.get("/api/v1/status").json()
    assert status["checkpoints"]["state"] == state and not status["checkpoints"]["serving"]
    assert not status["healthy"]
    assert api.get("/api/v1/checkpoints").json()["state"] == state
    metrics = api.get("/metrics").text
    assert f'healthledger_checkpoint_state{{state="{state}"}} 1.0' in metrics
    assert "healthledger_serving 0.0" in metrics


def test_a_block_tampered_in_place_is_caught_by_its_peer(
    consortium: list[Path], nats_cluster: NatsCluster, api_of: list[TestClient]
) -> None:
    cluster = fresh_cluster(nats_cluster)
    stream = "FAULT_TAMPER"
    a, b, c = (open_peer(f, stream, cluster.urls).start() for f in consortium)
    load = Load([a, b])
    try:
        wait_for(lambda: a.peer.accepting and b.peer.accepting, "both peers take writes")
        load.start()
        wait_for(lambda: c.peer.store.height() >= 8, "a few blocks on every peer")
        api = client_of(c, api_of)
        assert api.get("/api/v1/blocks/2").status_code == 200
        original = tamper_in_place(c.data_dir, 2)
        wait_for(lambda: c.guard.state is CheckpointState.TAMPERED, "the self-check finds it")
        assert_stopped_serving(api, c, "tampered")
        assert "stored block 2 fails its self-check" in (c.refusal() or "")
        assert a.refusal() is None and b.refusal() is None  # the others keep serving
        # The operator puts the block back (here: the original bytes) and restarts it.
        c.stop()
        tamper_db = sqlite3.connect(c.data_dir / LEDGER_FILE, timeout=30)
        with tamper_db:
            tamper_db.execute("UPDATE blocks SET body=? WHERE height=2", (original,))
        tamper_db.close()
        c = open_peer(c.data_dir, stream, cluster.urls).start()
        api = client_of(c, api_of)
        wait_for(lambda: c.peer.store.height() >= a.peer.store.height() - 2, "it catches up")
        assert c.refusal() is None
        assert api.get("/api/v1/blocks/2").status_code == 200
        load.stop()
        wait_for(
            lambda: a.peer.store.height() == b.peer.store.height() == c.peer.store.height(),
            "every peer at one head",
        )
    finally:
        load.stop()
        for node in (a, b, c):
            node.stop()
    assert all(code is ValidationCode.VALID for code in load.acked.values())
    assert_same_chains(consortium, load.acked)


def test_a_forked_block_is_caught_by_the_checkpoint_comparison(
    consortium: list[Path], nats_cluster: NatsCluster, api_of: list[TestClient]
) -> None:
    cluster = fresh_cluster(nats_cluster)
    stream = "FAULT_FORK"
    a, b, c = (open_peer(f, stream, cluster.urls).start() for f in consortium)
    load = Load([a, b])
    try:
        wait_for(lambda: a.peer.accepting and b.peer.accepting, "both peers take writes")
        load.start()
        wait_for(lambda: c.peer.store.height() >= 6, "a few blocks on every peer")
        c.stop()
        forked_at = fork_head(c.data_dir)
        # Whoever forked the block also removed the peer's own latest checkpoint, which
        # its start compares with the block at that height (tests/integration/
        # test_clean_stop.py): only the consortium's checkpoints are left to catch it.
        (c.data_dir / CHECKPOINT_DIR / f"latest{NOTE_SUFFIX}").unlink(missing_ok=True)
        c = open_peer(c.data_dir, stream, cluster.urls).start()
        wait_for(lambda: c.guard.state is CheckpointState.MINORITY, "the forked peer sees it")
        api = client_of(c, api_of, console=True)
        assert_stopped_serving(api, c, "minority")
        banner = api.get("/login")
        assert banner.status_code == 503 and 'data-testid="checkpoint-alarm"' in banner.text
        # The others raise the alarm and name the forked peer, and keep serving.
        for node in (a, b):
            wait_for(lambda n=node: n.guard.state is CheckpointState.DIVERGED, "the alarm")  # type: ignore[misc]
            [divergence] = node.guard.to_json()["divergences"][:1]
            assert divergence["minority"] == [c.org] and divergence["height"] > forked_at
            assert node.refusal() is None
        other = client_of(a, api_of, console=True)
        assert other.get("/api/v1/blocks").status_code == 200
        page = other.get("/login")
        assert page.status_code == 200 and 'data-testid="checkpoint-alarm"' in page.text
        assert "checkpoints disagree" in page.text
        assert_banner_in_chromium(a, "checkpoints disagree")
        assert_banner_in_chromium(c, "stopped serving")
        # The operator restores the forked peer's ledger from a healthy peer.
        c.stop()
        restore_from(a.data_dir, c.data_dir)
        c = open_peer(c.data_dir, stream, cluster.urls).start()
        wait_for(lambda: c.peer.store.height() >= a.peer.store.height() - 2, "it catches up")
        assert c.refusal() is None and c.guard.state is CheckpointState.OK
        load.stop()
        wait_for(
            lambda: a.peer.store.height() == b.peer.store.height() == c.peer.store.height(),
            "every peer at one head",
        )
    finally:
        load.stop()
        for node in (a, b, c):
            node.stop()
    assert all(code is ValidationCode.VALID for code in load.acked.values())
    assert_same_chains(consortium, load.acked)


def test_hostile_checkpoint_notes_over_nats_are_reported_and_ignored(
    consortium: list[Path], nats_cluster: NatsCluster, api_of: list[TestClient]
) -> None:
    cluster = fresh_cluster(nats_cluster)
    stream = "FAULT_HOSTILE"
    a, b = (open_peer(f, stream, cluster.urls).start() for f in consortium[:2])
    victim = consortium[2].name
    subject = f"hl.{stream.lower()}.ckpt"
    genuine = replace(
        Checkpoint.of(a.peer.store.header(0), origin=a.origin), height=4, block_hash="00" * 32
    )
    [(name, key)] = Keystore.load(consortium[2] / KEYSTORE_FILE).peers()
    stranger = SigningKey.from_seed(bytes(32))
    hostile = {
        "malformed": (victim, b"\xff not a note"),
        "other-chain": (
            victim,
            sign_note(replace(genuine, origin="healthledger/x"), name=name, key=key),
        ),
        "unknown-key": (victim, sign_note(genuine, name=name, key=stranger)),
        "bad-signature": (
            victim,
            sign_note(genuine, name=name, key=key).replace("height 4", "height 8"),
        ),
        "non-member": ("intruder", sign_note(genuine, name=name, key=key)),
    }

    async def publish() -> None:
        client = await nats.connect(servers=cluster.urls)
        try:
            js = client.jetstream()
            for org, note in hostile.values():
                data = note if isinstance(note, bytes) else note.encode()
                await js.publish(f"{subject}.{org}", data, stream=f"{stream}_CKPT")
        finally:
            await client.close()

    try:
        wait_for(lambda: a.exchange.error is None and b.exchange.error is None, "exchange up")
        asyncio.run(publish())
        wait_for(lambda: a.guard.rejected_count == b.guard.rejected_count == 5, "all reported")
        api = client_of(a, api_of)
        metrics = api.get("/metrics").text
        for reason in ("malformed", "other-chain", "unknown-key", "bad-signature"):
            assert f'healthledger_checkpoint_notes_rejected_total{{reason="{reason}"}}' in metrics
        rejected = api.get("/api/v1/status").json()["checkpoints"]["rejected"]
        assert {r["reason"] for r in rejected} == {
            "malformed",
            "other-chain",
            "unknown-key",
            "bad-signature",
        }
        # Ignored, never trusted: nothing was compared, both keep serving.
        assert a.guard.state is CheckpointState.OK and a.refusal() is None
        assert all(p["height"] is None for p in a.guard.to_json()["peers"] if p["org"] == victim)
    finally:
        a.stop()
        b.stop()
