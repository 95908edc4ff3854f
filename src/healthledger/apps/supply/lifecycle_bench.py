"""``healthledger bench supply --lifecycle``: the custody lifecycle, timed like the EVM
baseline (``../shared/baselines/evm/bench_evm.py``) times the same contract in Vyper.

N lifecycles of four ``supply.capture`` transactions, one EPCIS event each:

    maker       commission the pack at its plant
    maker       ship it to the pharmacy
    pharmacist  receive it at the pharmacy
    pharmacist  dispense it

Each transaction is a proposal signed by its own actor's key: the maker's operator,
and one pharmacist per lifecycle (the EVM bench has one pharmacy account per
lifecycle; here custody belongs to organisations, so the nearest is one pharmacy
organisation whose N pharmacists each hold their own key and certificate).

Signing is outside the node-side clock, as in the EVM bench; it is timed on its own and
folded into the ``*_incl_signing`` figures (each group of transactions is signed just
before it is sent, so that no proposal outlives the node's replay window). Timed is
the node side: contract execution and endorsement, ordering, validation and durable commit
(SQLite, ``synchronous=FULL``) of every block, on an embedded node.

* ``single``: one transaction per block, each waited for before the next is sent
  (the EVM's ``mine_all([tx])`` per transaction);
* ``batched``: blocks of ``block_txs`` transactions. A block cannot hold two steps of
  one pack (the second is endorsed against the state before the first commits, so
  validation would refuse it as stale), so a block holds the same step of
  ``block_txs`` packs: commission 100 packs, ship them, receive them, dispense them,
  then the next 100 (the EVM's block of 100 holds all four steps of 25 packs).
* ``single_pipelined`` and ``batched_pipelined``: the same blocks (one transaction, or one
  step of ``block_txs`` packs), but the client does not wait on the disk before it sends
  more: two windows of ``block_txs`` packs are in flight, and while one window's step
  is validated and durably committed (every block still fsynced before its
  transactions are acknowledged) the other's next step is endorsed. This is the
  like-for-like figure: the EVM bench's loop never waits on a disk (its chain is in
  memory), so a client waiting for each fsync measures the disk, not the node. Each
  pack's next step is still sent only after its previous one committed. Proposals are
  signed ``CHUNK_TXS`` at a time with the node idle and the clock stopped.

Each mode runs on a fresh ledger per repeat, repeats interleaved, medians reported.
After the clock: every transaction committed VALID, no event refused by the
contract, every pack dispensed; anything else fails the run.

What a profile (cProfile of the sending thread and of the committing thread, 2026-12-07,
2 shared cores) showed, per transaction:

* one per block: about 10 ms, of which the block's durable commit waits on one fsync
  (the disk takes 136-309 a second here, ``disk_syncs_per_s``: that alone caps this mode
  near 200 tx/s, below 10x the EVM's in-memory 90-156); endorsement about 4.7 ms, 2 ms
  of it re-reading the node's eleven endorser identities from SQLite (their per-height
  memo is emptied by every block), the proposal's signature check, about 1 ms of
  contract code and the endorsement's signature; a validation dry run before ordering
  took 1 ms more and is gone (``AppNode.invoke_signed`` skips it, as ``invoke`` does);
* batched: about 1.8 ms, mostly endorsement (proposal check and endorsement signature,
  contract code with its canonical-JSON checks of every write, SQLite reads); each new
  pharmacist's certificate is parsed and its chain checked once. Validation and commit
  of a block of 100 is about a fifth of the time.

A second profile (2026-12-07, after the endorser and identity memos; CPU time per thread,
``cProfile`` on ``time.thread_time``, 200 lifecycles, load 13-16 on 2 cores) in CPU
rather than wall time, since on a loaded machine the wall clock mostly measures others:

* the process spends about 2.7-2.9 ms of CPU per transaction at one per block and
  1.0-1.6 ms batched (whole run, signing apart). At one per block the committing
  thread takes about 1.07 ms of CPU a block (0.46 ms of it SQLite's commit, which writes
  every touched page of five tables and the log to the WAL for one transaction)
  against about 0.07 ms a transaction in a block of 100: per-block fixed cost, not
  the fsync's wait, is what one block per transaction adds in CPU;
* endorsement is about four fifths of the batched CPU: contract code about 30 %
  (its writes' canonical-JSON checks included), the proposal check about 23 % (a
  fresh pharmacist's certificate parse and chain check is most of it, once per
  pharmacist), the endorsement's signature and payload about 19 %, the rest the
  simulation's read set, write set and requirement. Validation and commit of a block
  of 100: under a fifth;
* the EVM's figures unloaded (its README: 156 and 412 tx/s) are 6.4 and 2.4 ms a
  transaction on one core; ten times that is 0.64 and 0.24 ms a transaction for the
  whole node side, endorsement included, below the 1 ms this one-process node spends
  endorsing alone. The 10x goal needs endorsement and validation spread over processes
  (the offline audit's signature workers are the pattern) and blocks of one
  transaction committed several to an fsync (group commit), not per-call trimming;
* the pipelined client (two windows in flight) does not help on a loaded 2-core
  machine: the endorsing and the committing threads then contend for the GIL and the
  cores. In three interleaved rounds at load 10-13 it made 82/50/77 tx/s at one per
  block against the waiting client's 75/60/89, and 224/349/176 batched against
  201/246/225. (Before the solo orderer cut a queued full block at once, each block
  after the first of a submission waited out its 2 ms idle timer, which made the
  pipelined one-per-block client several times slower.)
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from healthledger.appkit.disk import fsync_per_s
from healthledger.apps.supply.aggregation import unit_key
from healthledger.apps.supply.contract import SupplyContract
from healthledger.apps.supply.digital_link import check_digit
from healthledger.apps.supply.event_hash import json_document_hashes
from healthledger.apps.supply.service import CONTRACT, capture_step
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.errors import HealthledgerError
from healthledger.ledger.transaction import SignedProposal
from healthledger.node.seam import AppNode, Sent, scratch_ledger

MAKER_QA = "lingnan-bio/qa-liu"
MAKER = "lingnan-bio/ops-he"
PHARMACY = "yuexiu-pharmacy"
PHARMACIST_ROLE = "pharmacist"
MODES = ("single", "batched", "single_pipelined", "batched_pipelined")
"""``single``/``batched``: a client that waits for each commit before it sends the next
transaction (one, or one step of ``block_txs`` packs); ``*_pipelined``: the same blocks,
with the next packs' transactions sent while earlier ones commit (see the module doc)."""
IN_FLIGHT = 2
"""Windows of packs a pipelined run keeps in flight: one commits while the next is
endorsed."""
SINGLE_WINDOW = 16
"""Packs in a window of ``single_pipelined`` (one block each); ``batched_pipelined``'s
windows are of ``block_txs`` packs, one step of a window a block."""
CHUNK_TXS = 2000
"""A pipelined run signs this many transactions at a time, the node idle and the clock
stopped, so no proposal outlives the replay window and no signing overlaps the node."""
WARMUP = 3
"""Lifecycles run untimed on each ledger first (imports, caches), as the EVM bench does."""
T = TypeVar("T")
CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"]
WHEN = "2026-01-05T09:00:00.000+08:00"


