"""Mutual TLS from a peer to NATS: a real nats-server that requires client
certificates (``verify: true``) orders a peer's transactions when the peer presents
the certificate named by its environment, and refuses it, with a clear error, when it
presents none."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.cli.bench import bench_node, endorse_puts
from healthledger.ordering.jetstream import JetStreamOrderer
from healthledger.ordering.nats_cluster import find_nats_server, free_port
from healthledger.ordering.nats_tls import ENV_CA, ENV_CERT, ENV_KEY, client_tls
from healthledger.ordering.orderer import Batch, OrderingError
from tests.support.pki import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A consortium CA, the NATS server's certificate and a peer's client certificate."""
    return make_pki(tmp_path_factory.mktemp("pki"), "nats")


@pytest.fixture(scope="module")
def tls_server(pki: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One JetStream nats-server that requires a client certificate; its URL."""
    folder = tmp_path_factory.mktemp("nats-tls")
    port = free_port()
    config = folder / "server.conf"
    config.write_text(
        f"""
listen: 127.0.0.1:{port}
server_name: tls-test
jetstream {{ store_dir: "{folder / "js"}", sync_interval: always }}
tls {{
  cert_file: "{pki["server"]}"
  key_file: "{pki["server_key"]}"
  ca_file: "{pki["ca"]}"
  verify: true
  timeout: 2
}}
""",
        encoding="utf-8",
    )
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen([find_nats_server(), "-c", str(config)], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"nats-server did not start: {(folder / 'server.log').read_text()}"
                    ) from None
                time.sleep(0.1)
        yield f"tls://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)
        log.close()


class Collected:
    def __init__(self) -> None:
        self.tx_ids: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, batch: Batch) -> None:
        with self._cond:
            self.tx_ids += [tx.tx_id for tx in batch.transactions]
            self._cond.notify_all()

    def wait(self, count: int) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.tx_ids) >= count, 60)


def _orderer(url: str, stream: str) -> JetStreamOrderer:
    return JetStreamOrderer(
        servers=[url],
        stream=stream,
        subject_prefix=f"hl.{stream.lower()}",
        replicas=1,
        max_block_tx=4,
        batch_timeout_s=0.02,
        connect_timeout_s=4.0,
    )


def test_a_peer_with_its_client_certificate_orders_through_mutual_tls(
    tls_server: str, pki: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_CA, str(pki["ca"]))
    monkeypatch.setenv(ENV_CERT, str(pki["client"]))
    monkeypatch.setenv(ENV_KEY, str(pki["client_key"]))
    node = bench_node(tmp_path / "data", synchronous="OFF")
    try:
        transactions = endorse_puts(node, 6)
    finally:
        node.stop()
    collected = Collected()
    orderer = _orderer(tls_server, "T_MTLS")
    orderer.start(collected)
    try:
        assert orderer.submit_many(transactions) == [None] * len(transactions)
        assert collected.wait(len(transactions))
    finally:
        orderer.stop()
    assert collected.tx_ids == [tx.tx_id for tx in transactions]


def test_a_peer_without_a_client_certificate_is_refused_with_a_clear_error(
    tls_server: str, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_CA, str(pki["ca"]))
    monkeypatch.delenv(ENV_CERT, raising=False)
    monkeypatch.delenv(ENV_KEY, raising=False)
    orderer = _orderer(tls_server, "T_NO_CERT")
    with pytest.raises(OrderingError, match="NATS is unavailable"):
        orderer.start(Collected())
    orderer.stop()


def test_client_tls_settings_from_the_environment(pki: dict[str, Path], tmp_path: Path) -> None:
    assert client_tls({}) is None
    assert client_tls({ENV_CA: str(pki["ca"])}) is not None
    with pytest.raises(OrderingError, match="needs both"):
        client_tls({ENV_CERT: str(pki["client"])})
    with pytest.raises(OrderingError, match="cannot read the NATS CA file"):
        client_tls({ENV_CA: str(tmp_path / "missing.pem")})
    with pytest.raises(OrderingError, match="cannot load the NATS client certificate"):
        client_tls({ENV_CERT: str(pki["client"]), ENV_KEY: str(pki["server_key"])})
