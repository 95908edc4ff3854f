"""The credentials contract: governance of the trust list, issuance from recorded facts
without personal data on chain, random status indices, revocation reaching verifiers."""

from __future__ import annotations

import json

import pytest

from healthledger.apps.credentials.facts import HolderName
from healthledger.apps.credentials.issued import LIST_SIZE, index_key
from healthledger.apps.credentials.provision import approve_change
from healthledger.apps.credentials.service import CredentialService, Issued
from healthledger.apps.credentials.signing import SigningPool
from healthledger.apps.credentials.trustdoc import TrustListRefused
from healthledger.apps.credentials.trustdoc import verify as verify_trust_document
from healthledger.contracts.errors import (
    AccessDenied,
    CallerNotAdmitted,
    InvalidArguments,
    Rejected,
)
from healthledger.crypto.credentials.status import load_status
from healthledger.crypto.credentials.trust import load_trust
from healthledger.crypto.credentials.verdict import Verdict
from healthledger.crypto.credentials.verifier import verify_credential
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import AppNode, Call
from tests.apps.credentials.support import HOLDER, LAB, NURSE, lab_result, vaccinate

OFFICER = "gd-commission/officer-chen"


def _verdicts(service: CredentialService, texts: dict[str, str], at: int) -> dict[str, Verdict]:
    trust = load_trust(json.dumps(service.trust_list()).encode())
    status = load_status(json.dumps(service.status_document()).encode(), fetched_at=at)
    return {
        fmt: verify_credential([text], trust=trust, status=status, at=at)
        for fmt, text in texts.items()
    }


def test_a_signer_joins_the_trust_list_only_with_a_majority(seam: AppNode) -> None:
    service = CredentialService(seam)
    certificate = service.certificate_b64("gd-cdc")
    args = {"action": "add-signer", "org": "gd-cdc", "certificate": certificate,
            "iss": "https://issuers.healthledger.example/gd-cdc"}  # fmt: skip
    with pytest.raises(CallerNotAdmitted):
        seam.invoke("gz-first-hospital/admin", "credentials", "propose_trust_change", args)
    _, change = seam.invoke(OFFICER, "credentials", "propose_trust_change", args)
    assert change["status"] == "pending"
    admins = seam.identities(role="admin")
    needed = len(seam.organisations()) // 2 + 1
    for admin in admins[: needed - 1]:
        approval = {"change_id": change["change_id"], "digest": change["digest"]}
        _, change = seam.invoke(admin, "credentials", "approve_trust_change", approval)
        assert change["status"] == "pending"
    with pytest.raises(Rejected, match="digest"):
        seam.invoke(admins[-1], "credentials", "approve_trust_change",
                    {"change_id": change["change_id"], "digest": "0" * 64})  # fmt: skip
    assert not any(v["org"] == "gd-cdc" for _, v in seam.range("signer/"))
    change = approve_change(seam, change)
    assert change["status"] == "applied" and len(change["approved_by"]) == needed
    kid = change["kid"]
    assert seam.get(f"signer/{kid}")["status"] == "active"
    assert any(i["org"] == "gd-cdc" for i in service.trust_list()["issuers"])
    # Withdrawn the same way: then the trust list no longer names it.
    withdraw = {"action": "withdraw-signer", "org": "gd-cdc", "kid": kid}
    _, change = seam.invoke(OFFICER, "credentials", "propose_trust_change", withdraw)
    assert approve_change(seam, change)["status"] == "applied"
    assert seam.get(f"signer/{kid}")["status"] == "withdrawn"
    assert not any(s["kid"] == kid for s in service.trust_list()["signers"])


