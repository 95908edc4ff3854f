"""Reading credentials' QR codes from an image, offline. The image is untrusted: its size
in bytes and pixels is bounded before it is decoded."""

from __future__ import annotations

import io
import warnings

import zxingcpp
from PIL import Image, UnidentifiedImageError

from healthledger.errors import HealthledgerError

MAX_IMAGE_BYTES = 8 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")


class UnreadableImage(HealthledgerError):
    """The image is damaged, too large, or holds no readable QR code."""


def looks_like_image(data: bytes) -> bool:
    """Whether ``data`` starts like an image file (PNG, JPEG, GIF, BMP, WebP, TIFF)."""
    return data.startswith(IMAGE_MAGIC)


def qr_texts(data: bytes) -> list[str]:
    """The texts of every QR code in the image ``data``, in reading order (several for a
    card chunked over several codes)."""
    if len(data) > MAX_IMAGE_BYTES:
        raise UnreadableImage(f"the image is larger than {MAX_IMAGE_BYTES // 2**20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise UnreadableImage(f"the image has more than {MAX_IMAGE_PIXELS} pixels")
            image.load()
            grey = image.convert("L")
    except UnreadableImage:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise UnreadableImage(f"the image has more than {MAX_IMAGE_PIXELS} pixels") from None
    except UnidentifiedImageError:
        raise UnreadableImage("not a readable image (PNG, JPEG, ...)") from None
    except (OSError, ValueError, SyntaxError):
        raise UnreadableImage("the image is damaged or cannot be decoded") from None
    found = zxingcpp.read_barcodes(
        grey, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    texts = [b.text for b in found if b.valid and b.text]
    if not texts:
        raise UnreadableImage("no QR code could be read in the image")
    return texts
