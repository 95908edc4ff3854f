"""The health-credential decoders under fuzzing: the generic codecs (Base45, COSE_Sign1,
compact JWS, SD-JWT) raise only :class:`MalformedEncoding`; the verifier of each encoding
turns every input into a verdict, and a refused one here raises :class:`Refused` with its
reason codes. Anything else a decoder raises is a crash."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from healthledger.crypto.base45 import b45decode, b45encode
from healthledger.crypto.cose import decode_sign1
from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.status import ShcRevocations, StatusSource
from healthledger.crypto.credentials.trust import TrustStore, certificate_from_b64
from healthledger.crypto.credentials.verifier import verify_credential
from healthledger.crypto.errors import MalformedEncoding
from healthledger.crypto.sdjwt import split

CREDENTIALS = Path(__file__).resolve().parents[4] / "shared" / "conformance" / "credentials"
AT = 1_690_000_000
"""The SMART Health Cards examples' check time (the DCC vectors are refused as expired
then, which fuzzing does not mind)."""


class Refused(Exception):
    """The verifier refused the credential (the codes are the message)."""


def trust_and_status() -> tuple[TrustStore, StatusSource]:
    """The public vectors' trust anchors: a DCC signer, the SHC example issuer (and its
    revocation list) and the SD-JWT draft's issuer key."""
    dcc = json.loads((CREDENTIALS / "dcc/vectors/common/2DCode/raw/CO3.json").read_text())
    trust = TrustStore.from_certificates([certificate_from_b64(dcc["TESTCTX"]["CERTIFICATE"])])
    shc = CREDENTIALS / "shc" / "spec-examples" / "issuer" / ".well-known"
    trust = trust + TrustStore.from_jwks(json.loads((shc / "jwks.json").read_text()))
    sd = json.loads((CREDENTIALS / "sdjwt/vectors/spec-5.1-issuance.json").read_text())
    trust = trust + TrustStore.from_jwks({"keys": [sd["issuer_jwk"]]})
    crls = [ShcRevocations.from_json(json.loads(p.read_text())) for p in shc.glob("crl/*.json")]
    return trust, StatusSource(fetched_at=AT, shc={c.kid: c for c in crls})


class CredentialDecoders:
    """Bytes in, as a scanner hands them over (UTF-8 text, undecodable bytes replaced)."""

    def __init__(self) -> None:
        self.trust, self.status = trust_and_status()

    def credential(self, data: bytes) -> object:
        """Any credential text (or the chunks of a card, one a line) to a verdict."""
        texts = data.decode("utf-8", "replace").split("\n")
        verdict = verify_credential(texts, trust=self.trust, status=self.status, at=AT,
                                    policy=Policy(audience=None))  # fmt: skip
        json.dumps(verdict.to_json())  # what --json prints must be printable
        if not verdict.valid:
            raise Refused(",".join(verdict.codes))
        return verdict


def base45(data: bytes) -> object:
    """Base45 text to bytes; what decodes re-encodes to the same text."""
    text = data.decode("utf-8", "replace")
    decoded = b45decode(text)
    assert b45encode(decoded) == text
    return decoded


def cose(data: bytes) -> object:
    """A COSE_Sign1 message: its headers and the structure its signature covers."""
    message = decode_sign1(data)
    return message.alg, message.kid, message.to_be_signed()


def sd_jwt(data: bytes) -> object:
    """An SD-JWT split into its JWT, Disclosures and Key Binding JWT."""
    parts = split(data.decode("utf-8", "replace"))
    return parts.issuer_jwt.header, [d.value for d in parts.disclosures], parts.kb_jwt


def seeds() -> dict[str, list[bytes]]:
    """Valid (and published invalid) inputs of each credential decoder."""
    found: dict[str, list[bytes]] = {"credential": [], "base45": [], "cose": [], "sd_jwt": []}
    for path in sorted((CREDENTIALS / "dcc" / "vectors").rglob("*.json")):
        vector = json.loads(path.read_text())
        if "PREFIX" in vector:
            found["credential"].append(vector["PREFIX"].encode())
        if "BASE45" in vector:
            found["base45"].append(vector["BASE45"].encode())
        if "COSE" in vector:
            found["cose"].append(bytes.fromhex(vector["COSE"]))
    for path in sorted((CREDENTIALS / "shc" / "spec-examples").glob("example-0*-[def]*")):
        found["credential"].append(path.read_bytes())
    for path in sorted((CREDENTIALS / "sdjwt" / "vectors").glob("*.json")):
        text = json.loads(path.read_text())["sd_jwt"].encode()
        found["credential"].append(text)
        found["sd_jwt"].append(text)
    found["base45"].append(base64.b16encode(b"healthledger"))
    return found


__all__ = ["CredentialDecoders", "MalformedEncoding", "Refused", "base45", "cose", "sd_jwt"]
