"""The monitoring read model: case, lab-result and vaccination rows in DuckDB, fed
from the block event stream.

It holds only what the contract's events carry (no pseudonymous ids, nothing
personal), remembers the last event id it applied, and can be thrown away and
rebuilt from the chain at any time (:meth:`CaseReadModel.rebuild`). Kept in memory,
it starts from its latest snapshot when one checks out against the chain, and the
dashboard's model writes one every few dozen blocks (:mod:`.snapshot`).

Vaccinations given through the supply application are linked here, not re-entered:
the supply contract's ``vaccine_administered`` event (read from the same stream,
never by importing the supply app) becomes a dose row that names its transaction
and event id, the product's GTIN and lot, and the administering organisation; its
pseudonymous person id is not kept.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from healthledger.apps.epidemic.dates import day_of_ms
from healthledger.apps.epidemic.snapshot import (
    SNAPSHOT_COST_RATIO,
    TABLES,
    SnapshotRecord,
    SnapshotRefused,
    load_snapshot,
    read_record,
    save_snapshot,
)
from healthledger.node.seam import AppNode, LedgerEvent

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    case_id VARCHAR PRIMARY KEY,
    disease VARCHAR NOT NULL,
    classification VARCHAR NOT NULL,
    onset INTEGER NOT NULL,
    diagnosis INTEGER NOT NULL,
    region VARCHAR NOT NULL,
    reporter_org VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL DEFAULT 'under-treatment'
);
CREATE TABLE IF NOT EXISTS alerts (
    disease VARCHAR NOT NULL,
    region VARCHAR NOT NULL,
    day INTEGER NOT NULL,
    methods VARCHAR NOT NULL,
    count INTEGER NOT NULL,
    baseline_milli INTEGER NOT NULL,
    PRIMARY KEY (disease, region, day)
);
CREATE TABLE IF NOT EXISTS labs (
    lab_id VARCHAR PRIMARY KEY,
    test VARCHAR NOT NULL,
    disease VARCHAR NOT NULL,
    result VARCHAR NOT NULL,
    specimen_day INTEGER NOT NULL,
    region VARCHAR NOT NULL,
    reporter_org VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS doses (
    dose_id VARCHAR PRIMARY KEY,
    source VARCHAR NOT NULL,
    vaccine VARCHAR NOT NULL,
    disease VARCHAR,
    dose_number INTEGER,
    day INTEGER NOT NULL,
    region VARCHAR,
    org VARCHAR NOT NULL,
    lot VARCHAR,
    tx_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY, last_event VARCHAR);
"""
SUPPLY_CONTRACT = "supply"
"""The supply application's contract, whose ``vaccine_administered`` events are linked."""
LINE_LIST_COLUMNS = (
    "case_id",
    "disease",
    "classification",
    "onset",
    "diagnosis",
    "region",
    "reporter_org",
    "status",
    "outcome",
)
"""A line-list row: what the contract's events publish, no patient id."""
CONTRACT = "epidemic"
BATCH = 1000
SNAPSHOT_FOLDER = "readmodel"
"""Folder of the application's folder holding the read model's snapshot."""


def snapshot_folder(node: AppNode) -> Path:
    """Where the read model's snapshot of ``node`` is kept."""
    return node.folder / SNAPSHOT_FOLDER


def _reported_row(event: LedgerEvent) -> list[Any] | None:
    """The case row a ``case_reported`` or ``case_amended`` event writes, else None."""
    if event.kind != "contract" or event.data.get("contract") != CONTRACT:
        return None
    if event.data["name"] not in ("case_reported", "case_amended"):
        return None
    payload = event.data["payload"]
    return [
        payload["case_id"],
        payload["disease"],
        payload["classification"],
        payload["onset"],
        payload["diagnosis"],
        payload["region"],
        payload["reporter_org"],
        payload["status"],
    ]


def _touches_cases(event: LedgerEvent) -> bool:
    """True for an event that changes existing case rows (a review, an outcome)."""
    return (
        event.kind == "contract"
        and event.data.get("contract") == CONTRACT
        and event.data["name"] in ("case_reviewed", "case_outcome")
    )


