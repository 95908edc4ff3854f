"""Durable file replacement (ledger.durable): the file holds the new bytes with the mode
asked for, no temporary file stays beside it, and a write that fails leaves the old
file as it was."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from healthledger.ledger.durable import replace_durably, write_durably


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_holds_the_bytes_with_the_mode_open_gives(tmp_path: Path) -> None:
    reference = tmp_path / "made-by-open"
    reference.write_bytes(b"")
    target = tmp_path / "record.json"

    write_durably(target, b'{"height": 7}\n')

    assert target.read_bytes() == b'{"height": 7}\n'
    assert mode_of(target) == mode_of(reference)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["made-by-open", "record.json"]


def test_a_secret_file_is_owner_only_even_over_a_readable_one(tmp_path: Path) -> None:
    target = tmp_path / "keystore.json"
    target.write_bytes(b"old")
    target.chmod(0o644)

    write_durably(target, b"secret", mode=0o600)

    assert target.read_bytes() == b"secret"
    assert mode_of(target) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["keystore.json"]


def test_an_existing_file_is_replaced_whole(tmp_path: Path) -> None:
    target = tmp_path / "latest.note"
    target.write_bytes(b"a much longer old note than the new one\n" * 100)

    write_durably(target, b"short\n")

    assert target.read_bytes() == b"short\n"
    assert [p.name for p in tmp_path.iterdir()] == ["latest.note"]


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temporary(
    tmp_path: Path,
) -> None:
    """The writer runs with a file size limit of 4 KiB (RLIMIT_FSIZE, in a process of
    its own): writing 64 KiB fails with EFBIG after the first 4 KiB are on disk."""
    target = tmp_path / "network.json"
    target.write_bytes(b"the old network")
    script = (
        "import resource, signal, sys\n"
        "from pathlib import Path\n"
        "from healthledger.ledger.durable import write_durably\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "try:\n"
        "    write_durably(Path(sys.argv[1]), b'x' * 65536)\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__, exc.errno)\n"
        "    sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 3, done.stderr
    assert done.stdout.split() == ["OSError", str(errno.EFBIG)]
    assert target.read_bytes() == b"the old network"
    assert [p.name for p in tmp_path.iterdir()] == ["network.json"]


def test_a_rename_that_fails_leaves_the_target_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "directory.json"
    target.mkdir()
    (target / "inside").write_bytes(b"kept")

    with pytest.raises(IsADirectoryError):
        write_durably(target, b"{}")

    assert (target / "inside").read_bytes() == b"kept"
    assert [p.name for p in tmp_path.iterdir()] == ["directory.json"]


def test_writers_of_one_path_at_once_leave_one_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "staff.json"
    contents = [bytes([ord("a") + n]) * (50_000 + n) for n in range(4)]

    def write(data: bytes) -> None:
        for _ in range(10):
            write_durably(target, data, mode=0o600)

    threads = [threading.Thread(target=write, args=(data,)) for data in contents]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert target.read_bytes() in contents
    assert [p.name for p in tmp_path.iterdir()] == ["staff.json"]


def test_a_file_written_beside_replaces_the_target_with_its_own_mode(tmp_path: Path) -> None:
    target = tmp_path / "ledger.sqlite"
    target.write_bytes(b"old ledger")
    written = tmp_path / "ledger.sqlite.part"
    written.write_bytes(b"new ledger" * 1000)
    written.chmod(0o640)

    replace_durably(written, target)

    assert target.read_bytes() == b"new ledger" * 1000
    assert mode_of(target) == 0o640
    assert not written.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ledger.sqlite"]


def test_replacing_from_a_missing_file_changes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "cases.duckdb"
    target.write_bytes(b"old snapshot")

    with pytest.raises(FileNotFoundError):
        replace_durably(tmp_path / ".cases.duckdb.tmp", target)

    assert target.read_bytes() == b"old snapshot"
    assert os.listdir(tmp_path) == ["cases.duckdb"]