def test_issued_credentials_verify_and_no_personal_data_is_written(
    ledger: EmbeddedNode, seam: AppNode
) -> None:
    service = CredentialService(seam)
    issued = service.issue(NURSE, "vaccination", vaccinate(ledger, 1), HOLDER)
    assert sorted(issued.texts) == ["dcc", "sd-jwt-vc", "shc"]
    at = seam.clock() // 1000
    for fmt, verdict in _verdicts(service, issued.texts, at).items():
        assert verdict.valid, (fmt, verdict.to_json())
    tx, _ = ledger.peer.transaction(issued.tx_id)
    written = json.dumps([w.to_json() for w in tx.response.rwset.writes], ensure_ascii=False)
    whole = json.dumps(tx.to_json(), ensure_ascii=False)
    assert issued.record["credential_id"] in written  # the scan sees what is written
    for personal in (HOLDER.family_name, HOLDER.given_name, HOLDER.birth_date):
        assert personal not in written and personal not in whole
    # The holder and the texts stay in the issuing hospital's vault.
    kept = seam.private("gz-first-hospital/credentials", issued.record["credential_id"])
    assert kept["holder"]["family_name"] == HOLDER.family_name


def test_only_the_organisation_that_recorded_the_fact_issues(
    ledger: EmbeddedNode, seam: AppNode
) -> None:
    service = CredentialService(seam)
    vaccination_id = vaccinate(ledger, 2)
    with pytest.raises(Exception, match="no vaccination"):
        service.issue("sz-peoples-hospital/dr-zhang", "vaccination", vaccination_id, HOLDER)
    test = service.issue(LAB, "lab", lab_result(ledger, 3), HOLDER)
    assert test.record["kind"] == "test"


def test_status_indices_are_random_and_never_reused(ledger: EmbeddedNode, seam: AppNode) -> None:
    service = CredentialService(seam)
    indices = [
        service.issue(
            NURSE, "vaccination", vaccinate(ledger, 10 + n), HOLDER, formats=("sd-jwt-vc",)
        ).record["status_index"]
        for n in range(4)
    ]
    assert len(set(indices)) == 4 and all(0 <= i < LIST_SIZE for i in indices)
    # Issuance order says nothing: the indices are not a run of neighbours.
    assert max(indices) - min(indices) > 8
    prepared = service.prepare(NURSE, "vaccination",
                               service.fact(NURSE, "vaccination", vaccinate(ledger, 20)), HOLDER,
                               source_id="x")  # fmt: skip
    taken = {**prepared.call.args, "status_index": indices[0]}
    with pytest.raises(Rejected, match="taken"):
        seam.invoke(NURSE, "credentials", "issue", taken, transient=prepared.call.transient)


def test_revoking_flips_the_verdict_after_the_status_list_refreshes(
    ledger: EmbeddedNode, seam: AppNode
) -> None:
    service = CredentialService(seam)
    issued = service.issue(NURSE, "vaccination", vaccinate(ledger, 30), HOLDER)
    at = seam.clock() // 1000
    trust = load_trust(json.dumps(service.trust_list()).encode())
    cached = load_status(json.dumps(service.status_document()).encode(), fetched_at=at)
    with pytest.raises(AccessDenied):
        service.set_status("sz-peoples-hospital/dr-zhang", issued.record["credential_id"],
                           "revoked", "issued in error")  # fmt: skip
    service.set_status(NURSE, issued.record["credential_id"], "revoked", "issued in error")
    fresh = load_status(json.dumps(service.status_document()).encode(), fetched_at=at)
    for text in issued.texts.values():
        assert verify_credential([text], trust=trust, status=cached, at=at).valid
        refreshed = verify_credential([text], trust=trust, status=fresh, at=at)
        assert "REVOKED" in refreshed.codes, refreshed.to_json()
    with pytest.raises(Rejected, match="for good"):
        service.set_status(NURSE, issued.record["credential_id"], "valid", "undo")


def test_the_exported_trust_list_is_signed_and_proven(seam: AppNode) -> None:
    document = CredentialService(seam).signed_trust_list()
    payload = verify_trust_document(json.loads(json.dumps(document)))
    assert {s["org"] for s in payload["signers"]} >= {"gz-first-hospital"}
    tampered = json.loads(json.dumps(document))
    tampered["trust_list"]["signers"][0]["country"] = "XX"
    with pytest.raises(TrustListRefused, match="payload"):
        verify_trust_document(tampered)
    unproven = json.loads(json.dumps(document))
    unproven["trust_list"]["proofs"] = []
    with pytest.raises(TrustListRefused):
        verify_trust_document(unproven)


