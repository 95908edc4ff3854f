"""Issuance for ``healthledger bench credentials``: credentials committed per second, end
to end, from vaccinations the epidemic application recorded, as a hospital issues its
vaccination day; with a plain-transaction baseline measured in the same run.

One temporary consortium of the demo organisations (embedded node, solo orderer, SQLite
with synchronous=FULL) runs the epidemic and credentials contracts; one hospital's
document signer is put on the trust list through governance and its nurse records
``credentials`` COVID-19 doses (untimed). Each round then times, alternated:

* ``baseline``: ``credentials`` plain ``bench.put`` transactions on a node of its own,
  signed, endorsed, ordered and committed from the same client threads (the commit-only
  rate of pre-endorsed ones, as ``bench commit`` measures it, beside);
* ``per_tx``: one credential per transaction (``credentials.issue``), the way the
  simulator and the API issue, every transaction of a client ordered together;
* ``batch``: ``batch`` credentials per ``credentials.issue_batch`` transaction, signed
  in ``signers`` worker processes (started before the rounds, as a node's would be) while
  the node's process endorses and commits the batches already signed; ``signers=0``
  signs in the node's process.

Both issuance modes do everything a real issuance does, inside the clock: the facts read
through the epidemic contract's query, three encodings signed (EU DCC, SMART Health
Card, SD-JWT VC) with a fresh identifier and a random status index each, endorsement,
ordering, the holder and texts made durable in the hospital's vault, and the durable
commit. Every round issues one credential per recorded dose (the first round issues
them, later rounds reissue), so each round does the same work. A credential counts
once its transaction committed valid.

The headline, ``issuance_committed_per_s``, is the ``batch`` median: credentials whose
``issue_batch`` transaction committed valid per second, beside the goal (500/s on two
cores) and this machine's signing ceiling measured in the same run: every core doing
nothing but the signatures a credential needs (three ES256, and two Ed25519 per
transaction), at the ES256 and Ed25519 rates measured at each round's start with every
core signing (wall clock: they fall with others' load as the issuance rates do).

Beside each rate the CPU milliseconds per credential (every thread of this process;
for the baseline per transaction, its node's start included; for ``batch`` the signing
processes' apart): on a machine shared with others the rates fall with their load, the
CPU cost far less.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from healthledger.apps.credentials.app import APP as CREDENTIALS
from healthledger.apps.credentials.app import CONTRACTS as CREDENTIAL_CONTRACTS
from healthledger.apps.credentials.facts import HolderName
from healthledger.apps.credentials.provision import enrol_issuers
from healthledger.apps.credentials.service import CredentialService
from healthledger.apps.credentials.signing import SigningPool
from healthledger.apps.epidemic.app import APP as EPIDEMIC
from healthledger.apps.epidemic.contract import Epidemic
from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.apps.epidemic.simulate import person, setup_demo
from healthledger.cli.bench import bench_node, commit_all, endorse_puts
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.node.embedded import EmbeddedNode
from healthledger.node.seam import AppNode, Call, attach

HOSPITAL = "gz-first-hospital"
REGION = "440104"
"""Yuexiu district, Guangzhou: where the hospital's patients live."""
RECORD_WINDOW = 200
MODES = ("baseline", "per_tx", "batch")
GOAL_PER_S = 500
"""Issue 15: credentials committed per second on two cores."""


def _holder(rng: random.Random) -> HolderName:
    born = f"{rng.randint(1940, 2010)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
    return HolderName(family_name=rng.choice(("Wang", "Li", "Chen")),
                      given_name=rng.choice(("Wei", "Fang", "Min")), birth_date=born)  # fmt: skip


