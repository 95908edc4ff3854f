"""Conformance: every transparency-dev/merkle proof vector under shared/conformance/rfc9162-merkle.

Each JSON file is one inclusion or consistency probe; verification must succeed exactly when
``wantErr`` is false, and a rejection must be a ``ProofError`` (never some other exception).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from healthledger.ledger.errors import ProofError
from healthledger.ledger.merkle import (
    root_from_inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

VECTOR_DIR = (
    Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "rfc9162-merkle"
)

INCLUSION_KEYS = frozenset({"leafIdx", "treeSize", "root", "leafHash", "proof", "wantErr"})
CONSISTENCY_KEYS = frozenset({"size1", "size2", "root1", "root2", "proof", "wantErr"})


def _collect() -> list[Path]:
    # An empty list would make pytest skip the parametrised test quietly; the folder checks
    # below turn that into a failure instead.
    if not VECTOR_DIR.is_dir():
        return []
    return sorted(VECTOR_DIR.rglob("*.json"))


VECTOR_FILES = _collect()


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path} is not a JSON object"
    return data


def _b64(value: str | None) -> bytes:
    return b"" if value is None else base64.b64decode(value, validate=True)


def _proof(value: list[str] | None) -> list[bytes]:
    return [] if value is None else [_b64(p) for p in value]


def _kind(data: dict[str, Any]) -> str:
    if data.keys() >= INCLUSION_KEYS:
        return "inclusion"
    if data.keys() >= CONSISTENCY_KEYS:
        return "consistency"
    raise AssertionError(f"unrecognised vector with keys {sorted(data)}")


def test_vector_folder_is_present_and_populated() -> None:
    assert VECTOR_DIR.is_dir(), f"conformance folder missing: {VECTOR_DIR}"
    assert (VECTOR_DIR / "SOURCE.md").is_file(), "conformance folder lacks SOURCE.md"
    assert len(VECTOR_FILES) > 0, f"no JSON vectors under {VECTOR_DIR}"
    kinds = [_kind(_load(p)) for p in VECTOR_FILES]
    assert kinds.count("inclusion") > 0
    assert kinds.count("consistency") > 0
    assert any(not _load(p)["wantErr"] for p in VECTOR_FILES), "no happy-path vectors"
    assert any(_load(p)["wantErr"] for p in VECTOR_FILES), "no failure vectors"


@pytest.mark.parametrize(
    "path", VECTOR_FILES, ids=[str(p.relative_to(VECTOR_DIR)) for p in VECTOR_FILES]
)
def test_vector(path: Path) -> None:
    data = _load(path)
    want_err = data["wantErr"]
    assert isinstance(want_err, bool)

    if _kind(data) == "inclusion":
        kwargs: dict[str, Any] = {
            "leaf_index": data["leafIdx"],
            "tree_size": data["treeSize"],
            "leaf_hash": _b64(data["leafHash"]),
            "proof": _proof(data["proof"]),
        }
        root = _b64(data["root"])
        if want_err:
            with pytest.raises(ProofError):
                verify_inclusion(**kwargs, root=root)
        else:
            verify_inclusion(**kwargs, root=root)
            assert root_from_inclusion_proof(**kwargs) == root
    else:
        kwargs = {
            "size1": data["size1"],
            "size2": data["size2"],
            "root1": _b64(data["root1"]),
            "root2": _b64(data["root2"]),
            "proof": _proof(data["proof"]),
        }
        if want_err:
            with pytest.raises(ProofError):
                verify_consistency(**kwargs)
        else:
            verify_consistency(**kwargs)
