"""Unit and property tests for healthledger.crypto: canonical JSON, Ed25519, certificates,
envelope encryption. The fixed-input cases live in tests/vectors/."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import enum
import hashlib
import json
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from healthledger.crypto.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    canonical_json,
    canonical_json_unchecked,
    is_canonical,
    parse_canonical,
)
from healthledger.crypto.certs import (
    issue_ca_certificate,
    issue_identity_certificate,
    load_certificate,
    verify_issued_by,
)
from healthledger.crypto.envelope import (
    KeyWrapper,
    Sealed,
    VaultKey,
    WrappedKey,
    open_sealed,
    seal,
    unwrap_key,
    wrap_key,
)
from healthledger.crypto.errors import (
    CanonicalEncodingError,
    CertificateError,
    CryptoError,
    DecryptionError,
    SignatureError,
)
from healthledger.crypto.keys import SigningKey, decode_b64, encode_b64, verify_signature


def _fixed(label: str, size: int = 32) -> bytes:
    return hashlib.sha256(b"healthledger/unit-tests/" + label.encode("ascii")).digest()[:size]


def _flip_bit(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index // 8] ^= 1 << (index % 8)
    return bytes(out)


def _same(a: Any, b: Any) -> bool:
    """Equality that also compares types, since True == 1 and 0 == False in Python."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# ------------------------------------------------------------------ canonical JSON

TEXT = st.text(st.characters(exclude_categories=["Cs"]))
ASCII_KEYS = st.text(st.characters(max_codepoint=0x7F))
SCALARS = st.none() | st.booleans() | st.integers(-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER) | TEXT
PROFILE_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(ASCII_KEYS, children, max_size=5)
    ),
    max_leaves=25,
)


def _in_list(items: list[Any], inner: Any, index: int) -> list[Any]:
    items = list(items)
    items.insert(min(index, len(items)), inner)
    return items


def _in_dict(members: dict[str, Any], key: str, inner: Any) -> dict[str, Any]:
    return {**members, key: inner}


# Every value drawn holds at least one float, at any depth, among profile values.
VALUES_WITH_A_FLOAT = st.recursive(
    st.floats(),
    lambda inner: (
        st.builds(_in_list, st.lists(PROFILE_VALUES, max_size=3), inner, st.integers(0, 3))
        | st.builds(
            _in_dict, st.dictionaries(ASCII_KEYS, PROFILE_VALUES, max_size=3), ASCII_KEYS, inner
        )
    ),
    max_leaves=5,
)


@given(PROFILE_VALUES)
def test_canonical_round_trip(value: Any) -> None:
    assert _same(parse_canonical(canonical_json(value)), value)


@given(PROFILE_VALUES)
def test_canonical_json_is_idempotent(value: Any) -> None:
    encoded = canonical_json(value)
    assert canonical_json(parse_canonical(encoded)) == encoded
    assert is_canonical(encoded)


@given(PROFILE_VALUES)
def test_canonical_json_is_the_json_modules_sorted_compact_form(value: Any) -> None:
    # The encoder is msgspec's, for speed; its bytes must be those of the definition.
    reference = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_json(value) == reference.encode("utf-8")
    assert canonical_json_unchecked(value) == reference.encode("utf-8")


@pytest.mark.parametrize("code", range(0x80))
def test_every_ascii_character_is_escaped_as_the_json_module_does(code: int) -> None:
    text = f"a{chr(code)}\u2028\U0010ffff"
    assert canonical_json([text]) == json.dumps([text], ensure_ascii=False).encode("utf-8")


@given(PROFILE_VALUES, st.sampled_from([None, 0, 2, "\t"]), st.booleans())
def test_any_spelling_gives_the_same_canonical_bytes(
    value: Any, indent: int | str | None, ensure_ascii: bool
) -> None:
    spelled = json.dumps(value, indent=indent, ensure_ascii=ensure_ascii).encode("utf-8")
    assert canonical_json(parse_canonical(spelled)) == canonical_json(value)


