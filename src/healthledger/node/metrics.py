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
