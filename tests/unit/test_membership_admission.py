"""Admitting a new organisation on chain (membership.propose_organisation,
approve_organisation, withdraw_organisation): a majority of the members' admins
admits it with its first identities, which then sign like any founding member's;
everything else is refused with its reason and writes nothing.

A real embedded node (ten demo organisations: six make a majority) on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from healthledger.contracts.errors import AccessDenied, ContractError, Rejected
from healthledger.contracts.system.approval import majority_policy
from healthledger.crypto.certs import issue_identity_certificate
from healthledger.crypto.keys import SigningKey
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.consortium import issue_identity, new_organisation
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.keystore import Keystore

NEW = "zhuhai-clinic"
MEMBERS = [plan.id for plan in DEMO_ORGS]
PROPOSER = "gd-commission"
REGULATOR = "gd-mpa"
APPROVERS = [o for o in MEMBERS if o not in (PROPOSER, REGULATOR)]
"""Members other than the proposer and the regulator, in a fixed order."""


def admin(org: str) -> str:
    return f"{org}/admin"


def keys_of(
    org: str, node: EmbeddedNode, kind: str = "hospital", *, hold: bool = True
) -> tuple[dict[str, Any], Keystore]:
    """A new organisation's keys (with ``hold``, also held by ``node``: demo custody)
    and the arguments proposing it."""
    spec, keystore = new_organisation(
        org=org, name="Zhuhai Community Clinic", kind=kind, now_ms=node.clock()
    )
    for entry in keystore.entries() if hold else ():
        node.keystore.add(entry)
        node.keystore.cas.update(keystore.cas)
    args = {
        "org": org,
        "name": spec.name,
        "kind": kind,
        "ca_cert": spec.ca_cert,
        "admin_cert": keystore.get(f"{org}/admin").cert.pem,  # type: ignore[union-attr]
        "peer_cert": keystore.get(f"{org}/peer0").cert.pem,  # type: ignore[union-attr]
        "roles": ["doctor", "nurse"],
        "attributes": {"region": "440400"},
    }
    return args, keystore


def call(node: EmbeddedNode, identity: str, function: str, **args: Any) -> Any:
    receipt, result = node.invoke(identity, "membership", function, args)
    assert receipt.code is ValidationCode.VALID
    return result


def propose(node: EmbeddedNode, args: dict[str, Any], by: str = PROPOSER) -> dict[str, Any]:
    record: dict[str, Any] = call(node, admin(by), "propose_organisation", **args)
    return record


def approve(node: EmbeddedNode, org: str, digest: str, by: str) -> dict[str, Any]:
    record: dict[str, Any] = call(node, admin(by), "approve_organisation", org=org, digest=digest)
    return record


def member(node: EmbeddedNode, org: str) -> bool:
    return node.peer.store.get_state("membership", f"org/{org}") is not None


def test_a_majority_of_admins_admits_the_organisation_and_its_first_identities(
    node: EmbeddedNode,
) -> None:
    args, _ = keys_of(NEW, node)
    record = propose(node, args)
    assert (record["status"], record["approved_by"]) == ("pending", [PROPOSER])
    for n, org in enumerate(APPROVERS[:4], start=2):
        record = approve(node, NEW, record["digest"], org)
        assert record["status"] == "pending" and len(record["approved_by"]) == n
        assert not member(node, NEW)
    record = approve(node, NEW, record["digest"], APPROVERS[4])  # the sixth of ten
    assert record["status"] == "admitted"
    organisations = node.query(admin(PROPOSER), "membership", "organisations", {})
    admitted = next(o for o in organisations if o["id"] == NEW)
    founder = next(o for o in organisations if o["id"] == PROPOSER)
    # Written as genesis writes an organisation, plus the roles it may hold.
    assert set(admitted) == set(founder) | {"roles"}
    assert admitted["roles"] == ["admin", "doctor", "nurse", "peer"]
    assert admitted["attributes"] == {"region": "440400"}
    identities = node.query(admin(PROPOSER), "membership", "identities", {"org": NEW})
    assert sorted(i["id"] for i in identities) == [f"{NEW}/admin", f"{NEW}/peer0"]
    # The new admin signs like any member's: a transaction of its own commits...
    receipt, _ = node.invoke(admin(NEW), "notebook", "put", {"key": "first", "value": 1})
    assert receipt.code is ValidationCode.VALID
    # ...and it registers its staff, in the roles the organisation may hold only.
    doctor = issue_identity(
        node.keystore, org=NEW, name="dr-ou", role="doctor", now_ms=node.clock()
    )
    call(node, admin(NEW), "register_identity", cert=doctor.cert.pem)
    receipt, _ = node.invoke(doctor.id, "notebook", "put", {"key": "second", "value": 2})
    assert receipt.code is ValidationCode.VALID
    lab = issue_identity(node.keystore, org=NEW, name="lab-1", role="lab", now_ms=node.clock())
    with pytest.raises(Rejected, match="may hold roles"):
        node.invoke(admin(NEW), "membership", "register_identity", {"cert": lab.cert.pem})
    assert node.query(admin(PROPOSER), "membership", "admissions", {}) == []
    [done] = node.query(admin(PROPOSER), "membership", "admissions", {"status": "admitted"})
    assert done["org"] == NEW and len(done["approved_by"]) == 6


def test_without_a_majority_nobody_of_the_organisation_can_sign(node: EmbeddedNode) -> None:
    args, _ = keys_of(NEW, node)
    record = propose(node, args)
    for org in APPROVERS[:4]:
        record = approve(node, NEW, record["digest"], org)
    assert record["status"] == "pending" and len(record["approved_by"]) == 5
    assert not member(node, NEW)
    with pytest.raises(AccessDenied, match="not a registered identity"):
        node.invoke(admin(NEW), "notebook", "put", {"key": "k", "value": 1})
    [pending] = node.query(admin(PROPOSER), "membership", "admissions", {})
    assert (pending["org"], pending["needed"]) == (NEW, 6)
    one = node.query(admin(PROPOSER), "membership", "admission", {"org": NEW})
    assert sorted(a["org"] for a in one["approvals"]) == sorted([PROPOSER, *APPROVERS[:4]])
    assert all(a["approver"] == admin(a["org"]) for a in one["approvals"])


def test_the_majority_counts_the_members_at_the_time(node: EmbeddedNode) -> None:
    # Once an eleventh member is in, a twelfth needs six approvals of eleven.
    first, _ = keys_of(NEW, node)
    record = propose(node, first)
    for org in APPROVERS[:5]:
        record = approve(node, NEW, record["digest"], org)
    assert record["status"] == "admitted"
    second, _ = keys_of("jiangmen-clinic", node)
    record = propose(node, second, by=NEW)
    for org in APPROVERS[:4]:
        record = approve(node, "jiangmen-clinic", record["digest"], org)
    assert record["status"] == "pending"
    record = approve(node, "jiangmen-clinic", record["digest"], APPROVERS[4])
    assert record["status"] == "admitted"
    assert majority_policy(["a", "b", "c"]) == "OutOf(2, 'a.admin', 'b.admin', 'c.admin')"


def _other_ca_certs(args: dict[str, Any], org: str, now: int) -> dict[str, Any]:
    """``args`` with admin and peer certificates of ``org`` issued by an unrelated CA
    key that claims to be ``org``'s CA."""
    spec, keystore = new_organisation(org=org, name="impostor", kind="hospital", now_ms=now)
    assert spec.ca_cert != args["ca_cert"]
    return {
        **args,
        "admin_cert": keystore.get(f"{org}/admin").cert.pem,  # type: ignore[union-attr]
        "peer_cert": keystore.get(f"{org}/peer0").cert.pem,  # type: ignore[union-attr]
    }


