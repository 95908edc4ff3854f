"""The staff store (a password and the operator key open a staff member's key, nothing
less), staff sessions (forgotten at expiry and logout) and the login limits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from healthledger.crypto.certs import (
    issue_ca_certificate,
    issue_identity_certificate,
    load_certificate,
)
from healthledger.crypto.keys import SigningKey
from healthledger.node.staff import (
    StaffError,
    StaffStore,
    WrongPassword,
    new_operator_key,
    operator_key,
    parse_operator_key,
)
from healthledger.web.staff_login import LoginThrottle, StaffSessions

PASSWORD = "a long enough password"


def certificate(org: str, name: str, key: SigningKey) -> str:
    ca_key = SigningKey.generate()
    ca_pem = issue_ca_certificate(
        org=org, key=ca_key, not_before_ms=0, not_after_ms=4_102_444_800_000
    )
    return issue_identity_certificate(
        ca_pem=ca_pem,
        ca_key=ca_key,
        role="doctor",
        name=name,
        public_key=key.public_bytes(),
        not_before_ms=0,
        not_after_ms=4_102_444_800_000,
        serial=7,
    )


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, SigningKey]:
    """A staff file with one doctor enrolled; its path, the operator key and the key."""
    path = tmp_path_factory.mktemp("staff") / "staff.json"
    operator = parse_operator_key(new_operator_key(), where="test")
    key = SigningKey.generate()
    store = StaffStore(path, operator_key=operator, org="hospital")
    store.enrol(load_certificate(certificate("hospital", "dr-a", key)), key, PASSWORD)
    return path, operator, key


def test_the_password_and_the_operator_key_open_the_key(
    enrolled: tuple[Path, bytes, SigningKey],
) -> None:
    path, operator, key = enrolled
    assert path.stat().st_mode & 0o077 == 0
    assert key.seed().hex() not in path.read_text()
    unlocked = StaffStore(path, operator_key=operator).unlock("hospital/dr-a", PASSWORD)
    assert (unlocked.id, unlocked.key.seed()) == ("hospital/dr-a", key.seed())
    with pytest.raises(WrongPassword):
        StaffStore(path, operator_key=operator).unlock("hospital/dr-a", PASSWORD + "!")
    with pytest.raises(WrongPassword):
        StaffStore(path, operator_key=operator).unlock("hospital/nobody", PASSWORD)


def test_another_operator_key_opens_nothing(enrolled: tuple[Path, bytes, SigningKey]) -> None:
    path, _, _ = enrolled
    other = parse_operator_key(new_operator_key(), where="test")
    with pytest.raises(StaffError, match="operator key is not the one"):
        StaffStore(path, operator_key=other).unlock("hospital/dr-a", PASSWORD)


def test_enrolment_refusals_and_a_damaged_file(tmp_path: Path) -> None:
    operator = parse_operator_key(new_operator_key(), where="test")
    store = StaffStore(tmp_path / "staff.json", operator_key=operator, org="hospital")
    key = SigningKey.generate()
    with pytest.raises(StaffError, match="holds only hospital's staff"):
        store.enrol(load_certificate(certificate("pharmacy", "ph-a", key)), key, PASSWORD)
    with pytest.raises(StaffError, match="at least 12 characters"):
        store.enrol(load_certificate(certificate("hospital", "dr-b", key)), key, "short")
    with pytest.raises(StaffError, match="not for this key"):
        cert = load_certificate(certificate("hospital", "dr-b", key))
        store.enrol(cert, SigningKey.generate(), PASSWORD)
    assert not (tmp_path / "staff.json").exists()
    (tmp_path / "staff.json").write_text(json.dumps({"v": 9, "staff": {}}))
    with pytest.raises(StaffError, match="not a readable staff file"):
        StaffStore(tmp_path / "staff.json", operator_key=operator)


def test_operator_key_from_a_file_or_the_environment(tmp_path: Path) -> None:
    (tmp_path / "k").write_text(new_operator_key() + "\n")
    assert len(operator_key(tmp_path / "k") or b"") == 32
    assert operator_key(None, environ={}) is None
    with pytest.raises(StaffError, match="must hold 32 bytes"):
        operator_key(None, environ={"HEALTHLEDGER_STAFF_KEY": "c2hvcnQ="})
    with pytest.raises(StaffError, match="not base64"):
        operator_key(None, environ={"HEALTHLEDGER_STAFF_KEY": "not base64!"})


def test_sessions_are_forgotten_at_expiry_and_logout(
    enrolled: tuple[Path, bytes, SigningKey],
) -> None:
    path, operator, _ = enrolled
    unlocked = StaffStore(path, operator_key=operator).unlock("hospital/dr-a", PASSWORD)
    now = [1000.0]
    sessions = StaffSessions(max_age_s=60, clock=lambda: now[0])
    first, second = sessions.open(unlocked), sessions.open(unlocked)
    assert first != second
    session = sessions.get(first)
    assert session is not None and session.identity.id == "hospital/dr-a"
    sessions.close(first)
    assert sessions.get(first) is None and sessions.get(second) is not None
    now[0] += 61
    assert sessions.get(second) is None


def test_login_limits_per_identity_and_per_address() -> None:
    now = [0.0]
    throttle = LoginThrottle(per_identity=2, per_address=3, window_s=100, clock=lambda: now[0])
    assert throttle.wait("o/a", "10.0.0.1") is None
    throttle.failed("o/a", "10.0.0.1")
    throttle.failed("o/a", "10.0.0.1")
    assert throttle.wait("o/a", "10.0.0.2") == ("identity", 100)
    assert throttle.wait("o/b", "10.0.0.1") is None
    throttle.failed("o/b", "10.0.0.1")
    assert throttle.wait("o/c", "10.0.0.1") == ("address", 100)
    now[0] = 100.0
    assert throttle.wait("o/a", "10.0.0.1") is None
    throttle.failed("o/d", "10.0.0.9")
    throttle.succeeded("o/d")
    throttle.failed("o/d", "10.0.0.9")
    assert throttle.wait("o/d", "10.0.0.8") is None
