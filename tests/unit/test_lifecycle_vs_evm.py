"""benchmarks/lifecycle_vs_evm.py's arithmetic: the EVM's rounds merged into medians, and
our figures over the EVM's, the pipelined client against the EVM's same blocks (the
benchmarks themselves are not run here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "lifecycle_vs_evm.py"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lifecycle_vs_evm", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_evm_rounds_merge_into_medians_with_every_round_kept(script: ModuleType) -> None:
    rounds = [
        {"tx_per_s_single": 10.0, "tx_per_s_batched": 30.0, "py_evm": "0.12.1b1", "lifecycles": 5},
        {"tx_per_s_single": 14.0, "tx_per_s_batched": 20.0, "py_evm": "0.12.1b1", "lifecycles": 5},
        {"tx_per_s_single": 12.0, "tx_per_s_batched": 26.0, "py_evm": "0.12.1b1", "lifecycles": 5},
    ]
    merged = script.median_rounds(rounds)
    assert merged["tx_per_s_single"] == 12.0 and merged["tx_per_s_batched"] == 26.0
    assert merged["runs_tx_per_s"] == {"single": [10.0, 14.0, 12.0], "batched": [30.0, 20.0, 26.0]}
    assert merged["repeat"] == 3 and merged["py_evm"] == "0.12.1b1" and merged["lifecycles"] == 5


def test_pipelined_and_waiting_clients_are_both_divided_by_the_evms_same_mode(
    script: ModuleType,
) -> None:
    evm = {
        "tx_per_s_single": 10.0,
        "tx_per_s_single_incl_signing": 8.0,
        "tx_per_s_batched": 40.0,
        "tx_per_s_batched_incl_signing": 20.0,
    }
    ours = {
        "tx_per_s_single": 60.0,
        "tx_per_s_single_incl_signing": 56.0,
        "tx_per_s_single_pipelined": 110.0,
        "tx_per_s_single_pipelined_incl_signing": 100.0,
        "tx_per_s_batched": 200.0,
        "tx_per_s_batched_incl_signing": 180.0,
        "tx_per_s_batched_pipelined": 300.0,
        "tx_per_s_batched_pipelined_incl_signing": None,
    }
    assert script.ratios(ours, evm) == {
        "ratio_single": 6.0,
        "ratio_single_incl_signing": 7.0,
        "ratio_single_pipelined": 11.0,
        "ratio_single_pipelined_incl_signing": 12.5,
        "ratio_batched": 5.0,
        "ratio_batched_incl_signing": 9.0,
        "ratio_batched_pipelined": 7.5,
        "ratio_batched_pipelined_incl_signing": None,
    }
