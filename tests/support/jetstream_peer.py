"""A peer process on JetStream for crash tests: ``python -m tests.support.jetstream_peer
DATA STREAM URL [URL ...]`` opens the data folder, resumes the stream after the position
recorded with its last block, prints ``ready`` and commits until SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from healthledger.cli.bench_contract import BenchContract
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.consortium_peer import jetstream_ordering
from healthledger.node.embedded import EmbeddedNode


def main(argv: list[str]) -> None:
    data, stream, *servers = argv
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    node = EmbeddedNode(
        Path(data),
        contracts=(*SYSTEM_CONTRACTS, BenchContract),
        resume_orderer=jetstream_ordering(
            servers,
            stream=stream,
            subject_prefix=f"hl.{stream.lower()}",
            max_block_tx=16,
            batch_timeout_s=0.02,
        ),
    )
    node.start()
    print("ready", flush=True)
    stop.wait()
    node.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