@given(VALUES_WITH_A_FLOAT)
def test_floats_are_refused_anywhere(value: Any) -> None:
    with pytest.raises(CanonicalEncodingError):
        canonical_json(value)
    with pytest.raises(CanonicalEncodingError):
        parse_canonical(json.dumps(value).encode("utf-8"))


@given(st.integers(min_value=MAX_SAFE_INTEGER + 1) | st.integers(max_value=-MAX_SAFE_INTEGER - 1))
def test_integers_outside_the_safe_range_are_refused(number: int) -> None:
    with pytest.raises(CanonicalEncodingError):
        canonical_json({"n": number})


@pytest.mark.parametrize(
    "data",
    [b'"\xff"', b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'{"a":"\x80"}'],
    ids=["invalid-byte", "overlong-solidus", "cesu-8-surrogate", "lone-continuation"],
)
def test_parse_canonical_refuses_bytes_that_are_not_utf8(data: bytes) -> None:
    # Cases a JSON text vector cannot hold: the input is not UTF-8 at all.
    with pytest.raises(CanonicalEncodingError):
        parse_canonical(data)


@pytest.mark.parametrize("value", [b"bytes", {1: "int key"}, {"a": {1, 2}}, object()])
def test_values_without_a_json_form_are_refused(value: Any) -> None:
    with pytest.raises(CanonicalEncodingError):
        canonical_json(value)


def test_canonical_json_refuses_other_mappings_clearly() -> None:
    # Only dict, list and tuple have a canonical form; others get a named error.
    with pytest.raises(CanonicalEncodingError):
        canonical_json(MappingProxyType({"a": 1}))
    with pytest.raises(CanonicalEncodingError):
        canonical_json(range(3))


@pytest.mark.parametrize(
    "value",
    ["\ud800", {"a": "x\udfff"}, ["ok", "\ud800"], ("\ud800",), {"é": 1}, {"a": [{"b": 1.5}]}],
    ids=["string", "object-member", "array-item", "tuple-item", "non-ascii-key", "deep-float"],
)
def test_lone_surrogates_and_non_ascii_keys_are_refused_where_they_sit(value: Any) -> None:
    with pytest.raises(CanonicalEncodingError):
        canonical_json(value)


def test_subclasses_of_the_json_types_encode_as_their_base() -> None:
    class Name(str):
        pass

    class Count(enum.IntEnum):
        TWO = 2

    assert (
        canonical_json({Name("k"): [Name("é"), Count.TWO, True]}) == '{"k":["é",2,true]}'.encode()
    )


def test_nesting_past_the_limit_is_refused_when_encoding() -> None:
    nested: Any = 1
    for _ in range(MAX_DEPTH + 1):
        nested = {"a": [nested]}
    with pytest.raises(CanonicalEncodingError, match="nesting deeper"):
        canonical_json(nested)


def test_65_nested_empty_arrays_are_refused() -> None:
    with pytest.raises(CanonicalEncodingError):
        parse_canonical(b"[" * 65 + b"]" * 65)


# ----------------------------------------------------------------------- signatures


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=256))
def test_sign_verify_round_trip(seed: bytes, message: bytes) -> None:
    key = SigningKey.from_seed(seed)
    signature = key.sign(message)
    verify_signature(key.public_bytes(), signature, message)
    assert decode_b64(key.sign_b64(message)) == signature
    assert SigningKey.from_pem(key.to_pem()).seed() == seed


@given(PROFILE_VALUES)
def test_sign_verify_canonical_json(value: Any) -> None:
    key = SigningKey.from_seed(_fixed("signer"))
    message = canonical_json(value)
    signature = key.sign(message)
    verify_signature(key.public_bytes(), signature, canonical_json(parse_canonical(message)))


