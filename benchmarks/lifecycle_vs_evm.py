"""The custody lifecycle on healthledger against the same contract in Vyper on py-evm,
measured in one run on one machine, and the ratios (goal: at least 10x, one
transaction per block and batched). ``met`` judges the pipelined client (the like-for-like
figure: the EVM's loop never waits on a disk); the ratios of a client that waits for
each commit are printed beside it.

The EVM side is ``../shared/baselines/evm/bench_evm.py`` (its README says what it
times), run in its own virtualenv (``bash ../shared/baselines/evm/setup.sh`` makes it,
in ``$EVM_BASELINE_VENV`` or ``/tmp/evm-baseline-venv``) with ``--json``; ours is
``healthledger bench supply --lifecycle`` with the same sizes, each of our rounds after one
EVM repeat (the load of a shared machine drifts; medians over the rounds). Human lines go
to stderr; the last stdout line is one JSON object.

Usage: python benchmarks/lifecycle_vs_evm.py [--lifecycles 250] [--block-txs 100]
[--repeat 3] [--evm-python PATH] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from healthledger.apps.supply.lifecycle_bench import lifecycle_benchmark

GOAL = 10.0
"""healthledger's committed tx/s over the EVM's, in each mode."""
HERE = Path(__file__).resolve().parent
DEFAULT_BASELINE = HERE.parent.parent / "shared" / "baselines" / "evm"
DEFAULT_VENV = Path(os.environ.get("EVM_BASELINE_VENV", "/tmp/evm-baseline-venv"))


class BaselineUnavailable(RuntimeError):
    """The EVM baseline could not be run (no venv, or it failed)."""


def run_evm(
    python: Path, baseline: Path, *, lifecycles: int, block_txs: int, repeat: int
) -> dict[str, Any]:
    """The EVM baseline's JSON figures (its human lines pass through to stderr)."""
    script = baseline / "bench_evm.py"
    if not python.exists():
        raise BaselineUnavailable(
            f"no EVM baseline interpreter at {python}: run bash {baseline / 'setup.sh'}"
        )
    if not script.exists():
        raise BaselineUnavailable(f"no {script}")
    argv = [str(python), str(script), "--lifecycles", str(lifecycles)]
    argv += ["--block-txs", str(block_txs), "--repeat", str(repeat)]
    argv += ["--modes", "single,batched", "--json"]
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise BaselineUnavailable(f"the EVM baseline failed (exit {done.returncode})")
    found: dict[str, Any] = json.loads(lines[-1])
    return found


def median_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The EVM's figures over rounds of one repeat each: the median of each tx/s figure,
    every round's figures under ``runs_tx_per_s``, the rest as the first round gave."""
    merged = dict(rounds[0])
    for key, value in rounds[0].items():
        figure = key.startswith("tx_per_s_") or key == "sign_tx_per_s"
        if figure and isinstance(value, int | float):
            merged[key] = round(statistics.median(r[key] for r in rounds), 1)
    merged["runs_tx_per_s"] = {
        mode: [r.get(f"tx_per_s_{mode}") for r in rounds] for mode in ("single", "batched")
    }
    merged["repeat"] = len(rounds)
    return merged


def ratios(ours: dict[str, Any], evm: dict[str, Any]) -> dict[str, float | None]:
    """Our figure over the EVM's, per mode, node side and with client signing; our
    pipelined client (``*_pipelined``) against the EVM's same blocks."""
    out: dict[str, float | None] = {}
    for mode in ("single", "batched"):
        for client in ("", "_pipelined"):
            for suffix in ("", "_incl_signing"):
                mine = ours.get(f"tx_per_s_{mode}{client}{suffix}")
                theirs = evm.get(f"tx_per_s_{mode}{suffix}")
                out[f"ratio_{mode}{client}{suffix}"] = (
                    round(mine / theirs, 2) if mine is not None and theirs else None
                )
    return out


def main() -> None:
    """Run both, print both and the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lifecycles", type=int, default=250)
    parser.add_argument("--block-txs", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--evm-python", type=Path, default=DEFAULT_VENV / "bin" / "python")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
    args = parser.parse_args()

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    load_start = os.getloadavg()[0]
    evm_rounds: list[dict[str, Any]] = []

    def evm_round(rep: int) -> None:
        # One EVM repeat before each of our rounds: on a machine whose load drifts,
        # both sides of a ratio are measured under the same load.
        say(f"EVM baseline, round {rep + 1}/{args.repeat}: {args.lifecycles} lifecycles")
        evm_rounds.append(
            run_evm(
                args.evm_python,
                args.baseline,
                lifecycles=args.lifecycles,
                block_txs=args.block_txs,
                repeat=1,
            )
        )
        say(f"healthledger, round {rep + 1}/{args.repeat}: {args.lifecycles} lifecycles")

    try:
        ours = lifecycle_benchmark(
            lifecycles=args.lifecycles,
            block_txs=args.block_txs,
            repeat=args.repeat,
            status=say,
            before_round=evm_round,
        ).to_json()
    except (BaselineUnavailable, OSError, ValueError) as exc:
        say(f"error: {exc}")
        raise SystemExit(2) from None
    evm = median_rounds(evm_rounds)
    found = ratios(ours, evm)
    for mode in ("single", "batched"):
        for client, what in (("_pipelined", "pipelined client"), ("", "client waiting")):
            say(
                f"{mode:8s} {what:16s} healthledger {ours[f'tx_per_s_{mode}{client}']:8.1f} "
                f"tx/s, EVM {evm[f'tx_per_s_{mode}']:7.1f} tx/s: "
                f"{found[f'ratio_{mode}{client}']}x (with client signing "
                f"{found[f'ratio_{mode}{client}_incl_signing']}x; goal {GOAL:g}x)"
            )
    # Like for like: the EVM's loop never waits on a disk, so neither does our client
    # (every block is still fsynced before its transactions are acknowledged).
    met = all((found[f"ratio_{m}_pipelined"] or 0) >= GOAL for m in ("single", "batched"))
    print(
        json.dumps(
            {
                "benchmark": "lifecycle-vs-evm",
                **found,
                "goal_ratio": GOAL,
                "met": met,
                "healthledger": ours,
                "evm": evm,
                "load_average_start": round(load_start, 2),
                "load_average_end": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
