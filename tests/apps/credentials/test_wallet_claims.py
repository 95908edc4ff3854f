"""The wallet's claim of an offered credential: its proof of possession of the holder key
(an ``openid4vci-proof+jwt`` over the claim token) and the one-time, expiring offers.
Each bad proof is refused naming the field, never accepted."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.apps.credentials.facts import HolderName
from healthledger.apps.credentials.wallet import PROOF_TYP, ClaimOffers, Offer, holder_key_of
from healthledger.contracts.errors import InvalidArguments, Rejected
from healthledger.crypto.jose import Jwk, b64url_encode, sign_compact

NOW = 1_780_000_000
KEY = ec.generate_private_key(ec.SECP256R1())
JWK = {k: v for k, v in Jwk.of(KEY.public_key()).members.items() if k != "kid"}
TOKEN = "c2VjcmV0LXRva2VuLTEyMw"


def _proof(*, typ: str = PROOF_TYP, jwk: object = JWK, nonce: str = TOKEN, iat: int = NOW,
           key: ec.EllipticCurvePrivateKey = KEY) -> str:  # fmt: skip
    return sign_compact({"typ": typ, "jwk": jwk}, json.dumps({"nonce": nonce, "iat": iat}).encode(),
                        key)  # fmt: skip


def test_a_fresh_proof_gives_the_holder_key() -> None:
    found = holder_key_of(_proof(), token=TOKEN, now=NOW + 5)
    assert found.thumbprint() == Jwk.of(KEY.public_key()).thumbprint()
    assert set(found.members) == {"kty", "crv", "x", "y"}


@pytest.mark.parametrize(
    "proof",
    [
        _proof(typ="JWT"),
        _proof(nonce="another-claim"),
        _proof(iat=NOW - 3_600),
        _proof(key=ec.generate_private_key(ec.SECP256R1())),  # not the JWK's key
        _proof(jwk={**JWK, "d": b64url_encode(b"\x01" * 32)}),  # a private key sent
        _proof(jwk={"kty": "oct", "k": "c2VjcmV0"}),
        "not.a.jwt",
        "",
    ],
    ids=["typ", "nonce", "stale", "signature", "private", "symmetric", "garbage", "empty"],
)
def test_a_bad_proof_is_refused(proof: str) -> None:
    with pytest.raises(InvalidArguments) as refused:
        holder_key_of(proof, token=TOKEN, now=NOW)
    assert refused.value.errors[0]["field"] == "proof"


def test_an_offer_is_claimed_once_and_expires() -> None:
    holder = HolderName(family_name="Wang", given_name="Fang", birth_date="1990-07-04")
    offers = ClaimOffers()
    offer = Offer("gz-first-hospital/nurse-lin", "vaccination", "v-1", holder, ("sd-jwt-vc",),
                  expires_at=NOW + 900)  # fmt: skip
    token = offers.make(offer, now=NOW)
    assert offers.take(token, now=NOW + 10) == offer
    with pytest.raises(Rejected, match="used already"):
        offers.take(token, now=NOW + 11)
    late = offers.make(offer, now=NOW)
    with pytest.raises(Rejected, match="expired"):
        offers.take(late, now=NOW + 901)
    other = offers.make(offer, now=NOW)
    offers.make(offer, now=NOW + 901)  # making one drops the expired ones
    with pytest.raises(Rejected, match="used already"):
        offers.take(other, now=NOW + 901)