def _with_check(digits: str) -> str:
    return digits + str(check_digit(digits))


GTIN = _with_check("0695123400009")
PLANT = _with_check("695123400009")
SHOP = _with_check("695123600009")


class LifecycleCheckFailed(HealthledgerError):
    """After the clock: a transaction was refused, or a pack did not end dispensed."""


@dataclass(frozen=True)
class ModeRun:
    """One timed run of one mode on a fresh ledger."""

    mode: str
    transactions: int
    blocks: int
    node_s: float
    sign_s: float

    @property
    def tx_per_s(self) -> float:
        """Committed transactions per second, node side."""
        return self.transactions / self.node_s

    @property
    def tx_per_s_incl_signing(self) -> float:
        """Committed transactions per second with the client's signing added in."""
        return self.transactions / (self.node_s + self.sign_s)

    @property
    def sign_per_s(self) -> float:
        """Proposals signed per second by the clients."""
        return self.transactions / self.sign_s


@dataclass(frozen=True)
class LifecycleFigures:
    """What ``bench supply --lifecycle`` measured."""

    lifecycles: int
    block_txs: int
    repeat: int
    runs: tuple[ModeRun, ...]
    disk_syncs_per_s: float
    """fsyncs per second of the ledger's disk, measured in the same run: the ceiling of
    one durable block at a time."""
    load_average: tuple[float, float]
    """1-minute load average at the start and at the end."""

    def median(self, mode: str, figure: str) -> float | None:
        """Median of ``figure`` over the runs of ``mode`` (None if it did not run)."""
        values = [getattr(r, figure) for r in self.runs if r.mode == mode]
        return round(statistics.median(values), 1) if values else None

    def to_json(self) -> dict[str, Any]:
        """The figures as ``--json`` prints them (names as the EVM bench's)."""
        per_mode = {
            f"tx_per_s_{mode}{suffix}": self.median(mode, figure)
            for mode in MODES
            for suffix, figure in (("", "tx_per_s"), ("_incl_signing", "tx_per_s_incl_signing"))
        }
        return {
            "benchmark": "supply-lifecycle",
            **per_mode,
            "sign_tx_per_s": round(statistics.median(r.sign_per_s for r in self.runs), 1),
            "lifecycles": self.lifecycles,
            "transactions_per_run": 4 * self.lifecycles,
            "tx_per_block_batched": self.block_txs,
            "blocks": {m: [r.blocks for r in self.runs if r.mode == m] for m in MODES},
            "repeat": self.repeat,
            "runs_tx_per_s": {
                m: [round(r.tx_per_s, 1) for r in self.runs if r.mode == m] for m in MODES
            },
            "self_check": "every transaction VALID, no event refused, every pack dispensed",
            "actors": "maker lingnan-bio/ops-he; one pharmacist (own key) per lifecycle "
            "of one pharmacy organisation",
            "timed": "node side: contract execution and endorsement, ordering, validation, "
            "durable commit (synchronous=FULL); client signing apart",
            "disk_syncs_per_s": round(self.disk_syncs_per_s, 1),
            "load_average_start": self.load_average[0],
            "load_average_end": self.load_average[1],
        }


