"""Reading QR codes from an image, offline: a pack photographed for the supply verify
page, a credential card scanned for the wallet or the command line.

The image is untrusted input from anyone: its size in bytes and in pixels is bounded
before it is decoded, and every way it can fail is one :class:`UnreadableImage` whose
message says why in words.
"""

from __future__ import annotations

import io
import warnings

import zxingcpp
from PIL import Image, UnidentifiedImageError

from healthledger.errors import HealthledgerError

MAX_IMAGE_BYTES = 8 * 1024 * 1024
"""Largest image accepted (a phone photo fits)."""
MAX_IMAGE_PIXELS = 40_000_000
"""Largest image decoded: refuses decompression bombs before they are decoded."""
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")


class UnreadableImage(HealthledgerError):
    """The image is empty, damaged, too large, or holds no readable QR code."""


def looks_like_image(data: bytes) -> bool:
    """Whether ``data`` starts like an image file (PNG, JPEG, GIF, BMP, WebP, TIFF)."""
    return data.startswith(IMAGE_MAGIC)


def qr_texts(data: bytes, *, noun: str = "image") -> list[str]:
    """The texts of every QR code in the image ``data``, in reading order (several for a
    card chunked over several codes). ``noun`` names the image in the messages of
    :class:`UnreadableImage` ("the photo is larger than 8 MB")."""
    if not data:
        raise UnreadableImage(f"the {noun} is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise UnreadableImage(f"the {noun} is larger than {MAX_IMAGE_BYTES // 2**20} MB")
    too_many_pixels = f"the {noun} has more than {MAX_IMAGE_PIXELS} pixels"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UnreadableImage(too_many_pixels)
            image.load()
            grey = image.convert("L")
    except UnreadableImage:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UnreadableImage(too_many_pixels) from None
    except UnidentifiedImageError:
        raise UnreadableImage(f"the {noun} is not a readable image (PNG, JPEG, …)") from None
    except (OSError, ValueError, SyntaxError):
        raise UnreadableImage(f"the {noun} is damaged or cannot be decoded") from None
    found = zxingcpp.read_barcodes(
        grey, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    texts = [b.text for b in found if b.valid and b.text]
    if not texts:
        raise UnreadableImage(
            f"no QR code could be read in the {noun}: try a sharper, closer picture"
        )
    return texts
