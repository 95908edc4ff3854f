"""A consortium peer process with its own submitters, for the partition tests.

``python -m tests.support.partition_peer DATA STREAM OUT URL [URL ...]`` opens
the consortium peer folder DATA on ordering stream STREAM (as ``open_peer`` does),
prints ``ready`` and has a few threads invoke ``supply.register_location`` through it
until SIGUSR1, recording in the folder OUT:

- ``acked``: ``<tx id> <code>`` of every transaction whose receipt came back, one a
  line, flushed at once (the process may be killed at any moment);
- ``refused``: the one-line reason of every write the peer refused;
- ``crashed``: anything else a submitter met (a stack trace: always a bug).

On SIGUSR1 the submitters finish what they have in flight and ``drained`` is written;
on SIGTERM the peer writes ``status.json`` (height, head hash, checkpoint state and
counts), stops, and writes ``stopped``; SIGUSR2 dumps every thread's stack to stderr.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import IO

from healthledger.node.consortium_peer import ConsortiumNode
from healthledger.node.errors import NodeError
from tests.support.gs1 import gln
from tests.support.jetstream_peer import open_peer

SUBMITTERS = 3
INVOKE_TIMEOUT_S = 20.0


class Submitters:
    """Threads sending writes through one peer and recording what became of each."""

    def __init__(self, node: ConsortiumNode, out: Path) -> None:
        self.node = node
        self.out = out
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._next = 0
        self._files: dict[str, IO[str]] = {
            kind: (out / kind).open("a", buffering=1) for kind in ("acked", "refused", "crashed")
        }
        self._threads = [
            threading.Thread(target=self._send, name=f"submitter-{i}", daemon=True)
            for i in range(SUBMITTERS)
        ]

    def start(self) -> None:
        """Start sending."""
        for thread in self._threads:
            thread.start()

    def drain(self) -> None:
        """Stop sending, wait for the writes in flight, and say so in ``drained``."""
        self._stop.set()
        for thread in self._threads:
            thread.join(INVOKE_TIMEOUT_S + 30)
        for file in self._files.values():
            file.close()
        (self.out / "drained").write_text("drained\n")

    def _record(self, kind: str, line: str) -> None:
        with self._lock:
            self._files[kind].write(line.replace("\n", " ") + "\n")

    def _send(self) -> None:
        org = self.node.org
        while not self._stop.is_set():
            with self._lock:
                self._next += 1
                n = self._next
            try:
                receipt, _ = self.node.invoke(
                    f"{org}/admin",
                    "supply",
                    "register_location",
                    {"gln": gln(org, n), "name": f"site {n}"},
                    timeout=INVOKE_TIMEOUT_S,
                )
            except NodeError as exc:
                self._record("refused", f"{type(exc).__name__}: {exc}")
                self._stop.wait(0.1)
                continue
            except Exception:  # noqa: BLE001 - any other failure is what the test looks for
                self._record("crashed", traceback.format_exc())
                self._stop.wait(0.1)
                continue
            self._record("acked", f"{receipt.tx_id} {receipt.code}")


def status(node: ConsortiumNode) -> dict[str, object]:
    """What the test reads at the end: the head and the checkpoint guard's findings."""
    store = node.peer.store
    head = store.head()
    return {
        "height": store.height(),
        "head": None if head is None else head.hash,
        "checkpoint_state": str(node.guard.state),
        "divergences": node.guard.divergence_count,
        "rejected": node.guard.rejected_count,
        "refusal": node.refusal(),
    }


def main(argv: list[str]) -> None:
    data, stream, out, *servers = argv
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO
    )
    stop = threading.Event()
    drain = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGUSR1, lambda *_: drain.set())
    faulthandler.register(signal.SIGUSR2)  # every thread's stack, when a stop hangs
    node = open_peer(Path(data), stream, servers).start()
    submitters = Submitters(node, Path(out))
    print("ready", flush=True)
    submitters.start()
    while not (drain.is_set() or stop.is_set()):
        drain.wait(0.2)
    submitters.drain()
    # With a timeout: a signal the kernel hands to another thread does not wake a main
    # thread blocked for good, and its handler would never run.
    while not stop.wait(0.2):
        pass
    (Path(out) / "status.json").write_text(json.dumps(status(node)))
    node.stop()
    (Path(out) / "stopped").write_text("stopped\n")


if __name__ == "__main__":
    main(sys.argv[1:])