def pharmacist(index: int) -> str:
    """The identity of lifecycle ``index``'s pharmacist."""
    return f"{PHARMACY}/bench-pharmacist-{index:05d}"


def lifecycle_plans(pharmacists: int) -> tuple[Any, ...]:
    """The demo organisations, the pharmacy with ``pharmacists`` more pharmacists."""
    extra = tuple((pharmacist(i).split("/", 1)[1], PHARMACIST_ROLE) for i in range(pharmacists))
    return tuple(
        dataclasses.replace(plan, identities=plan.identities + extra)
        if plan.id == PHARMACY
        else plan
        for plan in DEMO_ORGS
    )


def _event(biz_step: str, serial: str, where: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": WHEN,
        "eventTimeZoneOffset": "+08:00",
        "epcList": [f"https://id.gs1.org/01/{GTIN}/21/{serial}"],
        "action": "ADD" if biz_step == "commissioning" else "OBSERVE",
        "bizStep": biz_step,
        "readPoint": {"id": f"https://id.gs1.org/414/{where}"},
        **extra,
    }


def _capture_args(event: dict[str, Any]) -> dict[str, Any]:
    """``supply.capture``'s argument for one event, as the capture service builds it."""
    document = {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": WHEN,
        "epcisBody": {"eventList": [event]},
    }
    event_hash = json_document_hashes(document)[0].hash
    return {"steps": [capture_step(event, event_hash, 0)]}


def serial_of(index: int) -> str:
    """The serial number of lifecycle ``index``'s pack."""
    return f"LC{index:08d}"


def lifecycle_calls(index: int) -> list[tuple[str, dict[str, Any]]]:
    """(identity, capture arguments) of lifecycle ``index``'s four transactions."""
    serial, who = serial_of(index), pharmacist(index)
    ilmd = {"cbvmda:lotNumber": f"LOT{index // 100:05d}", "cbvmda:itemExpirationDate": "2099-12-31"}
    ship_to = [{"type": "owning_party", "destination": f"https://id.gs1.org/414/{SHOP}"}]
    return [
        (MAKER, _capture_args(_event("commissioning", serial, PLANT, ilmd=ilmd))),
        (MAKER, _capture_args(_event("shipping", serial, PLANT, destinationList=ship_to))),
        (who, _capture_args(_event("receiving", serial, SHOP))),
        (who, _capture_args(_event("dispensing", serial, SHOP))),
    ]


