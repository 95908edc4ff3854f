"""Every input that once broke a decoder under ``benchmarks/fuzz.py`` is kept in
``tests/vectors/fuzz/<decoder>/`` and must now be refused with that decoder's own error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.node.embedded import EmbeddedNode
from tests.vectors.fuzz.decoders import Decoder, assets, decoders


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Decoder]]:
    node = EmbeddedNode.create(tmp_path_factory.mktemp("fuzz") / "data", contracts=SYSTEM_CONTRACTS)
    yield decoders(node)
    node.stop()


def test_every_asset_folder_is_a_decoder(table: dict[str, Decoder]) -> None:
    found = {name for name, _ in assets()}
    assert found, "no fuzz assets collected"
    assert found <= set(table)


@pytest.mark.parametrize(
    ("name", "path"), assets(), ids=[f"{name}/{path.name}" for name, path in assets()]
)
def test_asset_is_refused_with_the_decoders_error(
    table: dict[str, Decoder], name: str, path: Path
) -> None:
    decoder = table[name]
    with pytest.raises(decoder.refusals):
        decoder.decode(path.read_bytes())
