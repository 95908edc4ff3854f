"""What the health code's pages and API show, from the chain: the public count of colour
changes by rule clause, district and day with the appeals and their outcomes (a read
model over the contract's events), a holder's colour and why, and the short-lived QR.

Reads never write: the QR is signed on the node (with the CDC's vault-derived key), not
recorded; every figure a page shows is served as JSON by the same methods."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from healthledger.appkit.readable import CONSORTIUM_ZONE, EPOCH, local_day, zone_name
from healthledger.apps.credentials.healthcode_qr import (
    KEY_PURPOSE,
    LIFETIME_S,
    public_jwk,
    sign_code,
    signing_key,
)
from healthledger.apps.credentials.healthcode_snapshot import (
    SNAPSHOT_COST_RATIO,
    BoardSnapshotRefused,
    load_board,
    save_board,
)
from healthledger.apps.credentials.qr import qr_code
from healthledger.node.seam import AppNode, NodeError

NAMESPACE = "healthcode"
log = logging.getLogger(__name__)
COLOUR_ORDER = {"red": 0, "yellow": 1, "green": 2}
GROUNDS = {
    "no-exposure": "No exposure",
    "negative-test": "A negative test",
    "wrong-person": "The fact is another person's",
    "recovered": "Recovered",
    "no-health-reason": "No health reason",
}
REASONS = {
    "rules-applied-correctly": "The rules were applied correctly",
    "fact-wrong-person": "The fact was another person's",
    "fact-in-error": "The fact was recorded in error",
    "no-health-reason": "No health reason",
}


def iso_day(day: int) -> str:
    """``2026-12-07`` of a day number."""
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


@dataclass
class _Counts:
    after: str | None = None
    recited: int = 0
    changes: Counter[tuple[int, str, str, str, str, bool]] = field(default_factory=Counter)
    appeals: list[dict[str, Any]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def to_json(self, zone: dt.tzinfo) -> dict[str, Any]:
        """The counts as a snapshot holds them (without ``after``), their days in ``zone``."""
        return {
            "zone": str(zone),
            "recited": self.recited,
            "changes": [[*key, n] for key, n in self.changes.items()],
            "appeals": self.appeals,
            "names": self.names,
        }

    @classmethod
    def from_json(cls, after: str, found: dict[str, Any], zone: dt.tzinfo) -> _Counts:
        """Counts followed up to event ``after``, from their snapshot form; ValueError if
        their days are not ``zone``'s."""
        if found.get("zone") != str(zone):
            raise ValueError(f"its days are not counted in {zone} (made by an older board?)")
        changes: Counter[tuple[int, str, str, str, str, bool]] = Counter()
        for day, region, version, clause, colour, by_appeal, n in found["changes"]:
            changes[(int(day), region, version, clause, colour, bool(by_appeal))] = int(n)
        return cls(after, int(found["recited"]), changes, list(found["appeals"]),
                   dict(found["names"]))  # fmt: skip


