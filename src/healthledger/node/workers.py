"""Background workers that applications declare and the node runs.

An application never starts a thread of its own from a page or a router: it declares
its workers (:class:`Worker`: a name, what it does, the identity it signs as if it
signs, and a function that runs until asked to stop), and the node's
:class:`WorkerSupervisor` starts them with the server, restarts one that fails (after
a growing pause, so a worker failing at once does not spin), and stops them all with
the server. What each worker is doing and whom it acts as is shown to operators.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

LOG = logging.getLogger(__name__)

FIRST_PAUSE_S = 1.0
MAX_PAUSE_S = 60.0


@dataclass(frozen=True)
class Worker:
    """One background task of an application."""

    name: str
    """Unique on the node, e.g. ``epidemic.early-warning``."""
    description: str
    """What it does, in a sentence an operator reads."""
    run: Callable[[threading.Event], None]
    """Does the work until the event is set, then returns; raising is a failure."""
    acts_as: str | None = None
    """The identity it signs transactions as (its key is on this node), or None."""


@dataclass
class WorkerState:
    """How one supervised worker is doing."""

    worker: Worker
    running: bool = False
    restarts: int = 0
    last_error: str | None = None
    thread: threading.Thread | None = field(default=None, repr=False)


class WorkerSupervisor:
    """Runs workers on threads of their own, restarts failed ones, stops them all."""

    def __init__(
        self,
        workers: Sequence[Worker],
        *,
        first_pause_s: float = FIRST_PAUSE_S,
        max_pause_s: float = MAX_PAUSE_S,
    ) -> None:
        names = [w.name for w in workers]
        if len(set(names)) != len(names):
            raise ValueError(f"worker names must be unique: {names}")
        self._states = [WorkerState(w) for w in workers]
        self._stop = threading.Event()
        self._first_pause = first_pause_s
        self._max_pause = max_pause_s
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start every worker not running yet."""
        with self._lock:
            self._stop.clear()
            for state in self._states:
                if state.thread is None or not state.thread.is_alive():
                    state.thread = threading.Thread(
                        target=self._supervise,
                        args=(state,),
                        name=f"worker-{state.worker.name}",
                        daemon=True,
                    )
                    state.thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask every worker to stop and wait for each (at most ``timeout`` seconds each)."""
        self._stop.set()
        with self._lock:
            threads = [s.thread for s in self._states if s.thread is not None]
        for thread in threads:
            thread.join(timeout)

    def states(self) -> list[WorkerState]:
        """Each worker's state, in declaration order."""
        return list(self._states)

    def _supervise(self, state: WorkerState) -> None:
        pause = self._first_pause
        while not self._stop.is_set():
            state.running = True
            try:
                state.worker.run(self._stop)
            except Exception as exc:  # noqa: BLE001 - a failed worker is restarted, not fatal
                state.last_error = f"{type(exc).__name__}: {exc}"
                LOG.warning("worker %s failed: %s", state.worker.name, state.last_error)
            else:
                if self._stop.is_set():
                    break
                state.last_error = "returned before it was asked to stop"
            finally:
                state.running = False
            if self._stop.wait(pause):
                break
            state.restarts += 1
            pause = min(pause * 2, self._max_pause)
