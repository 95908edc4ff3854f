"""The platform's simulated traffic in the demo consortium.

The platform's own traffic: each hospital's admin registers new staff with
certificates from the hospital's CA, a majority of organisation admins approve a
new version of the membership contract, a newly registered nurse signs a
transaction, is revoked (with a reason) before it is ordered, so it lands in the
chain as IDENTITY_REVOKED, and the founder commits the approved version. Every
installed application's simulator runs after that.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthledger.contracts.contract import Contract
from healthledger.contracts.rules import contract_definition
from healthledger.contracts.system.lifecycle import definition_of
from healthledger.contracts.system.membership import Membership
from healthledger.demo.organisations import DEMO_ORGS, FOUNDER
from healthledger.ledger.transaction import Transaction, ValidationCode
from healthledger.node.consortium import issue_identity
from healthledger.node.embedded import KEYSTORE_FILE, NODE_FILE, EmbeddedNode
from healthledger.node.parts import Node
from healthledger.node.peer import Peer, Receipt

STAFF_PER_HOSPITAL = 3
STAFF_ROLES = (("nurse", "nurse"), ("dr", "doctor"), ("lab", "lab"))
SURNAMES = (
    "chen", "deng", "fang", "gao", "guo", "hu", "jiang", "kong", "liang", "lu",
    "luo", "mo", "pan", "qin", "song", "tan", "wei", "xie", "yang", "ye", "yu", "zeng",
)  # fmt: skip
COMMIT_TIMEOUT_S = 30.0
LOG = logging.getLogger("healthledger.demo")

Advance = Callable[[str], None]
"""Told what just committed, once per transaction (drives a progress bar)."""


@dataclass(frozen=True)
class Call:
    """One contract call to sign, endorse and submit."""

    identity: str
    contract: str
    function: str
    args: dict[str, Any]
    label: str


@dataclass
class TrafficSummary:
    """What a traffic run committed."""

    codes: dict[str, int] = field(default_factory=dict)
    registered: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    contract_versions: dict[str, str] = field(default_factory=dict)

    def count(self, receipt: Receipt) -> None:
        """Record one receipt."""
        self.codes[str(receipt.code)] = self.codes.get(str(receipt.code), 0) + 1


def open_or_create(
    data: Path, contracts: Sequence[type[Contract]], *, store: str | None = None
) -> tuple[EmbeddedNode, bool]:
    """The embedded node of ``data``: reopened if it holds a ledger, else founded
    with the demo consortium (its ledger in the PostgreSQL database ``store`` names, if
    given). True if it was just created."""
    if (data / NODE_FILE).exists():
        return EmbeddedNode(data, contracts=contracts, store=store), False
    return EmbeddedNode.create(data, contracts=contracts, plans=DEMO_ORGS, store=store), True


def contracts_changed(node: EmbeddedNode, contracts: Sequence[type[Contract]]) -> list[str]:
    """The installed contracts whose code differs from the version ``node``'s ledger
    approved: a demo folder made by another version of healthledger."""
    changed = []
    for contract in contracts:
        definition = contract_definition(node.peer.store, contract.name)
        if definition is not None and definition.get("code_hash") != contract.code_hash():
            changed.append(contract.name)
    return changed


def platform_traffic_size(node: Node) -> int:
    """How many transactions simulate_platform commits on ``node``."""
    hospitals = len(_hospitals(node))
    approvals = _majority(node)
    return hospitals * STAFF_PER_HOSPITAL + approvals + 3 if hospitals else approvals + 1


def simulate_platform(
    node: Node, rng: random.Random, *, advance: Advance | None = None
) -> TrafficSummary:
    """Run the platform's own traffic (see the module docstring) through ``node``."""
    summary = TrafficSummary()
    tick = advance or (lambda _label: None)
    hospitals = _hospitals(node)
    registrations = _new_staff(node, hospitals, rng)
    node.keystore.save(node.data_dir / KEYSTORE_FILE)
    _run(node, registrations, summary, tick)
    summary.registered = [c.label.split(" ", 1)[1] for c in registrations]

    version, approvals = _lifecycle_round(node)
    _run(node, approvals, summary, tick)

    if summary.registered:
        leaver = summary.registered[0]
        # Signed and endorsed while the nurse is still registered, ordered after the
        # revocation: every peer must refuse it as IDENTITY_REVOKED.
        stale = node.peer.endorse(
            node.propose(
                leaver, "lifecycle", "commit", {"contract": "membership", "version": version}
            )
        )
        org = leaver.split("/", 1)[0]
        revoke = Call(
            f"{org}/admin",
            "membership",
            "revoke_identity",
            {"identity": leaver, "reason": "left the hospital; access withdrawn"},
            f"revoke {leaver}",
        )
        _run(node, [revoke], summary, tick)
        summary.revoked.append(leaver)
        _wait(
            node,
            [(node.peer.submit(stale, precheck=False), stale, f"stale commit by {leaver}")],
            summary,
            tick,
        )

    commit = Call(
        _founder(node),
        "lifecycle",
        "commit",
        {"contract": "membership", "version": version},
        f"commit membership {version}",
    )
    _run(node, [commit], summary, tick)
    summary.contract_versions["membership"] = version
    return summary