def _slices(items: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    size = -(-len(items) // parts)
    return [items[i : i + size] for i in range(0, len(items), size)]


def _record_doses(epidemic: AppNode, nurse: str, count: int, rng: random.Random) -> list[str]:
    day = day_of_ms(epidemic.clock()) - 1
    ids: list[str] = []
    for start in range(0, count, RECORD_WINDOW):
        calls = [
            Call(nurse, "epidemic", "record_vaccination",
                 {"vaccine": "510", "dose_number": 1, "administered_date": day, "region": REGION},
                 {"patient": person(serial, REGION, rng)})
            for serial in range(start, min(count, start + RECORD_WINDOW))
        ]  # fmt: skip
        for outcome in epidemic.invoke_many(calls):
            if not outcome.valid:
                raise RuntimeError(f"a dose was refused ({outcome.error}): the benchmark is broken")
            ids.append(str(outcome.result["vaccination_id"]))
    return ids


def _per_tx(service: CredentialService, nurse: str, work: Sequence[tuple[str, HolderName]]) -> int:
    """One client's credentials, one ``issue`` transaction each, ordered together."""
    found = service.facts(nurse, "vaccination", [source_id for source_id, _ in work])
    calls = [
        service.prepare(nurse, "vaccination", fact, holder, source_id=source_id).call
        for fact, (source_id, holder) in zip(found, work, strict=True)
    ]
    return sum(outcome.valid for outcome in service.node.invoke_many(calls))


def _batch(
    service: CredentialService, nurse: str, work: Sequence[tuple[str, HolderName]], batch: int,
    signing: SigningPool | None,
) -> int:  # fmt: skip
    """One client's credentials, ``batch`` to an ``issue_batch`` transaction."""
    outcomes = service.issue_many(nurse, "vaccination", work, batch=batch, signing=signing)
    return sum(not isinstance(outcome, Exception) for outcome in outcomes)


def _issue_round(
    service: CredentialService, mode: str, nurse: str,
    work: Sequence[tuple[str, HolderName]], clients: int, batch: int,
    signing: SigningPool | None,
) -> int:  # fmt: skip
    """Credentials committed valid, ``clients`` threads issuing a share each."""

    def client(share: Sequence[tuple[str, HolderName]]) -> int:
        if mode == "per_tx":
            return _per_tx(service, nurse, share)
        return _batch(service, nurse, share, batch, signing)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return sum(pool.map(client, _slices(work, clients)))


def _baseline(folder: Path, count: int, clients: int) -> tuple[float, float]:
    """Plain ``bench.put`` transactions: (end-to-end tx/s, commit-only tx/s)."""
    node = bench_node(folder).start()
    try:
        started = time.perf_counter()

        def client(part: Sequence[int]) -> None:
            txs = endorse_puts(node, len(part), start=part[0])
            commit_all(node, txs)

        with ThreadPoolExecutor(max_workers=clients) as pool:
            list(pool.map(client, _slices(range(count), clients)))
        end_to_end = count / (time.perf_counter() - started)
        txs = endorse_puts(node, count, start=count)
        seconds, _ = commit_all(node, txs)
        return end_to_end, count / seconds
    finally:
        node.stop()


def _cpu_s() -> float:
    """CPU seconds this process has used, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


def issuance_benchmark(
    *,
    credentials: int = 1000,
    batch: int = 100,
    clients: int = 2,
    rounds: int = 3,
    signers: int = 1,
    seed: int = 15,
    status: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Issuance figures (see the module docstring): for each mode the median, lowest and
    highest per-second rate over ``rounds`` alternated rounds."""
    rng = random.Random(seed)
    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    pool = SigningPool(processes=signers) if signers else contextlib.nullcontext()
    with (
        pool as signing,
        tempfile.TemporaryDirectory(prefix="healthledger-credentials-bench-") as tmp,
    ):
        if signing is not None:
            status(f"setup: {signers} signing process(es)")
            signing.warm()
        node = EmbeddedNode.create(
            Path(tmp) / "node",
            contracts=(*SYSTEM_CONTRACTS, Epidemic, *CREDENTIAL_CONTRACTS),
            plans=DEMO_ORGS,
        ).start()
        try:
            status("setup: regions, the hospital's document signer on the trust list")
            epidemic, seam = attach(node, EPIDEMIC), attach(node, CREDENTIALS)
            setup_demo(epidemic)
            enrol_issuers(seam, [HOSPITAL])
            nurse = seam.identities(role="nurse", org=HOSPITAL)[0]
            status(f"setup: {credentials} doses recorded by {nurse}")
            doses = _record_doses(epidemic, nurse, credentials, rng)
            work = [(dose, _holder(rng)) for dose in doses]
            rates: dict[str, list[float]] = {mode: [] for mode in MODES}
            cpu_ms: dict[str, list[float]] = {mode: [] for mode in MODES}
            commit_only: list[float] = []
            signing_ms: list[float] = []
            sign_rates: list[tuple[float, float]] = []
            for round_no in range(rounds):
                status(f"round {round_no + 1}/{rounds}: signing rates on every core")
                sign_rates.append(_sign_rates(cores))
                for mode in MODES:
                    status(f"round {round_no + 1}/{rounds}: {mode}")
                    cpu_started = _cpu_s()
                    signing_started = 0.0 if signing is None else signing.cpu_s
                    if mode == "baseline":
                        folder = Path(tmp) / f"baseline-{round_no}"
                        end_to_end, committed = _baseline(folder, credentials, clients)
                        rates[mode].append(end_to_end)
                        commit_only.append(committed)
                        cpu_ms[mode].append((_cpu_s() - cpu_started) * 1000 / (2 * credentials))
                        continue
                    started = time.perf_counter()
                    done = _issue_round(CredentialService(seam), mode, nurse, work, clients,
                                        batch, signing)  # fmt: skip
                    seconds = time.perf_counter() - started
                    if done != credentials:
                        raise RuntimeError(f"{credentials - done} credentials were refused in "
                                           f"{mode}: the benchmark is broken")  # fmt: skip
                    rates[mode].append(credentials / seconds)
                    cpu_ms[mode].append((_cpu_s() - cpu_started) * 1000 / credentials)
                    if mode == "batch" and signing is not None:
                        signed_s = signing.cpu_s - signing_started
                        signing_ms.append(signed_s * 1000 / credentials)
        finally:
            node.stop()
    per_tx, batched = _spread(rates["per_tx"]), _spread(rates["batch"])
    baseline = _spread(rates["baseline"])
    cpu = {mode: round(statistics.median(found), 3) for mode, found in cpu_ms.items()}
    signing_cpu = round(statistics.median(signing_ms), 3) if signing_ms else None
    es256 = statistics.median(r[0] for r in sign_rates)
    ed25519_rate = statistics.median(r[1] for r in sign_rates)
    ceiling = signing_ceiling(es256, ed25519_rate, batch)
    return {
        "cores": cores,
        "load_average_at_start": load,
        "issuance_committed_per_s": batched["median"],
        "issuance_committed_per_s_range": f"{batched['min']}-{batched['max']}",
        "issuance_goal_per_s": GOAL_PER_S,
        "issuance_signing_ceiling_per_s": round(ceiling),
        "ratio_committed_to_signing_ceiling": round(batched["median"] / ceiling, 3),
        "machine_es256_sign_per_s": round(es256),
        "machine_ed25519_sign_per_s": round(ed25519_rate),
        "issuance_mode": (
            f"credentials committed valid per second, {batch} to an issue_batch "
            "transaction, end to end: facts read, 3 encodings signed, endorsed, ordered, "
            "vault and commit durable (synchronous=FULL); alternated rounds, median "
            "(min-max); ceiling: the machine signing only (3 ES256 a credential, 2 Ed25519 "
            "a transaction) at the rates of every core measured at each round's start"
        ),
        "issuance_credentials_per_round": credentials,
        "issuance_rounds": rounds,
        "issuance_clients": clients,
        "issuance_batch_per_tx": batch,
        "issuance_batch_per_s": batched["median"],
        "issuance_batch_per_s_range": f"{batched['min']}-{batched['max']}",
        "issuance_per_tx_per_s": per_tx["median"],
        "issuance_per_tx_per_s_range": f"{per_tx['min']}-{per_tx['max']}",
        "baseline_put_end_to_end_tx_per_s": baseline["median"],
        "baseline_put_end_to_end_range": f"{baseline['min']}-{baseline['max']}",
        "baseline_put_commit_only_tx_per_s": round(statistics.median(commit_only), 1),
        "ratio_batch_to_baseline": round(batched["median"] / baseline["median"], 3),
        "ratio_per_tx_to_baseline": round(per_tx["median"] / baseline["median"], 3),
        "issuance_batch_cpu_ms_per_credential": cpu["batch"],
        "issuance_batch_signing_processes": signers,
        "issuance_batch_signing_cpu_ms_per_credential": signing_cpu,
        "issuance_per_tx_cpu_ms_per_credential": cpu["per_tx"],
        "baseline_put_cpu_ms_per_tx": cpu["baseline"],
        "issuance_identity": nurse,
    }


def signing_ceiling(es256_per_s: float, ed25519_per_s: float, batch: int) -> float:
    """Credentials per second if the machine (signing at these rates, every core) did
    nothing but sign them: three ES256 signatures each (EU DCC, SMART Health Card,
    SD-JWT VC), and per ``issue_batch`` transaction two Ed25519 ones (the proposal and
    the endorsement)."""
    return 1 / (3 / es256_per_s + 2 / (batch * ed25519_per_s))


def _sign_rates(cores: int, seconds: float = 0.3) -> tuple[float, float]:
    """This machine's ES256 and Ed25519 signatures per second now, every core signing
    (one spawned process each, wall clock): the yardstick beside the rates, which falls
    with others' load as they do."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=cores, mp_context=context) as pool:
        list(pool.map(_signing_for, [0.0] * cores))  # started and imported, untimed
        counts = list(pool.map(_signing_for, [seconds] * cores))
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _signing_for(seconds: float) -> tuple[float, float]:
    """ES256 and Ed25519 signatures per wall-clock second of this process, each signed
    for ``seconds``."""
    es256, ed = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    message = bytes(200)
    signs: tuple[Callable[[], bytes], ...] = (
        lambda: es256.sign(message, ec.ECDSA(hashes.SHA256())),
        lambda: ed.sign(message),
    )
    rates = []
    for sign in signs:
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for _ in range(50):
                sign()
            count += 50
        rates.append(count / max(time.perf_counter() - started, 1e-9))
    return rates[0], rates[1]