def _holder(n: int) -> HolderName:
    return HolderName(family_name=f"Batchfamily{n}", given_name=f"Batchgiven{n}",
                      birth_date=f"1970-01-{10 + n}")  # fmt: skip


def test_a_batch_records_each_credential_and_keeps_personal_data_off_chain(
    ledger: EmbeddedNode, seam: AppNode
) -> None:
    service = CredentialService(seam)
    facts = [(vaccinate(ledger, 40 + n), _holder(n)) for n in range(3)]
    outcomes = service.issue_many(NURSE, "vaccination", facts, batch=2)
    issued = [o for o in outcomes if isinstance(o, Issued)]
    assert len(issued) == 3, outcomes
    # Two transactions: the first holds two credentials, the second one.
    assert issued[0].tx_id == issued[1].tx_id != issued[2].tx_id
    ids = [i.record["credential_id"] for i in issued]
    assert ids == [f"c-{issued[0].tx_id[:24]}-0", f"c-{issued[0].tx_id[:24]}-1",
                   f"c-{issued[2].tx_id[:24]}-0"]  # fmt: skip
    assert [i.record["source"]["id"] for i in issued] == [f for f, _ in facts]
    assert len({i.record["status_index"] for i in issued}) == 3
    at = seam.clock() // 1000
    for one in issued:
        assert seam.get(f"credential/{one.record['credential_id']}") == one.record
        for fmt, verdict in _verdicts(service, one.texts, at).items():
            assert verdict.valid, (fmt, verdict.to_json())
    for tx_id in {issued[0].tx_id, issued[2].tx_id}:
        tx, _ = ledger.peer.transaction(tx_id)
        whole = json.dumps(tx.to_json(), ensure_ascii=False)
        assert ids[-1] in whole or ids[0] in whole  # the scan sees what is written
        for _, holder in facts:
            assert holder.family_name not in whole and holder.given_name not in whole
            assert holder.birth_date not in whole
    for (_, holder), one in zip(facts, issued, strict=True):
        kept = seam.private("gz-first-hospital/credentials", one.record["credential_id"])
        assert kept["holder"] == vars(holder) and kept["texts"] == one.texts


def test_a_batch_signed_in_worker_processes_is_the_same_issuance(
    ledger: EmbeddedNode, seam: AppNode
) -> None:
    service = CredentialService(seam)
    facts = [(vaccinate(ledger, 70 + n), _holder(n)) for n in range(3)]
    with SigningPool(processes=1) as signing:
        outcomes = service.issue_many(NURSE, "vaccination", facts, batch=2, signing=signing)
        assert signing.cpu_s > 0
    issued = [o for o in outcomes if isinstance(o, Issued)]
    assert len(issued) == 3, outcomes
    assert issued[0].tx_id == issued[1].tx_id != issued[2].tx_id
    assert [i.record["source"]["id"] for i in issued] == [f for f, _ in facts]
    at = seam.clock() // 1000
    for (_, holder), one in zip(facts, issued, strict=True):
        assert sorted(one.texts) == ["dcc", "sd-jwt-vc", "shc"]
        for fmt, verdict in _verdicts(service, one.texts, at).items():
            assert verdict.valid, (fmt, verdict.to_json())
        kept = seam.private("gz-first-hospital/credentials", one.record["credential_id"])
        assert kept["holder"] == vars(holder) and kept["texts"] == one.texts
    # A closed pool is refused before anything is recorded.
    closed = SigningPool(processes=1)
    closed.close()
    fact = vaccinate(ledger, 73)
    with pytest.raises(RuntimeError):
        service.issue_many(NURSE, "vaccination", [(fact, _holder(3))], signing=closed)
    assert not [v for _, v in seam.range("credential/") if v["source"]["id"] == fact]