def set_up(node: AppNode) -> None:
    """The product and the two places (untimed)."""
    node.invoke(
        MAKER_QA,
        CONTRACT,
        "register_product",
        {
            "gtin": GTIN,
            "name": "Lifecycle bench vaccine",
            "dosage_form": "injection",
            "temp_min_dc": 20,
            "temp_max_dc": 80,
            "shelf_life_days": 365,
        },
    )
    node.invoke(MAKER, CONTRACT, "register_location", {"gln": PLANT, "name": "Plant"})
    node.invoke(pharmacist(0), CONTRACT, "register_location", {"gln": SHOP, "name": "Pharmacy"})


def _schedule(lifecycles: Sequence[Sequence[T]], mode: str, block_txs: int) -> list[list[T]]:
    """The groups sent together, each awaited before the next (see the module doc)."""
    if mode == "single":
        return [[step] for lifecycle in lifecycles for step in lifecycle]
    groups: list[list[T]] = []
    for first in range(0, len(lifecycles), block_txs):
        window = lifecycles[first : first + block_txs]
        groups.extend([lifecycle[step] for lifecycle in window] for step in range(4))
    return groups


def _windows(lifecycles: Sequence[Sequence[T]], block_txs: int) -> list[list[Sequence[T]]]:
    return [list(lifecycles[i : i + block_txs]) for i in range(0, len(lifecycles), block_txs)]


