"""The checked-in ledger vectors: one JSON file per case (see generate_ledger_vectors.py).
Valid cases verify; broken ones raise the error their ``wantErr`` names."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.vectors.generate_ledger_vectors import FOLDERS, check

HERE = Path(__file__).resolve().parent


def _files(folder: str) -> list[Path]:
    return sorted((HERE / folder).glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(case, dict)
    return case


ALL = [(folder, path) for folder in FOLDERS for path in _files(folder)]


@pytest.mark.parametrize("folder", FOLDERS)
def test_folder_has_valid_and_broken_cases(folder: str) -> None:
    cases = [(path.name, _load(path)) for path in _files(folder)]
    assert any("wantErr" in case for _, case in cases)
    assert any("wantErr" not in case for _, case in cases)
    for name, case in cases:
        # Valid cases are named for it; broken ones for their defect, with what the
        # error must say, so a case broken for another reason does not pass.
        assert name.startswith("valid") == ("wantErr" not in case), name
        if "wantErr" in case:
            assert isinstance(case["wantErrContains"], str) and case["wantErrContains"]


@pytest.mark.parametrize(
    ("folder", "path"), ALL, ids=[f"{folder}/{path.name}" for folder, path in ALL]
)
def test_ledger_vector(folder: str, path: Path) -> None:
    assert check(folder, _load(path)) is None


def test_a_broken_case_read_as_valid_fails() -> None:
    # The check can fail: a broken case stripped of its wantErr does not pass as valid.
    case = _load(HERE / "block" / "wrong-prev-hash.json")
    del case["wantErr"], case["wantErrContains"]
    problem = check("block", case)
    assert problem is not None and "prev_hash" in problem


def test_vectors_are_what_the_generator_writes(tmp_path: Path) -> None:
    # Regenerating must reproduce the checked-in files byte for byte: the generator is
    # deterministic and nobody edited a vector by hand.
    subprocess.run(
        [sys.executable, str(HERE / "generate_ledger_vectors.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for folder in FOLDERS:
        fresh = {path.name: path.read_bytes() for path in (tmp_path / folder).glob("*.json")}
        checked_in = {path.name: path.read_bytes() for path in _files(folder)}
        assert fresh == checked_in, folder
