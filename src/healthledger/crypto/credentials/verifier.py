"""One entry for every encoding: recognise the credential and verify it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from healthledger.crypto.base45 import ALPHABET
from healthledger.crypto.credentials import dcc, sdjwt_vc, shc
from healthledger.crypto.credentials.policy import Policy
from healthledger.crypto.credentials.status import StatusSource
from healthledger.crypto.credentials.trust import TrustStore
from healthledger.crypto.credentials.verdict import Reason, Verdict, refused

_BASE45 = re.compile(f"[{re.escape(ALPHABET)}]+")


def detect(texts: Sequence[str]) -> str:
    """``dcc``, ``shc``, ``sd-jwt-vc`` or ``unknown``, from the text's shape."""
    first = texts[0].strip() if texts else ""
    if len(texts) == 1 and (first[:4].upper() in ("HC1:", "HC2:", "HL0:") or _base45(first)):
        return dcc.FORMAT
    if first.startswith(shc.PREFIX) or first.startswith("{"):
        return shc.FORMAT
    if len(texts) == 1 and "~" in first:
        return sdjwt_vc.FORMAT
    if len(texts) == 1 and first.count(".") == 2:
        return shc.FORMAT
    return "unknown"


def _base45(text: str) -> bool:
    # An HC1: text that lost its prefix: refused as MALFORMED_PREFIX rather than unknown.
    return len(text) > 16 and _BASE45.fullmatch(text) is not None


def verify_credential(
    texts: Sequence[str],
    *,
    trust: TrustStore,
    status: StatusSource | None = None,
    at: int,
    policy: Policy | None = None,
) -> Verdict:
    """The verdict on the credential in ``texts`` (one text; several only for the chunks
    of a chunked SMART Health Card) at Unix time ``at``. Never raises for bad input:
    every defect is a reason in the verdict."""
    policy = policy or Policy()
    fmt = detect(texts)
    if fmt == dcc.FORMAT:
        return dcc.verify(texts[0], trust=trust, status=status, at=at, policy=policy)
    if fmt == shc.FORMAT:
        return shc.verify(texts, trust=trust, status=status, at=at, policy=policy)
    if fmt == sdjwt_vc.FORMAT:
        return sdjwt_vc.verify(texts[0].strip(), trust=trust, status=status, at=at, policy=policy)
    return refused(
        "unknown",
        Reason.UNKNOWN_FORMAT,
        "neither an EU DCC (HC1:), a SMART Health Card (shc:/, JWS) nor an SD-JWT VC",
        at=at,
    )
