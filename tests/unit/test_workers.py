"""The node's worker supervisor: workers start with it, a failed one is restarted after
a pause, and all stop when asked."""

from __future__ import annotations

import threading

import pytest

from healthledger.node.workers import Worker, WorkerSupervisor


def test_a_worker_runs_until_asked_to_stop() -> None:
    started = threading.Event()
    stopped = threading.Event()

    def run(stop: threading.Event) -> None:
        started.set()
        stop.wait()
        stopped.set()

    supervisor = WorkerSupervisor([Worker("w", "waits", run, acts_as="org/person")])
    supervisor.start()
    assert started.wait(10)
    (state,) = supervisor.states()
    assert state.running and state.worker.acts_as == "org/person"
    supervisor.stop()
    assert stopped.is_set() and not state.running and state.restarts == 0


def test_a_failing_worker_is_restarted_and_its_error_kept() -> None:
    runs: list[int] = []
    recovered = threading.Event()

    def run(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError(f"failure {len(runs)}")
        recovered.set()
        stop.wait()

    supervisor = WorkerSupervisor([Worker("flaky", "fails twice", run)], first_pause_s=0.01)
    supervisor.start()
    assert recovered.wait(10)
    (state,) = supervisor.states()
    assert state.restarts == 2 and state.last_error == "RuntimeError: failure 2"
    supervisor.stop()


def test_a_worker_that_returns_early_is_restarted() -> None:
    runs: list[int] = []
    twice = threading.Event()

    def run(stop: threading.Event) -> None:
        runs.append(1)
        if len(runs) >= 2:
            twice.set()
            stop.wait()

    supervisor = WorkerSupervisor([Worker("short", "returns", run)], first_pause_s=0.01)
    supervisor.start()
    assert twice.wait(10)
    assert supervisor.states()[0].last_error == "returned before it was asked to stop"
    supervisor.stop()


def test_worker_names_are_unique() -> None:
    worker = Worker("same", "x", lambda stop: None)
    with pytest.raises(ValueError, match="unique"):
        WorkerSupervisor([worker, worker])
