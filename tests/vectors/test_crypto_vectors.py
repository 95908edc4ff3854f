"""The checked-in crypto vectors: every JSON file is one case (see generate_crypto_vectors.py)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from healthledger.crypto.canonical import canonical_json, is_canonical, parse_canonical
from healthledger.crypto.envelope import (
    Sealed,
    VaultKey,
    WrappedKey,
    open_sealed,
    seal,
    unwrap_key,
    wrap_key,
)
from healthledger.crypto.errors import CanonicalEncodingError, DecryptionError, SignatureError
from healthledger.crypto.keys import SigningKey, decode_b64, verify_signature

HERE = Path(__file__).resolve().parent
FOLDERS = ("canonical", "signatures", "signatures/rfc8032", "envelope")


def _files(folder: str) -> list[Path]:
    return sorted((HERE / folder).glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    case = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(case, dict)
    return case


def _params(folder: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("path", _files(folder), ids=lambda path: path.name)


def _check_schema(case: dict[str, Any], valid_fields: set[str], invalid_fields: set[str]) -> None:
    # A hand-edited case with a misspelt field would otherwise pass silently.
    assert case.get("wantErr", True) is True
    expected = invalid_fields | {"wantErr"} if "wantErr" in case else valid_fields
    assert set(case) == expected | {"description"}


@pytest.mark.parametrize("folder", FOLDERS)
def test_folder_has_valid_and_broken_cases(folder: str) -> None:
    cases = [_load(path) for path in _files(folder)]
    assert len(cases) > 0
    assert any(case.get("wantErr") for case in cases)
    assert any(not case.get("wantErr") for case in cases)


def test_vectors_are_what_the_generator_writes(tmp_path: Path) -> None:
    # Regenerating must reproduce the checked-in files byte for byte: the generator is
    # deterministic and nobody edited a vector by hand.
    subprocess.run(
        [sys.executable, str(HERE / "generate_crypto_vectors.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    for folder in FOLDERS:
        fresh = {path.name: path.read_bytes() for path in (tmp_path / folder).glob("*.json")}
        checked_in = {path.name: path.read_bytes() for path in _files(folder)}
        assert fresh == checked_in, folder


# ------------------------------------------------------------------------ canonical


@_params("canonical")
def test_canonical_vector(path: Path) -> None:
    case = _load(path)
    _check_schema(case, {"input_json", "canonical"}, {"input_json"})
    data = case["input_json"].encode("utf-8")
    if case.get("wantErr"):
        with pytest.raises(CanonicalEncodingError):
            parse_canonical(data)
        assert not is_canonical(data)
        return
    value = parse_canonical(data)
    expected = case["canonical"].encode("utf-8")
    assert canonical_json(value) == expected
    assert is_canonical(expected)
    assert is_canonical(data) == (data == expected)
    assert canonical_json(parse_canonical(expected)) == expected


# ----------------------------------------------------------------------- signatures


def _verify_canonical_message(case: dict[str, Any]) -> None:
    public = decode_b64(case["public_key"], what="public_key")
    signature = decode_b64(case["signature"], what="signature")
    message = case["message_json"].encode("utf-8")
    # A signer signs canonical bytes, so any other spelling of the same value is refused
    # rather than quietly re-canonicalised.
    if not is_canonical(message):
        raise SignatureError("message is not in canonical form")
    verify_signature(public, signature, canonical_json(parse_canonical(message)))


@_params("signatures")
def test_signature_vector(path: Path) -> None:
    case = _load(path)
    fields = {"public_key", "message_json", "signature"}
    _check_schema(case, fields, fields)
    if case.get("wantErr"):
        with pytest.raises(SignatureError):
            _verify_canonical_message(case)
    else:
        _verify_canonical_message(case)


@_params("signatures/rfc8032")
def test_rfc8032_vector(path: Path) -> None:
    case = _load(path)
    fields = {"secret_key", "public_key", "message", "signature"}
    _check_schema(case, fields, fields)
    public = bytes.fromhex(case["public_key"])
    message = bytes.fromhex(case["message"])
    signature = bytes.fromhex(case["signature"])
    if case.get("wantErr"):
        with pytest.raises(SignatureError):
            verify_signature(public, signature, message)
        return
    verify_signature(public, signature, message)
    key = SigningKey.from_seed(bytes.fromhex(case["secret_key"]))
    assert key.public_bytes() == public
    assert key.sign(message) == signature


# ------------------------------------------------------------------------- envelope


def _replay(*chunks: bytes) -> Callable[[int], bytes]:
    pending = iter(chunks)

    def random(size: int) -> bytes:
        chunk = next(pending)
        assert len(chunk) == size
        return chunk

    return random


def _open(case: dict[str, Any]) -> bytes:
    recipient = VaultKey.from_bytes(base64.b64decode(case["recipient_private"]))
    wrapped = WrappedKey.from_json(case["wrapped"])
    sealed = Sealed.from_json(case["sealed"])
    data_key = unwrap_key(wrapped, recipient)
    associated_data = base64.b64decode(case["associated_data"])
    return open_sealed(sealed, data_key, associated_data=associated_data)


@_params("envelope")
def test_envelope_vector(path: Path) -> None:
    case = _load(path)
    common = {"recipient_private", "associated_data", "wrapped", "sealed"}
    _check_schema(case, common | {"plaintext", "draws"}, common)
    if case.get("wantErr"):
        with pytest.raises(DecryptionError):
            _open(case)
        return
    assert _open(case) == base64.b64decode(case["plaintext"])
    # Known answer: the same draws must give the same bytes, so a change to the KDF
    # input, the label or the field layout shows up here and not in production.
    draws = {name: base64.b64decode(value) for name, value in case["draws"].items()}
    sealed, data_key = seal(
        base64.b64decode(case["plaintext"]),
        associated_data=base64.b64decode(case["associated_data"]),
        random=_replay(draws["data_key"], draws["payload_nonce"]),
    )
    recipient = VaultKey.from_bytes(base64.b64decode(case["recipient_private"]))
    wrapped = wrap_key(
        data_key,
        recipient.public_bytes(),
        random=_replay(draws["ephemeral_private"], draws["wrap_nonce"]),
    )
    assert sealed.to_json() == case["sealed"]
    assert wrapped.to_json() == case["wrapped"]
