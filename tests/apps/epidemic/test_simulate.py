"""The seeded SEIR simulator: deterministic, believable, and leaves no PHI on chain."""

from __future__ import annotations

import json
import random

from healthledger.apps.epidemic.readmodel import CaseReadModel
from healthledger.apps.epidemic.simulate import SeirParams, run, run_seir, setup_demo, simulate
from healthledger.node.embedded import EmbeddedNode
from tests.support.seam import epidemic_seam

DISTRICTS = ["440104", "440106", "440304"]
SMALL = SeirParams(population=400, days=30, reported_share=0.25, duplicate_share=0.1)


def test_same_seed_same_outbreak() -> None:
    one = run_seir(DISTRICTS, random.Random(7), SMALL, last_day=20_000)
    two = run_seir(DISTRICTS, random.Random(7), SMALL, last_day=20_000)
    other = run_seir(DISTRICTS, random.Random(8), SMALL, last_day=20_000)
    assert one == two != other
    assert all(19_971 <= c.onset <= c.diagnosis <= 20_000 for c in one)


def test_the_outbreak_grows_then_spreads_beyond_the_first_district() -> None:
    params = SeirParams(population=2000, days=60, reported_share=1.0)
    cases = run_seir(DISTRICTS, random.Random(3), params, last_day=20_000)
    early = sum(1 for c in cases if c.onset < 19_951)
    assert len(cases) > 100
    assert len({c.region for c in cases}) == 3
    assert early < len(cases) / 2  # few cases in the first ten days: the curve rises


def test_an_unconfigured_node_simulates_nothing(bare_node: EmbeddedNode) -> None:
    assert run(epidemic_seam(bare_node), random.Random(1), SMALL) == ({"cases": 0}, [])


def test_demo_setup_writes_guangdong_once_then_simulates_an_outbreak(
    bare_node: EmbeddedNode,
) -> None:
    assert setup_demo(epidemic_seam(bare_node)) == 144
    regions = bare_node.query("gd-cdc/epi-wang", "epidemic", "aggregates", {})
    assert regions == []  # no cases yet
    assert setup_demo(epidemic_seam(bare_node)) == 0  # the commission's table is already on chain
    counts = simulate(epidemic_seam(bare_node), random.Random(5))
    assert counts["regions defined"] == 0
    assert counts["cases"] > 200 and counts["refused"] == 0
    model = CaseReadModel(epidemic_seam(bare_node))
    model.catch_up()
    places = {row["region"] for row in model.counts()}
    assert len(places) > 10  # spread beyond the first district
    assert "440103" in places  # Liwan, where it starts


def test_simulated_reports_reach_the_chain_without_personal_data(node: EmbeddedNode) -> None:
    counts, people = run(epidemic_seam(node), random.Random(11), SMALL)
    assert counts["cases"] > 10
    assert counts["refused"] == 0
    assert counts["reviewed"] > 0
    assert len(people) > 10
    texts = []
    for height in range(node.peer.store.height()):
        raw = node.peer.store.block_bytes(height)
        texts.append(raw.decode() + json.dumps(json.loads(raw), ensure_ascii=False))
    chain = "\n".join(texts)
    for person in people:
        for field in ("name", "id_number", "phone", "address"):
            assert person[field] not in chain
    model = CaseReadModel(epidemic_seam(node))
    model.catch_up()
    assert sum(row["count"] for row in model.counts()) == counts["cases"]
