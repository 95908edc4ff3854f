"""Console login outside the demo, in Chromium: a hospital's new admin made their own
key (``identity new``), was registered on chain and enrolled on the node with a
password (``staff key`` and ``staff add``); they log in with the password and revoke a
leaver, a transaction signed with their own key, which the node's keystore does not
hold. A wrong password and too many attempts are refused with a clear message; a
logged-out session signs nothing more."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Page, expect

from healthledger.apps.registry import installed_contracts
from healthledger.crypto.certs import load_certificate
from healthledger.crypto.enrolment import issue_from_request, load_request
from healthledger.crypto.keys import verify_signature
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.staff import operator_key, staff_store
from healthledger.web.console import create_console
from healthledger.web.staff_login import MAX_FAILURES_PER_IDENTITY
from tests.support.screens import phone_overflow, shoot
from tests.support.served import in_process

HOSPITAL = "gz-first-hospital"
STAFF = f"{HOSPITAL}/ops-admin"
LEAVER = f"{HOSPITAL}/leaver"
PASSWORD = "correct horse battery staple"


def enrol(node: EmbeddedNode, folder: Path, name: str, role: str) -> Path:
    """``identity new`` where the person is; the hospital's admin issues and registers
    the certificate (here with the CA key the test node holds); the key file."""
    made = in_process(
        "identity", "new", "--org", HOSPITAL, "--name", name, "--role", role,
        "--out", str(folder), "--passphrase-file", str(folder / "passphrase"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    ca = node.keystore.cas[HOSPITAL]
    now = int(time.time() * 1000)
    cert = issue_from_request(
        load_request((folder / f"{name}.csr.pem").read_bytes()),
        ca_pem=ca.cert_pem,
        ca_key=ca.key,
        not_before_ms=now - 60_000,
        not_after_ms=now + 86_400_000,
        serial=now,
    )
    (folder / f"{name}.cert.pem").write_text(cert.pem)
    node.invoke(f"{HOSPITAL}/admin", "membership", "register_identity", {"cert": cert.pem})
    return folder / f"{name}.key.pem"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node of the demo's organisations, its ops admin enrolled as staff."""
    created = EmbeddedNode.create(
        tmp_path_factory.mktemp("node") / "data",
        contracts=installed_contracts(),
        plans=DEMO_ORGS,
        batch_timeout_s=0.005,
    )
    created.start()
    yield created
    created.stop()


@pytest.fixture(scope="module")
def person(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder where the staff made their keys."""
    return tmp_path_factory.mktemp("person")


@pytest.fixture(scope="module")
def staff_key(node: EmbeddedNode, person: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator key file, and the ops admin enrolled with it through the CLI."""
    (person / "passphrase").write_text("the key's own passphrase\n")
    (person / "password").write_text(PASSWORD + "\n")
    key_file = enrol(node, person, "ops-admin", "admin")
    enrol(node, person, "leaver", "doctor")
    operator = tmp_path_factory.mktemp("operator") / "staff.key"
    made = in_process("staff", "key", str(operator))
    assert made.returncode == 0, made.stderr
    added = in_process(
        "staff", "add", STAFF, "--data", str(node.data_dir), "--key", str(key_file),
        "--passphrase-file", str(person / "passphrase"),
        "--password-file", str(person / "password"), "--staff-key", str(operator),
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    return operator


@pytest.fixture(scope="module")
def base_url(node: EmbeddedNode, staff_key: Path) -> Iterator[str]:
    """The console without demo custody, its staff logging in with passwords."""
    key = operator_key(staff_key)
    assert key is not None
    app = create_console(
        node, demo_custody=False, staff=staff_store(node.data_dir, operator_key=key)
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off",
        timeout_graceful_shutdown=1,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="console-server", daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the console did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def log_in(page: Page, identity: str, password: str, *, here: bool = False) -> None:
    """Fill in and send the login form (``here``: the one the page shows already)."""
    if not here:
        page.goto("/login")
    page.get_by_label("Identity (organisation/name)").fill(identity)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_staff_member_logs_in_and_signs_with_their_own_key(
    page: Page, node: EmbeddedNode, person: Path
) -> None:
    assert node.keystore.get(STAFF) is None  # not demo custody: the node never had it
    page.goto("/consortium")
    expect(page).to_have_url(re.compile(r"/login\?next=/consortium$"))
    expect(page.get_by_text("Demo custody", exact=False)).to_have_count(0)
    shoot(page, "staff-login")
    assert phone_overflow(page) == 0

    log_in(page, STAFF, PASSWORD, here=True)
    viewer = page.get_by_test_id("viewer")
    expect(viewer).to_have_text("Guangzhou First People's Hospital · admin")
    expect(viewer).to_have_attribute("title", STAFF)
    expect(page).to_have_url(re.compile(r"/consortium$"))
    page.get_by_label("Identity", exact=True).select_option(LEAVER)
    page.get_by_label("Reason").fill("left the hospital")
    page.get_by_role("button", name="Revoke").click()
    outcome = page.locator("#outcome")
    expect(outcome).to_contain_text(f"Revoked {LEAVER}")
    shoot(page, "staff-revoked")

    tx_id = str(page.locator("#outcome a", has_text="transaction").get_attribute("href"))
    tx, _ = node.peer.transaction(tx_id.rsplit("/", 1)[-1])
    assert (tx.proposal.creator, tx.proposal.function) == (STAFF, "revoke_identity")
    # Signed with the key made in the person's folder, which only the session unlocked.
    cert = load_certificate((person / "ops-admin.cert.pem").read_bytes())
    signed = tx.signed_proposal
    verify_signature(cert.public_key, bytes(signed.signature), signed.signed_bytes)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/consortium")
    expect(page).to_have_url(re.compile(r"/login\?next=/consortium$"))


def test_wrong_password_then_too_many_attempts_are_refused(page: Page) -> None:
    log_in(page, STAFF, "not the password at all")
    expect(page.get_by_role("alert")).to_have_text("Wrong identity or password.")
    expect(page.get_by_test_id("viewer")).to_have_count(0)
    shoot(page, "staff-wrong-password")
    for _ in range(MAX_FAILURES_PER_IDENTITY - 1):
        log_in(page, STAFF, "still not the password")
    # Now even the right password waits: the limit is per identity.
    log_in(page, STAFF, PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text(
        "Too many failed logins for this identity: try again in"
    )
    expect(page.get_by_test_id("viewer")).to_have_count(0)
    shoot(page, "staff-rate-limited")
    assert phone_overflow(page) == 0
