"""Each credential in one QR code at error correction M, in the mode its text needs."""

from __future__ import annotations

import segno
from segno import consts

from healthledger.crypto.credentials.shc import PREFIX as SHC_PREFIX

ERROR = "m"


def qr_code(text: str) -> segno.QRCode:
    """The QR code of a credential's text: ``HC1:`` in alphanumeric mode, ``shc:/`` as a
    byte segment followed by a numeric one (as the SMART Health Cards spec asks), anything
    else (an SD-JWT) in byte mode. Raises ValueError when it does not fit one QR code."""
    content: str | list[tuple[str, int]] = text
    if text.startswith(SHC_PREFIX) and text[len(SHC_PREFIX) :].isdigit():
        content = [(SHC_PREFIX, consts.MODE_BYTE), (text[len(SHC_PREFIX) :], consts.MODE_NUMERIC)]
    try:
        # segno takes a list of (text, mode) segments; its type hints do not say so.
        return segno.make(content, error=ERROR, boost_error=False, micro=False)  # type: ignore[arg-type]
    except segno.DataOverflowError as exc:
        raise ValueError(f"the credential does not fit one QR code: {exc}") from None


def qr_version(text: str) -> int:
    """The QR version (1-40) the credential's text needs at error correction M."""
    version = qr_code(text).version
    assert isinstance(version, int)
    return version
