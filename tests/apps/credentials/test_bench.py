"""``healthledger bench credentials --quick`` runs end to end and prints its figures (the
figures themselves are not asserted: a benchmark measures, a test does not time)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from healthledger.cli.main import app

pytestmark = pytest.mark.slow
POSITIVE = (
    "issuance_batch_per_s", "issuance_per_tx_per_s", "baseline_put_end_to_end_tx_per_s",
    "baseline_put_commit_only_tx_per_s", "ratio_batch_to_baseline",
    "issuance_batch_cpu_ms_per_credential", "dcc_verify_p99_ms", "shc_verify_p99_ms",
    "sd_jwt_vc_verify_p99_ms", "status_check_cpu_p99_ms",
    "issuance_batch_signing_cpu_ms_per_credential", "machine_es256_sign_per_s",
    "machine_ed25519_sign_per_s", "issuance_committed_per_s", "issuance_signing_ceiling_per_s",
    "ratio_committed_to_signing_ceiling",
)  # fmt: skip


def test_bench_credentials_quick_prints_every_figure() -> None:
    result = CliRunner().invoke(app, ["bench", "credentials", "--quick", "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["issuance_credentials_per_round"] == 20
    assert figures["status_entries"] == 10_000
    assert figures["issuance_committed_per_s"] == figures["issuance_batch_per_s"]
    assert figures["issuance_goal_per_s"] == 500
    for key in POSITIVE:
        assert isinstance(figures[key], int | float) and figures[key] > 0, key
    for fmt in ("dcc", "shc", "sd_jwt_vc"):
        assert 1 <= figures[f"{fmt}_qr_version_at_m"] <= 40
