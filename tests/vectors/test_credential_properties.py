"""Property tests of the health-credential codecs and verifiers (a bounded version of what
``benchmarks/fuzz.py`` runs on the ``credential``, ``base45``, ``cose`` and ``sd_jwt``
decoders): round trips hold, any input is a verdict or the codec's own error, and no
edit of a signed credential verifies with content other than what was signed."""

from __future__ import annotations

import contextlib
import itertools
import json
import string
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from healthledger.crypto import sdjwt
from healthledger.crypto.base45 import ALPHABET, b45decode, b45encode
from healthledger.crypto.cose import decode_sign1
from healthledger.crypto.credentials.shc import assemble, jws_to_numeric, numeric_to_jws
from healthledger.crypto.credentials.verdict import Verdict
from healthledger.crypto.errors import MalformedEncoding
from healthledger.crypto.jose import Jwk
from tests.vectors.fuzz.credentials import CredentialDecoders, Refused, seeds

BOUNDED = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DECODERS = CredentialDecoders()
SEEDS = seeds()


def _verdict(data: bytes) -> Verdict | None:
    try:
        verdict = DECODERS.credential(data)
    except Refused:
        return None
    assert isinstance(verdict, Verdict)
    return verdict


ACCEPTED = {seed: v for seed in SEEDS["credential"] if (v := _verdict(seed)) is not None}


def test_the_seeds_hold_valid_cards_and_sd_jwts() -> None:
    assert {v.format for v in ACCEPTED.values()} == {"shc", "sd-jwt", "sd-jwt-vc"}
    assert len(SEEDS["credential"]) > 60


@BOUNDED
@given(data=st.binary(max_size=200))
def test_base45_round_trips(data: bytes) -> None:
    assert b45decode(b45encode(data)) == data


@BOUNDED
@given(text=st.text(alphabet=ALPHABET + "=a~", max_size=40))
def test_base45_decodes_or_refuses(text: str) -> None:
    with contextlib.suppress(MalformedEncoding):
        assert b45encode(b45decode(text)) == text


@BOUNDED
@given(jws=st.text(alphabet=string.ascii_letters + string.digits + "-_.", max_size=200))
def test_shc_numeric_round_trips(jws: str) -> None:
    assert numeric_to_jws(jws_to_numeric(jws)[len("shc:/") :]) == jws


@pytest.mark.parametrize(
    ("data", "text"),
    [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581"),
     (b"ietf!", "QED8WEX0"), (b"", ""), (b"\xff\xff", "FGW"), (b"\x00", "00")],
)  # fmt: skip
def test_base45_encodes_as_rfc_9285_does(data: bytes, text: str) -> None:
    assert b45encode(data) == text


def test_shc_numeric_text_of_a_known_jws_and_a_refused_character() -> None:
    assert jws_to_numeric("eyJ-_.z") == "shc:/56762900500177"
    for wrong in ("a b", "a,b", "a\u00e9", "a{"):
        with pytest.raises(MalformedEncoding):
            jws_to_numeric(wrong)


@BOUNDED
@given(raw=st.binary(max_size=300))
def test_random_bytes_are_a_cose_message_or_refused(raw: bytes) -> None:
    with contextlib.suppress(MalformedEncoding):
        decode_sign1(raw)


@pytest.mark.parametrize("index", range(len(ACCEPTED)))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_an_edited_credential_never_verifies_with_other_content(
    index: int, data: st.DataObject
) -> None:
    seed, original = list(ACCEPTED.items())[index]
    edits = data.draw(
        st.lists(st.tuples(st.integers(0, len(seed)), st.integers(0, 4),
                           st.binary(min_size=0, max_size=4)), min_size=1, max_size=3)
    )  # fmt: skip
    broken = seed
    for at, cut, insert in edits:
        broken = broken[:at] + insert + broken[at + cut :]
    verdict = _verdict(broken)
    if verdict is not None:
        assert verdict.issuer == original.issuer
        for name, value in verdict.claims.items():
            # Undisclosing a Disclosure is the holder's right; changing one is not.
            assert original.claims.get(name) == value, name


