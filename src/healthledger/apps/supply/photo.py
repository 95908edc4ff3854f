"""Reading a pack's QR code from an uploaded photo (decoded on the server, offline, by
``appkit.qr_image``, which bounds the untrusted photo before decoding it); every way it
can fail is one :class:`UnreadablePhoto`, a refusal of the ``photo`` field."""

from __future__ import annotations

from healthledger.appkit.qr_image import MAX_IMAGE_BYTES, UnreadableImage, qr_texts
from healthledger.contracts.errors import InvalidArguments

MAX_PHOTO_BYTES = MAX_IMAGE_BYTES
"""Largest upload accepted (a phone photo fits)."""


class UnreadablePhoto(InvalidArguments):
    """The upload is not an image, is too large, or holds no readable QR code."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [{"field": "photo", "message": message}])


def qr_text(data: bytes) -> str:
    """The text of the one QR code in the photo ``data``; UnreadablePhoto says why not."""
    try:
        texts = qr_texts(data, noun="photo")
    except UnreadableImage as exc:
        raise UnreadablePhoto(str(exc)) from exc
    if len(set(texts)) > 1:
        raise UnreadablePhoto("the photo holds more than one QR code: photograph one pack")
    return texts[0]
