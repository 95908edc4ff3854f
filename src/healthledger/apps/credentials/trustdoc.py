"""The exported trust list as a signed document, and its check by whoever fetched it.

``healthledger-signed-trust-list`` (version 1)::

    {"type": "healthledger-signed-trust-list",
     "trust_list": {<a healthledger-trust-list, see crypto.credentials.trust>,
                    "height": ..., "issued_at": ...,
                    "signed_by": {"org", "kid", "jwk", "set_tx"},
                    "proofs": [<RFC 9162 inclusion proof of each transaction that put a
                                signer or the signing key on chain>]},
     "jws": "<compact JWS, ES256, over the canonical JSON of trust_list>"}

The JWS is signed with the health commission's trust-list key, whose public half the
commission recorded on chain (``set_trust_list_key``). A verifier checks the signature
with that key, that every inclusion proof recomputes one log root, and that each signer
and the key itself come with the proof of the transaction that put them on chain. To
know that log root is the consortium's, compare it with a checkpoint the verifier trusts
(``healthledger verify`` or ``GET /api/v1/ledger/checkpoints``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.errors import MalformedEncoding, SignatureError
from healthledger.crypto.jose import Jwk, decode_compact, sign_compact, verify_compact
from healthledger.crypto.keys import decode_b64
from healthledger.ledger.errors import ProofError
from healthledger.ledger.merkle import leaf_hash, verify_inclusion

SIGNED_TYPE = "healthledger-signed-trust-list"
JWS_TYPE = "healthledger-trust-list+jwt"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class TrustListRefused(MalformedEncoding):
    """A fetched trust list whose signature or inclusion proofs do not hold."""

    def __init__(self, message: str) -> None:
        super().__init__("trust", message)


def key_from_secret(secret: bytes) -> ec.EllipticCurvePrivateKey:
    """The P-256 key derived from a 32-byte secret (``AppNode.derived_secret``): it lives
    wherever that secret can be derived, and nowhere on disk or on chain."""
    value = int.from_bytes(hashlib.sha512(secret).digest(), "big") % (P256_ORDER - 1) + 1
    return ec.derive_private_key(value, ec.SECP256R1())


def public_jwk(key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The JWK of a P-256 public key (``kty``, ``crv``, ``x``, ``y``)."""
    members = Jwk.of(key).members
    return {k: members[k] for k in ("kty", "crv", "x", "y")}


def sign(payload: Mapping[str, Any], key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """The signed trust list of ``payload``."""
    kid = Jwk.of(key.public_key()).thumbprint()
    jws = sign_compact({"typ": JWS_TYPE, "kid": kid}, canonical_json(dict(payload)), key)
    return {"type": SIGNED_TYPE, "trust_list": dict(payload), "jws": jws}


def verify(document: object) -> dict[str, Any]:
    """The trust list of a signed document, after checking its signature and inclusion
    proofs (see the module docstring); TrustListRefused otherwise."""
    if not isinstance(document, Mapping) or document.get("type") != SIGNED_TYPE:
        raise TrustListRefused(f"not a {SIGNED_TYPE}")
    payload, jws_text = document.get("trust_list"), document.get("jws")
    if not isinstance(payload, dict) or not isinstance(jws_text, str):
        raise TrustListRefused("a signed trust list has trust_list and jws")
    signed_by = payload.get("signed_by")
    if not isinstance(signed_by, Mapping):
        raise TrustListRefused("the trust list names no signing key")
    try:
        jws = decode_compact(jws_text)
        key = Jwk.from_json(signed_by.get("jwk")).key
        verify_compact(jws, key)
    except (MalformedEncoding, SignatureError) as exc:
        raise TrustListRefused(f"the trust list's signature does not hold: {exc}") from None
    if jws.payload != canonical_json(payload):
        raise TrustListRefused("the signed payload is not the trust list given")
    proven = _proven_transactions(payload.get("proofs"))
    needed = [signed_by.get("set_tx")] + [s.get("added_tx") for s in payload.get("signers", [])]
    missing = [tx for tx in needed if tx not in proven]
    if missing:
        raise TrustListRefused(f"no inclusion proof for transaction(s) {missing}")
    return payload


def _proven_transactions(proofs: object) -> set[str]:
    if not isinstance(proofs, list):
        raise TrustListRefused("a trust list carries its inclusion proofs")
    roots = set()
    proven = set()
    for proof in proofs:
        try:
            leaf = leaf_hash(bytes.fromhex(str(proof["txHash"])))
            if leaf != decode_b64(proof["leafHash"]):
                raise TrustListRefused(f"proof of {proof['txId']}: leaf is not its hash")
            root = decode_b64(proof["root"])
            verify_inclusion(
                leaf_index=int(proof["leafIdx"]), tree_size=int(proof["treeSize"]),
                leaf_hash=leaf, proof=[decode_b64(p) for p in proof["proof"]], root=root,
            )  # fmt: skip
        except (
            KeyError,
            TypeError,
            ValueError,
            ProofError,
            MalformedEncoding,
            SignatureError,
        ) as exc:
            raise TrustListRefused(f"an inclusion proof does not hold: {exc}") from None
        roots.add((int(proof["treeSize"]), root))
        proven.add(str(proof["txId"]))
    if len(roots) > 1:
        raise TrustListRefused("the inclusion proofs are against different log roots")
    return proven
