"""Refusals a contract records as evidence: how a committed transaction says that some or
all of what it asked was refused.

Most refusals change nothing (``Rejected``: the transaction is never ordered). Some
refusals are themselves evidence: the supply contract anchors a counterfeit or
diversion signal (a pack dispensed twice, an unknown serial) as a refused event with
its reason and raises an alert, so the transaction commits. Such a function reports
each refused part in its result, one of two ways:

* ``{"refused": [{..., "reason": "..."}, ...], ...}``: a non-empty list of the refused
  parts (a document of several events, some refused);
* ``{"accepted": false, "reason": "...", ...}``: the one thing asked was refused.

:func:`refused_parts` reads that convention; whoever answers a client raises
:class:`RefusedInPart` with the committed receipt, so that a refusal is never
reported as a bare success.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from healthledger.contracts.errors import ContractError


def refused_parts(result: object) -> list[dict[str, Any]]:
    """The parts a committed transaction's ``result`` says were refused (empty if none)."""
    if not isinstance(result, Mapping):
        return []
    listed = result.get("refused")
    if isinstance(listed, list) and listed:
        return [dict(part) if isinstance(part, Mapping) else {"part": part} for part in listed]
    if result.get("accepted") is False:
        return [dict(result)]
    return []


class RefusedInPart(ContractError):
    """A transaction committed, but its contract refused some or all of what it asked
    and recorded each refusal with its reason (and an alert) as evidence."""

    def __init__(
        self,
        *,
        tx_id: str,
        receipt: Mapping[str, Any],
        refused: list[dict[str, Any]],
        result: Any,
    ) -> None:
        reasons = "; ".join(str(part.get("reason") or "no reason given") for part in refused)
        super().__init__(
            f"{tx_id} committed in block {receipt.get('height')}, but {len(refused)} "
            f"part(s) were refused and recorded as evidence: {reasons}"
        )
        self.tx_id = tx_id
        self.receipt = dict(receipt)
        """The committed transaction's receipt (JSON form)."""
        self.refused = refused
        self.result = result
        """The function's whole result (what was accepted as well)."""


def settle(tx_id: str, receipt: Mapping[str, Any], result: Any) -> Any:
    """``result`` if nothing in it was refused; :class:`RefusedInPart` otherwise."""
    refused = refused_parts(result)
    if refused:
        raise RefusedInPart(tx_id=tx_id, receipt=receipt, refused=refused, result=result)
    return result
