"""Cases by status: an index in state beside ``case/<case_id>``, so that a queue (the
CDC's reports waiting for review, the reports a CDC asked a hospital about) is read
whole however many cases the ledger holds, without reading every case record.

Index keys::

    status/<status>/<case_id>   {region, reporter_org, disease, classification,
                                 reported_at, reviewed_at?}

Case ids are hashes, so ``case/`` keys come in no useful order and a status is known
only by reading the record. The entry carries what the viewer rules
(``visibility.Viewer.sees``: ``region``, ``reporter_org``), the queue's orders and the
aggregates (``visibility.case_aggregates``: ``disease``, ``region``,
``classification``) need, so a query reads a case record only for the cases it
returns. Every write of a case's status writes its entry, and deletes the one under
the old status, in the same transaction: the index and the cases cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from healthledger.contracts.context import MAX_RANGE, Context

STATUSES = ("reported", "info-requested", "confirmed", "rejected")
"""Every status a case has, in the order a person reads them."""
COUNTED = ("reported", "info-requested", "confirmed")
"""The statuses of the cases the aggregates count (a rejected report is no case)."""


def entry_key(status: str, case_id: str) -> str:
    """The index key of case ``case_id`` in ``status``."""
    return f"status/{status}/{case_id}"


def entry(record: dict[str, Any]) -> dict[str, Any]:
    """The index entry of a case record: what the viewer rules and the orders read."""
    found = {
        "region": record["region"],
        "reporter_org": record["reporter_org"],
        "disease": record["disease"],
        "classification": record["classification"],
        "reported_at": record["reported_at"],
    }
    review = record.get("review")
    if isinstance(review, dict):
        found["reviewed_at"] = review["at"]
    return found


def record_status(ctx: Context, record: dict[str, Any], previous: str | None) -> None:
    """Write ``record``'s entry under its status; ``previous``: the status it had before
    this transaction (None for a new case), whose entry goes."""
    if previous is not None and previous != record["status"]:
        ctx.delete(entry_key(previous, record["case_id"]))
    ctx.put(entry_key(record["status"], record["case_id"]), entry(record))


def scan(ctx: Context, prefix: str) -> Iterator[tuple[str, Any]]:
    """Every ``(key, value)`` under ``prefix`` (ending in ``/``), in key order, read in
    pages of the largest range a contract may read at once: none is left out, however
    many there are."""
    start, end = prefix, prefix[:-1] + "0"
    while True:
        chunk = ctx.range(start, end, limit=MAX_RANGE)
        for key, value in chunk:
            if key != start or start == prefix:  # not the last key of the chunk before
                yield key, value
        if len(chunk) < MAX_RANGE:
            return
        start = chunk[-1][0]


def entries(ctx: Context, status: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``(case_id, entry)`` of ``status``, in case id order."""
    prefix = f"status/{status}/"
    for key, value in scan(ctx, prefix):
        yield key[len(prefix) :], value
