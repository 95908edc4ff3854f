"""The wheel carries everything a node needs: built, installed into a fresh virtual
environment far from any checkout (no ``../shared``, no ``src``; its dependencies are
the test run's), it founds the demo and captures supply events, whose anchors are then
on chain."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
COUNT_ANCHORS = """
import sys
from healthledger.ledger.sqlite_store import SqliteStore
store = SqliteStore(sys.argv[1])
print(sum(1 for _ in store.range_state("supply", "anchor/", "anchor0", 1_000_000)))
store.close()
"""


SITE_PACKAGES = "import sysconfig; print(sysconfig.get_path('purelib'))"
SITE_PACKAGES_OF_RUN = sysconfig.get_path("purelib")


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, f"{argv[:3]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def test_an_installed_wheel_runs_the_demo_and_captures_supply_events(tmp_path: Path) -> None:
    # Built from a copy of what the sdist holds, so the build leaves nothing in the checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("healthledger-*.whl")
    home = tmp_path / "far" / "away"
    home.mkdir(parents=True)
    venv.create(home / "venv")
    python = home / "venv" / "bin" / "python"
    # The dependencies come from the test run's own environment (a path entry, which
    # processes none of that environment's .pth files, so not its editable install of
    # the checkout): resolving and installing them again took half of this test.
    site = run([str(python), "-c", SITE_PACKAGES], home).strip()
    (Path(site) / "test-dependencies.pth").write_text(SITE_PACKAGES_OF_RUN + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps"]
    run([*pip, str(wheel)], cwd=home)
    # Nothing of the checkout on the path: not its sources, not the conformance copies.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{home / 'venv' / 'bin'}:{env.get('PATH', '')}"
    where = run([str(python), "-c", "import healthledger; print(healthledger.__file__)"], home, env)
    assert str(ROOT) not in where
    data = home / "demo-data"
    said = run([str(home / "venv" / "bin" / "healthledger"), "demo", "--data", str(data),
                "--no-serve", "--live-every", "0"], home, env)  # fmt: skip
    assert "supply:" in said
    store = data / "ledger.sqlite"
    anchors = int(run([str(python), "-c", COUNT_ANCHORS, str(store)], home, env))
    assert anchors > 0
