"""The project's own credential vectors (tests/vectors/credentials/, made by
generate_credential_vectors.py): a valid credential of each encoding and broken copies,
each answered with exactly its reason codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.vectors.generate_credential_vectors import check

FOLDER = Path(__file__).resolve().parent / "credentials"
CASES = sorted(FOLDER.glob("*/*.json"))


def test_each_encoding_has_its_valid_and_broken_cases() -> None:
    groups = {p.parent.name for p in CASES}
    assert groups == {"dcc", "shc", "sd-jwt-vc"}
    assert len(CASES) >= 40


@pytest.mark.parametrize("path", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
def test_vector(path: Path) -> None:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert check(case) == case["want"]
