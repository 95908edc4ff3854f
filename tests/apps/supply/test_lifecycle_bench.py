"""``bench supply --lifecycle`` runs at toy size and checks its own outcome (no timing
asserted): a lifecycle run out of order fails the self-check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthledger.apps.supply import lifecycle_bench
from healthledger.apps.supply.cli import build_cli
from healthledger.apps.supply.contract import SupplyContract
from healthledger.apps.supply.lifecycle_bench import (
    CONTRACT,
    WARMUP,
    LifecycleCheckFailed,
    check_lifecycles,
    lifecycle_calls,
    lifecycle_plans,
    run_groups,
    run_mode,
    set_up,
)
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.seam import scratch_ledger


def test_lifecycle_bench_reports_both_modes_and_its_self_check() -> None:
    result = CliRunner().invoke(
        build_cli(),
        [
            "bench",
            "--lifecycle",
            "--lifecycles",
            "2",
            "--block-txs",
            "4",
            "--repeat",
            "1",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["benchmark"] == "supply-lifecycle"
    assert figures["self_check"].startswith("every transaction VALID")
    # One transaction per block; batched, each step of the two packs in one block;
    # a pipelined client makes the same blocks.
    assert figures["blocks"] == {
        "single": [8],
        "batched": [4],
        "single_pipelined": [8],
        "batched_pipelined": [4],
    }
    assert figures["tx_per_s_single"] > 0 and figures["tx_per_s_batched_incl_signing"] > 0
    assert figures["tx_per_s_single_pipelined"] > 0
    assert figures["tx_per_s_batched_pipelined_incl_signing"] > 0


@pytest.mark.parametrize(
    ("mode", "blocks"), [("single_pipelined", 36), ("batched_pipelined", None)]
)
def test_a_pipelined_client_with_windows_in_flight_passes_the_self_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, blocks: int | None
) -> None:
    # 9 lifecycles in windows of 4 keep two windows in flight, the third sent as the
    # first finishes; run_mode raises if any transaction was sent before its pack's
    # previous step committed (it would commit stale) or a pack did not end dispensed.
    # One transaction per block stays one transaction per block.
    monkeypatch.setattr(lifecycle_bench, "SINGLE_WINDOW", 4)
    run = run_mode(
        tmp_path / mode, mode, lifecycles=9, block_txs=4, plans=lifecycle_plans(9 + WARMUP)
    )
    assert run.transactions == 36
    # Batched, two windows' steps may share a block (of at most 4 transactions).
    assert run.blocks == blocks if mode == "single_pipelined" else 9 <= run.blocks <= 36


def test_a_pack_dispensed_before_it_is_received_fails_the_self_check(tmp_path: Path) -> None:
    with scratch_ledger(
        tmp_path / "node",
        name="supply",
        namespaces=(SupplyContract.name,),
        contracts=(*SYSTEM_CONTRACTS, SupplyContract),
        plans=lifecycle_plans(1),
    ) as node:
        set_up(node)
        commission, ship, receive, dispense = (
            node.propose(who, CONTRACT, "capture", args) for who, args in lifecycle_calls(0)
        )
        problems = run_groups(node, [[commission], [ship], [dispense], [receive]])
        assert len(problems) == 1
        assert problems[0].startswith("event refused:")
        assert "(in_transit), dispensed by yuexiu-pharmacy" in problems[0]
        with pytest.raises(LifecycleCheckFailed, match="1 transactions failed"):
            check_lifecycles(node, range(1), problems)
        with pytest.raises(LifecycleCheckFailed, match="ended active, not dispensed"):
            check_lifecycles(node, range(1), [])
