"""Demo traffic for credentials: issuance follows the epidemic application's recorded
COVID-19 vaccinations and test results (read from its events), a few credentials are
revoked, and checkpoints verify credentials against the ledger's lists.

Holders' names are made up here, as a hospital's records would supply them; they go into
the credentials and the hospital's vault, never on chain. Where the simulator stopped
reading events is kept in the application's folder, so live rounds resume there.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Any

from healthledger.apps.credentials.facts import COVID, HolderName
from healthledger.apps.credentials.issued import vault_collection
from healthledger.apps.credentials.provision import enrol_issuers
from healthledger.apps.credentials.routes import ledger_sources
from healthledger.apps.credentials.service import CredentialService
from healthledger.contracts.errors import ContractError
from healthledger.crypto.credentials.verifier import verify_credential
from healthledger.node.seam import AppNode, Call, NodeError

FAMILY = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou")
GIVEN = ("Wei", "Fang", "Min", "Jing", "Lei", "Yan", "Jun", "Xiu", "Hao", "Ling")
ISSUING_ROLES = {"vaccination_recorded": ("nurse", "doctor"), "lab_result": ("lab", "doctor")}
CURSOR_FILE = "simulator.json"
CHECKPOINT_SAMPLE = 6


def _holder(rng: random.Random) -> HolderName:
    born = f"{rng.randint(1940, 2010)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return HolderName(family_name=rng.choice(FAMILY), given_name=rng.choice(GIVEN),
                      birth_date=born)  # fmt: skip


def _cursor(node: AppNode) -> dict[str, Any]:
    try:
        found = json.loads((node.folder / CURSOR_FILE).read_text(encoding="utf-8"))
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def _save_cursor(node: AppNode, cursor: dict[str, Any]) -> None:
    node.folder.mkdir(parents=True, exist_ok=True)
    (node.folder / CURSOR_FILE).write_text(json.dumps(cursor), encoding="utf-8")


def _issuer_identity(node: AppNode, org: str, event: str) -> str | None:
    for role in ISSUING_ROLES[event]:
        found = node.identities(role=role, org=org)
        if found:
            return found[0]
    return None


def issue_following(node: AppNode, rng: random.Random, *, limit: int) -> dict[str, int]:
    """Issue credentials for the COVID-19 vaccinations and test results recorded since
    the last round (at most ``limit``), in one batch."""
    service = CredentialService(node)
    cursor = _cursor(node)
    after = cursor.get("after")
    calls: list[Call] = []
    skipped = 0
    while len(calls) < limit:
        events = node.events(after, limit=500)
        if not events:
            break
        for event in events:
            after = event.id
            data = event.data
            if data.get("contract") != "epidemic" or data.get("name") not in ISSUING_ROLES:
                continue
            fact = data["payload"]
            if fact.get("disease") != COVID:
                continue
            identity = _issuer_identity(node, str(fact.get("reporter_org")), data["name"])
            if identity is None:
                continue
            source_kind = "vaccination" if data["name"] == "vaccination_recorded" else "lab"
            source_id = fact["vaccination_id" if source_kind == "vaccination" else "lab_id"]
            try:
                prepared = service.prepare(identity, source_kind, fact, _holder(rng),
                                           source_id=source_id)  # fmt: skip
            except (ContractError, NodeError):
                skipped += 1  # not certifiable (an inconclusive test), or no signer here
                continue
            calls.append(prepared.call)
            if len(calls) >= limit:
                break
    outcomes = node.invoke_many(calls) if calls else []
    issued = [o.result["credential_id"] for o in outcomes if o.valid]
    cursor["after"] = after
    cursor["issued"] = (cursor.get("issued", []) + issued)[-200:]
    _save_cursor(node, cursor)
    return {"credentials issued": len(issued), "facts not certifiable": skipped}


def revoke_some(node: AppNode, rng: random.Random, *, count: int) -> int:
    """Revoke ``count`` recently issued credentials (issued in error), as their issuers."""
    cursor = _cursor(node)
    done = 0
    issued = cursor.get("issued", [])
    for credential_id in rng.sample(issued, min(count, len(issued))):
        record = node.get(f"credential/{credential_id}")
        if not isinstance(record, dict) or record["status"] != "valid":
            continue
        identity = record["issued_by"]
        if not node.holds(identity):
            continue
        args = {"credential_id": credential_id, "status": "revoked",
                "reason": "issued to the wrong person"}  # fmt: skip
        try:
            node.invoke(identity, "credentials", "set_status", args)
        except ContractError:
            continue
        done += 1
    return done


def checkpoint(node: AppNode, rng: random.Random) -> dict[str, int]:
    """A checkpoint verifies a few holders' credentials (from the issuers' vaults, as the
    holders would show them) against the ledger's trust list and status."""
    service = CredentialService(node)
    trust, status = ledger_sources(service)
    issued = _cursor(node).get("issued", [])
    valid = refused = 0
    for credential_id in rng.sample(issued, min(CHECKPOINT_SAMPLE, len(issued))):
        record = node.get(f"credential/{credential_id}")
        kept = (
            None if record is None else node.private(vault_collection(record["org"]), credential_id)
        )
        if not isinstance(kept, dict):
            continue
        text = rng.choice(sorted(kept["texts"].values()))
        verdict = verify_credential([text], trust=trust, status=status, at=node.clock() // 1000)
        valid, refused = valid + verdict.valid, refused + (not verdict.valid)
    return {"checkpoint verifications valid": valid, "checkpoint verifications refused": refused}


def simulate(node: AppNode, rng: random.Random) -> Mapping[str, int]:
    """Enrol the issuers, issue what the epidemic history recorded, revoke a few, and
    verify at checkpoints."""
    enrolled = enrol_issuers(node)
    counts: dict[str, int] = {"issuers enrolled": len(enrolled)}
    counts |= issue_following(node, rng, limit=120)
    counts["credentials revoked"] = revoke_some(node, rng, count=3)
    return counts | checkpoint(node, rng)


def live_step(node: AppNode, rng: random.Random) -> Mapping[str, int]:
    """A round: issue for the newest facts, now and then revoke one, verify a few."""
    if next(node.range("signer/", limit=1), None) is None:
        return {}  # no issuer on the trust list yet: simulate has not run here
    counts = issue_following(node, rng, limit=10)
    if rng.random() < 0.1:
        counts["credentials revoked"] = revoke_some(node, rng, count=1)
    return counts | checkpoint(node, rng)
