"""Property tests of every decoder of untrusted bytes (a small, bounded version of what
``benchmarks/fuzz.py`` runs at scale): a valid input decodes, and any input, made at
random or by breaking a valid one, either decodes or is refused with the decoder's own
named error (``tests/vectors/fuzz/decoders.py``), never anything else."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthledger.apps.supply.digital_link import (
    DigitalLinkError,
    check_digit,
    pack_link,
    parse_pack_link,
    qr_png,
)
from healthledger.contracts.system import SYSTEM_CONTRACTS
from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.errors import CanonicalEncodingError
from healthledger.ledger.block import Block
from healthledger.node.checkpoint import Checkpoint, origin_of, sign_note
from healthledger.node.embedded import EmbeddedNode
from tests.apps.epidemic.test_intake import bundle
from tests.support.founding import found
from tests.vectors.fuzz.decoders import Decoder, decoders

CONFORMANCE = Path(__file__).resolve().parents[3] / "shared" / "conformance"
EPCIS_JSON = CONFORMANCE / "epcis-event-hash" / "epcisDocWithSingleEvent.jsonld"
EPCIS_XML = CONFORMANCE / "epcis-event-hash" / "epcisDocWithVariousEventTypes.xml"
GTIN = "0695123400001" + str(check_digit("0695123400001"))
LINK = pack_link(gtin=GTIN, lot="L1", serial="P/1", expiry="991200")
BOUNDED = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=6,
)


class Seeds:
    """Valid inputs of every decoder, from a freshly founded ledger and the test data."""

    def __init__(self, node: EmbeddedNode) -> None:
        store = node.peer.store
        header = store.header(0)
        block = Block.from_json(json.loads(store.block_bytes(0)))
        tx = block.transactions[0]
        self.json: dict[str, Any] = {
            "proposal": tx.signed_proposal.to_json(),
            "transaction": tx.to_json(),
            "block": block.to_json(),
            "fhir": bundle(),
            "epcis_json": json.loads(EPCIS_JSON.read_bytes()),
        }
        name, key = node.keystore.peers()[0]
        checkpoint = Checkpoint.of(header, origin=origin_of(header))
        self.bytes: dict[str, bytes] = {
            "checkpoint": checkpoint.body(),
            "checkpoint_note": sign_note(checkpoint, name=name, key=key).encode(),
            "epcis_xml": EPCIS_XML.read_bytes(),
            "digital_link": LINK.uri().encode(),
            "qr": qr_png(LINK),
        }


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Decoder], Seeds]]:
    folder = tmp_path_factory.mktemp("properties") / "data"
    node = found(folder, contracts=SYSTEM_CONTRACTS, checkpoint_every=1)
    yield decoders(node), Seeds(node)
    node.stop()


def _decodes_or_refuses(decoder: Decoder, data: bytes) -> None:
    with contextlib.suppress(*decoder.refusals):
        decoder.decode(data)


def _encode(name: str, value: Any) -> bytes:
    if name in ("proposal", "transaction", "block"):
        try:
            return canonical_json(value)
        except CanonicalEncodingError:  # a float or an out-of-profile value: plain JSON
            return json.dumps(value).encode()
    return json.dumps(value).encode()


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replaced(value[head], rest, new)}
    return [_replaced(item, rest, new) if i == head else item for i, item in enumerate(value)]


def _dropped(value: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1 and isinstance(value, dict):
        return {k: v for k, v in value.items() if k != path[0]}
    if len(path) == 1:
        return [item for i, item in enumerate(value) if i != path[0]]
    head = path[0]
    if isinstance(value, dict):
        return {**value, head: _dropped(value[head], path[1:])}
    return [_dropped(item, path[1:]) if i == head else item for i, item in enumerate(value)]


JSON_DECODERS = ("proposal", "transaction", "block", "fhir", "epcis_json")
BYTES_DECODERS = ("checkpoint", "checkpoint_note", "epcis_xml", "digital_link", "qr")


@pytest.mark.parametrize("name", (*JSON_DECODERS, *BYTES_DECODERS))
def test_a_valid_input_decodes(ledger: tuple[dict[str, Decoder], Seeds], name: str) -> None:
    table, seeds = ledger
    data = _encode(name, seeds.json[name]) if name in seeds.json else seeds.bytes[name]
    assert table[name].decode(data) is not None


@pytest.mark.parametrize("name", JSON_DECODERS)
@BOUNDED
@given(data=st.data())
def test_a_broken_json_input_is_decoded_or_refused(
    ledger: tuple[dict[str, Decoder], Seeds], name: str, data: st.DataObject
) -> None:
    table, seeds = ledger
    seed = seeds.json[name]
    path = data.draw(st.sampled_from(_paths(seed)), label="path")
    if path and data.draw(st.booleans(), label="drop"):
        broken = _dropped(seed, path)
    else:
        broken = _replaced(seed, path, data.draw(JSON_VALUES, label="value"))
    _decodes_or_refuses(table[name], _encode(name, broken))


@pytest.mark.parametrize("name", (*BYTES_DECODERS, "canonical"))
@BOUNDED
@given(data=st.data())
def test_broken_bytes_are_decoded_or_refused(
    ledger: tuple[dict[str, Decoder], Seeds], name: str, data: st.DataObject
) -> None:
    table, seeds = ledger
    seed = seeds.bytes.get(name) or _encode("transaction", seeds.json["transaction"])
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, len(seed)), st.integers(0, 8), st.binary(max_size=8)),
                 max_size=4),
        label="edits",
    )  # fmt: skip
    broken = seed
    for at, cut, insert in edits:
        broken = broken[:at] + insert + broken[at + cut :]
    _decodes_or_refuses(table[name], broken)


@pytest.mark.parametrize("name", (*BYTES_DECODERS, "canonical", "fhir", "epcis_json"))
@BOUNDED
@given(raw=st.binary(max_size=300) | st.text(max_size=120).map(str.encode))
def test_random_bytes_are_decoded_or_refused(
    ledger: tuple[dict[str, Decoder], Seeds], name: str, raw: bytes
) -> None:
    table, _ = ledger
    _decodes_or_refuses(table[name], raw)


@BOUNDED
@given(
    lot=st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
    serial=st.text(st.characters(codec="utf-8"), min_size=1, max_size=20),
)
def test_a_pack_link_that_parses_prints_back_the_same_link(lot: str, serial: str) -> None:
    uri = f"https://id.gs1.org/01/{GTIN}/10/{lot}/21/{serial}?17=991231"
    try:
        link = parse_pack_link(uri)
    except DigitalLinkError:
        return
    assert parse_pack_link(link.uri()) == link


OTHER_ZEROS = ("\u0660", "\u06f0", "\u0966", "\u0e50", "\uff10", "\U0001d7ce")
"""The digit zero of other scripts (Arabic-Indic, Devanagari, Thai, full-width, ...)."""


@BOUNDED
@given(zero=st.sampled_from(OTHER_ZEROS), in_gtin=st.booleans())
def test_a_pack_link_takes_only_ascii_digits(zero: str, in_gtin: bool) -> None:
    # str.isdigit() and \d take these too, and int() reads them.
    digits = str.maketrans("0123456789", "".join(chr(ord(zero) + i) for i in range(10)))
    gtin, expiry = (
        (GTIN.translate(digits), "991231") if in_gtin else (GTIN, "991231".translate(digits))
    )
    with pytest.raises(DigitalLinkError):
        parse_pack_link(f"https://id.gs1.org/01/{gtin}/10/L1/21/S1?17={expiry}")
