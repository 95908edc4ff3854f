"""Joining from a snapshot: a wiped peer, and a new peer admitted on chain first, start
from a snapshot served by an existing peer, verify it, and follow the stream to the
same head as everyone; a snapshot with one block or the manifest changed, or without
a majority's signed checkpoints, is refused with a one-line error and nothing installed.

Real consortium peers over a real three-server NATS JetStream cluster, serving the
real API over HTTP; ``healthledger network join`` runs as a real process."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import Response

from healthledger.crypto.canonical import canonical_json, parse_canonical
from healthledger.node.consortium import issue_identity
from healthledger.node.embedded import KEYSTORE_FILE, LEDGER_FILE, NODE_FILE
from healthledger.node.keystore import Keystore
from healthledger.node.snapshot import SnapshotError
from healthledger.node.snapshot_install import install_snapshot, stream_check
from tests.integration.test_gateway import (
    CDC,
    COMMISSION,
    HOSPITAL,
    WAIT_S,
    LocalConsortium,
    serve,
)
from tests.support.cli import healthledger
from tests.support.gs1 import gln
from tests.support.members import keystore_reads

CHECKPOINT_EVERY = 2


class Traffic:
    """Registers locations through the peers, one after another, so blocks keep coming."""

    numbers = itertools.count(1)
    """Shared by every Traffic, so no two register the same location."""

    def __init__(self, network: LocalConsortium) -> None:
        self.network = network

    def run(self, n: int) -> None:
        """Commit ``n`` more transactions, round robin over the running peers."""
        for _ in range(n):
            number = next(self.numbers)
            orgs = sorted(o for o in self.network.nodes if o in self.network.folders)
            org = orgs[number % len(orgs)]
            answer = self.network.demo_invoke(
                org,
                f"{org}/admin",
                "supply",
                "register_location",
                {"gln": gln(org, number), "name": f"site {number}"},
            )
            assert answer.status_code == 200, answer.text

    def meanwhile(self, until: threading.Event) -> threading.Thread:
        """Keep committing on a thread until ``until`` is set."""

        def loop() -> None:
            while not until.is_set():
                self.run(1)

        thread = threading.Thread(target=loop, name="traffic", daemon=True)
        thread.start()
        return thread


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """Three organisations signing a checkpoint every two blocks, with some history."""
    consortium = LocalConsortium(
        tmp_path_factory.mktemp("snapshot"), checkpoint_every=CHECKPOINT_EVERY
    )
    try:
        consortium.start()
        Traffic(consortium).run(8)
        consortium.wait_common_head(8)
        yield consortium
    finally:
        consortium.stop()


def wait_snapshot(url: str, reads: httpx.Auth) -> bytes:
    """The snapshot a peer serves (to a member), once a majority has signed one of its
    checkpoints."""
    deadline = time.monotonic() + WAIT_S
    while True:
        answer = httpx.get(f"{url}/api/v1/snapshot", timeout=WAIT_S, auth=reads)
        if answer.status_code == 200:
            return answer.content
        assert answer.status_code == 503, answer.text
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)


@pytest.fixture(scope="module")
def snapshot(network: LocalConsortium) -> bytes:
    """A snapshot served by the commission's peer."""
    return wait_snapshot(network.urls[COMMISSION], keystore_reads(network.keystore(COMMISSION)))


def joiner_folder(root: Path, keystore: Keystore) -> Path:
    """An empty peer folder holding ``keystore``."""
    root.mkdir(parents=True)
    keystore.save(root / KEYSTORE_FILE)
    return root


def test_the_snapshot_is_vouched_for_by_a_majority(
    network: LocalConsortium, snapshot: bytes
) -> None:
    header, *blocks = snapshot.rstrip(b"\n").split(b"\n")
    first = parse_canonical(header)
    manifest = first["manifest"]
    assert len(blocks) == manifest["height"] + 1
    assert manifest["height"] % CHECKPOINT_EVERY == 0
    assert len(first["checkpoints"]) >= 2
    store = network.nodes[CDC].peer.store
    head = store.header(manifest["height"])
    assert (manifest["block_hash"], manifest["state_root"]) == (head.hash, head.state_root)
    assert (
        manifest["content_hash"] == hashlib.sha256(b"".join(b + b"\n" for b in blocks)).hexdigest()
    )


def test_a_wiped_peer_joins_from_a_snapshot_and_reaches_the_same_head(
    network: LocalConsortium, tmp_path: Path
) -> None:
    traffic = Traffic(network)
    keystore = network.keystore(HOSPITAL)
    network.stop_peer(HOSPITAL)  # its machine is lost; the organisation keeps its keys
    folder = joiner_folder(tmp_path / "hospital-new", keystore)
    joined = healthledger(
        "network",
        "join",
        "--org",
        HOSPITAL,
        "--from",
        network.urls[COMMISSION],
        "--data",
        str(folder),
        "--genesis",
        str(network.root / "peers" / "genesis.json"),
        "--jetstream",
        ",".join(network.cluster.urls),
    )
    assert joined.returncode == 0, joined.stderr
    assert "joined:" in joined.stdout
    assert "not checked" not in joined.stdout
    assert json.loads((folder / NODE_FILE).read_text())["org"] == HOSPITAL
    assert (folder / "directory.json").is_file()
    network.start_peer(HOSPITAL, folder)
    traffic.run(4)
    height, block_hash = network.wait_common_head(network.nodes[COMMISSION].peer.store.height())
    assert network.heads()[HOSPITAL] == (height, block_hash)


