"""Founded nodes for tests, copied from a template instead of founded each time.

Founding a consortium writes a dozen SQLite files (the ledger, one vault per
organisation) and syncs each to disk: about 1.5 s of waiting per test on this
machine's disks, against 0.2 s to copy a closed template and open the copy. The
template is founded once per test process (per xdist worker) for each set of
contracts and organisations, by the same ``EmbeddedNode.create`` a test would call,
and closed cleanly, so a copy is exactly a freshly founded node (its genesis block
is only older). Tests that need their own clock or founder found their own node.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from healthledger.contracts.contract import Contract
from healthledger.demo.organisations import DEMO_ORGS
from healthledger.ledger.transaction import ValidationCode
from healthledger.node.consortium import OrgPlan
from healthledger.node.embedded import EmbeddedNode

_templates: dict[tuple[tuple[type[Contract], ...], tuple[OrgPlan, ...]], Path] = {}
_root: Path | None = None


def _template(contracts: tuple[type[Contract], ...], plans: tuple[OrgPlan, ...]) -> Path:
    global _root
    key = (contracts, plans)
    if key not in _templates:
        if _root is None:
            _root = Path(tempfile.mkdtemp(prefix="hl-templates-"))
            atexit.register(shutil.rmtree, _root, True)
        folder = _root / f"t{len(_templates)}"
        EmbeddedNode.create(folder, contracts=contracts, plans=plans).stop()
        _templates[key] = folder
    return _templates[key]


def found(
    data_dir: Path,
    *,
    contracts: Sequence[type[Contract]],
    plans: Sequence[OrgPlan] = DEMO_ORGS,
    **options: Any,
) -> EmbeddedNode:
    """A node in ``data_dir`` as ``EmbeddedNode.create(data_dir, contracts=contracts,
    plans=plans, **options)`` founds it (not started)."""
    contracts, plans = tuple(contracts), tuple(plans)
    shutil.copytree(_template(contracts, plans), data_dir)
    return EmbeddedNode(data_dir, contracts=contracts, **options)


def commit_bench_puts(node: EmbeddedNode, prefix: str, *, blocks: int, per_block: int) -> None:
    """Commit ``blocks`` blocks of ``per_block`` ``bench.put`` calls (keys
    ``<prefix><block>-<i>``) on a started node, each block's transactions endorsed on the
    same state and all VALID."""
    for block in range(blocks):
        puts = [
            node.peer.endorse(
                node.propose(
                    "gd-cdc/epi-wang", "bench", "put", {"key": f"{prefix}{block}-{i}", "value": i}
                )
            )
            for i in range(per_block)
        ]
        for future in [node.peer.submit(tx, precheck=False) for tx in puts]:
            assert future.result(30).code is ValidationCode.VALID
