"""HTTPS between peers: ``healthledger node --tls-cert --tls-key`` serves its API over
TLS, a client trusting the consortium CA (``HEALTHLEDGER_PEER_CA``) reaches it and one
that does not is refused; a gateway gathers another organisation's endorsement from
an ``https://`` URL in its directory. Bad settings stop with one line."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from healthledger.api.app import create_api
from healthledger.cli.apps import installed_contracts
from healthledger.node.errors import NodeError
from healthledger.node.gateway import Gateway, GatewayError
from healthledger.node.peer_directory import PeerDirectory
from healthledger.node.peer_tls import ENV_CA, ENV_CERT, ENV_KEY, peer_client
from healthledger.ordering.nats_cluster import free_port
from tests.integration.test_gateway import (
    CDC,
    COMMISSION,
    LocalConsortium,
    define_regions_proposal,
    serve,
)
from tests.support.cli import healthledger
from tests.support.founding import found
from tests.support.pki import make_pki

pytestmark = pytest.mark.slow

WAIT_S = 90.0


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The consortium's CA, a peer's server certificate and a client certificate."""
    return make_pki(tmp_path_factory.mktemp("pki"), "peer")


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalConsortium]:
    """Three organisations' peers in this process over a real NATS cluster."""
    network = LocalConsortium(tmp_path_factory.mktemp("peer-tls"))
    try:
        yield network.start()
    finally:
        network.stop()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A ledger folder founded and closed, for ``healthledger node``."""
    folder = tmp_path / "node"
    found(folder, contracts=installed_contracts()).stop()
    return folder


def test_a_node_serves_https_to_clients_that_trust_its_ca(data: Path, pki: dict[str, Path]) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "healthledger.cli.main",
            "node",
            "--data",
            str(data),
            "--port",
            str(port),
            "--tls-cert",
            str(pki["server"]),
            "--tls-key",
            str(pki["server_key"]),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"https://127.0.0.1:{port}/api/v1/status"
    try:
        with peer_client(timeout=5.0, environ={ENV_CA: str(pki["ca"])}) as trusting:
            deadline = time.monotonic() + WAIT_S
            while True:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                try:
                    answer = trusting.get(url)
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, "the node never served HTTPS"
                    time.sleep(0.2)
            assert answer.status_code == 200 and answer.json()["genesis_hash"]
        # Without the consortium CA the server's certificate is not trusted.
        with (
            peer_client(timeout=5.0, environ={}) as stranger,
            pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            stranger.get(url)
        # Plain HTTP to the TLS port gets no answer.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=5.0)
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()


def test_bad_tls_settings_stop_the_node_with_one_line(data: Path, pki: dict[str, Path]) -> None:
    half = healthledger("node", "--data", str(data), "--tls-cert", str(pki["server"]))
    assert half.returncode == 2 and "--tls-cert and --tls-key go together" in half.stderr
    mismatched = healthledger(
        "node",
        "--data",
        str(data),
        "--tls-cert",
        str(pki["server"]),
        "--tls-key",
        str(pki["client_key"]),
    )
    assert mismatched.returncode == 2, mismatched.stderr
    assert "cannot serve TLS with certificate" in mismatched.stderr
    for result in (half, mismatched):
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_half_given_peer_client_certificate_is_refused_in_one_line(
    pki: dict[str, Path],
) -> None:
    with pytest.raises(NodeError, match=f"needs both {ENV_CERT} and {ENV_KEY}"):
        peer_client(timeout=1.0, environ={ENV_CERT: str(pki["client"])})
    with pytest.raises(NodeError, match="cannot read the peer CA file"):
        peer_client(timeout=1.0, environ={ENV_CA: str(pki["ca"]) + ".missing"})


def test_a_gateway_gathers_an_endorsement_over_https(
    consortium: LocalConsortium, pki: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CDC's peer also serves its API over TLS; the gateway's directory names that.
    server, thread, https_url = serve(
        create_api(consortium.nodes[CDC], demo_custody=True),
        "cdc-tls",
        tls=(pki["server"], pki["server_key"]),
    )
    assert https_url.startswith("https://")
    directory = PeerDirectory({COMMISSION: consortium.urls[COMMISSION], CDC: https_url})
    state = consortium.nodes[COMMISSION].peer.store
    try:
        monkeypatch.setenv(ENV_CA, str(pki["ca"]))
        trusting = Gateway(state=state, directory=lambda: directory, timeout_s=WAIT_S)
        try:
            tx = trusting.endorse(define_regions_proposal(consortium))
        finally:
            trusting.close()
        assert {e.endorser for e in tx.endorsements} == {f"{COMMISSION}/peer0", f"{CDC}/peer0"}

        monkeypatch.delenv(ENV_CA)
        stranger = Gateway(state=state, directory=lambda: directory, timeout_s=WAIT_S)
        try:
            with pytest.raises(GatewayError, match=CDC) as refused:
                stranger.endorse(define_regions_proposal(consortium))
        finally:
            stranger.close()
        assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value)
    finally:
        server.should_exit = True
        thread.join(15)
