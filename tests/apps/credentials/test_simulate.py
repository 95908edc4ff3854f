"""The credentials simulator: issuance follows recorded COVID-19 vaccinations and tests,
a few revocations, checkpoint verifications; live rounds resume where it stopped."""

from __future__ import annotations

import random

from healthledger.apps.credentials.simulate import live_step, simulate
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import AppNode
from tests.apps.credentials.support import lab_result, vaccinate


def test_issuance_follows_the_epidemic_records(ledger: EmbeddedNode, seam: AppNode) -> None:
    for serial in range(200, 206):
        vaccinate(ledger, serial)
    lab_result(ledger, 210)
    vaccinate(ledger, 211, vaccine="141")  # influenza: no certificate
    counts = simulate(seam, random.Random(7))
    assert counts["credentials issued"] == 7
    assert counts["credentials revoked"] == 3
    assert (
        counts["checkpoint verifications valid"] + counts["checkpoint verifications refused"] == 6
    )
    kinds = sorted(v["kind"] for _, v in seam.range("credential/"))
    assert kinds.count("test") == 1 and kinds.count("vaccination") == 6
    # A live round issues only what was recorded since.
    vaccinate(ledger, 220)
    assert live_step(seam, random.Random(8))["credentials issued"] == 1
    assert live_step(seam, random.Random(9))["credentials issued"] == 0
