"""Privacy: personal data never reaches the chain; one person, one pseudonymous id."""

from __future__ import annotations

import json
from pathlib import Path

from healthledger.apps.epidemic.contract import CDC_ORG
from healthledger.apps.epidemic.dates import iso
from healthledger.apps.epidemic.pseudonym import demo_key
from healthledger.crypto.keys import decode_b64
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.support import person, report, today

PEOPLE = [person(n) for n in range(20, 26)]


def _stored_texts(node: EmbeddedNode) -> list[str]:
    """Every committed block, raw and decoded (so escaped characters are seen too)."""
    texts = []
    for height in range(node.peer.store.height()):
        raw = node.peer.store.block_bytes(height)
        texts.append(raw.decode("utf-8"))
        texts.append(json.dumps(json.loads(raw), ensure_ascii=False))
    return texts


def _ledger_files(node: EmbeddedNode) -> bytes:
    """The ledger's SQLite files (blocks, world state, history), not the vaults."""
    return b"".join(p.read_bytes() for p in Path(node.data_dir).glob("ledger.sqlite*"))


def _secrets(patient: dict[str, str]) -> list[str]:
    number = patient["id_number"]
    return [patient["name"], "Testname", number, number[-8:], patient["phone"], patient["address"]]


def test_no_stored_block_holds_personal_data(node: EmbeddedNode) -> None:
    case_ids = []
    for n, patient in enumerate(PEOPLE):
        identity = "gz-first-hospital/dr-li" if n % 2 else "sz-peoples-hospital/lab-wu"
        region = "440104" if n % 2 else "440304"
        case_ids.append(report(node, identity, patient, region=region)["case_id"])
    texts = _stored_texts(node)
    files = _ledger_files(node)
    # The scan does see what is on chain: every case id, in blocks and in the files.
    for case_id in case_ids:
        assert any(case_id in text for text in texts)
        assert case_id.encode() in files
    for patient in PEOPLE:
        for secret in _secrets(patient):
            assert not any(secret in text for text in texts), f"{secret!r} is on chain"
            assert secret.encode() not in files
            assert secret.encode("utf-16-le") not in files


def test_the_pseudonymisation_key_is_not_on_chain(node: EmbeddedNode) -> None:
    report(node)
    key = demo_key(decode_b64(node.keystore.vault_keys[CDC_ORG]["secret"]))
    texts = _stored_texts(node)
    assert not any(key.hex() in text for text in texts)
    assert key not in _ledger_files(node)


def test_one_person_gets_one_id_at_every_hospital(node: EmbeddedNode) -> None:
    patient = person(40)
    # The second hospital types the number with spaces and a lower-case name order.
    retyped = {
        **patient,
        "id_number": " ".join(patient["id_number"][i : i + 6] for i in (0, 6, 12)),
    }
    first = report(node, "gz-first-hospital/dr-li", patient)
    second = report(node, "sz-peoples-hospital/dr-zhang", retyped, region="440304")
    other = report(node, "sz-peoples-hospital/dr-zhang", person(41), region="440304")
    cdc = "gd-cdc/epi-wang"
    pid = [
        node.query(cdc, "epidemic", "get_case", {"case_id": r["case_id"]})["pid"]
        for r in (first, second, other)
    ]
    assert pid[0] == pid[1] != pid[2]


def test_duplicate_reports_from_two_hospitals_are_linked(node: EmbeddedNode) -> None:
    patient = person(50)
    first = report(node, "gz-first-hospital/dr-li", patient)
    second = report(node, "sz-peoples-hospital/dr-zhang", patient, disease="J11", region="440304")
    assert [link["kind"] for link in second["links"]] == ["duplicate"]
    link = second["links"][0]
    assert link["other_case_id"] == first["case_id"]
    assert {link["org"], link["other_org"]} == {"gz-first-hospital", "sz-peoples-hospital"}
    seen_by_cdc = node.query(
        "gd-cdc/epi-wang", "epidemic", "get_case", {"case_id": first["case_id"]}
    )
    assert [x["case_id"] for x in seen_by_cdc["links"]] == [second["case_id"]]
    # A hospital does not learn of the other hospital's case.
    seen_by_hospital = node.query(
        "gz-first-hospital/dr-li", "epidemic", "get_case", {"case_id": first["case_id"]}
    )
    assert seen_by_hospital["links"] == []
    names = [e.data["name"] for e in node.peer.events.read(None) if e.kind == "contract"]
    assert "duplicate_suspected" in names


def test_another_disease_is_not_a_duplicate_and_a_late_episode_is_a_reinfection(
    node: EmbeddedNode,
) -> None:
    patient = person(60)
    now = today(node)
    report(
        node,
        "gz-first-hospital/dr-li",
        patient,
        onset_date=iso(now - 200),
        diagnosis_date=now - 199,
    )
    assert report(node, "gz-first-hospital/dr-li", patient, disease="B05")["links"] == []
    later = report(node, "sz-peoples-hospital/dr-zhang", patient, region="440304")
    assert [link["kind"] for link in later["links"]] == ["reinfection"]


def test_events_carry_no_pseudonymous_id(node: EmbeddedNode) -> None:
    report(node)
    payloads = [e.data["payload"] for e in node.peer.events.read(None) if e.kind == "contract"]
    reported = [p for p in payloads if "classification" in p]
    assert reported and all("pid" not in p for p in reported)


def test_reports_without_an_installed_key_are_refused(bare_node: EmbeddedNode) -> None:
    from healthledger.apps.epidemic.provision import CONFIGURER
    from healthledger.contracts.errors import Rejected
    from tests.apps.epidemic.conftest import TEST_REGIONS

    regions = [r.to_json() for r in TEST_REGIONS.regions()]
    bare_node.invoke(CONFIGURER, "epidemic", "define_regions", {"regions": regions})
    bare_node.invoke(
        CONFIGURER,
        "epidemic",
        "register_org",
        {"org": "gz-first-hospital", "kind": "hospital", "region": "440100"},
    )
    height = bare_node.peer.store.height()
    try:
        report(bare_node)
    except Rejected as exc:
        assert "pseudonymisation key" in str(exc)
    else:
        raise AssertionError("a report without a key must be refused")
    assert bare_node.peer.store.height() == height


def test_only_the_cdc_admin_installs_the_key(node: EmbeddedNode) -> None:
    import pytest

    from healthledger.contracts.errors import AccessDenied, InvalidArguments

    with pytest.raises(AccessDenied):
        node.invoke(
            "gz-first-hospital/admin",
            "epidemic",
            "install_pseudonymisation_key",
            {},
            transient={"key": "00" * 32},
        )
    with pytest.raises(InvalidArguments, match="at least 32 bytes"):
        node.invoke(
            "gd-cdc/admin",
            "epidemic",
            "install_pseudonymisation_key",
            {},
            transient={"key": "abcd"},
        )


def test_a_rotated_key_starts_a_new_version(node: EmbeddedNode) -> None:
    before = report(node, patient=person(70))
    node.invoke(
        "gd-cdc/admin", "epidemic", "install_pseudonymisation_key", {}, transient={"key": "11" * 32}
    )
    after = report(node, patient=person(70))
    cdc = "gd-cdc/epi-wang"
    old = node.query(cdc, "epidemic", "get_case", {"case_id": before["case_id"]})
    new = node.query(cdc, "epidemic", "get_case", {"case_id": after["case_id"]})
    assert (old["pid_key_version"], new["pid_key_version"]) == (1, 2)
    assert old["pid"] != new["pid"]
    assert after["links"] == []