@given(st.binary(min_size=32, max_size=32), st.binary(max_size=64), st.data())
def test_any_single_bit_flip_fails(seed: bytes, message: bytes, data: st.DataObject) -> None:
    key = SigningKey.from_seed(seed)
    signature, public = key.sign(message), key.public_bytes()
    blob = signature + public + message
    flipped = _flip_bit(blob, data.draw(st.integers(0, len(blob) * 8 - 1), label="bit"))
    signature, public, message = flipped[:64], flipped[64:96], flipped[96:]
    with pytest.raises(SignatureError):
        verify_signature(public, signature, message)


@pytest.mark.parametrize("seed", [b"", b"\x00" * 31, b"\x00" * 33])
def test_seed_must_be_32_bytes(seed: bytes) -> None:
    with pytest.raises(SignatureError):
        SigningKey.from_seed(seed)


def test_decode_b64_refuses_non_canonical_padding() -> None:
    assert encode_b64(b"A") == "QQ=="
    with pytest.raises(SignatureError):
        decode_b64("QR==")


# --------------------------------------------------------------------- certificates

NOT_BEFORE = 1_700_000_000_000
NOT_AFTER = 1_800_000_000_000
ATTRIBUTES = {"region": "east", "level": "2"}


def _ca(org: str, label: str) -> tuple[SigningKey, str]:
    key = SigningKey.from_seed(_fixed(label))
    pem = issue_ca_certificate(org=org, key=key, not_before_ms=NOT_BEFORE, not_after_ms=NOT_AFTER)
    return key, pem


CA_KEY, CA_PEM = _ca("cdc", "ca/cdc")
OTHER_CA_KEY, OTHER_CA_PEM = _ca("hospital-a", "ca/hospital-a")
IMPOSTOR_CA_KEY, IMPOSTOR_CA_PEM = _ca("cdc", "ca/impostor-cdc")
IDENTITY_KEY = SigningKey.from_seed(_fixed("identity/wang-fang"))
IDENTITY_PEM = issue_identity_certificate(
    ca_pem=CA_PEM,
    ca_key=CA_KEY,
    role="epidemiologist",
    name="wang-fang",
    public_key=IDENTITY_KEY.public_bytes(),
    not_before_ms=NOT_BEFORE,
    not_after_ms=NOT_AFTER,
    serial=4242,
    attributes=ATTRIBUTES,
)


def _der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode("ascii")).public_bytes(
        serialization.Encoding.DER
    )


def _pem(der: bytes) -> str:
    body = base64.encodebytes(der).decode("ascii")
    return f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"


def _self_signed(
    private_key: Any,
    attributes: list[tuple[x509.ObjectIdentifier, str]],
    algorithm: hashes.SHA256 | None,
) -> str:
    name = x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(7)
        .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        .sign(private_key, algorithm)
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


FULL_NAME = [
    (NameOID.ORGANIZATION_NAME, "cdc"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "doctor"),
    (NameOID.COMMON_NAME, "li"),
]


def test_ca_certificate_reads_back() -> None:
    ca = load_certificate(CA_PEM)
    assert (ca.org, ca.role, ca.name) == ("cdc", "ca", "cdc CA")
    assert ca.is_ca
    assert ca.serial == 1
    assert (ca.not_before_ms, ca.not_after_ms) == (NOT_BEFORE, NOT_AFTER)
    assert ca.public_key == CA_KEY.public_bytes()
    assert dict(ca.attributes) == {}
    assert ca.fingerprint == hashlib.sha256(_der(CA_PEM)).hexdigest()


def test_identity_certificate_reads_back() -> None:
    cert = load_certificate(IDENTITY_PEM)
    assert (cert.org, cert.role, cert.name) == ("cdc", "epidemiologist", "wang-fang")
    assert dict(cert.attributes) == ATTRIBUTES
    assert cert.serial == 4242
    assert not cert.is_ca
    assert cert.public_key == IDENTITY_KEY.public_bytes()
    assert (cert.not_before_ms, cert.not_after_ms) == (NOT_BEFORE, NOT_AFTER)
    assert cert.valid_at(NOT_BEFORE) and cert.valid_at(NOT_AFTER)
    assert not cert.valid_at(NOT_BEFORE - 1)
    assert not cert.valid_at(NOT_AFTER + 1)
    assert load_certificate(IDENTITY_PEM.encode("ascii")) == cert


