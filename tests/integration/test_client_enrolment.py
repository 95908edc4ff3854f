"""Identities outside demo custody, end to end over HTTP: a person makes a key and a
request (``identity new``), the hospital's admin registers it with the hospital's CA
key from a file (``identity register``), the new doctor reports a FHIR bundle
(``epidemic report``) and the receipt's proof is checked offline. Then each bad
input: a wrong passphrase, a second registration, a request of another organisation,
a replayed proposal, an expired or foreign certificate, a rotated or revoked key."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shlex
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from healthledger import verify
from healthledger.apps.epidemic.intake import from_fhir_bundle
from healthledger.apps.epidemic.provision import configure
from healthledger.apps.epidemic.regions import RegionTable
from healthledger.apps.registry import installed_contracts
from healthledger.client import (
    AccessDenied,
    AsyncClient,
    Client,
    DuplicateTransaction,
    Evidence,
    Identity,
    IdentityError,
    Rejected,
    SignatureRequired,
)
from healthledger.client.enrolment import (
    EnrolmentError,
    new_identity,
    register,
    revoke,
    rotate,
)
from healthledger.crypto.certs import issue_ca_certificate, load_certificate
from healthledger.crypto.enrolment import (
    certificate_request,
    decrypt_key,
    encrypt_key,
    issue_from_request,
    load_request,
)
from healthledger.crypto.keys import SigningKey
from healthledger.ledger.transaction import Transaction
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.conftest import TEST_REGIONS
from tests.apps.epidemic.support import person
from tests.apps.epidemic.test_intake import bundle
from tests.support.founding import found
from tests.support.seam import epidemic_seam
from tests.support.served import in_process, served

HOSPITAL = "gz-first-hospital"
PASSPHRASE = "a passphrase of the test"


def healthledger(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command, in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "healthledger.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node with every installed application, epidemic reporting configured."""
    created = found(
        tmp_path_factory.mktemp("node") / "data",
        contracts=installed_contracts(),
        batch_timeout_s=0.005,
    )
    created.start()
    configure(epidemic_seam(created), RegionTable.from_source(TEST_REGIONS))
    yield created
    created.stop()


@pytest.fixture(scope="module")
def url(node: EmbeddedNode) -> Iterator[str]:
    """The node's API over HTTP, demo custody off."""
    with served(node) as address:
        yield address