def test_a_new_peer_is_admitted_on_chain_then_joins(
    network: LocalConsortium, tmp_path: Path
) -> None:
    cdc = network.keystore(CDC)
    peer1 = issue_identity(cdc, org=CDC, name="peer1", role="peer", now_ms=int(time.time() * 1000))
    admin = cdc.get(f"{CDC}/admin")
    assert admin is not None
    keys = Keystore({admin.id: admin, peer1.id: peer1}, dict(cdc.vault_keys), cas=dict(cdc.cas))
    folder = joiner_folder(tmp_path / "cdc-peer1", keys)
    done = threading.Event()
    # Checkpoints after the registration come only with new blocks.
    thread = Traffic(network).meanwhile(done)
    try:
        joined = healthledger(
            "network", "join", "--org", CDC, "--from", network.urls[CDC], "--data", str(folder)
        )
    finally:
        done.set()
        thread.join(WAIT_S)
    assert joined.returncode == 0, joined.stderr
    assert f"registered {CDC}/peer1 on the ledger in block" in joined.stdout
    record = network.nodes[COMMISSION].peer.store.get_state("membership", f"identity/{CDC}/peer1")
    assert record is not None and record.value["role"] == "peer"
    network.start_peer(f"{CDC}-peer1", folder)
    try:
        Traffic(network).run(3)
        network.wait_common_head(network.nodes[COMMISSION].peer.store.height())
    finally:
        network.stop_peer(f"{CDC}-peer1")


# --- tampered snapshots ----------------------------------------------------------


def _split(snapshot: bytes) -> tuple[dict[str, object], list[bytes]]:
    header, *blocks = snapshot.rstrip(b"\n").split(b"\n")
    first = parse_canonical(header)
    assert isinstance(first, dict)
    return first, blocks


def _join(first: dict[str, object], blocks: list[bytes], *, rehash: bool = True) -> bytes:
    manifest = dict(first["manifest"])  # type: ignore[call-overload]
    if rehash:
        manifest["content_hash"] = hashlib.sha256(b"".join(b + b"\n" for b in blocks)).hexdigest()
    head = canonical_json({**first, "manifest": manifest})
    return b"".join(line + b"\n" for line in [head, *blocks])


def _change_block(snapshot: bytes) -> bytes:
    first, blocks = _split(snapshot)
    block = parse_canonical(blocks[3])
    block["transactions"][0]["signed_proposal"]["proposal"]["args"]["name"] = "elsewhere"
    blocks[3] = canonical_json(block)
    return _join(first, blocks)


def _change_block_keep_hash(snapshot: bytes) -> bytes:
    first, blocks = _split(snapshot)
    block = parse_canonical(blocks[2])
    block["header"]["state_root"] = "ef" * 32
    blocks[2] = canonical_json(block)
    return _join(first, blocks, rehash=False)


def _manifest(field: str, value: object) -> Callable[[bytes], bytes]:
    def tamper(snapshot: bytes) -> bytes:
        first, blocks = _split(snapshot)
        first["manifest"] = {**first["manifest"], field: value}  # type: ignore[dict-item]
        return _join(first, blocks, rehash=field != "content_hash")

    return tamper


def _drop_last_block(snapshot: bytes) -> bytes:
    first, blocks = _split(snapshot)
    return _join(first, blocks[:-1])


def _one_checkpoint(snapshot: bytes) -> bytes:
    first, blocks = _split(snapshot)
    notes = dict(first["checkpoints"])  # type: ignore[call-overload]
    first["checkpoints"] = dict([sorted(notes.items())[0]])
    return _join(first, blocks)


def _forged_checkpoints(snapshot: bytes) -> bytes:
    first, blocks = _split(snapshot)
    notes = dict(first["checkpoints"])  # type: ignore[call-overload]
    first["checkpoints"] = {
        org: note.replace("block ", "block 0", 1)[:-2] for org, note in notes.items()
    }
    return _join(first, blocks)


def _truncated(snapshot: bytes) -> bytes:
    return snapshot[:-10]


TAMPERINGS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "one block changed": (_change_block, "block 3: "),
    "one block changed, content hash kept": (_change_block_keep_hash, "block 2: "),
    "manifest block hash": (_manifest("block_hash", "ab" * 32), "does not match the manifest"),
    "manifest state root": (_manifest("state_root", "cd" * 32), "does not match the manifest"),
    "manifest height lowered": (_manifest("height", 2), "blocks after its height 2"),
    "manifest content hash": (_manifest("content_hash", "00" * 32), "content hash does not match"),
    "manifest extra field": (_manifest("trusted", True), "exactly the fields"),
    "last block dropped": (_drop_last_block, "not up to"),
    "one checkpoint only": (_one_checkpoint, "vouched for by 1 of 3 organisations"),
    "checkpoints forged": (_forged_checkpoints, "vouched for by 0 of 3 organisations"),
    "truncated stream": (_truncated, "truncated"),
}