@BOUNDED
@given(raw=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
def test_random_input_is_a_verdict(raw: bytes) -> None:
    verdict = _verdict(raw)  # a Verdict or Refused: any other exception fails the test
    assert verdict is None or verdict.valid


CLAIM_NAMES = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8).filter(
    lambda n: n not in ("_sd", "_sd_alg", "iss", "cnf")
)
CLAIM_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(CLAIM_NAMES, inner, max_size=3),
    max_leaves=5,
)
ISSUER = ec.generate_private_key(ec.SECP256R1())
HOLDER = ec.generate_private_key(ec.SECP256R1())


@BOUNDED
@given(claims=st.dictionaries(CLAIM_NAMES, CLAIM_VALUES, min_size=1, max_size=5),
       keep=st.sets(CLAIM_NAMES, max_size=3))  # fmt: skip
@example(claims={"a": {"_": None}}, keep={"_"})  # a nested claim kept, its parent not
def test_sd_jwt_discloses_exactly_what_the_holder_chooses(
    claims: dict[str, Any], keep: set[str]
) -> None:
    holder = Jwk.of(HOLDER.public_key())
    body = {**claims, "iss": "https://issuer.example",
            "cnf": {"jwk": {k: v for k, v in holder.members.items() if k != "kid"}}}  # fmt: skip
    issued = sdjwt.issue(body, key=ISSUER, header={"typ": "dc+sd-jwt"},
                         always_visible=("iss", "cnf"))  # fmt: skip
    key = ISSUER.public_key()
    whole = sdjwt.verify(issued, issuer_key=lambda _: key)
    assert json.loads(json.dumps(whole.claims)) == json.loads(json.dumps(body))
    shown = sdjwt.present(issued, disclose=lambda d: d.name is None or d.name in keep,
                          holder_key=HOLDER, audience="v", nonce="n", issued_at=1)  # fmt: skip
    seen = sdjwt.verify(shown, issuer_key=lambda _: key, audience="v", nonce="n",
                        require_key_binding=True)  # fmt: skip
    assert set(seen.claims) == {"iss", "cnf"} | (keep & set(claims))
    assert seen.key_binding is not None and seen.key_binding["nonce"] == "n"


@pytest.mark.parametrize(
    "claims", [{"_sd_alg": "md5"}, {"_sd": []}, {"a": {"_sd": 1}}, {"a": {"...": 1}}]
)
def test_names_rfc_9901_reserves_are_refused_at_issuance(claims: dict[str, Any]) -> None:
    with pytest.raises(sdjwt.ReservedClaimName, match="RFC 9901 reserves it"):
        sdjwt.issue(claims, key=ISSUER, header={"typ": "dc+sd-jwt"})


def test_a_nested_claim_may_be_named_sd_alg() -> None:
    issued = sdjwt.issue({"a": {"_sd_alg": 1}}, key=ISSUER, header={"typ": "dc+sd-jwt"})
    key = ISSUER.public_key()
    assert sdjwt.verify(issued, issuer_key=lambda _: key).claims == {"a": {"_sd_alg": 1}}


SHC_TEXT = next(s.decode() for s in SEEDS["credential"] if s.startswith(b"shc:/56"))


@BOUNDED
@given(data=st.data())
def test_a_card_in_chunks_assembles_in_any_order_and_only_when_whole(data: st.DataObject) -> None:
    body = SHC_TEXT[len("shc:/") :]
    n = data.draw(st.integers(1, 5), label="chunks")
    cuts = sorted(data.draw(st.lists(st.integers(1, len(body) // 2 - 1), min_size=n - 1,
                                     max_size=n - 1, unique=True)))  # fmt: skip
    bounds = [0, *(2 * c for c in cuts), len(body)]
    chunks = [
        f"shc:/{i + 1}/{n}/{body[a:b]}" for i, (a, b) in enumerate(itertools.pairwise(bounds))
    ]
    shuffled = data.draw(st.permutations(chunks), label="order")
    assert assemble(shuffled) == (numeric_to_jws(body), n if n > 1 else 1)
    if n > 1:
        dropped = data.draw(st.integers(0, n - 1), label="dropped")
        with pytest.raises(MalformedEncoding):
            assemble([c for i, c in enumerate(shuffled) if i != dropped])
