"""A client process of ``healthledger bench network --clients N``: an integrating
system with its own identity (an encrypted PKCS#8 key file and its certificate) that
writes through its organisation's peer with the client library
(:class:`healthledger.client.AsyncClient`), every transaction signed here inside the
timed path: sign, have it endorsed (``/proposals/endorse``, the endorsements checked
against the endorsers' registered certificates), submit and await the receipt
(``/transactions``); with ``batch`` above 1, up to that many calls at a time through
the batch routes (``AsyncClient.send_many``: two requests for the lot, each call still
signed, checked and receipted on its own).

Its conversation with the benchmark over ``conn`` (a ``multiprocessing`` pipe):

    child  -> ("ready",)
    parent -> ("phase", Phase)       any number of times
    child  -> ("done", [[began, answered, height, code], ...], failures)
    parent -> ("stop",)

and ``("failed", message)`` from the child in place of any of its messages. Times are
``time.perf_counter()`` readings (the system-wide monotonic clock on Linux).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection

from healthledger.client import AsyncClient, ClientError, Committed, Identity

COMMIT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ClientJob:
    """Who one client process is and where it writes."""

    index: int
    url: str
    """Its organisation's peer."""
    key_file: str
    """Its encrypted PKCS#8 key file, the certificate in the same file."""
    passphrase: str


@dataclass(frozen=True)
class Phase:
    """One load a client offers: ``count`` transactions from ``start`` (a perf_counter
    reading); closed loop with ``concurrency`` calls in flight, or, with ``rate``, one
    call every ``1 / rate`` s whatever the answers (paced; latency is then counted
    from when each call was due, so a queue behind slow answers counts in full)."""

    name: str
    count: int
    start: float
    concurrency: int = 0
    """Calls in flight, in requests of up to ``batch`` calls (paced: at most, while
    calls wait their turn)."""
    rate: float = 0.0
    offset: float = 0.0
    """Paced: this client's first call is due at ``start + offset``."""
    batch: int = 1
    """Calls per request (1: ``send``, one call per endorse and submit)."""


Sample = list[float | int | str]
"""``[began, answered, height, code]`` of one transaction."""


def run(conn: Connection, job: ClientJob) -> None:
    """The process's whole life (the target of ``multiprocessing``)."""
    try:
        asyncio.run(_run(conn, job))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the run
        conn.send(("failed", f"client {job.index}: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


async def _run(conn: Connection, job: ClientJob) -> None:
    identity = Identity.load(job.key_file, passphrase=job.passphrase)
    async with AsyncClient(job.url, identity=identity, timeout=COMMIT_TIMEOUT_S) as client:
        # Learn the endorsers' certificates before the clock starts, as a running
        # integration has them cached.
        await client.invoke("bench", "put", {"key": f"warm-{job.index}", "value": 0})
        conn.send(("ready",))
        while True:
            message = await asyncio.to_thread(_receive, conn)
            if message[0] == "stop":
                return
            phase = message[1]
            assert isinstance(phase, Phase)
            samples, failures = await _phase(client, job.index, phase)
            conn.send(("done", samples, failures))


def _receive(conn: Connection) -> tuple[object, ...]:
    if not conn.poll(600):
        raise TimeoutError("no word from the benchmark in 600 s")
    message: tuple[object, ...] = conn.recv()
    return message


async def _phase(client: AsyncClient, index: int, phase: Phase) -> tuple[list[Sample], list[str]]:
    samples: list[Sample] = []
    failures: list[str] = []

    async def some(js: list[int], dues: list[float]) -> None:
        """Sign and send calls ``js`` (due at ``dues`` when paced), one request each
        or, with ``phase.batch`` above 1, together."""
        began = dues if phase.rate else [time.perf_counter()] * len(js)
        calls = [
            client.propose("bench", "put", {"key": f"{phase.name}-{index}-{j}", "value": j})
            for j in js
        ]
        outcomes: list[Committed | ClientError]
        if phase.batch > 1:
            try:
                outcomes = await client.send_many(calls)
            except ClientError as exc:
                outcomes = [exc] * len(calls)
        else:
            outcomes = []
            for call in calls:
                try:
                    outcomes.append(await client.send(call))
                except ClientError as exc:
                    outcomes.append(exc)
        answered = time.perf_counter()
        for start, outcome in zip(began, outcomes, strict=True):
            if isinstance(outcome, ClientError):
                failures.append(f"{type(outcome).__name__}: {outcome}")
                continue
            receipt = outcome.receipt
            samples.append([start, answered, receipt.height, receipt.code])

    await asyncio.sleep(max(0.0, phase.start - time.perf_counter()))
    # ``concurrency`` calls in flight: that many requests, or fewer of ``batch`` calls.
    in_flight = max(1, phase.concurrency)
    size = max(1, min(phase.batch, in_flight))
    requests = -(-in_flight // size)
    if phase.rate:
        # Open loop: calls fall due at the rate whatever the answers; a due call leaves
        # at once if fewer than ``requests`` are out, else with the calls due by the
        # time one returns (up to ``batch`` a request). Latency counts from its due time.
        due: deque[tuple[int, float]] = deque()
        out: set[asyncio.Future[None]] = set()
        started: list[asyncio.Future[None]] = []

        async def send(taken: list[tuple[int, float]]) -> None:
            me = asyncio.current_task()
            try:
                await some([j for j, _ in taken], [at for _, at in taken])
            finally:
                if me is not None:
                    out.discard(me)
                pump()

        def pump() -> None:
            while due and len(out) < requests:
                taken = [due.popleft() for _ in range(min(size, len(due)))]
                started.append(asyncio.ensure_future(send(taken)))
                out.add(started[-1])

        for j in range(phase.count):
            at = phase.start + phase.offset + j / phase.rate
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            due.append((j, at))
            pump()
        while out:
            await asyncio.wait(set(out))
        await asyncio.gather(*started)  # raises what a request raised beyond a refusal
    else:
        queue = iter(range(phase.count))

        async def worker() -> None:
            while chunk := list(itertools.islice(queue, size)):
                await some(chunk, [])

        await asyncio.gather(*(worker() for _ in range(requests)))
    return samples, failures


__all__ = ["ClientJob", "Phase", "run"]
