"""Prometheus metrics of one peer (a registry of its own: no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class NodeMetrics:
    """Counters and gauges a peer updates as it works."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.height = Gauge("healthledger_height", "Committed blocks", registry=self.registry)
        self.blocks = Counter(
            "healthledger_blocks_committed", "Blocks committed", registry=self.registry
        )
        self.transactions = Counter(
            "healthledger_transactions_committed",
            "Transactions committed, by validation code",
            ["code"],
            registry=self.registry,
        )
        self.contract_calls = Counter(
            "healthledger_contract_calls_committed",
            "Transactions committed, by application contract, function and validation code",
            ["contract", "function", "code"],
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "healthledger_block_commit_seconds",
            "Time to validate and commit one block",
            registry=self.registry,
        )
        self.endorsements = Counter(
            "healthledger_endorsements", "Proposals endorsed", registry=self.registry
        )
        self.rejections = Counter(
            "healthledger_requests_rejected",
            "Requests refused before ordering, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.checkpoint_state = Gauge(
            "healthledger_checkpoint_state",
            "1 for this peer's checkpoint state (ok, diverged, minority, tampered), else 0",
            ["state"],
            registry=self.registry,
        )
        for state in ("ok", "diverged", "minority", "tampered"):
            self.checkpoint_state.labels(state).set(1 if state == "ok" else 0)
        self.checkpoint_divergences = Counter(
            "healthledger_checkpoint_divergences",
            "Heights at which another peer's checkpoint differed from this peer's",
            registry=self.registry,
        )
        self.checkpoint_notes = Counter(
            "healthledger_checkpoint_notes_verified",
            "Other peers' checkpoint notes verified and compared",
            registry=self.registry,
        )
        self.checkpoint_rejected = Counter(
            "healthledger_checkpoint_notes_rejected",
            "Checkpoint notes reported and ignored, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.serving = Gauge(
            "healthledger_serving",
            "1 while the peer serves API reads and writes, 0 once it stopped (see status)",
            registry=self.registry,
        )
        self.serving.set(1)
        self.delivery_stuck = Gauge(
            "healthledger_delivery_stuck",
            "1 while ordered transactions wait and the peer's delivery does not advance",
            registry=self.registry,
        )
