"""COSE_Sign1 (RFC 9052) over CBOR (RFC 8949): decode, sign and verify one signature.

Only the single-signer structure, with the algorithms health certificates use: ES256
(ECDSA P-256, signature as raw ``r || s``), ES384, PS256 (RSASSA-PSS, SHA-256). The
signature covers ``["Signature1", protected, external_aad, payload]``, so the protected
header is kept as the exact bytes received.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from healthledger.crypto.errors import MalformedEncoding, SignatureError

ALG = 1
"""Header label of the algorithm."""
KID = 4
"""Header label of the key id."""
COSE_SIGN1_TAG = 18
CWT_TAG = 61
ES256, ES384, PS256 = -7, -35, -37
_EC_ALGS: dict[int, tuple[hashes.HashAlgorithm, int]] = {
    ES256: (hashes.SHA256(), 32),
    ES384: (hashes.SHA384(), 48),
}
_CBOR_ERRORS = (
    cbor2.CBORDecodeError,
    ValueError,
    TypeError,
    LookupError,
    OverflowError,
    RecursionError,
    MemoryError,
)

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def cbor_loads(data: bytes, *, stage: str = "cbor") -> Any:
    """One CBOR item that is all of ``data``; refuses trailing bytes, duplicate map keys,
    nesting deeper than 64 and bad CBOR."""
    stream = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(stream, max_depth=64, allow_duplicate_keys=False)
        value = decoder.decode()
    except _CBOR_ERRORS as exc:
        raise MalformedEncoding(stage, f"not CBOR: {exc}") from None
    if stream.tell() != len(data):
        raise MalformedEncoding(stage, f"{len(data) - stream.tell()} bytes after the CBOR item")
    return value


def cbor_dumps(value: Any) -> bytes:
    """The CBOR encoding of ``value`` (canonical: shortest forms, sorted map keys)."""
    return cbor2.dumps(value, canonical=True)


@dataclass(frozen=True)
class CoseSign1:
    """A decoded COSE_Sign1 message."""

    protected: bytes
    """The protected header as the exact bytes that were signed."""
    protected_header: Mapping[Any, Any]
    unprotected_header: Mapping[Any, Any]
    payload: bytes
    signature: bytes

    @property
    def alg(self) -> Any:
        """The algorithm: the protected header's, else the unprotected header's (RFC 9052
        wants it protected, but issued DCCs exist with it unprotected: dgc-testdata CO20;
        a swapped algorithm still has to verify under the trusted key's type)."""
        return self.protected_header.get(ALG, self.unprotected_header.get(ALG))

    @property
    def kid(self) -> bytes | None:
        """The key id: the protected header's, else the unprotected header's."""
        kid = self.protected_header.get(KID, self.unprotected_header.get(KID))
        return kid if isinstance(kid, bytes) else None

    def to_be_signed(self, external_aad: bytes = b"") -> bytes:
        """The Sig_structure the signature covers."""
        return cbor2.dumps(["Signature1", self.protected, external_aad, self.payload])


def decode_sign1(data: bytes) -> CoseSign1:
    """The COSE_Sign1 message of ``data`` (tagged 18, optionally inside the CWT tag 61, or
    untagged); raises :class:`MalformedEncoding` (``cbor`` or ``cose``) otherwise."""
    item = cbor_loads(data)
    if isinstance(item, cbor2.CBORTag) and item.tag == CWT_TAG:
        item = item.value
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise MalformedEncoding("cose", f"CBOR tag {item.tag} is not COSE_Sign1 (18)")
        item = item.value
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise MalformedEncoding("cose", "a COSE_Sign1 message is an array of four items")
    protected, unprotected, payload, signature = item
    if not isinstance(protected, bytes):
        raise MalformedEncoding("cose", "the protected header is not a byte string")
    if not isinstance(unprotected, Mapping):
        raise MalformedEncoding("cose", "the unprotected header is not a map")
    if not isinstance(payload, bytes):
        raise MalformedEncoding("cose", "the payload is not a byte string")
    if not isinstance(signature, bytes):
        raise MalformedEncoding("cose", "the signature is not a byte string")
    header: Any = cbor_loads(protected, stage="cose") if protected else {}
    if not isinstance(header, Mapping):
        raise MalformedEncoding("cose", "the protected header is not a map")
    return CoseSign1(protected, header, unprotected, payload, signature)


def verify_sign1(message: CoseSign1, key: PublicKey, *, external_aad: bytes = b"") -> None:
    """Check ``message``'s signature with ``key``; raises :class:`SignatureError`."""
    alg = message.alg
    data = message.to_be_signed(external_aad)
    try:
        if alg in _EC_ALGS and isinstance(key, ec.EllipticCurvePublicKey):
            digest, size = _EC_ALGS[alg]
            if len(message.signature) != 2 * size or key.curve.key_size != size * 8:
                raise SignatureError("the ECDSA signature or key has the wrong size")
            r = int.from_bytes(message.signature[:size], "big")
            s = int.from_bytes(message.signature[size:], "big")
            key.verify(encode_dss_signature(r, s), data, ec.ECDSA(digest))
        elif alg == PS256 and isinstance(key, rsa.RSAPublicKey):
            key.verify(message.signature, data, _pss(), hashes.SHA256())
        else:
            raise SignatureError(f"algorithm {alg!r} does not fit a {type(key).__name__}")
    except InvalidSignature:
        raise SignatureError("the COSE signature does not verify") from None


def sign1(
    payload: bytes,
    key: PrivateKey,
    *,
    kid: bytes,
    tag_cwt: bool = False,
) -> bytes:
    """A tagged COSE_Sign1 message over ``payload``: ES256 for a P-256 key, PS256 for an
    RSA key, the key id in the protected header."""
    alg = ES256 if isinstance(key, ec.EllipticCurvePrivateKey) else PS256
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size != 256:
        raise SignatureError("a COSE ES256 key is a P-256 key")
    protected = cbor_dumps({ALG: alg, KID: kid})
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(tbs, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
    message: Any = cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature])
    if tag_cwt:
        message = cbor2.CBORTag(CWT_TAG, message)
    return cbor2.dumps(message)


def _pss() -> padding.PSS:
    # Issuers differ on the salt length (the digest's, or the largest); accept either.
    return padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO)
