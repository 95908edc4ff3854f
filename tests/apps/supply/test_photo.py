"""Verification by photo: the app's own QR PNG decodes; bad uploads are clear answers."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from healthledger.api.app import create_api
from healthledger.apps.supply.digital_link import pack_link, qr_png
from healthledger.apps.supply.photo import MAX_PHOTO_BYTES, UnreadablePhoto, qr_text
from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from tests.apps.supply.conftest import GTIN, commission
from tests.support.members import member_reads

LINK = pack_link(gtin=GTIN, lot="L1", serial="P1", expiry="991231")


def photo_of(png: bytes, *, scale: int = 3, fmt: str = "JPEG") -> bytes:
    """The PNG pasted, enlarged and lossy, onto a grey background: a crude 'photo'."""
    code = Image.open(io.BytesIO(png)).convert("L")
    code = code.resize((code.width * scale, code.height * scale), Image.Resampling.NEAREST)
    canvas = Image.new("L", (code.width + 200, code.height + 150), 170)
    canvas.paste(code, (120, 60))
    out = io.BytesIO()
    canvas.save(out, format=fmt, quality=70)
    return out.getvalue()


def test_the_apps_png_decodes_to_its_digital_link() -> None:
    assert qr_text(qr_png(LINK)) == LINK.uri()
    assert qr_text(photo_of(qr_png(LINK))) == LINK.uri()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"not an image at all", "not a readable image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "not a readable image"),
        (b"x" * (MAX_PHOTO_BYTES + 1), "larger than"),
    ],
    ids=["empty", "text", "truncated-png", "too-large"],
)
def test_bad_uploads_say_why(data: bytes, reason: str) -> None:
    with pytest.raises(UnreadablePhoto, match=reason):
        qr_text(data)


def test_a_photo_without_a_code_says_so() -> None:
    blank = io.BytesIO()
    Image.new("RGB", (300, 200), (200, 30, 30)).save(blank, format="PNG")
    with pytest.raises(UnreadablePhoto, match="no QR code"):
        qr_text(blank.getvalue())


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, format="PNG")
    with pytest.raises(UnreadablePhoto, match="pixels"):
        qr_text(bomb.getvalue())


@pytest.fixture
def api(supply: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_api(supply, demo_custody=True)) as client:
        client.auth = member_reads(supply)
        yield client


def test_api_verifies_a_photo_and_answers_problems(api: TestClient, supply: EmbeddedNode) -> None:
    commission(supply, "P1", expiry="2099-12-31")
    png = api.get(
        "/api/v1/supply/qr.png",
        params={"gtin": GTIN, "lot": "L1", "serial": "P1", "expiry": "991231"},
    ).content
    answer = api.post("/api/v1/supply/verify/photo", files={"photo": ("qr.png", png, "image/png")})
    assert answer.status_code == 200 and answer.json()["status"] == "genuine"
    assert answer.json()["proof"] is not None
    bad = api.post("/api/v1/supply/verify/photo", files={"photo": ("x.png", b"junk", "image/png")})
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("application/problem+json")
    assert "not a readable image" in bad.text
    missing = api.post("/api/v1/supply/verify/photo", data={"other": "x"})
    assert missing.status_code == 422 and "photo" in missing.text
    foreign = api.get("/api/v1/supply/verify", params={"uri": "https://example.com/01/1"})
    assert foreign.status_code == 422
    assert foreign.headers["content-type"].startswith("application/problem+json")


@pytest.fixture
def console(supply: EmbeddedNode) -> Iterator[TestClient]:
    with TestClient(create_console(supply), follow_redirects=False) as client:
        client.auth = member_reads(supply)
        yield client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def test_page_verifies_a_photo_without_login(console: TestClient, supply: EmbeddedNode) -> None:
    commission(supply, "P1", expiry="2099-12-31")
    csrf = csrf_of(console.get("/supply/verify").text)
    photo = photo_of(qr_png(LINK))
    page = console.post(
        "/supply/verify", data={"csrf": csrf}, files={"photo": ("pack.jpg", photo, "image/jpeg")}
    )
    assert page.status_code == 200
    assert 'id="pack-status">genuine<' in page.text and "commission" in page.text


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"junk", "not a readable image"),
        (
            qr_png(pack_link(gtin=GTIN, lot="L1", serial="P1", expiry="991231")).replace(
                b"IDAT", b"IDAX"
            ),
            "",
        ),
    ],
    ids=["junk", "damaged-png"],
)
def test_page_answers_an_unreadable_photo(console: TestClient, data: bytes, reason: str) -> None:
    csrf = csrf_of(console.get("/supply/verify").text)
    page = console.post(
        "/supply/verify", data={"csrf": csrf}, files={"photo": ("p.png", data, "image/png")}
    )
    assert page.status_code == 422
    assert 'id="verdict-reason"' in page.text and reason in page.text
    assert "Traceback" not in page.text


def test_page_answers_a_foreign_qr_code(console: TestClient) -> None:
    import segno

    foreign = io.BytesIO()
    segno.make("https://example.com/not-a-pack", error="m").save(foreign, kind="png", scale=6)
    csrf = csrf_of(console.get("/supply/verify").text)
    page = console.post(
        "/supply/verify",
        data={"csrf": csrf},
        files={"photo": ("p.png", foreign.getvalue(), "image/png")},
    )
    assert page.status_code == 422 and "not a pack" in page.text


def test_page_refuses_a_post_without_csrf(console: TestClient) -> None:
    page = console.post("/supply/verify", files={"photo": ("p.png", b"junk", "image/png")})
    assert page.status_code == 403