@pytest.mark.parametrize("case", sorted(TAMPERINGS))
def test_a_tampered_snapshot_is_refused_and_nothing_installed(
    network: LocalConsortium, snapshot: bytes, tmp_path: Path, case: str
) -> None:
    tamper, reason = TAMPERINGS[case]
    folder = joiner_folder(tmp_path / "joiner", network.keystore(HOSPITAL))
    spoiled = tamper(snapshot)
    assert spoiled != snapshot
    with pytest.raises(SnapshotError, match=reason.replace("(", r"\(")) as refused:
        install_snapshot(iter([spoiled[:1000], spoiled[1000:]]), data_dir=folder, org=HOSPITAL)
    assert "\n" not in str(refused.value)
    assert sorted(p.name for p in folder.iterdir()) == [KEYSTORE_FILE]


@pytest.mark.parametrize(
    ("position", "reason"),
    [(1, "stream position 1"), (10**9, "holds no message 1000000000")],
)
def test_a_stream_position_that_does_not_follow_the_last_block_is_refused(
    network: LocalConsortium, snapshot: bytes, tmp_path: Path, position: int, reason: str
) -> None:
    # The checkpoints do not cover the position: the stream itself is the judge.
    folder = joiner_folder(tmp_path / "joiner", network.keystore(HOSPITAL))
    spoiled = _manifest("stream_position", position)(snapshot)
    with pytest.raises(SnapshotError, match=reason):
        install_snapshot(
            iter([spoiled]),
            data_dir=folder,
            org=HOSPITAL,
            position_check=stream_check(network.cluster.urls),
        )
    assert sorted(p.name for p in folder.iterdir()) == [KEYSTORE_FILE]


def test_the_untampered_snapshot_installs(
    network: LocalConsortium, snapshot: bytes, tmp_path: Path
) -> None:
    # The control for the cases above: the same bytes, unchanged, are accepted.
    folder = joiner_folder(tmp_path / "joiner", network.keystore(HOSPITAL))
    manifest = install_snapshot(
        iter([snapshot]),
        data_dir=folder,
        org=HOSPITAL,
        position_check=stream_check(network.cluster.urls),
    )
    assert (folder / LEDGER_FILE).is_file() and (folder / NODE_FILE).is_file()
    assert manifest.height == parse_canonical(snapshot.split(b"\n")[0])["manifest"]["height"]


def test_another_chains_genesis_is_refused(
    network: LocalConsortium, snapshot: bytes, tmp_path: Path
) -> None:
    folder = joiner_folder(tmp_path / "joiner", network.keystore(HOSPITAL))
    with pytest.raises(SnapshotError, match="block 0: not the consortium's genesis"):
        install_snapshot(iter([snapshot]), data_dir=folder, org=HOSPITAL, genesis=b"{}")


def test_a_keystore_with_other_organisations_keys_is_refused(
    network: LocalConsortium, snapshot: bytes, tmp_path: Path
) -> None:
    mixed = network.keystore(HOSPITAL)
    for entry in network.keystore(CDC).entries():
        mixed.add(entry)
    folder = joiner_folder(tmp_path / "joiner", mixed)
    with pytest.raises(SnapshotError, match=f"holds keys of {CDC}"):
        install_snapshot(iter([snapshot]), data_dir=folder, org=HOSPITAL)


def test_the_join_command_refuses_a_tampered_snapshot_in_one_line(
    network: LocalConsortium, snapshot: bytes, tmp_path: Path
) -> None:
    app = FastAPI()
    spoiled = _change_block(snapshot)

    @app.get("/api/v1/consortium/organisations")
    def organisations() -> Response:  # public: join asks for them first
        return Response(
            httpx.get(f"{network.urls[COMMISSION]}/api/v1/consortium/organisations").content,
            media_type="application/json",
        )

    @app.get("/api/v1/consortium/identities")
    def identities() -> Response:
        return Response(
            httpx.get(
                f"{network.urls[COMMISSION]}/api/v1/consortium/identities",
                auth=keystore_reads(network.keystore(COMMISSION)),
            ).content,
            media_type="application/json",
        )

    @app.get("/api/v1/snapshot")
    def served() -> Response:
        height = parse_canonical(spoiled.split(b"\n")[0])["manifest"]["height"]
        return Response(
            spoiled, media_type="application/x-ndjson", headers={"X-Snapshot-Height": str(height)}
        )

    server, thread, url = serve(app, "hostile-snapshot")
    try:
        folder = joiner_folder(tmp_path / "joiner", network.keystore(HOSPITAL))
        joined = healthledger(
            "network", "join", "--org", HOSPITAL, "--from", url, "--data", str(folder)
        )
    finally:
        server.should_exit = True
        thread.join(15)
    assert joined.returncode == 1
    lines = joined.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: block 3: "), joined.stderr
    assert "Traceback" not in joined.stderr
    assert sorted(p.name for p in folder.iterdir()) == [KEYSTORE_FILE]
    shutil.rmtree(folder)
