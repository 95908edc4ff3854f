"""The checkpoint guard: one peer's watch over the consortium's checkpoints. It keeps
its own notes and the verified notes of the other organisations, compares them at
equal heights, and decides whether the peer must stop serving (minority or tampered)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from healthledger.ledger.state import StateView
from healthledger.node.checkpoint import (
    Checkpoint,
    CheckpointError,
    Divergence,
    compare,
    verify_peer_note,
)

log = logging.getLogger(__name__)


class CheckpointState(StrEnum):
    """How this peer's checkpoints compare with the other organisations'."""

    OK = "ok"
    """Every checkpoint compared so far agrees."""
    DIVERGED = "diverged"
    """Another peer signed a different checkpoint at a height this peer signed."""
    MINORITY = "minority"
    """A majority of organisations signed another checkpoint at a height: this peer
    holds a forked chain and stops serving."""
    TAMPERED = "tampered"
    """A stored block of this peer fails its self-check: it stops serving."""


@dataclass(frozen=True)
class RejectedNote:
    """A checkpoint note that was reported and ignored."""

    org: str
    reason: str
    detail: str

    def to_json(self) -> dict[str, str]:
        """The JSON form."""
        return {"org": self.org, "reason": self.reason, "detail": self.detail}


class CheckpointGuard:
    """One peer's watch over the consortium's checkpoints: its own, verified notes of
    the other organisations (anything else is reported and ignored), the comparison at
    equal heights, and whether the peer must stop serving. Thread-safe."""

    def __init__(
        self,
        *,
        org: str,
        orgs: Sequence[str],
        state: StateView,
        origin: str,
        on_reject: Callable[[RejectedNote], None] | None = None,
        keep: int = 200,
    ) -> None:
        """``orgs``: the consortium's organisations (a majority is more than half of
        them, and of any that join later); ``state`` resolves peer identities;
        ``keep`` bounds the heights remembered per organisation."""
        self.org = org
        self.orgs = tuple(sorted(set(orgs) | {org}))
        self.origin = origin
        self._state = state
        self._on_reject = on_reject
        self._keep = keep
        self._lock = threading.Lock()
        self._views: dict[str, dict[int, Checkpoint]] = {o: {} for o in self.orgs}
        self._divergences: dict[int, Divergence] = {}
        self._minority: Divergence | None = None
        self._tampered: str | None = None
        self._own_note: tuple[int, str] | None = None
        self._rejected: deque[RejectedNote] = deque(maxlen=20)
        self.rejected_count = 0
        self.divergence_count = 0
        """Heights at which a disagreement was found, since the peer started."""

    def own(self, checkpoint: Checkpoint, note: str | None = None) -> None:
        """Record a checkpoint this peer signed (``note``: its signed form), and compare it."""
        with self._lock:
            self._record(self.org, checkpoint)
            if note is not None and (
                self._own_note is None or checkpoint.height >= self._own_note[0]
            ):
                self._own_note = (checkpoint.height, note)

    def own_latest(self) -> tuple[int, str] | None:
        """This peer's latest signed note and its height, if it signed one."""
        with self._lock:
            return self._own_note

    def receive(self, org: str, note: str) -> Checkpoint | None:
        """Verify another organisation's note and compare it; a note that is malformed,
        for another chain, from an unknown key or badly signed is reported and
        ignored (None)."""
        if org == self.org:
            return None  # this peer's own note, read back from the exchange
        try:
            # An organisation that joined after this peer started counts once its
            # peer identity, registered in this peer's ledger, signs a note.
            checkpoint = verify_peer_note(note, org=org, state=self._state, origin=self.origin)
        except CheckpointError as exc:
            self._reject(RejectedNote(org, exc.reason, str(exc)))
            return None
        with self._lock:
            if org not in self._views:
                self.orgs = tuple(sorted((*self.orgs, org)))
                self._views[org] = {}
            self._record(org, checkpoint)
        return checkpoint

    def tampered(self, error: str) -> None:
        """The self-check found a stored block that does not re-derive: stop serving."""
        with self._lock:
            if self._tampered is None:
                log.error("self-check failed, this peer stops serving: %s", error)
                self._tampered = error

    def _reject(self, rejected: RejectedNote) -> None:
        log.warning(
            "checkpoint of %s ignored (%s): %s", rejected.org, rejected.reason, rejected.detail
        )
        with self._lock:
            self._rejected.append(rejected)
            self.rejected_count += 1
        if self._on_reject is not None:
            self._on_reject(rejected)

    def _record(self, org: str, checkpoint: Checkpoint) -> None:
        by_height = self._views[org]
        by_height[checkpoint.height] = checkpoint
        while len(by_height) > self._keep:
            del by_height[min(by_height)]
        self._compare(checkpoint.height)

    def _compare(self, height: int) -> None:
        mine = self._views[self.org].get(height)
        if mine is None:
            return
        found = compare({o: {height: v[height]} for o, v in self._views.items() if height in v})
        if not found:
            return
        divergence = found[0]
        if height not in self._divergences:
            self.divergence_count += 1
            log.error(
                "checkpoints disagree at height %d: %s",
                height,
                ", ".join(f"{o} {h[:16]}" for o, h in divergence.views.items()),
            )
        self._divergences[height] = divergence
        while len(self._divergences) > self._keep:
            del self._divergences[min(self._divergences)]
        groups: dict[tuple[str, bytes, str, int], int] = {}
        for by_height in self._views.values():
            c = by_height.get(height)
            if c is not None:
                view = (c.block_hash, c.log_root, c.state_root, c.log_size)
                groups[view] = groups.get(view, 0) + 1
        own_view = (mine.block_hash, mine.log_root, mine.state_root, mine.log_size)
        majority = len(self.orgs) // 2 + 1
        if self._minority is None and any(
            n >= majority for view, n in groups.items() if view != own_view
        ):
            log.error("this peer is in the minority at height %d: it stops serving", height)
            self._minority = divergence

    @property
    def state(self) -> CheckpointState:
        """The worst finding so far."""
        with self._lock:
            if self._tampered is not None:
                return CheckpointState.TAMPERED
            if self._minority is not None:
                return CheckpointState.MINORITY
            return CheckpointState.DIVERGED if self._divergences else CheckpointState.OK

    def refusal(self) -> str | None:
        """Why this peer must not serve reads or writes, or None while it may."""
        with self._lock:
            if self._tampered is not None:
                return (
                    f"this peer stopped serving: {self._tampered}; restore its ledger from "
                    "a healthy peer and restart it (see the operator guide)"
                )
            if self._minority is not None:
                d = self._minority
                return (
                    f"this peer stopped serving: its checkpoint at height {d.height} differs "
                    "from a majority of the consortium's peers, so its chain is forked; "
                    "restore its ledger from a healthy peer and restart it (see the operator "
                    "guide)"
                )
            return None

    def to_json(self) -> dict[str, Any]:
        """The checkpoint view: state, every organisation's latest verified checkpoint
        and whether it agrees with this peer's, divergences and rejected notes."""
        state = self.state
        with self._lock:
            mine = self._views[self.org]
            peers = []
            for org, by_height in self._views.items():
                latest = by_height[max(by_height)] if by_height else None
                common = sorted(set(by_height) & set(mine))
                agrees = None
                if common:
                    h = common[-1]
                    agrees = by_height[h].body() == mine[h].body()
                peers.append(
                    {
                        "org": org,
                        "self": org == self.org,
                        "height": None if latest is None else latest.height,
                        "block_hash": None if latest is None else latest.block_hash,
                        "agrees": agrees,
                        "in_minority": any(org in d.minority for d in self._divergences.values()),
                    }
                )
            return {
                "state": str(state),
                "serving": self._tampered is None and self._minority is None,
                "reason": self._tampered,
                "peers": peers,
                "divergences": [d.to_json() for _, d in sorted(self._divergences.items())],
                "minority_at": None if self._minority is None else self._minority.height,
                "rejected": [r.to_json() for r in self._rejected],
                "rejected_count": self.rejected_count,
            }