def _expired_peer(args: dict[str, Any], keystore: Keystore) -> dict[str, Any]:
    ca = keystore.cas[NEW]
    pem = issue_identity_certificate(
        ca_pem=ca.cert_pem,
        ca_key=ca.key,
        role="peer",
        name="peer0",
        public_key=SigningKey.from_seed(b"\x01" * 32).public_bytes(),
        not_before_ms=0,
        not_after_ms=1000,
        serial=99,
    )
    return {**args, "peer_cert": pem}


def test_bad_proposals_are_refused_with_their_reason(node: EmbeddedNode) -> None:
    args, keystore = keys_of(NEW, node)
    cdc_args, _ = keys_of("gd-cdc", node, hold=False)
    other_args, _ = keys_of("foshan-clinic", node, hold=False)
    now = node.clock()
    cases: list[tuple[str, dict[str, Any], type[ContractError], str]] = [
        ("gd-cdc/epi-wang", args, AccessDenied, "roles \\['admin'\\]"),
        (admin(PROPOSER), cdc_args, Rejected, "gd-cdc is already a member"),
        (admin(PROPOSER), {**args, "org": "Bad Id"}, Rejected, "bad organisation id"),
        (admin(PROPOSER), {**args, "name": "  "}, Rejected, "name must be 1 to 200"),
        (admin(PROPOSER), {**args, "kind": "casino"}, Rejected, "kind 'casino' is not one of"),
        (admin(PROPOSER), {**args, "roles": ["ca"]}, Rejected, "bad role 'ca'"),
        (admin(PROPOSER), {**args, "attributes": {"Bad Key": "x"}}, Rejected, "bad attribute"),
        (admin(PROPOSER), {**args, "ca_cert": "not a pem"}, Rejected, "ca_cert: not a PEM"),
        (admin(PROPOSER), {**args, "ca_cert": args["admin_cert"]}, Rejected, "not a CA"),
        (
            admin(PROPOSER),
            {**args, "ca_cert": other_args["ca_cert"]},
            Rejected,
            "CA of foshan-clinic, not of zhuhai-clinic",
        ),
        (
            admin(PROPOSER),
            _other_ca_certs(args, NEW, now),
            Rejected,
            "admin_cert: certificate signature does not verify against its CA",
        ),
        (
            admin(PROPOSER),
            {**args, "peer_cert": other_args["peer_cert"]},
            Rejected,
            "peer_cert is a certificate of foshan-clinic, not of zhuhai-clinic",
        ),
        (
            admin(PROPOSER),
            {**args, "admin_cert": args["peer_cert"]},
            Rejected,
            "admin_cert must have role 'admin', not 'peer'",
        ),
        (admin(PROPOSER), _expired_peer(args, keystore), Rejected, "peer_cert is not valid now"),
        (
            admin(PROPOSER),
            {**args, "kind": "regulator"},
            AccessDenied,
            "only an admin of a regulator may propose a regulator",
        ),
    ]
    height = node.peer.store.height()
    for identity, bad, error, reason in cases:
        with pytest.raises(error, match=reason):
            node.invoke(identity, "membership", "propose_organisation", bad)
    assert node.peer.store.height() == height  # nothing was ordered
    assert node.query(admin(PROPOSER), "membership", "admissions", {"status": ""}) == []
    # The control: the same arguments, unspoiled, are accepted.
    assert propose(node, args)["status"] == "pending"
    with pytest.raises(Rejected, match="already pending"):
        node.invoke(admin("gd-cdc"), "membership", "propose_organisation", args)


