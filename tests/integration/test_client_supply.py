"""``healthledger supply capture``: an EPCIS 2.0 document, XML or JSON-LD, checked,
signed with the capturer's own key, submitted over HTTP and its receipt proved
offline; a document the contract refuses is one line and an exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.apps.registry import installed_contracts
from healthledger.apps.supply.epcis_xml import xml_document
from healthledger.client import Evidence
from healthledger.node.embedded import EmbeddedNode
from tests.apps.supply.conftest import MAKER_OPS, register_master_data, unit
from tests.apps.supply.test_xml_capture import commission, xml
from tests.support.founding import found
from tests.support.served import in_process, served

PASSPHRASE = "a passphrase of the test"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node with every installed application and the supply master data."""
    created = found(
        tmp_path_factory.mktemp("node") / "data",
        contracts=installed_contracts(),
        batch_timeout_s=0.005,
    )
    created.start()
    register_master_data(created)
    yield created
    created.stop()


@pytest.fixture(scope="module")
def signer(node: EmbeddedNode, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, ...]:
    """The maker's operator's key out of the demo keystore: the signing options."""
    folder = tmp_path_factory.mktemp("maker")
    (folder / "passphrase").write_text(PASSPHRASE + "\n")
    done = in_process(
        "identity", "export", MAKER_OPS, "--data", str(node.data_dir), "--out", str(folder),
        "--passphrase-file", str(folder / "passphrase"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    name = MAKER_OPS.split("/")[1]
    return ("--identity", str(folder / f"{name}.key.pem"),
            "--passphrase-file", str(folder / "passphrase"))  # fmt: skip


def test_xml_and_json_ld_documents_are_captured_and_proved(
    node: EmbeddedNode, signer: tuple[str, ...], tmp_path: Path
) -> None:
    document = xml(commission("CLI1", "CLI2"))
    (tmp_path / "commission.xml").write_text(document)
    (tmp_path / "commission.jsonld").write_text(json.dumps(xml_document(xml(commission("CLI3")))))
    with served(node) as url:
        for name in ("commission.xml", "commission.jsonld"):
            evidence = tmp_path / f"{name}.evidence.json"
            done = in_process(
                "supply", "capture", str(tmp_path / name), "--url", url, *signer,
                "--evidence", str(evidence),
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            assert "1 EPCIS event captured: committed in block" in done.stdout
            assert "proof: verified offline" in done.stdout
            Evidence.from_json(json.loads(evidence.read_text())).verify()

        again = in_process(
            "supply", "capture", str(tmp_path / "commission.xml"), "--url", url, *signer
        )
        not_epcis = tmp_path / "not.json"
        not_epcis.write_text(json.dumps({"type": "EPCISDocument"}))
        invalid = in_process("supply", "capture", str(not_epcis), "--url", url, *signer)
    for serial in ("CLI1", "CLI2", "CLI3"):
        record = node.peer.store.get_state("supply", f"unit/{unit(serial)}")
        assert record is not None and record.value["lot"] == "LX1"
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "is already anchored" in again.stderr
    assert invalid.returncode == 2
    assert invalid.stderr.count("\n") == 1 and "breaks the EPCIS 2.0 schema" in invalid.stderr