def _run(node: Node, calls: Sequence[Call], summary: TrafficSummary, tick: Advance) -> None:
    """Endorse every call, submit them together (one block) and wait for all commits."""
    pending = []
    for call in calls:
        tx = node.peer.endorse(node.propose(call.identity, call.contract, call.function, call.args))
        # Checked as every peer will check it: a consortium's traffic client orders it
        # through its creator's peer's API, which checks it too (the client library).
        pending.append((node.peer.submit(tx), tx, call.label))
    _wait(node, pending, summary, tick)


def _wait(
    node: Node,
    pending: Sequence[tuple[Future[Receipt], Transaction, str]],
    summary: TrafficSummary,
    tick: Advance,
) -> None:
    for future, tx, label in pending:
        receipt = Peer.wait(future, tx.tx_id, COMMIT_TIMEOUT_S)
        summary.count(receipt)
        tick(label if receipt.code is ValidationCode.VALID else f"{label}: {receipt.code}")


def _hospitals(node: Node) -> list[dict[str, Any]]:
    organisations = node.query(_founder(node), "membership", "organisations", {})
    return [
        org
        for org in organisations
        if org.get("kind") == "hospital" and org["id"] in node.keystore.cas
    ]


def _founder(node: Node) -> str:
    if node.keystore.get(FOUNDER) is not None:
        return FOUNDER
    admins = [i for i in node.keystore.ids() if i.endswith("/admin")]
    if not admins:
        raise KeyError("the keystore holds no organisation admin")
    return admins[0]


def _majority(node: Node) -> int:
    organisations = node.query(_founder(node), "membership", "organisations", {})
    return len(organisations) // 2 + 1


def _new_staff(node: Node, hospitals: Sequence[dict[str, Any]], rng: random.Random) -> list[Call]:
    """Certificates for new staff of each hospital, and the calls that register them."""
    calls = []
    for org in hospitals:
        taken = set(node.keystore.ids())
        for n in range(STAFF_PER_HOSPITAL):
            prefix, role = STAFF_ROLES[n % len(STAFF_ROLES)]
            name = f"{prefix}-{rng.choice(SURNAMES)}"
            suffix = 2
            while f"{org['id']}/{name}" in taken:
                name, suffix = f"{prefix}-{name.split('-')[1]}{suffix}", suffix + 1
            entry = issue_identity(
                node.keystore,
                org=org["id"],
                name=name,
                role=role,
                now_ms=node.clock(),
                attributes=dict(org.get("attributes", {})),
            )
            taken.add(entry.id)
            calls.append(
                Call(
                    f"{org['id']}/admin",
                    "membership",
                    "register_identity",
                    {"cert": entry.cert.pem},
                    f"register {entry.id}",
                )
            )
    return calls


def _lifecycle_round(node: Node) -> tuple[str, list[Call]]:
    """The next version of the membership contract and a majority of admins' approvals."""
    current = contract_definition(node.peer.store, "membership") or {}
    try:
        version = str(int(current.get("version", "1")) + 1)
    except ValueError:
        version = "2"
    definition = definition_of(Membership, version)
    organisations = node.query(_founder(node), "membership", "organisations", {})
    approvers = [
        f"{org['id']}/admin"
        for org in organisations
        if node.keystore.get(f"{org['id']}/admin") is not None
    ][: _majority(node)]
    calls = [
        Call(
            admin,
            "lifecycle",
            "approve",
            {
                "contract": definition["name"],
                "version": version,
                "code_hash": definition["code_hash"],
                "policy": definition["policy"],
                "functions": definition["functions"],
            },
            f"approve membership {version} for {admin.split('/', 1)[0]}",
        )
        for admin in approvers
    ]
    return version, calls


LiveSteps = Sequence[tuple[str, Callable[[Node, random.Random], Mapping[str, int]]]]


class LiveTraffic:
    """Keeps the demo alive while the console is served: every ``every`` seconds it runs
    one live round of each application (``App.live_step``) in a background thread.

    A round that fails is logged in one line and the next round runs as usual: live
    traffic must never take the console down with it.
    """

    def __init__(self, node: Node, steps: LiveSteps, rng: random.Random, *, every: float) -> None:
        if every <= 0:
            raise ValueError("the live traffic interval must be positive")
        self._node, self._steps, self._rng, self._every = node, steps, rng, every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="demo-live-traffic", daemon=True)
        self.rounds = 0
        self.counts: dict[str, int] = {}
        self.failures = 0

    def start(self) -> None:
        """Start the rounds (the first one after one interval)."""
        self._thread.start()

    def stop(self, timeout: float = COMMIT_TIMEOUT_S) -> None:
        """Ask the rounds to end and wait for the one under way."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_round(self) -> None:
        """One round of every application's live traffic."""
        for name, step in self._steps:
            if self._stop.is_set():
                return
            try:
                counts = step(self._node, self._rng)
            except Exception as exc:  # noqa: BLE001 - reported, and the demo goes on
                self.failures += 1
                LOG.warning("live %s traffic failed: %s: %s", name, type(exc).__name__, exc)
                continue
            for what, n in counts.items():
                key = f"{name}.{what}"
                self.counts[key] = self.counts.get(key, 0) + n
        self.rounds += 1

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self.run_round()