class CaseReadModel:
    """Case rows for dashboards, kept up to date from ``node``'s event feed."""

    def __init__(
        self,
        node: AppNode,
        path: Path | str = ":memory:",
        *,
        snapshots: Path | None = None,
        snapshot_every: int = 0,
    ) -> None:
        """``snapshots``: the folder of the model's snapshot, which an empty model
        starts from when it checks out; with ``snapshot_every`` > 0 the model writes
        one there each time it has applied that many more transactions (one writer
        per folder: the dashboard's model)."""
        self._feed = node
        self._db = duckdb.connect(str(path))
        self._db.execute(SCHEMA)
        self._snapshots = snapshots
        self._snapshot_every = snapshot_every
        self._block: tuple[int, str] | None = None
        """Height and hash of the last block whose block event was applied."""
        self._unsaved_tx = 0
        """Transactions of the blocks applied since the last snapshot."""
        self._unsaved_s = 0.0
        """Time spent applying them."""
        self.snapshot_write_s: float | None = None
        """How long writing the last snapshot took."""
        self.started_from: int | None = None
        """The block height of the snapshot the model started from, or None."""
        if snapshots is not None and self.last_event is None:
            self._restore(snapshots)

    def _restore(self, folder: Path) -> None:
        try:
            record = read_record(folder, node=self._feed, schema=SCHEMA)
            load_snapshot(self._db, folder)
        except SnapshotRefused as exc:
            log.log(
                logging.INFO if exc.missing else logging.WARNING,
                "epidemic read model: snapshot in %s not used, %s: replaying the chain",
                folder,
                exc,
            )
            return
        if self.last_event != record.last_event:
            self._clear()
            log.warning(
                "epidemic read model: snapshot in %s holds another cursor than its "
                "record: replaying the chain",
                folder,
            )
            return
        self._block = (record.height, record.block_hash)
        self.started_from = record.height

    @property
    def last_event(self) -> str | None:
        """The id of the last event applied, or None."""
        row = self._db.execute("SELECT last_event FROM cursor WHERE id = 0").fetchone()
        return None if row is None else str(row[0])

    def catch_up(self) -> int:
        """Apply every committed event not yet applied (then write a snapshot if one
        is due); return how many were read."""
        total = 0
        started = time.perf_counter()
        while True:
            events = self._feed.events(self.last_event, limit=BATCH)
            if not events:
                if total:
                    self._unsaved_s += time.perf_counter() - started
                self._snapshot_if_due()
                return total
            self._db.execute("BEGIN")
            try:
                reported: dict[str, list[Any]] = {}
                for event in events:
                    if event.kind == "block":
                        self._block = (event.height, str(event.data["hash"]))
                        self._unsaved_tx += int(event.data["tx_count"])
                    row = _reported_row(event)
                    if row is not None and row[0] not in reported:
                        # One statement for a run of new reports: DuckDB's cost is per
                        # statement, not per row.
                        reported[row[0]] = row
                        continue
                    if row is not None or _touches_cases(event):
                        self._insert(reported)
                    if row is not None:
                        reported[row[0]] = row
                    else:
                        self._apply(event)
                self._insert(reported)
                self._db.execute("INSERT OR REPLACE INTO cursor VALUES (0, ?)", [events[-1].id])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            total += len(events)

    def _snapshot_if_due(self) -> None:
        if self._snapshots is None or self._snapshot_every <= 0 or self._block is None:
            return
        if self._unsaved_tx == 0:
            return
        last = self.snapshot_write_s
        if (
            self._unsaved_tx >= self._snapshot_every
            or last is None
            or self._unsaved_s >= SNAPSHOT_COST_RATIO * last
        ):
            try:
                self.save_snapshot()
            except OSError as exc:
                # The model stays right; only the next restart replays more.
                log.warning(
                    "epidemic read model: no snapshot written in %s: %s", self._snapshots, exc
                )

    def save_snapshot(self) -> SnapshotRecord | None:
        """Write the model as the snapshot at the last block it applied in full (call
        after :meth:`catch_up`); None without a snapshot folder or a block applied."""
        last = self.last_event
        if self._snapshots is None or self._block is None or last is None:
            return None
        height, block_hash = self._block
        if last.split(":", 1)[0] != str(height):
            return None  # the last block is not applied in full
        started = time.perf_counter()
        record = save_snapshot(
            self._db,
            self._snapshots,
            height=height,
            block_hash=block_hash,
            last_event=last,
            schema=SCHEMA,
        )
        self._unsaved_tx, self._unsaved_s = 0, 0.0
        self.snapshot_write_s = time.perf_counter() - started
        return record

    def _clear(self) -> None:
        for table in TABLES:
            self._db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names

    def rebuild(self) -> int:
        """Forget everything and replay the chain from the start."""
        self._clear()
        self._block = None
        self._unsaved_tx, self._unsaved_s = 0, 0.0
        return self.catch_up()

    def _insert(self, reported: dict[str, list[Any]]) -> None:
        """Write pending reported or amended cases (distinct ids), keeping outcomes, and
        forget them."""
        if not reported:
            return
        columns = list(zip(*reported.values(), strict=True))
        # Parallel unnests zip the columns back into rows.
        self._db.execute(
            "INSERT OR REPLACE INTO cases (case_id, disease, classification, onset, "
            "diagnosis, region, reporter_org, status, outcome) "
            "SELECT v.*, COALESCE(c.outcome, 'under-treatment') FROM ("
            "SELECT unnest($1::VARCHAR[]) AS case_id, unnest($2::VARCHAR[]), "
            "unnest($3::VARCHAR[]), unnest($4::INTEGER[]), unnest($5::INTEGER[]), "
            "unnest($6::VARCHAR[]), unnest($7::VARCHAR[]), unnest($8::VARCHAR[])"
            ") v LEFT JOIN cases c ON c.case_id = v.case_id",
            [list(column) for column in columns],
        )
        reported.clear()

    def _apply(self, event: LedgerEvent) -> None:
        if event.kind != "contract":
            return
        name, payload = event.data["name"], event.data["payload"]
        if event.data.get("contract") == SUPPLY_CONTRACT:
            if name == "vaccine_administered":
                self._link_supply_dose(event)
            return
        if event.data.get("contract") != CONTRACT:
            return
        if name == "lab_result":
            self._db.execute(
                "INSERT OR REPLACE INTO labs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    payload["lab_id"],
                    payload["test"],
                    payload["disease"],
                    payload["result"],
                    payload["specimen_day"],
                    payload["region"],
                    payload["reporter_org"],
                ],
            )
        elif name == "vaccination_recorded":
            self._db.execute(
                "INSERT OR REPLACE INTO doses VALUES (?, 'epidemic', ?, ?, ?, ?, ?, ?, NULL, ?)",
                [
                    payload["vaccination_id"],
                    payload["vaccine"],
                    payload["disease"],
                    payload["dose_number"],
                    payload["day"],
                    payload["region"],
                    payload["reporter_org"],
                    event.data["tx_id"],
                ],
            )
        elif name == "case_reviewed":
            self._db.execute(
                "UPDATE cases SET status = ? WHERE case_id = ?",
                [payload["status"], payload["case_id"]],
            )
        elif name == "alert_raised":
            self._db.execute(
                "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?)",
                [
                    payload["disease"],
                    payload["region"],
                    payload["day"],
                    ",".join(payload["methods"]),
                    payload["count"],
                    payload["baseline_milli"],
                ],
            )
        elif name == "case_outcome":
            self._db.execute(
                "UPDATE cases SET outcome = ? WHERE case_id = ?",
                [payload["outcome"], payload["case_id"]],
            )

    def _link_supply_dose(self, event: LedgerEvent) -> None:
        """A dose the supply application recorded, linked by its event id."""
        payload = event.data["payload"]
        at = payload.get("at")
        org = payload.get("site_org")
        if not isinstance(at, int) or not isinstance(org, str):
            return  # not the event shape this model knows; nothing to link
        self._db.execute(
            "INSERT OR REPLACE INTO doses VALUES (?, 'supply', ?, NULL, NULL, ?, NULL, ?, ?, ?)",
            [
                f"supply:{event.id}",
                f"gtin:{payload.get('gtin')}",
                day_of_ms(at),
                org,
                payload.get("lot"),
                event.data["tx_id"],
            ],
        )

    def positivity(
        self,
        *,
        disease: str | None = None,
        region: str | Sequence[str] | None = None,
        org: str | None = None,
    ) -> list[tuple[str, str, int, int, int]]:
        """(disease, region, specimen day, tests, positives): lab results by day of
        specimen, limited to region code prefixes or one reporting organisation."""
        sql = (
            "SELECT disease, region, specimen_day, count(*), "
            "count(*) FILTER (WHERE result = 'positive') FROM labs WHERE true"
        )
        params: list[Any] = []
        sql = _filters(sql, params, disease=disease, region=region, org=org)
        rows = self._db.execute(sql + " GROUP BY ALL ORDER BY ALL", params).fetchall()
        return [(str(d), str(r), int(day), int(n), int(p)) for d, r, day, n, p in rows]

    def delays(
        self,
        *,
        since: int,
        disease: str | None = None,
        region: str | Sequence[str] | None = None,
        org: str | None = None,
    ) -> dict[tuple[int, int], int]:
        """Cases (rejected excluded) per (onset day, onset-to-diagnosis delay) for onsets
        from day ``since``: what the nowcast's delay distribution is estimated from."""
        sql = (
            "SELECT onset, diagnosis - onset, count(*) FROM cases "
            "WHERE status <> 'rejected' AND onset >= ?"
        )
        params: list[Any] = [since]
        sql = _filters(sql, params, disease=disease, region=region, org=org)
        rows = self._db.execute(sql + " GROUP BY ALL", params).fetchall()
        return {(int(onset), int(delay)): int(n) for onset, delay, n in rows}

    def first_doses(
        self, *, disease: str | None = None, org: str | None = None
    ) -> list[tuple[str, str, int]]:
        """(disease, region, people): first doses recorded in the epidemic contract
        (one per person, vaccine and dose number, so a first dose is one person)."""
        sql = (
            "SELECT disease, region, count(*) FROM doses "
            "WHERE source = 'epidemic' AND dose_number = 1"
        )
        params: list[Any] = []
        sql = _filters(sql, params, disease=disease, org=org, org_column="org")
        rows = self._db.execute(sql + " GROUP BY ALL ORDER BY ALL", params).fetchall()
        return [(str(d), str(r), int(n)) for d, r, n in rows]

    def supply_doses(self) -> list[tuple[str, str, int]]:
        """(administering org, product, doses) linked from the supply application."""
        rows = self._db.execute(
            "SELECT org, vaccine, count(*) FROM doses WHERE source = 'supply' "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        return [(str(o), str(v), int(n)) for o, v, n in rows]

    def linked_doses(self) -> list[dict[str, Any]]:
        """Every dose linked from the supply application: its transaction, day, org."""
        rows = self._db.execute(
            "SELECT dose_id, vaccine, day, org, lot, tx_id FROM doses WHERE source = 'supply' "
            "ORDER BY dose_id"
        ).fetchall()
        names = ("dose_id", "vaccine", "day", "org", "lot", "tx_id")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def size(self) -> int:
        """Case rows held, rejected included."""
        row = self._db.execute("SELECT count(*) FROM cases").fetchone()
        return 0 if row is None else int(row[0])

    def counts(self) -> list[dict[str, Any]]:
        """Cases (rejected excluded) by disease, region and classification."""
        rows = self._db.execute(
            "SELECT disease, region, classification, count(*) FROM cases "
            "WHERE status <> 'rejected' GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        return [
            {"disease": d, "region": r, "classification": c, "count": int(n)} for d, r, c, n in rows
        ]

    def epidemic_curve(self, disease: str, *, region: str | None = None) -> list[tuple[int, int]]:
        """(onset day, cases) for ``disease``, rejected excluded; ``region`` limits to a
        region code prefix (``4401`` for a city's districts)."""
        sql = "SELECT onset, count(*) FROM cases WHERE status <> 'rejected' AND disease = ?"
        params: list[Any] = [disease]
        if region is not None:
            sql += " AND starts_with(region, ?)"
            params.append(region)
        rows = self._db.execute(sql + " GROUP BY onset ORDER BY onset", params).fetchall()
        return [(int(day), int(n)) for day, n in rows]

    def daily(
        self,
        *,
        disease: str | None = None,
        region: str | Sequence[str] | None = None,
        org: str | None = None,
    ) -> list[tuple[str, str, int, int]]:
        """(disease, region, onset day, cases), rejected excluded; ``region`` limits to
        region code prefixes (any of them), ``org`` to one reporting organisation's cases."""
        sql = "SELECT disease, region, onset, count(*) FROM cases WHERE status <> 'rejected'"
        params: list[Any] = []
        sql = _filters(sql, params, disease=disease, region=region, org=org)
        rows = self._db.execute(sql + " GROUP BY ALL ORDER BY ALL", params).fetchall()
        return [(str(d), str(r), int(day), int(n)) for d, r, day, n in rows]

    def statuses(
        self, *, region: str | Sequence[str] | None = None, org: str | None = None
    ) -> dict[str, int]:
        """Cases by review status, rejected included, limited as :meth:`line_list` is."""
        sql = "SELECT status, count(*) FROM cases WHERE true"
        params: list[Any] = []
        sql = _filters(sql, params, region=region, org=org)
        rows = self._db.execute(sql + " GROUP BY status", params).fetchall()
        return {str(status): int(n) for status, n in rows}

    def line_list(
        self, *, region: str | Sequence[str] | None = None, org: str | None = None
    ) -> list[dict[str, Any]]:
        """Case rows (no personal data: the read model holds none), rejected included,
        limited to region code prefixes or one reporting organisation."""
        sql = (
            "SELECT case_id, disease, classification, onset, diagnosis, region, "
            "reporter_org, status, outcome FROM cases WHERE true"
        )
        params: list[Any] = []
        sql = _filters(sql, params, region=region, org=org)
        columns = LINE_LIST_COLUMNS
        rows = self._db.execute(sql + " ORDER BY onset, case_id", params).fetchall()
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def diseases(self) -> list[str]:
        """Diseases with at least one case, most cases first."""
        rows = self._db.execute(
            "SELECT disease FROM cases WHERE status <> 'rejected' "
            "GROUP BY disease ORDER BY count(*) DESC, disease"
        ).fetchall()
        return [str(d) for (d,) in rows]

    def alerts(self, *, disease: str | None = None) -> list[dict[str, Any]]:
        """Early-warning alerts recorded on chain, newest first."""
        sql = "SELECT disease, region, day, methods, count, baseline_milli FROM alerts"
        params: list[Any] = []
        if disease is not None:
            sql += " WHERE disease = ?"
            params.append(disease)
        rows = self._db.execute(sql + " ORDER BY day DESC, region", params).fetchall()
        return [
            {
                "disease": d,
                "region": r,
                "day": int(day),
                "methods": str(m).split(","),
                "count": int(n),
                "baseline_milli": int(b),
            }
            for d, r, day, m, n, b in rows
        ]

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _filters(
    sql: str,
    params: list[Any],
    *,
    disease: str | None = None,
    region: str | Sequence[str] | None = None,
    org: str | None = None,
    org_column: str = "reporter_org",
) -> str:
    """``sql`` (ending in a WHERE clause) narrowed to a disease, region code prefixes
    (any of them) and one organisation."""
    if disease is not None:
        sql += " AND disease = ?"
        params.append(disease)
    if region is not None:
        prefixes = [region] if isinstance(region, str) else list(region)
        sql += " AND ("
        sql += " OR ".join("starts_with(region, ?)" for _ in prefixes) or "false"
        sql += ")"
        params.extend(prefixes)
    if org is not None:
        sql += f" AND {org_column} = ?"
        params.append(org)
    return sql