class HealthCodeBoard:
    """Public counts of colour changes and appeals, followed from the event feed; it
    starts from its snapshot in the application's folder when that checks out, and
    keeps it up to date (:mod:`.healthcode_snapshot`).

    A change or an appeal counts on the calendar day in ``zone`` (the consortium's, in
    which the console shows times) of its block's time: the ledger's time, the same on
    every peer, read by the rule :func:`.readable.when` shows times by."""

    def __init__(
        self, node: AppNode, *, snapshots: bool = True, zone: dt.tzinfo = CONSORTIUM_ZONE
    ) -> None:
        self._node = node
        self._zone = zone
        self._lock = threading.Lock()
        self._counts = _Counts()
        self._folder = node.folder if snapshots else None
        self._unsaved_s = 0.0
        self._write_s: float | None = None
        self.started_from: str | None = None
        """The event id of the snapshot the board started from, or None."""
        if self._folder is not None:
            try:
                after, counts = load_board(self._folder, node=node)
                self._counts = _Counts.from_json(after, counts, zone)
            except (BoardSnapshotRefused, ValueError, TypeError, KeyError) as exc:
                missing = isinstance(exc, BoardSnapshotRefused) and exc.missing
                log.log(logging.INFO if missing else logging.WARNING,
                        "health-code board: snapshot in %s not used, %s: reading the chain",
                        self._folder, exc)  # fmt: skip
            else:
                self.started_from = after

    def _catch_up(self) -> _Counts:
        with self._lock:
            counts = self._counts
            started, read = time.perf_counter(), False
            while batch := self._node.events(counts.after, limit=1000):
                read = True
                for event in batch:
                    if event.kind == "contract" and event.data.get("contract") == NAMESPACE:
                        day = self._day(event.data["timestamp"])
                        self._take(counts, event.data["name"], event.data["payload"], day)
                counts.after = batch[-1].id
            if read:
                self._unsaved_s += time.perf_counter() - started
                self._snapshot_if_due(counts)
            return counts

    def _snapshot_if_due(self, counts: _Counts) -> None:
        if self._folder is None or counts.after is None:
            return
        if self._write_s is not None and self._unsaved_s < SNAPSHOT_COST_RATIO * self._write_s:
            return
        block_hash = self._node.block_hash(int(counts.after.split(":", 1)[0]))
        if block_hash is None:
            return
        started = time.perf_counter()
        try:
            save_board(self._folder, after=counts.after, block_hash=block_hash,
                       counts=counts.to_json(self._zone))  # fmt: skip
        except OSError as exc:
            log.warning("health-code board: no snapshot written in %s: %s", self._folder, exc)
            return
        self._write_s = time.perf_counter() - started
        self._unsaved_s = 0.0

    def _day(self, at_ms: int) -> int:
        """The day number (days since 1970-01-01) of the local day of ``at_ms``."""
        local = local_day(at_ms, self._zone)
        assert local is not None  # a block's time is Unix milliseconds
        return (local - EPOCH).days

    @staticmethod
    def _take(counts: _Counts, name: str, payload: dict[str, Any], day: int) -> None:
        same = payload.get("colour") == payload.get("previous")
        if name == "colour_changed" and same and not payload["appeal"]:
            counts.recited += 1  # the same colour, cited again under newer rules or facts
        elif name == "colour_changed":
            key = (day, payload["region"], payload["version"], payload["clause"],
                   payload["colour"], bool(payload["appeal"]))  # fmt: skip
            counts.changes[key] += 1
            if payload.get("region_name"):
                counts.names[payload["region"]] = payload["region_name"]
        elif name == "appeal_filed":
            counts.appeals.append({**payload, "day": day, "status": "filed", "decided_day": None})
        elif name == "appeal_decided":
            for appeal in counts.appeals:
                if appeal["appeal_id"] == payload["appeal_id"]:
                    appeal.update(status=payload["status"], reason=payload["reason"],
                                  decided_day=day)  # fmt: skip

    def rule_titles(self) -> dict[tuple[str, str], str]:
        """Each clause's title by (version, clause id)."""
        out = {}
        for _, record in self._node.range("rules/", ns=NAMESPACE):
            for clause in record["rules"]["clauses"]:
                out[(record["version"], clause["id"])] = clause["title"]
        return out

    def region_name(self, code: str) -> str:
        """``Yuexiu (440104)``, or the code where no change has named it."""
        name = self._catch_up().names.get(code)
        return f"{name} ({code})" if name else code

    def summary(self, *, days: int = 30) -> dict[str, Any]:
        """Colour changes by local day, district, rule version and clause (the last
        ``days`` days with any), and every appeal with its outcome; JSON."""
        counts = self._catch_up()
        titles = self.rule_titles()
        recent = sorted({key[0] for key in counts.changes}, reverse=True)[:days]
        rows: list[dict[str, Any]] = [
            {
                "day": iso_day(day), "region": region,
                "region_name": counts.names.get(region, ""), "rule_version": version,
                "clause": clause, "clause_title": titles.get((version, clause), ""),
                "colour": colour, "by_appeal": by_appeal, "changes": n,
            }
            for (day, region, version, clause, colour, by_appeal), n in counts.changes.items()
            if day in recent
        ]  # fmt: skip
        rows.sort(key=lambda r: (r["region"], COLOUR_ORDER[r["colour"]], r["clause"]))
        rows.sort(key=lambda r: str(r["day"]), reverse=True)
        per_day: dict[str, Counter[str]] = {}
        for row in rows:
            per_day.setdefault(row["day"], Counter())[row["colour"]] += row["changes"]
        appeals = [
            {
                "appeal_id": a["appeal_id"], "filed": iso_day(a["day"]), "region": a["region"],
                "region_name": counts.names.get(a["region"], ""), "colour": a["colour"],
                "clause": a["clause"], "grounds": a["grounds"],
                "grounds_text": GROUNDS.get(a["grounds"], a["grounds"]), "status": a["status"],
                "reason": a.get("reason", ""),
                "reason_text": REASONS.get(a.get("reason", ""), ""),
                "decided": iso_day(a["decided_day"]) if a["decided_day"] is not None else "",
            }
            for a in reversed(counts.appeals)
        ]  # fmt: skip
        return {
            "days_in": zone_name(self._node.clock(), self._zone),
            "changes": rows,
            "days": [
                {"day": d, **{c: per_day[d].get(c, 0) for c in COLOUR_ORDER}}
                for d in sorted(per_day)
            ],
            "appeals": appeals,
            "totals": {
                "changes": sum(counts.changes.values()),
                "by_appeal": sum(n for k, n in counts.changes.items() if k[5]),
                "same_colour_recited": counts.recited,
                "appeals": len(counts.appeals),
                "overturned": sum(a["status"] == "overturned" for a in counts.appeals),
            },
        }


