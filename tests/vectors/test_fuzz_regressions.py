"""Every input that once broke a decoder under ``benchmarks/fuzz.py`` is kept in
``tests/vectors/fuzz/<decoder>/`` and must now be refused with that decoder's own error,
within a CPU-time bound far above what it takes (a hang would run on past it)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from healthledger.contracts.system import SYSTEM_CONTRACTS
from tests.support.founding import found
from tests.vectors.fuzz.decoders import Decoder, assets, decoders

CPU_LIMIT_S = 10.0
"""CPU seconds (not wall time: other load does not count) after which a decoding is a hang;
each asset takes milliseconds."""


class Hang(Exception):
    """The decoder ran past CPU_LIMIT_S."""


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Decoder]]:
    node = found(tmp_path_factory.mktemp("fuzz") / "data", contracts=SYSTEM_CONTRACTS)
    yield decoders(node)
    node.stop()


@pytest.fixture
def cpu_limit() -> Iterator[None]:
    def hang(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"still decoding after {CPU_LIMIT_S} s of CPU")

    previous = signal.signal(signal.SIGPROF, hang)
    signal.setitimer(signal.ITIMER_PROF, CPU_LIMIT_S)
    yield
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.signal(signal.SIGPROF, previous)


def test_every_asset_folder_is_a_decoder(table: dict[str, Decoder]) -> None:
    found = {name for name, _ in assets()}
    assert found, "no fuzz assets collected"
    assert found <= set(table)


@pytest.mark.parametrize(
    ("name", "path"), assets(), ids=[f"{name}/{path.name}" for name, path in assets()]
)
def test_asset_is_refused_with_the_decoders_error(
    table: dict[str, Decoder], name: str, path: Path, cpu_limit: None
) -> None:
    decoder = table[name]
    with pytest.raises(decoder.refusals):
        decoder.decode(path.read_bytes())