def test_verify_issued_by_the_right_ca() -> None:
    ca = load_certificate(CA_PEM)
    verify_issued_by(load_certificate(IDENTITY_PEM), ca)
    verify_issued_by(ca, ca)  # a root is issued by itself


def test_verify_issued_by_another_orgs_ca_fails() -> None:
    with pytest.raises(CertificateError):
        verify_issued_by(load_certificate(IDENTITY_PEM), load_certificate(OTHER_CA_PEM))


def test_verify_issued_by_an_impostor_ca_with_the_same_name_fails() -> None:
    # Same subject as the real CA, so only the signature check can tell them apart.
    impostor = load_certificate(IMPOSTOR_CA_PEM)
    assert impostor.org == "cdc"
    with pytest.raises(CertificateError, match="signature"):
        verify_issued_by(load_certificate(IDENTITY_PEM), impostor)


def test_verify_issued_by_a_non_ca_issuer_fails() -> None:
    identity = load_certificate(IDENTITY_PEM)
    with pytest.raises(CertificateError, match="not a CA"):
        verify_issued_by(identity, identity)


def test_tampered_signature_fails() -> None:
    der = bytearray(_der(IDENTITY_PEM))
    der[-1] ^= 0x01  # the signature BIT STRING ends the DER encoding
    tampered = load_certificate(_pem(bytes(der)))
    assert tampered.name == "wang-fang"
    with pytest.raises(CertificateError, match="signature"):
        verify_issued_by(tampered, load_certificate(CA_PEM))


def test_tampered_subject_fails() -> None:
    der = _der(IDENTITY_PEM)
    assert der.count(b"wang-fang") == 1
    tampered = load_certificate(_pem(der.replace(b"wang-fang", b"wang-fong")))
    assert tampered.name == "wang-fong"
    with pytest.raises(CertificateError, match="signature"):
        verify_issued_by(tampered, load_certificate(CA_PEM))


def test_issuing_needs_a_ca_and_a_non_ca_role() -> None:
    common: dict[str, Any] = {
        "name": "x",
        "public_key": IDENTITY_KEY.public_bytes(),
        "not_before_ms": NOT_BEFORE,
        "not_after_ms": NOT_AFTER,
        "serial": 9,
    }
    with pytest.raises(CertificateError, match="not a CA"):
        issue_identity_certificate(
            ca_pem=IDENTITY_PEM, ca_key=IDENTITY_KEY, role="doctor", **common
        )
    with pytest.raises(CertificateError, match="reserved"):
        issue_identity_certificate(ca_pem=CA_PEM, ca_key=CA_KEY, role="ca", **common)


@pytest.mark.parametrize(
    "pem",
    ["", "garbage", b"garbage", "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"],
    ids=["empty", "text", "bytes", "bad-base64"],
)
def test_load_certificate_rejects_garbage(pem: str | bytes) -> None:
    with pytest.raises(CertificateError):
        load_certificate(pem)


def test_load_certificate_rejects_der() -> None:
    with pytest.raises(CertificateError):
        load_certificate(_der(CA_PEM))