def _pipelined(
    node: AppNode, lifecycles: Sequence[Sequence[tuple[str, dict[str, Any]]]], window: int
) -> tuple[float, float, list[str]]:
    """Send windows of ``window`` lifecycles, ``IN_FLIGHT`` windows at a time, each
    window's next step as soon as its previous step committed: seconds signing,
    seconds on the node side, and what went wrong (see the module doc)."""
    sign_s = node_s = 0.0
    problems: list[str] = []
    chunk = max(IN_FLIGHT, CHUNK_TXS // (4 * window))
    windows = _windows(lifecycles, window)
    for first in range(0, len(windows), chunk):
        started = time.perf_counter()
        signed = [
            [
                [node.propose(who, CONTRACT, "capture", args) for who, args in step]
                for step in _schedule(packs, "batched", window)
            ]
            for packs in windows[first : first + chunk]
        ]
        sent = time.perf_counter()
        sign_s += sent - started
        waiting = iter(signed)
        in_flight: deque[tuple[list[list[SignedProposal]], int, Sent]] = deque()
        for steps in (next(waiting, None) for _ in range(IN_FLIGHT)):
            if steps is not None:
                in_flight.append((steps, 0, node.send_signed(steps[0])))
        while in_flight:
            steps, step, sending = in_flight.popleft()
            problems += _problems(sending)
            if step + 1 < len(steps):
                in_flight.append((steps, step + 1, node.send_signed(steps[step + 1])))
            elif (following := next(waiting, None)) is not None:
                in_flight.append((following, 0, node.send_signed(following[0])))
        node_s += time.perf_counter() - sent
    return sign_s, node_s, problems


def _sign_and_send(
    node: AppNode, groups: Sequence[Sequence[tuple[str, dict[str, Any]]]]
) -> tuple[float, float, list[str]]:
    """Sign each group as its clients would, then send it and wait for its commits:
    seconds signing, seconds on the node side, and what went wrong. Each group is
    signed just before it is sent, so no proposal outlives the node's replay window
    however long the run."""
    sign_s = node_s = 0.0
    problems: list[str] = []
    for group in groups:
        started = time.perf_counter()
        signed = [node.propose(who, CONTRACT, "capture", args) for who, args in group]
        sent = time.perf_counter()
        problems += run_groups(node, [signed])
        node_s += time.perf_counter() - sent
        sign_s += sent - started
    return sign_s, node_s, problems


def run_groups(node: AppNode, groups: Sequence[Sequence[SignedProposal]]) -> list[str]:
    """Send every group and wait for its commits; what went wrong, one line each."""
    problems = []
    for group in groups:
        problems += _problems(node.send_signed(group))
    return problems


def _problems(sent: Sent) -> list[str]:
    """Wait for ``sent``'s commits; what went wrong, one line each."""
    problems = []
    for outcome in sent.outcomes():
        if outcome.error is not None:
            problems.append(f"refused: {outcome.error}")
        elif not outcome.valid:
            assert outcome.receipt is not None
            problems.append(f"{outcome.receipt.tx_id} committed {outcome.receipt.code}")
        elif outcome.result["refused"]:
            problems.append(f"event refused: {outcome.result['refused'][0]['reason']}")
    return problems


def check_lifecycles(node: AppNode, indexes: range, problems: list[str]) -> None:
    """Every transaction went through and every pack ended dispensed, or raise."""
    if problems:
        raise LifecycleCheckFailed(f"{len(problems)} transactions failed, first: {problems[0]}")
    for index in indexes:
        record = node.get(unit_key(f"01/{GTIN}/21/{serial_of(index)}"))
        status = None if record is None else record.get("status")
        if status != "dispensed":
            raise LifecycleCheckFailed(f"pack {serial_of(index)} ended {status}, not dispensed")


def run_mode(
    folder: Path, mode: str, *, lifecycles: int, block_txs: int, plans: tuple[Any, ...]
) -> ModeRun:
    """Time ``lifecycles`` lifecycles in ``mode`` on a new ledger in ``folder``."""
    with scratch_ledger(
        folder,
        name="supply",
        namespaces=(SupplyContract.name,),
        contracts=(*SYSTEM_CONTRACTS, SupplyContract),
        plans=plans,
        max_block_tx=1 if mode.startswith("single") else block_txs,
    ) as node:
        set_up(node)

        def send(indexes: range) -> tuple[float, float, list[str]]:
            calls = [lifecycle_calls(i) for i in indexes]
            if mode.endswith("_pipelined"):
                window = SINGLE_WINDOW if mode.startswith("single") else block_txs
                return _pipelined(node, calls, window)
            return _sign_and_send(node, _schedule(calls, mode, block_txs))

        warm = range(lifecycles, lifecycles + WARMUP)
        check_lifecycles(node, warm, send(warm)[2])
        height = node.height()
        sign_s, node_s, problems = send(range(lifecycles))
        blocks = node.height() - height
        check_lifecycles(node, range(lifecycles), problems)
    return ModeRun(mode, 4 * lifecycles, blocks, node_s, sign_s)


def lifecycle_benchmark(
    *,
    lifecycles: int = 250,
    block_txs: int = 100,
    repeat: int = 3,
    modes: Sequence[str] = MODES,
    status: Callable[[str], None] = lambda _: None,
    before_round: Callable[[int], None] = lambda _: None,
) -> LifecycleFigures:
    """Run every mode ``repeat`` times, interleaved, each on a new temporary ledger;
    ``before_round(rep)`` runs before each round (a baseline interleaved with ours)."""
    load_start = os.getloadavg()[0]
    plans = lifecycle_plans(lifecycles + WARMUP)
    runs = []
    with tempfile.TemporaryDirectory(prefix="healthledger-lifecycle-bench-") as tmp:
        syncs = fsync_per_s(Path(tmp))
        for rep in range(repeat):
            before_round(rep)
            for mode in modes:
                run = run_mode(
                    Path(tmp) / f"{mode}-{rep}",
                    mode,
                    lifecycles=lifecycles,
                    block_txs=block_txs,
                    plans=plans,
                )
                runs.append(run)
                status(
                    f"[{rep + 1}/{repeat}] {mode}: {run.transactions} tx in {run.blocks} blocks, "
                    f"{run.node_s:.2f} s: {run.tx_per_s:.1f} tx/s committed "
                    f"({run.tx_per_s_incl_signing:.1f} with client signing)"
                )
    return LifecycleFigures(
        lifecycles=lifecycles,
        block_txs=block_txs,
        repeat=repeat,
        runs=tuple(runs),
        disk_syncs_per_s=syncs,
        load_average=(round(load_start, 2), round(os.getloadavg()[0], 2)),
    )
