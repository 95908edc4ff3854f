"""An SD-JWT VC's issuer signature is judged by its one trusted key (checked once), or
by whichever of several keys under its kid verifies it."""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.apps.credentials.bench import NOW, VACCINATION
from healthledger.apps.credentials.issuance import issue_all, new_signer
from healthledger.crypto.credentials.trust import SignerKey, TrustStore
from healthledger.crypto.credentials.verifier import verify_credential

ISSUER = "https://cdc.example.cn"


def test_one_trusted_key_or_the_right_one_of_several() -> None:
    signer = new_signer(issuer=ISSUER, country="CN", name="t",
                        now=dt.datetime.fromtimestamp(NOW - 60, dt.UTC), days=30)  # fmt: skip
    text = issue_all(VACCINATION, signer, now=NOW, valid_days=30, holder=None)["sd-jwt-vc"]
    genuine = TrustStore((SignerKey(signer.key.public_key(), signer.kid, ISSUER),))
    impostor_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    impostor = TrustStore((SignerKey(impostor_key, signer.kid, ISSUER),))
    assert verify_credential([text], trust=genuine, at=NOW + 10).valid
    refused = verify_credential([text], trust=impostor, at=NOW + 10)
    assert not refused.valid and "SIGNATURE" in refused.codes, refused.to_json()
    for both in (impostor + genuine, genuine + impostor):
        assert verify_credential([text], trust=both, at=NOW + 10).valid
    forged = text.split("~", 1)[0][:-4] + "AAAA~" + text.split("~", 1)[1]
    assert "SIGNATURE" in verify_credential([forged], trust=genuine, at=NOW + 10).codes
    unknown = TrustStore((SignerKey(signer.key.public_key(), "other-kid", ISSUER),))
    assert "UNKNOWN_ISSUER" in verify_credential([text], trust=unknown, at=NOW + 10).codes
