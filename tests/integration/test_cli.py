"""The ``healthledger`` command, in process (Typer's CliRunner) and as the installed
console script in a real subprocess: demo, verify, proof, bench, and one-line errors."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from healthledger.cli.main import EXIT_FAILED, EXIT_UNUSABLE, app
from healthledger.ledger.merkle import verify_inclusion
from healthledger.node.embedded import LEDGER_FILE

pytestmark = pytest.mark.slow

SCRIPT = Path(sys.executable).with_name("healthledger")
runner = CliRunner()


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def assert_one_line_error(output: str, *fragments: str) -> None:
    assert "Traceback" not in output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo ledger built by the real console script."""
    data = tmp_path_factory.mktemp("cli") / "demo"
    result = run("demo", "--no-serve", "--data", str(data), "--seed", "3")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert (data / LEDGER_FILE).is_file()
    return data


def test_script_is_installed() -> None:
    assert SCRIPT.is_file(), f"run pip install -e . first: no {SCRIPT}"


def test_demo_reports_what_it_committed(demo_dir: Path) -> None:
    # The fixture built it; building again reuses the folder and adds traffic.
    before = _height(demo_dir)
    result = runner.invoke(app, ["demo", "--no-serve", "--data", str(demo_dir), "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "reopened the demo consortium" in result.output
    assert "IDENTITY_REVOKED" in result.output
    assert _height(demo_dir) > before


def test_verify_exits_zero_on_a_clean_ledger(demo_dir: Path) -> None:
    result = runner.invoke(app, ["verify", str(demo_dir)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok ")
    process = run("verify", str(demo_dir), "--json")
    assert process.returncode == 0, process.stderr
    report = json.loads(process.stdout.strip().splitlines()[-1])
    assert report["ok"] is True
    assert report["blocks"] == _height(demo_dir)
    assert report["codes"]["IDENTITY_REVOKED"] >= 1


def test_proof_of_the_latest_transaction_verifies(demo_dir: Path) -> None:
    result = runner.invoke(app, ["proof", "--data", str(demo_dir)])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    _check_proof(document)
    assert document["leafIdx"] == document["treeSize"] - 1


def test_proof_of_a_named_transaction_verifies(demo_dir: Path) -> None:
    with sqlite3.connect(demo_dir / LEDGER_FILE) as db:
        (tx_id,) = db.execute("SELECT tx_id FROM txs WHERE log_index = 1").fetchone()
    process = run("proof", "--data", str(demo_dir), tx_id)
    assert process.returncode == 0, process.stderr
    document = json.loads(process.stdout)
    assert document["txId"] == tx_id
    assert document["leafIdx"] == 1
    _check_proof(document)


def _check_proof(document: dict[str, object]) -> None:
    assert set(document) >= {"leafIdx", "treeSize", "root", "leafHash", "proof"}
    proof = document["proof"]
    assert isinstance(proof, list)
    verify_inclusion(
        leaf_index=int(str(document["leafIdx"])),
        tree_size=int(str(document["treeSize"])),
        leaf_hash=base64.b64decode(str(document["leafHash"])),
        proof=[base64.b64decode(p) for p in proof],
        root=base64.b64decode(str(document["root"])),
    )


def test_proof_of_an_unknown_transaction_is_one_line(demo_dir: Path) -> None:
    result = runner.invoke(app, ["proof", "--data", str(demo_dir), "ab" * 32])
    assert result.exit_code == EXIT_FAILED
    assert_one_line_error(result.output, "no committed transaction")
    result = runner.invoke(app, ["proof", "--data", str(demo_dir), "not-an-id"])
    assert result.exit_code == EXIT_UNUSABLE
    assert_one_line_error(result.output, "not a transaction id")


def test_verify_names_the_tampered_block(demo_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(demo_dir, copy)
    with sqlite3.connect(copy / LEDGER_FILE) as db:
        (body,) = db.execute("SELECT body FROM blocks WHERE height = 2").fetchone()
        tampered = bytearray(body)
        tampered[len(tampered) // 2] ^= 0x01
        db.execute("UPDATE blocks SET body = ? WHERE height = 2", (bytes(tampered),))
    result = runner.invoke(app, ["verify", str(copy)])
    assert result.exit_code == EXIT_FAILED
    assert_one_line_error(result.output, "block 2")
    process = run("verify", str(copy))
    assert process.returncode == EXIT_FAILED
    assert process.stdout == ""
    assert_one_line_error(process.stderr, "block 2")
    process = run("verify", str(copy), "--json")
    assert process.returncode == EXIT_FAILED
    assert json.loads(process.stdout)["ok"] is False


@pytest.mark.parametrize("kind", ["missing", "not-a-ledger", "garbage-file", "garbage-ledger"])
def test_verify_of_unusable_input_is_one_line(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "not-a-ledger":
        target.mkdir()
        (target / "notes.txt").write_text("hello")
    elif kind == "garbage-file":
        target.write_bytes(os.urandom(4096))
    elif kind == "garbage-ledger":
        target.mkdir()
        (target / LEDGER_FILE).write_bytes(b"SQLite format 3\x00" + os.urandom(4096))
    result = runner.invoke(app, ["verify", str(target)])
    assert result.exit_code == EXIT_UNUSABLE, result.output
    assert_one_line_error(result.output)
    process = run("verify", str(target))
    assert process.returncode == EXIT_UNUSABLE
    assert_one_line_error(process.stdout + process.stderr)


@pytest.mark.parametrize("command", ["proof", "node"])
def test_commands_on_a_folder_that_is_not_a_ledger_are_one_line(
    tmp_path: Path, command: str
) -> None:
    for target in (tmp_path / "missing", tmp_path):
        result = runner.invoke(app, [command, "--data", str(target)])
        assert result.exit_code == EXIT_UNUSABLE, result.output
        assert_one_line_error(result.output)


def test_corrupt_keystore_is_one_line(demo_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(demo_dir, copy)
    (copy / "keystore.json").write_text("{not json")
    process = run("proof", "--data", str(copy))
    assert process.returncode == EXIT_UNUSABLE
    assert_one_line_error(process.stdout + process.stderr, "keystore")


def test_demo_refuses_a_folder_holding_something_else(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("do not touch")
    result = runner.invoke(app, ["demo", "--no-serve", "--data", str(tmp_path)])
    assert result.exit_code == EXIT_UNUSABLE
    assert_one_line_error(result.output, "not empty")
    assert (tmp_path / "precious.txt").read_text() == "do not touch"


def test_usage_errors_exit_two() -> None:
    process = run("verify")
    assert process.returncode == 2
    assert "Traceback" not in process.stderr


def test_bench_commit_json() -> None:
    process = run("bench", "commit", "--tx", "200", "--json")
    assert process.returncode == 0, process.stderr
    figures = json.loads(process.stdout.strip().splitlines()[-1])
    for key in ("tx_per_s", "verify_per_s", "ratio_to_verify_ceiling", "peak_rss_mb"):
        assert isinstance(figures[key], int | float) and figures[key] > 0, key
    assert figures["transactions"] == 200
    assert figures["invalid"] == 0


def test_bench_verify_json_has_the_ceiling_ratio_in_wall_and_in_cpu_time() -> None:
    process = run("bench", "verify", "--tx", "200", "--json")
    assert process.returncode == 0, process.stderr
    figures = json.loads(process.stdout.strip().splitlines()[-1])
    assert figures["transactions"] == 201  # with the genesis transaction
    for key in ("tx_per_s", "ratio_to_verify_ceiling", "cpu_us_per_tx", "signature_cpu_us_per_tx"):
        assert isinstance(figures[key], int | float) and figures[key] > 0, key
    # The share and the rest are derived from the two CPU figures printed beside them.
    share = figures["signature_cpu_us_per_tx"] / figures["cpu_us_per_tx"]
    assert share == pytest.approx(figures["signature_share_of_cpu"], abs=0.002)
    assert figures["non_signature_cpu_us_per_tx"] == pytest.approx(
        figures["cpu_us_per_tx"] - figures["signature_cpu_us_per_tx"], abs=0.2
    )


def _height(data: Path) -> int:
    with sqlite3.connect(data / LEDGER_FILE) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM blocks").fetchone()
    return int(count)