@pytest.fixture(scope="module")
def admin_files(node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The hospital's admin key and CA key taken out of the demo keystore with
    ``identity export``, into a folder of the admin's, with a passphrase file."""
    folder = tmp_path_factory.mktemp("admin")
    (folder / "passphrase").write_text(PASSPHRASE + "\n")
    data = str(node.data_dir)
    common = ("--data", data, "--out", str(folder), "--passphrase-file", str(folder / "passphrase"))
    for args in ((f"{HOSPITAL}/admin",), ("--ca", HOSPITAL)):
        done = in_process("identity", "export", *args, *common)
        assert done.returncode == 0, done.stderr
    return folder


def admin_client(url: str, admin_files: Path) -> Client:
    """The hospital admin's client, signing with the exported key."""
    return Client.signing(
        url,
        key_file=admin_files / "admin.key.pem",
        passphrase_file=admin_files / "passphrase",
    )


def ca_key(admin_files: Path) -> SigningKey:
    """The hospital's CA key, from its encrypted file."""
    return decrypt_key((admin_files / f"{HOSPITAL}-ca.key.pem").read_bytes(), PASSPHRASE)


def enrolled(url: str, admin_files: Path, folder: Path, name: str, role: str = "doctor") -> Path:
    """A new identity registered through the library; its key file."""
    made = new_identity(org=HOSPITAL, role=role, name=name, passphrase=PASSPHRASE)
    with admin_client(url, admin_files) as admin:
        cert, _ = register(admin, load_request(made.request_pem), ca_key=ca_key(admin_files))
    (folder / f"{name}.key.pem").write_bytes(made.key_pem)
    (folder / f"{name}.cert.pem").write_text(cert.pem)
    return folder / f"{name}.key.pem"


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The error line of a refused command: exactly one line, no traceback."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_an_identity_enrolled_on_the_command_line_reports_a_bundle_proved_offline(
    node: EmbeddedNode, url: str, admin_files: Path, tmp_path: Path
) -> None:
    person = tmp_path / "person"
    person.mkdir()
    (person / "passphrase").write_text(PASSPHRASE + "\n")
    made = in_process(
        "identity", "new", "--org", HOSPITAL, "--name", "dr-cli", "--role", "doctor",
        "--attribute", "region=440104",
        "--out", str(person), "--passphrase-file", str(person / "passphrase"),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    key_file, request_file = person / "dr-cli.key.pem", person / "dr-cli.csr.pem"
    assert key_file.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert key_file.stat().st_mode & 0o077 == 0

    registered = healthledger(
        "identity", "register", str(request_file),
        "--ca-key", str(admin_files / f"{HOSPITAL}-ca.key.pem"),
        "--ca-passphrase-file", str(admin_files / "passphrase"),
        "--identity", str(admin_files / "admin.key.pem"),
        "--passphrase-file", str(admin_files / "passphrase"),
        "--url", url,
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    cert = load_certificate((person / "dr-cli.cert.pem").read_bytes())
    with Client(url, identity=member_of(node)) as reader:  # identities are members'
        record = reader.registered(f"{HOSPITAL}/dr-cli")
    assert record is not None
    assert (record["fingerprint"], record["role"], record["status"]) == (
        cert.fingerprint,
        "doctor",
        "active",
    )
    assert dict(cert.attributes) == {"region": "440104"}

    report = tmp_path / "case.json"
    report.write_text(json.dumps(bundle(301)))
    evidence_file = tmp_path / "evidence.json"
    reported = healthledger(
        "epidemic", "report", str(report),
        "--identity", str(key_file), "--passphrase-file", str(person / "passphrase"),
        "--url", url, "--evidence", str(evidence_file),
    )  # fmt: skip
    assert reported.returncode == 0, reported.stderr
    assert "report_case: committed in block" in reported.stdout
    assert "proof: verified offline" in reported.stdout

    evidence = json.loads(evidence_file.read_text())
    # Offline, with nothing but the public verification code and what was kept.
    verify.receipt(
        receipt=evidence["receipt"],
        transaction=evidence["transaction"],
        header=evidence["header"],
        proof=evidence["proof"],
    )
    Evidence.from_json(evidence).verify()
    proposal = evidence["transaction"]["signed_proposal"]["proposal"]
    assert (proposal["creator"], proposal["function"]) == (f"{HOSPITAL}/dr-cli", "report_case")
    assert "Fhirname301" not in json.dumps(evidence)  # personal data never on chain
    tampered = json.loads(evidence_file.read_text())
    tampered["proof"]["leafIdx"] += 1
    with pytest.raises(verify.VerificationError):
        verify.receipt(**{k: tampered[k] for k in ("receipt", "transaction", "header", "proof")})


def test_a_second_registration_is_refused_in_one_line_and_stores_nothing(
    node: EmbeddedNode, url: str, admin_files: Path, tmp_path: Path
) -> None:
    made = new_identity(org=HOSPITAL, role="lab", name="lab-twice", passphrase=PASSPHRASE)
    request = tmp_path / "lab-twice.csr.pem"
    request.write_text(made.request_pem)
    args = (
        "identity", "register", str(request),
        "--ca-key", str(admin_files / f"{HOSPITAL}-ca.key.pem"),
        "--ca-passphrase-file", str(admin_files / "passphrase"),
        "--identity", str(admin_files / "admin.key.pem"),
        "--passphrase-file", str(admin_files / "passphrase"),
        "--url", url,
    )  # fmt: skip
    assert in_process(*args).returncode == 0
    height = node.peer.store.height()
    again = in_process(*args)
    assert again.returncode == 1
    assert "already registered" in one_line(again)
    assert node.peer.store.height() == height


def test_the_rotate_command_gives_a_registered_identity_its_new_key(
    node: EmbeddedNode, url: str, admin_files: Path, tmp_path: Path
) -> None:
    admin = (
        "--ca-key", str(admin_files / f"{HOSPITAL}-ca.key.pem"),
        "--ca-passphrase-file", str(admin_files / "passphrase"),
        "--identity", str(admin_files / "admin.key.pem"),
        "--passphrase-file", str(admin_files / "passphrase"),
        "--url", url,
    )  # fmt: skip
    requests = {}
    for made_for, name in (("first", "lab-rotated"), ("second", "lab-rotated"), ("never", "x")):
        made = new_identity(org=HOSPITAL, role="lab", name=name, passphrase=PASSPHRASE)
        (tmp_path / made_for).mkdir()
        requests[made_for] = tmp_path / made_for / f"{name}.csr.pem"
        requests[made_for].write_text(made.request_pem)
    assert in_process("identity", "register", str(requests["first"]), *admin).returncode == 0
    rotated = in_process("identity", "rotate", str(requests["second"]), *admin)
    assert rotated.returncode == 0, rotated.stderr
    assert f"{HOSPITAL}/lab-rotated rotated: committed in block" in rotated.stdout
    cert = load_certificate((tmp_path / "second" / "lab-rotated.cert.pem").read_bytes())
    with Client(url, identity=member_of(node)) as reader:
        record = reader.registered(f"{HOSPITAL}/lab-rotated")
    assert record is not None and record["fingerprint"] == cert.fingerprint
    never = in_process("identity", "rotate", str(requests["never"]), *admin)
    assert never.returncode == 1
    assert "is not registered" in one_line(never)


def test_a_wrong_passphrase_or_a_broken_bundle_is_one_line(
    url: str, admin_files: Path, tmp_path: Path
) -> None:
    (tmp_path / "wrong").write_text("not the passphrase\n")
    (tmp_path / "case.json").write_text(json.dumps(bundle(302)))
    done = in_process(
        "epidemic", "report", str(tmp_path / "case.json"),
        "--identity", str(admin_files / "admin.key.pem"),
        "--passphrase-file", str(tmp_path / "wrong"), "--url", url,
    )  # fmt: skip
    assert done.returncode == 2
    assert "wrong passphrase" in one_line(done)
    broken = bundle(302)
    del broken["entry"][1]["resource"]["code"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    refused = in_process(
        "epidemic", "report", str(tmp_path / "broken.json"),
        "--identity", str(admin_files / "admin.key.pem"),
        "--passphrase-file", str(admin_files / "passphrase"), "--url", url,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "entry[1].resource.code" in one_line(refused)


def test_a_request_of_another_organisation_or_a_foreign_ca_key_is_refused(
    node: EmbeddedNode, url: str, admin_files: Path
) -> None:
    height = node.peer.store.height()
    other = new_identity(
        org="sz-peoples-hospital", role="doctor", name="dr-x", passphrase=PASSPHRASE
    )
    own = new_identity(org=HOSPITAL, role="doctor", name="dr-y", passphrase=PASSPHRASE)
    with admin_client(url, admin_files) as admin:
        with pytest.raises(EnrolmentError, match="registers identities of gz-first-hospital only"):
            register(admin, load_request(other.request_pem), ca_key=ca_key(admin_files))
        with pytest.raises(EnrolmentError, match="not the key of"):
            register(admin, load_request(own.request_pem), ca_key=SigningKey.generate())
        assert admin.registered(f"{HOSPITAL}/dr-y") is None
        # Past the client's own checks, the contract refuses a name no proposal carries.
        badly_named = issue_from_request(
            load_request(
                certificate_request(
                    key=SigningKey.generate(), org=HOSPITAL, role="doctor", name="Dr Y"
                )
            ),
            ca_pem=admin.organisation(HOSPITAL)["ca_cert"],  # type: ignore[index]
            ca_key=ca_key(admin_files), not_before_ms=0, not_after_ms=2**42, serial=8,
        )  # fmt: skip
        with pytest.raises(Rejected, match="not an identity name"):
            admin.invoke("membership", "register_identity", {"cert": badly_named.pem})
    assert node.peer.store.height() == height


def test_a_replayed_proposal_is_refused_and_committed_once(
    node: EmbeddedNode, url: str, admin_files: Path, tmp_path: Path
) -> None:
    key_file = enrolled(url, admin_files, tmp_path, "dr-replay")
    identity = Identity.load(key_file, passphrase=PASSPHRASE)
    with Client(url, identity=identity) as client:
        call = client.propose(
            "epidemic", "report_case", _case_args(), transient={"patient": _patient(303)}
        )
        first = client.send(call)
        with pytest.raises(DuplicateTransaction):
            client.send(call)
    stored, _ = node.peer.transaction(first.tx_id)
    assert stored.tx_id == first.tx_id


def test_expired_and_foreign_certificates_are_refused(
    url: str, admin_files: Path, tmp_path: Path
) -> None:
    with Client(url) as reader:
        ca_pem = reader.organisation(HOSPITAL)["ca_cert"]  # type: ignore[index]
    # A certificate whose validity ended a day ago, for a key of its own.
    made = new_identity(org=HOSPITAL, role="doctor", name="dr-old", passphrase=PASSPHRASE)
    request = load_request(made.request_pem)
    expired = issue_from_request(
        request, ca_pem=ca_pem, ca_key=ca_key(admin_files), not_before_ms=0,
        not_after_ms=1_000_000, serial=77,
    )  # fmt: skip
    (tmp_path / "dr-old.key.pem").write_bytes(made.key_pem)
    (tmp_path / "dr-old.cert.pem").write_text(expired.pem)
    with pytest.raises(IdentityError, match="expired"):
        Identity.load(tmp_path / "dr-old.key.pem", passphrase=PASSPHRASE)
    with admin_client(url, admin_files) as admin:
        with pytest.raises(Rejected, match="not valid now"):
            admin.invoke("membership", "register_identity", {"cert": expired.pem})
        assert admin.registered(f"{HOSPITAL}/dr-old") is None

    # A certificate of another key.
    (tmp_path / "mixed.key.pem").write_bytes(encrypt_key(SigningKey.generate(), PASSPHRASE))
    (tmp_path / "mixed.cert.pem").write_text(expired.pem)
    with pytest.raises(IdentityError, match="not for this key"):
        Identity.load(tmp_path / "mixed.key.pem", passphrase=PASSPHRASE)

    # A certificate from a CA the consortium does not know, in the hospital's name.
    foreign_ca = SigningKey.generate()
    foreign_pem = issue_ca_certificate(
        org=HOSPITAL, key=foreign_ca, not_before_ms=0, not_after_ms=2**42
    )
    # The node's answer for a signer it does not know is a typed 403.
    stranger = new_identity(org=HOSPITAL, role="doctor", name="dr-nobody", passphrase=PASSPHRASE)
    cert = issue_from_request(
        load_request(stranger.request_pem), ca_pem=foreign_pem, ca_key=foreign_ca,
        not_before_ms=0, not_after_ms=2**42, serial=6,
    )  # fmt: skip
    identity = Identity(certificate=cert, key=decrypt_key(stranger.key_pem, PASSPHRASE))
    with Client(url, identity=identity) as client, pytest.raises(AccessDenied):
        client.invoke("epidemic", "report_case", _case_args(), transient={"patient": _patient(9)})


def test_a_rotated_key_replaces_the_old_one_and_a_revoked_identity_signs_nothing(
    url: str, admin_files: Path, tmp_path: Path
) -> None:
    old_key_file = enrolled(url, admin_files, tmp_path, "dr-rotate")
    old = Identity.load(old_key_file, passphrase=PASSPHRASE)
    fresh = new_identity(org=HOSPITAL, role="doctor", name="dr-rotate", passphrase=PASSPHRASE)
    with admin_client(url, admin_files) as admin:
        cert, _ = rotate(admin, load_request(fresh.request_pem), ca_key=ca_key(admin_files))
        with pytest.raises(EnrolmentError, match="is not registered"):
            rotate(
                admin,
                load_request(
                    new_identity(
                        org=HOSPITAL, role="doctor", name="dr-never", passphrase=PASSPHRASE
                    ).request_pem
                ),
                ca_key=ca_key(admin_files),
            )
    new = Identity(certificate=cert, key=decrypt_key(fresh.key_pem, PASSPHRASE))
    args, patient = _case_args(), {"patient": _patient(304)}
    with Client(url, identity=old) as client, pytest.raises(SignatureRequired):
        client.invoke("epidemic", "report_case", args, transient=patient)
    with Client(url, identity=new) as client:
        assert client.invoke("epidemic", "report_case", args, transient=patient).receipt.valid
    with admin_client(url, admin_files) as admin:
        revoke(admin, f"{HOSPITAL}/dr-rotate", reason="left the hospital")
        with pytest.raises(EnrolmentError, match="already revoked"):
            revoke(admin, f"{HOSPITAL}/dr-rotate", reason="again")
    with Client(url, identity=new) as client, pytest.raises(AccessDenied, match="revoked"):
        client.invoke("epidemic", "report_case", args, transient=patient)


def test_any_function_is_invoked_and_queried_from_the_command_line(
    url: str, admin_files: Path, tmp_path: Path
) -> None:
    key_file = enrolled(url, admin_files, tmp_path, "dr-invoke")
    signer = ("--identity", str(key_file), "--passphrase-file", str(admin_files / "passphrase"))
    queried = in_process(
        "query", "membership", "identity", "--args", json.dumps({"id": f"{HOSPITAL}/dr-invoke"}),
        "--url", url, *signer,
    )  # fmt: skip
    assert queried.returncode == 0, queried.stderr
    assert json.loads(queried.stdout)["status"] == "active"
    absent = in_process(
        "query", "supply", "product", "--args", json.dumps({"gtin": "06951234000099"}),
        "--url", url, *signer,
    )  # fmt: skip
    assert absent.returncode == 1 and absent.stdout == ""
    assert one_line(absent) == "error: no supply product with gtin 06951234000099"
    invoked = in_process(
        "invoke", "epidemic", "report_case", "--args", json.dumps(_case_args()),
        "--transient", json.dumps({"patient": _patient(305)}), "--url", url, *signer,
    )  # fmt: skip
    assert invoked.returncode == 0, invoked.stderr
    answer = json.loads(invoked.stdout)
    assert answer["receipt"]["valid"] is True
    assert answer["proof"]["verified"] is True
    assert "Testname0305" not in invoked.stdout
    bad = in_process("invoke", "epidemic", "report_case", "--args", "[1.5]", "--url", url, *signer)
    assert bad.returncode == 2
    assert "--args" in one_line(bad)
    refused = in_process(
        "invoke", "epidemic", "report_case", "--args", json.dumps({"disease": "nope"}),
        "--url", url, *signer,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "classification" in one_line(refused)


GUIDE = Path(__file__).parents[2] / "docs" / "client.md"


def test_the_client_guide_examples_run(
    node: EmbeddedNode,
    url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = GUIDE.read_text()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HEALTHLEDGER_URL", url)
    (tmp_path / "passphrase.txt").write_text("a long passphrase\n")
    shell = "\n".join(re.findall(r"```sh\n(.*?)```", text, re.DOTALL))
    exports = [
        line for line in shell.splitlines() if line.startswith("healthledger identity export")
    ]
    assert len(exports) == 3
    for line in exports:
        args = [str(node.data_dir) if a == "demo-data" else a for a in shlex.split(line)[1:]]
        done = in_process(*args)
        assert done.returncode == 0, done.stderr
    examples = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert len(examples) >= 8
    namespace: dict[str, Any] = {"__name__": "client_guide"}
    for number, example in enumerate(examples, start=1):
        try:
            exec(compile(example, f"{GUIDE.name} example {number}", "exec"), namespace)
        except Exception as exc:  # noqa: BLE001 - name the example that failed
            pytest.fail(f"example {number} of {GUIDE.name} failed: {type(exc).__name__}: {exc}")
    printed = capsys.readouterr().out
    assert "gz-first-hospital/dr-li doctor" in printed
    assert "the receipt holds" in printed
    assert "refused: " in printed
    assert "registered in block" in printed
    assert "committed in block" in printed and "InvalidRequest" in printed  # send_many
    assert Evidence.from_json(json.loads((tmp_path / "evidence.json").read_text())) is not None


def member_of(node: EmbeddedNode) -> Identity:
    """A regulator's auditor, whose key the demo node holds: reads members' routes."""
    entry = node.keystore.get("gd-mpa/auditor-tang")
    assert entry is not None
    return Identity(certificate=entry.cert, key=entry.key)


class Relay:
    """A TCP relay to the node that cuts each connection after passing ``budget``
    bytes of the node's answer: real disconnects in the middle of an event stream."""

    def __init__(self, target: str, *, budget: int) -> None:
        host, port = target.removeprefix("http://").split(":")
        self._target = (host, int(port))
        self._budget = budget
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            upstream = socket.create_connection(self._target)
            threading.Thread(target=self._pipe, args=(client, upstream, None), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(upstream, client, self._budget), daemon=True
            ).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, budget: int | None) -> None:
        try:
            while data := source.recv(256):
                if budget is not None:
                    data = data[:budget]
                    budget -= len(data)
                sink.sendall(data)
                if budget == 0:
                    break
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Stop accepting connections."""
        self._listener.close()


def test_an_event_stream_cut_mid_way_resumes_without_losing_or_repeating(
    url: str, node: EmbeddedNode
) -> None:
    member = member_of(node)  # the stream is members'
    with Client(url) as anonymous, pytest.raises(SignatureRequired):
        next(iter(anonymous.events(limit=1)))
    with Client(url, identity=member) as direct:
        expected = [e.id for e in direct.events(limit=12)]
    relay = Relay(url, budget=700)
    try:
        with Client(relay.url, identity=member) as client:
            got = [e.id for e in client.events(limit=12)]
    finally:
        relay.close()
    assert got == expected
    assert relay.accepted >= 3  # the stream was cut and resumed at least twice


def test_the_async_client_invokes_and_proves(url: str, admin_files: Path, tmp_path: Path) -> None:
    key_file = enrolled(url, admin_files, tmp_path, "dr-async")
    identity = Identity.load(key_file, passphrase=PASSPHRASE)

    async def report() -> tuple[Evidence, list[str]]:
        async with AsyncClient(url, identity=identity) as client:
            committed = await client.invoke(
                "epidemic", "report_case", _case_args(), transient={"patient": _patient(306)}
            )
            evidence = await client.verify(committed.receipt)
            with pytest.raises(DuplicateTransaction):
                await client.submit(Transaction.from_json(evidence.transaction))
            ids = [e.id async for e in client.events(from_height=committed.receipt.height, limit=2)]
            return evidence, ids

    evidence, ids = asyncio.run(report())
    evidence.verify()
    assert ids[0] == str(evidence.receipt.height)
    assert ids[1].startswith(f"{evidence.receipt.height}:")


def _case_args() -> dict[str, Any]:
    return from_fhir_bundle(bundle(0)).args


def _patient(serial: int) -> dict[str, str]:
    return person(serial)