def test_load_certificate_rejects_truncated_pem() -> None:
    der = _der(CA_PEM)
    with pytest.raises(CertificateError):
        load_certificate(_pem(der[: len(der) // 2]))


@pytest.mark.parametrize(
    ("make_key", "algorithm"),
    [
        (lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048), hashes.SHA256()),
        (lambda: ec.generate_private_key(ec.SECP256R1()), hashes.SHA256()),
    ],
    ids=["rsa", "ec-p256"],
)
def test_load_certificate_rejects_non_ed25519_keys(
    make_key: Callable[[], Any], algorithm: hashes.SHA256
) -> None:
    pem = _self_signed(make_key(), FULL_NAME, algorithm)
    with pytest.raises(CertificateError, match="not Ed25519"):
        load_certificate(pem)


def test_load_certificate_accepts_a_foreign_ed25519_certificate_with_o_ou_cn() -> None:
    # The control for the next test: the same builder with all three names loads.
    cert = load_certificate(_self_signed(ed25519.Ed25519PrivateKey.generate(), FULL_NAME, None))
    assert (cert.org, cert.role, cert.name) == ("cdc", "doctor", "li")


@pytest.mark.parametrize(
    "attributes",
    [
        [a for a in FULL_NAME if a[0] != NameOID.ORGANIZATION_NAME],
        [a for a in FULL_NAME if a[0] != NameOID.ORGANIZATIONAL_UNIT_NAME],
        [a for a in FULL_NAME if a[0] != NameOID.COMMON_NAME],
        [*FULL_NAME, (NameOID.ORGANIZATIONAL_UNIT_NAME, "nurse")],
    ],
    ids=["no-O", "no-OU", "no-CN", "two-OU"],
)
def test_load_certificate_rejects_subjects_without_one_o_ou_cn(
    attributes: list[tuple[x509.ObjectIdentifier, str]],
) -> None:
    pem = _self_signed(ed25519.Ed25519PrivateKey.generate(), attributes, None)
    with pytest.raises(CertificateError, match="exactly one"):
        load_certificate(pem)


def test_load_certificate_rejects_non_ascii_text() -> None:
    with pytest.raises(CertificateError):
        load_certificate("é")


# ------------------------------------------------------------------------- envelope

VAULT = VaultKey.from_bytes(_fixed("vault/hospital-a"))
OTHER_VAULT = VaultKey.from_bytes(_fixed("vault/hospital-b"))
RECORD_ID = b"hospital-a/records/obs-0001"


def _seal_for(vault: VaultKey, plaintext: bytes, ad: bytes) -> tuple[Sealed, WrappedKey, bytes]:
    sealed, data_key = seal(plaintext, associated_data=ad)
    return sealed, wrap_key(data_key, vault.public_bytes()), data_key


def _through_storage(data: dict[str, int | str]) -> Any:
    return json.loads(json.dumps(data))


@given(st.binary(max_size=2048), st.binary(max_size=64))
def test_envelope_round_trip(plaintext: bytes, ad: bytes) -> None:
    sealed, wrapped, data_key = _seal_for(VAULT, plaintext, ad)
    sealed = Sealed.from_json(_through_storage(sealed.to_json()))
    wrapped = WrappedKey.from_json(_through_storage(wrapped.to_json()))
    assert unwrap_key(wrapped, VAULT) == data_key
    assert open_sealed(sealed, data_key, associated_data=ad) == plaintext


@given(st.binary(max_size=256), st.data())
def test_any_bit_flip_in_a_sealed_payload_fails(plaintext: bytes, data: st.DataObject) -> None:
    sealed, _, data_key = _seal_for(VAULT, plaintext, RECORD_ID)
    blob = sealed.nonce + sealed.ciphertext
    flipped = _flip_bit(blob, data.draw(st.integers(0, len(blob) * 8 - 1), label="bit"))
    tampered = Sealed(nonce=flipped[:12], ciphertext=flipped[12:])
    with pytest.raises(DecryptionError):
        open_sealed(tampered, data_key, associated_data=RECORD_ID)


@given(st.integers(0, (32 + 12 + 48) * 8 - 1))
def test_any_bit_flip_in_a_wrapped_key_fails(bit: int) -> None:
    _, wrapped, _ = _seal_for(VAULT, b"x", RECORD_ID)
    flipped = _flip_bit(wrapped.ephemeral_public + wrapped.nonce + wrapped.ciphertext, bit)
    tampered = WrappedKey(
        ephemeral_public=flipped[:32], nonce=flipped[32:44], ciphertext=flipped[44:]
    )
    with pytest.raises(DecryptionError):
        unwrap_key(tampered, VAULT)


def test_ephemeral_key_top_bit_is_bound() -> None:
    # X25519 ignores bit 255 of a public key, so this flip leaves the shared secret as it
    # was; only the public key bytes in the HKDF info make the unwrap fail.
    _, wrapped, _ = _seal_for(VAULT, b"x", RECORD_ID)
    tampered = WrappedKey(
        ephemeral_public=_flip_bit(wrapped.ephemeral_public, 255),
        nonce=wrapped.nonce,
        ciphertext=wrapped.ciphertext,
    )
    with pytest.raises(DecryptionError):
        unwrap_key(tampered, VAULT)


def test_each_seal_draws_a_fresh_data_key_and_nonce() -> None:
    first, first_key = seal(b"same", associated_data=RECORD_ID)
    second, second_key = seal(b"same", associated_data=RECORD_ID)
    assert first_key != second_key
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


def test_payload_is_bound_to_its_associated_data() -> None:
    sealed, _, data_key = _seal_for(VAULT, b"blood pressure 120/80", RECORD_ID)
    with pytest.raises(DecryptionError, match="associated data"):
        open_sealed(sealed, data_key, associated_data=b"hospital-a/records/obs-0002")


def test_one_data_key_wrapped_for_two_vaults() -> None:
    sealed, data_key = seal(b"shared record", associated_data=RECORD_ID)
    for vault in (VAULT, OTHER_VAULT):
        wrapped = wrap_key(data_key, vault.public_bytes())
        assert open_sealed(sealed, unwrap_key(wrapped, vault), associated_data=RECORD_ID) == (
            b"shared record"
        )


def test_one_wrapper_wraps_each_data_key_on_its_own() -> None:
    # One ephemeral agreement for several data keys: each wrap has its own nonce and
    # ciphertext and opens to its own key, so erasing one wrapped copy erases one key.
    wrapper = KeyWrapper(VAULT.public_bytes())
    sealed = [seal(b"value %d" % i, associated_data=RECORD_ID) for i in range(3)]
    wrapped = [wrapper.wrap(data_key) for _, data_key in sealed]
    assert len({w.ephemeral_public for w in wrapped}) == 1
    assert len({w.nonce for w in wrapped}) == len({w.ciphertext for w in wrapped}) == 3
    for (box, data_key), key in zip(sealed, wrapped, strict=True):
        assert unwrap_key(key, VAULT) == data_key
        assert open_sealed(box, unwrap_key(key, VAULT), associated_data=RECORD_ID)
    with pytest.raises(DecryptionError, match="wrong vault key"):
        unwrap_key(wrapped[0], OTHER_VAULT)
    with pytest.raises(CryptoError):
        wrapper.wrap(b"short")


def test_wrapped_key_opens_only_for_its_vault() -> None:
    _, wrapped, _ = _seal_for(VAULT, b"x", RECORD_ID)
    with pytest.raises(DecryptionError, match="wrong vault key"):
        unwrap_key(wrapped, OTHER_VAULT)


def test_crypto_shredding() -> None:
    plaintext = b'{"resourceType":"Patient","name":[{"text":"Zhang Wei"}]}'
    sealed, wrapped, data_key = _seal_for(VAULT, plaintext, RECORD_ID)
    stored = {"sealed": sealed.to_json(), "wrapped": wrapped.to_json()}
    assert b"Zhang Wei" not in json.dumps(stored).encode("utf-8")
    assert open_sealed(sealed, unwrap_key(wrapped, VAULT), associated_data=RECORD_ID) == plaintext

    # Shred: the wrapped key is erased and the data key was never stored.
    del stored["wrapped"], data_key
    remaining = Sealed.from_json(stored["sealed"])
    # The vault key still opens other records' wrapped keys, but none of them opens this one.
    _, other_wrapped, _ = _seal_for(VAULT, b"another record", RECORD_ID)
    with pytest.raises(DecryptionError):
        open_sealed(remaining, unwrap_key(other_wrapped, VAULT), associated_data=RECORD_ID)
    # Nor does any guessed key.
    for guess in (bytes(32), b"\xff" * 32, _fixed("guess")):
        with pytest.raises(DecryptionError):
            open_sealed(remaining, guess, associated_data=RECORD_ID)


def test_shredding_a_vault_key_loses_what_was_wrapped_only_for_it() -> None:
    _, wrapped, _ = _seal_for(VaultKey.generate(), b"x", RECORD_ID)
    # The generated vault key is gone; no other vault key can unwrap.
    for vault in (VAULT, OTHER_VAULT):
        with pytest.raises(DecryptionError):
            unwrap_key(wrapped, vault)


def test_vault_key_bytes_round_trip() -> None:
    raw = _fixed("vault/raw")
    vault = VaultKey.from_bytes(raw)
    assert vault.private_bytes() == raw
    assert VaultKey.from_bytes(vault.private_bytes()).public_bytes() == vault.public_bytes()
    assert len(vault.public_bytes()) == 32
    assert VaultKey.generate(random=lambda size: raw[:size]).public_bytes() == (
        vault.public_bytes()
    )


def test_to_json_fits_the_canonical_profile() -> None:
    sealed, wrapped, _ = _seal_for(VAULT, b"x", RECORD_ID)
    for data in (sealed.to_json(), wrapped.to_json()):
        assert data["v"] == 1
        assert is_canonical(canonical_json(data))


@pytest.mark.parametrize("size", [0, 31, 33])
def test_bad_key_lengths_raise_decryption_error(size: int) -> None:
    sealed, _, _ = _seal_for(VAULT, b"x", RECORD_ID)
    with pytest.raises(DecryptionError):
        VaultKey.from_bytes(bytes(size))
    with pytest.raises(DecryptionError):
        open_sealed(sealed, bytes(size), associated_data=RECORD_ID)
    with pytest.raises(DecryptionError):
        wrap_key(bytes(size), VAULT.public_bytes())
    with pytest.raises(DecryptionError):
        wrap_key(bytes(32), bytes(size))


def test_wrapping_for_a_low_order_public_key_fails() -> None:
    with pytest.raises(DecryptionError, match="low-order"):
        wrap_key(bytes(32), bytes(32))


@pytest.mark.parametrize(
    ("make", "fields"),
    [
        (Sealed, {"nonce": bytes(11), "ciphertext": bytes(16)}),
        (Sealed, {"nonce": bytes(12), "ciphertext": bytes(15)}),
        (WrappedKey, {"ephemeral_public": bytes(31), "nonce": bytes(12), "ciphertext": bytes(48)}),
        (WrappedKey, {"ephemeral_public": bytes(32), "nonce": bytes(13), "ciphertext": bytes(48)}),
        (WrappedKey, {"ephemeral_public": bytes(32), "nonce": bytes(12), "ciphertext": bytes(49)}),
    ],
)
def test_records_refuse_wrong_lengths(
    make: Callable[..., object], fields: dict[str, bytes]
) -> None:
    with pytest.raises(DecryptionError):
        make(**fields)


def test_short_random_source_is_an_error() -> None:
    with pytest.raises(CryptoError, match="random source"):
        seal(b"x", associated_data=b"", random=lambda size: bytes(size - 1))
    with pytest.raises(CryptoError, match="random source"):
        wrap_key(bytes(32), VAULT.public_bytes(), random=lambda size: bytes(size + 1))


JSON_ISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=8,
)
FIELD_NAMES = st.sampled_from(["v", "nonce", "ciphertext", "ephemeral_public", "other"])
BASE64_ISH = st.binary(max_size=64).map(lambda raw: base64.b64encode(raw).decode("ascii"))


@given(JSON_ISH | st.dictionaries(FIELD_NAMES, JSON_ISH | BASE64_ISH | st.just(1)))
def test_from_json_raises_only_decryption_error(data: Any) -> None:
    for parse in (Sealed.from_json, WrappedKey.from_json):
        with contextlib.suppress(DecryptionError):
            parse(data)