def test_bad_approvals_are_refused_with_their_reason(node: EmbeddedNode) -> None:
    args, _ = keys_of(NEW, node)
    digest = propose(node, args)["digest"]
    cases: list[tuple[str, dict[str, Any], type[ContractError], str]] = [
        ("gd-cdc/epi-wang", {"org": NEW, "digest": digest}, AccessDenied, "roles"),
        (admin("gd-cdc"), {"org": "nobody", "digest": digest}, Rejected, "no proposal to admit"),
        (admin("gd-cdc"), {"org": NEW, "digest": "00" * 32}, Rejected, "another digest"),
        (admin(PROPOSER), {"org": NEW, "digest": digest}, Rejected, "already approved"),
    ]
    for identity, bad, error, reason in cases:
        with pytest.raises(error, match=reason):
            node.invoke(identity, "membership", "approve_organisation", bad)
    approve(node, NEW, digest, "gd-cdc")
    with pytest.raises(Rejected, match="gd-cdc has already approved"):
        node.invoke(
            admin("gd-cdc"), "membership", "approve_organisation", {"org": NEW, "digest": digest}
        )
    one = node.query(admin(PROPOSER), "membership", "admission", {"org": NEW})
    assert one["approved_by"] == ["gd-cdc", PROPOSER]


def test_withdrawal_by_the_proposer_or_a_regulator_only_and_approvals_never_carry_over(
    node: EmbeddedNode,
) -> None:
    args, _ = keys_of(NEW, node)
    first = propose(node, args)
    for org in APPROVERS[:4]:
        approve(node, NEW, first["digest"], org)
    withdraw = {"org": NEW, "reason": "its licence is under review"}
    with pytest.raises(AccessDenied, match="proposing organisation or of a regulator"):
        node.invoke(admin("gd-cdc"), "membership", "withdraw_organisation", withdraw)
    with pytest.raises(Rejected, match="a reason"):
        node.invoke(
            admin(PROPOSER), "membership", "withdraw_organisation", {**withdraw, "reason": " "}
        )
    withdrawn = call(node, admin(REGULATOR), "withdraw_organisation", **withdraw)
    assert (withdrawn["status"], withdrawn["withdrawn_by"]) == ("withdrawn", admin(REGULATOR))
    with pytest.raises(Rejected, match="is withdrawn, not pending"):
        node.invoke(
            admin(APPROVERS[4]),
            "membership",
            "approve_organisation",
            {"org": NEW, "digest": first["digest"]},
        )
    with pytest.raises(Rejected, match="is withdrawn, not pending"):
        node.invoke(admin(PROPOSER), "membership", "withdraw_organisation", withdraw)
    # Proposed again: a new digest, and the five earlier approvals do not count.
    second = propose(node, args, by="gd-cdc")
    assert second["digest"] != first["digest"] and second["approved_by"] == ["gd-cdc"]
    second = approve(node, NEW, second["digest"], APPROVERS[5])
    assert second["status"] == "pending" and len(second["approved_by"]) == 2
    assert not member(node, NEW)
    # The proposing organisation withdraws its own proposal.
    again = call(node, admin("gd-cdc"), "withdraw_organisation", **withdraw)
    assert again["status"] == "withdrawn"


