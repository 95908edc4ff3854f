"""A real node served over HTTP on 127.0.0.1 (uvicorn on a thread, a port the OS
picks), without demo custody: writes must come signed by their clients."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from typer.testing import CliRunner

from healthledger.api.app import create_api
from healthledger.cli.main import app
from healthledger.node.embedded import EmbeddedNode


@contextmanager
def served(node: EmbeddedNode) -> Iterator[str]:
    """The API of ``node`` at the URL yielded, until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(
            create_api(node, demo_custody=False),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=server.run, name="api-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """The ``healthledger`` command run in this process (Typer's runner): the same
    code as the installed command, without an interpreter's start-up."""
    result = CliRunner().invoke(app, list(args))
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)
