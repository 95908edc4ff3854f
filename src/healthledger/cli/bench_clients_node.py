"""A peer process of ``healthledger bench network --clients N``: one organisation's
consortium peer (its own folder and keys, ordering through the JetStream cluster)
serving the platform's API over HTTP, as ``healthledger node --jetstream`` serves it,
with the benchmark contract installed beside the system contracts.

Run as ``python -m healthledger.cli.bench_clients_node DATA PORT NATS_URLS``; it serves
until SIGTERM. With ``HEALTHLEDGER_BENCH_PROFILE=FILE`` it samples every thread's
stack every few milliseconds (where the peer's time goes under load) and writes the
functions most often on a stack, and most often running, to FILE (JSON) when it stops.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from healthledger.api.app import create_api
from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.consortium_peer import open_consortium_peer

CONTRACTS = (*SYSTEM_CONTRACTS, BenchContract)
PROFILE_ENV = "HEALTHLEDGER_BENCH_PROFILE"
SAMPLE_S = 0.005
WRITE_EVERY = 400
"""Samples between two writes of the figures."""
TOP = 40


class Sampler:
    """Counts, every ``SAMPLE_S``, each function on any thread's stack (inclusive) and
    each one running (self), idle waits included (they show as such)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inclusive: Counter[str] = Counter()
        self.running: Counter[str] = Counter()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def start(self) -> Sampler:
        """Begin sampling."""
        self._thread.start()
        return self

    def _sample(self) -> None:
        me = threading.get_ident()
        while not self._stop.wait(SAMPLE_S):
            self.samples += 1
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                top: Any = frame
                self.running[_where(top)] += 1
                seen = set()
                while top is not None:
                    seen.add(_where(top))
                    top = top.f_back
                self.inclusive.update(seen)
            if self.samples % WRITE_EVERY == 0:
                # Written as it goes: the peer may be stopped by a signal at any time.
                self.write()

    def stop(self) -> None:
        """Stop and write the figures."""
        self._stop.set()
        self._thread.join(2)
        self.write()

    def write(self) -> None:
        """Write the figures so far to the sampler's file (JSON)."""
        self.path.write_text(
            json.dumps(
                {
                    "samples": self.samples,
                    "interval_s": SAMPLE_S,
                    "inclusive": self.inclusive.most_common(TOP),
                    "running": self.running.most_common(TOP),
                    "at": time.time(),
                }
            )
        )


def _where(frame: Any) -> str:
    code = frame.f_code
    return f"{Path(code.co_filename).name}:{code.co_name}"


def serve(data: Path, port: int, servers: list[str]) -> None:
    """Serve the peer of ``data`` on 127.0.0.1:``port`` until SIGTERM or SIGINT."""
    import uvicorn

    node = open_consortium_peer(data, contracts=CONTRACTS, servers=servers)
    profile_file = os.environ.get(PROFILE_ENV)
    sampler = Sampler(Path(profile_file)).start() if profile_file else None
    try:
        node.start()
        server = uvicorn.Server(
            uvicorn.Config(create_api(node), host="127.0.0.1", port=port, log_level="warning")
        )
        server.run()
    finally:
        # Written first: stopping the peer may outlast the benchmark's patience.
        if sampler is not None:
            sampler.stop()
        node.stop()


def main(argv: list[str]) -> int:
    """The process's entry point: ``DATA PORT NATS_URLS`` (comma-separated URLs)."""
    if len(argv) != 3:
        print("usage: python -m healthledger.cli.bench_clients_node DATA PORT NATS_URLS")
        return 2
    data, port, urls = argv
    serve(Path(data), int(port), [u for u in urls.split(",") if u])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