def board(node: AppNode) -> HealthCodeBoard:
    """The node's one board (pages and routes share it)."""
    return node.shared("healthcode-board", lambda: HealthCodeBoard(node))


def rules(node: AppNode) -> dict[str, Any]:
    """Every rule version (newest first) and the one in force."""
    versions = [record for _, record in node.range("rules/", ns=NAMESPACE)]
    versions.sort(key=lambda r: [int(p) for p in r["version"].split(".")], reverse=True)
    return {"current": node.get("current", ns=NAMESPACE), "versions": versions}


def jwks(node: AppNode) -> dict[str, Any]:
    """The published keys health-code QR codes verify with (a JWKS)."""
    keep = ("kty", "crv", "x", "y", "kid")
    return {"keys": [{k: key[k] for k in keep} for _, key in node.range("code-key/", ns=NAMESPACE)]}


def holders(node: AppNode, *, limit: int = 200) -> list[dict[str, Any]]:
    """People with a recorded code (the demo's simulated holders), red first."""
    found = [
        {"pid": code["pid"], "colour": code["colour"], "region": code["region"],
         "region_name": code.get("region_name", ""), "clause": code["clause"]}
        for _, code in node.range("code/", ns=NAMESPACE, limit=10_000)
    ]  # fmt: skip
    found.sort(key=lambda c: (COLOUR_ORDER[c["colour"]], c["pid"]))
    return found[:limit]


def holder_view(node: AppNode, pid: str) -> dict[str, Any] | None:
    """Person ``pid``'s colour, why (rule version, clause, the facts and their dates),
    their earlier colours and any appeal; None if no code is recorded."""
    code = node.get(f"code/{pid}", ns=NAMESPACE)
    if not isinstance(code, dict):
        return None
    titles = board(node).rule_titles()

    def explained(entry: dict[str, Any]) -> dict[str, Any]:
        return {
            "colour": entry["colour"], "rule_version": entry["version"],
            "clause": entry["clause"],
            "clause_title": titles.get((entry["version"], entry["clause"]), entry["clause"]),
            "since": iso_day(entry["day"]), "at": entry["at"], "appeal": entry["appeal"],
            "transaction": entry["change"],
            "region": entry["region"], "region_name": entry.get("region_name", ""),
            "facts": [{**i, "date": iso_day(i["day"])} for i in entry["inputs"]],
        }  # fmt: skip

    earlier = node.history(f"code/{pid}", ns=NAMESPACE)[1:]
    history = [explained(h.value) for h in earlier if isinstance(h.value, dict)]
    appeals = [a for _, a in node.range("appeal/", ns=NAMESPACE) if a["pid"] == pid]
    return {
        "pid": pid,
        **explained(code),
        "history": history,
        "appeals": [
            {
                "appeal_id": a["appeal_id"],
                "status": a["status"],
                "grounds": GROUNDS.get(a["grounds"], a["grounds"]),
                "reason": REASONS.get(a.get("reason", ""), ""),
            }
            for a in appeals
        ],
    }


def issuer_org(node: AppNode) -> str | None:
    """The CDC that signs health codes: the first member of kind ``cdc``."""
    return next((o["id"] for o in node.organisations() if o.get("kind") == "cdc"), None)


def fresh_qr(node: AppNode, pid: str) -> dict[str, Any] | None:
    """A newly signed QR of ``pid``'s current code (text, SVG, expiry), or None if no code
    is recorded; NodeError if this node does not hold the CDC's vault key."""
    code = node.get(f"code/{pid}", ns=NAMESPACE)
    if not isinstance(code, dict):
        return None
    org = issuer_org(node)
    if org is None:
        raise NodeError("no CDC is a member: nobody signs health codes")
    key = signing_key(node.derived_secret(org, KEY_PURPOSE))
    now_s = node.clock() // 1000
    text = sign_code(code, key, issuer=org, now_s=now_s)
    svg = qr_code(text).svg_inline(scale=4, dark="#111", border=2)
    return {"text": text, "svg": svg, "issued_at": now_s * 1000,
            "expires_at": (now_s + LIFETIME_S) * 1000, "colour": code["colour"]}  # fmt: skip


def code_key(node: AppNode) -> dict[str, str]:
    """The public JWK of this node's CDC signing key (to publish on chain)."""
    org = issuer_org(node)
    if org is None:
        raise NodeError("no CDC is a member: nobody signs health codes")
    return public_jwk(signing_key(node.derived_secret(org, KEY_PURPOSE)))