def test_a_regulator_proposes_a_regulator(node: EmbeddedNode) -> None:
    args, _ = keys_of("gd-nhsa", node, kind="regulator")
    record = propose(node, args, by=REGULATOR)
    for org in APPROVERS[:5]:
        record = approve(node, "gd-nhsa", record["digest"], org)
    assert record["status"] == "admitted"
    kinds = {
        o["id"]: o["kind"] for o in node.query(admin(PROPOSER), "membership", "organisations", {})
    }
    assert kinds["gd-nhsa"] == "regulator"


def test_two_approvals_in_one_block_conflict_rather_than_one_be_lost(
    idle_node: EmbeddedNode,
) -> None:
    node = idle_node
    args, _ = keys_of(NEW, node)
    propose_tx = node.peer.endorse(
        node.propose(admin(PROPOSER), "membership", "propose_organisation", args)
    )
    block = node.peer.chain.append([propose_tx], timestamp=node.clock())
    assert block.codes == (ValidationCode.VALID,)
    digest = propose_tx.response.result["digest"]
    both = [
        node.peer.endorse(
            node.propose(
                admin(org), "membership", "approve_organisation", {"org": NEW, "digest": digest}
            )
        )
        for org in APPROVERS[:2]
    ]
    block = node.peer.chain.append(both, timestamp=node.clock())
    assert [str(c) for c in block.codes] == ["VALID", "MVCC_READ_CONFLICT"]
    record = node.peer.store.get_state("membership", f"admission/{NEW}")
    assert record is not None and record.value["approved_by"] == [APPROVERS[0], PROPOSER]
