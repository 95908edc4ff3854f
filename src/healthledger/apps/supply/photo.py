"""Reading a pack's QR code from an uploaded photo (decoded on the server, offline).

A photo is untrusted input from anyone: its size in bytes and in pixels is bounded
before it is decoded, and every way it can fail is one :class:`UnreadablePhoto`.
"""

from __future__ import annotations

import io
import warnings

import zxingcpp
from PIL import Image, UnidentifiedImageError

from healthledger.contracts.errors import InvalidArguments

MAX_PHOTO_BYTES = 8 * 1024 * 1024
"""Largest upload accepted (a phone photo fits)."""
MAX_PHOTO_PIXELS = 40_000_000
"""Largest image decoded: refuses decompression bombs before they are decoded."""


class UnreadablePhoto(InvalidArguments):
    """The upload is not an image, is too large, or holds no readable QR code."""

    def __init__(self, message: str) -> None:
        super().__init__(message, [{"field": "photo", "message": message}])


def qr_text(data: bytes) -> str:
    """The text of the QR code in the photo ``data``; UnreadablePhoto says why not."""
    if not data:
        raise UnreadablePhoto("the photo is empty")
    if len(data) > MAX_PHOTO_BYTES:
        raise UnreadablePhoto(f"the photo is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PHOTO_PIXELS:
                raise UnreadablePhoto(f"the photo has more than {MAX_PHOTO_PIXELS} pixels")
            image.load()
            grey = image.convert("L")
    except UnreadablePhoto:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise UnreadablePhoto(f"the photo has more than {MAX_PHOTO_PIXELS} pixels") from exc
    except UnidentifiedImageError as exc:
        raise UnreadablePhoto("the upload is not a readable image (PNG, JPEG, …)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise UnreadablePhoto("the image is damaged or cannot be decoded") from exc
    found = zxingcpp.read_barcodes(
        grey, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    texts = [b.text for b in found if b.valid and b.text]
    if not texts:
        raise UnreadablePhoto("no QR code could be read in the photo: try a sharper, closer shot")
    if len(set(texts)) > 1:
        raise UnreadablePhoto("the photo holds more than one QR code: photograph one pack")
    return texts[0]