def test_calls_sent_without_waiting_each_have_their_outcome(
    ledger: EmbeddedNode, seam: AppNode
) -> None:
    # send_many (how signed batches are recorded) endorses and orders at once; a call
    # refused at endorsement has its error and no commit to wait for.
    service = CredentialService(seam)
    fact = vaccinate(ledger, 80)
    [found] = service.facts(NURSE, "vaccination", [fact])
    good = service.prepare(NURSE, "vaccination", found, _holder(4), source_id=fact).call
    empty = Call(NURSE, "credentials", "issue_batch", {"credentials": []}, {"credentials": []})
    sent = seam.send_many([good, empty])
    refused, no_commit = sent.calls[1]
    assert isinstance(refused, InvalidArguments) and no_commit is None
    first, second = sent.outcomes(timeout=30)
    assert first.valid and first.result["source"] == {"kind": "vaccination", "id": fact}
    assert second.receipt is None and second.error is refused
    assert seam.get(f"credential/{first.result['credential_id']}") == first.result


def test_a_batch_is_all_or_nothing_and_names_the_credential_at_fault(
    ledger: EmbeddedNode, seam: AppNode
) -> None:
    service = CredentialService(seam)
    ids = [vaccinate(ledger, 50 + n) for n in range(2)]
    found = service.facts(NURSE, "vaccination", ids)
    prepared = [service.prepare(NURSE, "vaccination", f, _holder(n), source_id=i)
                for n, (f, i) in enumerate(zip(found, ids, strict=True))]  # fmt: skip
    args = [dict(p.call.args) for p in prepared]
    transient = {"credentials": [p.call.transient["credential"] for p in prepared]}  # type: ignore[index]
    taken = service.issue(NURSE, "vaccination", vaccinate(ledger, 52), HOLDER)
    clash = [args[0], {**args[1], "status_index": taken.record["status_index"]}]
    with pytest.raises(Rejected, match="taken"):
        seam.invoke(NURSE, "credentials", "issue_batch", {"credentials": clash},
                    transient=transient)  # fmt: skip
    # Nothing of the refused batch was recorded: its first index is still free.
    assert seam.get(index_key("gz-first-hospital", args[0]["status_index"])) is None
    twice = [args[0], {**args[1], "status_index": args[0]["status_index"]}]
    with pytest.raises(InvalidArguments, match="malformed") as refused:
        seam.invoke(NURSE, "credentials", "issue_batch", {"credentials": twice},
                    transient=transient)  # fmt: skip
    assert {
        "field": "credentials",
        "message": "a status index is used twice",
    } in refused.value.errors
    bad_rid = [args[0], {**args[1], "rid": "short"}]
    with pytest.raises(InvalidArguments) as refused:
        seam.invoke(NURSE, "credentials", "issue_batch", {"credentials": bad_rid},
                    transient=transient)  # fmt: skip
    assert [e["field"] for e in refused.value.errors] == ["credentials[1].rid"]
    one_short = {"credentials": transient["credentials"][:1]}
    with pytest.raises(InvalidArguments, match="one credential per entry"):
        seam.invoke(NURSE, "credentials", "issue_batch", {"credentials": args},
                    transient=one_short)  # fmt: skip
    with pytest.raises(CallerNotAdmitted):
        seam.invoke(OFFICER, "credentials", "issue_batch", {"credentials": args},
                    transient=transient)  # fmt: skip
    _, records = seam.invoke(NURSE, "credentials", "issue_batch", {"credentials": args},
                             transient=transient)  # fmt: skip
    assert [r["status_index"] for r in records] == [a["status_index"] for a in args]


def test_a_batch_issues_only_the_facts_of_the_callers_organisation(
    ledger: EmbeddedNode, seam: AppNode
) -> None:
    service = CredentialService(seam)
    ours = vaccinate(ledger, 60)
    with pytest.raises(InvalidArguments, match="no vaccination") as refused:
        service.issue_many("sz-peoples-hospital/dr-zhang", "vaccination", [(ours, HOLDER)])
    assert refused.value.errors[0]["field"] == "source_id"
    with pytest.raises(InvalidArguments) as refused:
        service.issue_many(NURSE, "vaccination", [(ours, HOLDER), ("v-nothing", HOLDER)])
    assert refused.value.errors[0]["field"] == "source_ids[1]"
