"""Deterministic block cutting from stream entries (no NATS needed)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from healthledger.cli.bench import bench_node, endorse_puts
from healthledger.ledger.errors import InvalidTransaction
from healthledger.ledger.transaction import Transaction
from healthledger.ordering.cutter import BlockCutter, EntryKind, StreamEntry
from healthledger.ordering.orderer import Batch
from healthledger.ordering.packing import pack, unpack


@pytest.fixture(scope="module")
def txs(tmp_path_factory: pytest.TempPathFactory) -> list[Transaction]:
    node = bench_node(tmp_path_factory.mktemp("cut") / "data", synchronous="OFF")
    try:
        return endorse_puts(node, 12)
    finally:
        node.stop()


def tx(seq: int, ms: int, t: Transaction) -> StreamEntry:
    return StreamEntry(seq, ms, EntryKind.TX, t.canonical)


def tick(seq: int, ms: int) -> StreamEntry:
    return StreamEntry(seq, ms, EntryKind.TICK, str(ms).encode())


def cut(entries: Iterable[StreamEntry], **options: int) -> list[Batch]:
    cutter = BlockCutter(max_block_tx=options.get("max", 3), batch_timeout_ms=100)
    return [b for e in entries if (b := cutter.feed(e)) is not None]


def test_size_and_tick_cuts_take_time_and_position_from_the_stream(
    txs: list[Transaction],
) -> None:
    entries = [
        tick(1, 1000),  # nothing open: ignored
        tx(2, 1010, txs[0]),
        tx(3, 1020, txs[1]),
        tx(4, 1030, txs[2]),  # third: size cut
        tx(5, 1040, txs[3]),
        tick(6, 1139),  # 99 ms after open: too early
        tick(7, 1140),  # 100 ms: cut
        tick(8, 1500),
    ]
    batches = cut(entries)
    assert [(b.sequence, len(b.transactions), b.timestamp, b.stream_seq) for b in batches] == [
        (0, 3, 1030, 4),
        (1, 1, 1140, 7),
    ]
    assert batches[1].transactions[0].tx_id == txs[3].tx_id


def test_malformed_messages_are_skipped_the_same_way_everywhere(
    txs: list[Transaction],
) -> None:
    entries = [
        StreamEntry(1, 10, EntryKind.TX, b"not json"),
        StreamEntry(2, 11, EntryKind.TX, b'{"a":1.5}'),
        StreamEntry(3, 12, EntryKind.TX, b'{"endorsements":[]}'),
        tx(4, 13, txs[0]),
        tick(5, 200),
    ]
    cutter = BlockCutter(max_block_tx=3, batch_timeout_ms=100)
    batches = [b for e in entries if (b := cutter.feed(e)) is not None]
    assert cutter.skipped == 3
    assert [[t.tx_id for t in b.transactions] for b in batches] == [[txs[0].tx_id]]
    # The open time is the first parsed transaction's, not a skipped message's.
    assert batches[0].stream_seq == 5


def test_resuming_after_any_cut_gives_the_same_later_batches(txs: list[Transaction]) -> None:
    entries: list[StreamEntry] = []
    seq = 0
    for i, t in enumerate(txs):
        seq += 1
        entries.append(tx(seq, 1000 + 40 * i, t))
        if i % 4 == 1:
            seq += 1
            entries.append(tick(seq, 1000 + 40 * i + 5))
    whole = cut(entries)
    assert len(whole) > 3
    for batch in whole:
        assert batch.stream_seq is not None
        resumed = cut(e for e in entries if e.seq > batch.stream_seq)
        later = [b for b in whole if b.stream_seq is not None and b.stream_seq > batch.stream_seq]
        assert [(b.transactions, b.timestamp, b.stream_seq) for b in resumed] == [
            (b.transactions, b.timestamp, b.stream_seq) for b in later
        ]


def packed(seq: int, ms: int, *parts: Transaction) -> StreamEntry:
    return StreamEntry(seq, ms, EntryKind.TX, pack(parts).payload)


def test_a_packed_message_joins_one_block_and_blocks_close_between_messages(
    txs: list[Transaction],
) -> None:
    entries = [
        packed(1, 1000, *txs[0:2]),
        packed(2, 1010, *txs[2:4]),  # four held, over max 3: cut after the whole message
        packed(3, 1020, txs[4]),  # one transaction: the usual form
        StreamEntry(4, 1030, EntryKind.TX, b"[" + txs[5].canonical + b',{"a":1}]'),
        tick(5, 1120),
    ]
    cutter = BlockCutter(max_block_tx=3, batch_timeout_ms=100)
    batches = [b for e in entries if (b := cutter.feed(e)) is not None]
    assert [([t.tx_id for t in b.transactions], b.stream_seq) for b in batches] == [
        ([t.tx_id for t in txs[0:4]], 2),
        ([txs[4].tx_id, txs[5].tx_id], 5),
    ]
    assert cutter.skipped == 1  # the part that is no transaction, and only it


def test_a_packed_message_has_its_own_id_and_unpacks_in_order(txs: list[Transaction]) -> None:
    one, several = pack(txs[:1]), pack(txs[:5])
    assert one.msg_id == txs[0].tx_id and one.payload == txs[0].canonical
    assert several.msg_id.startswith("txs-") and several.msg_id == pack(txs[:5]).msg_id
    assert several.msg_id != pack([txs[1], txs[0], *txs[2:5]]).msg_id
    assert unpack(several.payload) == (txs[:5], 0)
    for payload in (b"[]", b"[1.5]", b"7"):
        with pytest.raises(InvalidTransaction):
            unpack(payload)
