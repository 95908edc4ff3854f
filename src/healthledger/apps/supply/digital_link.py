"""GS1 identifier normalisation for the CBV 2.0 event hash (CBV 2.0 section 8.9.4).

Any URI carrying a GS1 key (EPC URI, EPC class URI, EPC id pattern URI or GS1
Digital Link URI) becomes one constrained canonical Digital Link URI: the
``https://id.gs1.org`` domain, the finest identification level and no query.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import parse_qs, quote, unquote, urlsplit

import segno

from healthledger.errors import HealthledgerError

_C = (
    r"(\%2[125-9A-Fa-f]|\%3[0-9A-Fa-f]|\%4[1-9A-Fa-f]|\%5[0-9AaFf]|\%6[1-9A-Fa-f]|\%7[0-9Aa]"
    r"|[!\')(*+,.0-9:;=A-Za-z_-])"
)
"""One character of an EPC URI component (a GS1 AI encodable character or its escape)."""
_CPI = r"(\%2[3dfDF]|\%3[0-9]|\%4[1-9A-Fa-f]|\%5[0-9Aa]|[0-9A-Z-])"
_DL = r"[\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]"
"""One character of a Digital Link path component."""


def _split(total: int, last: str = "") -> str:
    """Company prefix of 6..12 digits followed by the rest of a ``total``-digit key."""
    parts = [rf"(\d{{{n}}}\.\d{{{total - n}}})" for n in range(6, 12)]
    parts.append(rf"(\d{{12}}\.{last or chr(92) + 'd{' + str(total - 12) + '}'})")
    return "(" + "|".join(parts) + ")"


def _variable(alphabet: str, total: int) -> str:
    """Company prefix of 6..12 digits followed by 1..(total - prefix) characters."""
    return "(" + "|".join(rf"(\d{{{n}}}\.{alphabet}{{1,{total - n}}})" for n in range(6, 13)) + ")"


def check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit of ``digits`` (GS1 General Specifications 7.9.1)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def _pct(text: str) -> str:
    for char, escape in (("!", "%21"), ("(", "%28"), (")", "%29"), ("*", "%2A")):
        text = text.replace(char, escape)
    for char, escape in (("+", "%2B"), (",", "%2C"), (":", "%3A")):
        text = text.replace(char, escape)
    return text


def _gtin(prefix: str, item_ref: str) -> str:
    raw = item_ref[0:1] + prefix + item_ref[1:]
    return raw + str(check_digit(raw))


def _with_check(raw: str) -> str:
    return raw + str(check_digit(raw))


_Rule = tuple["re.Pattern[str]", Callable[[str, int], str]]


def _rule(pattern: str, build: Callable[[str, int], str]) -> _Rule:
    return re.compile(pattern), build


_ID = "https://id.gs1.org/"
_RULES: tuple[_Rule, ...] = (
    _rule(
        rf"^urn:epc:id:sgtin:{_split(13)}\.{_C}{{1,20}}$",
        lambda u, p: (
            _ID + "01/" + _gtin(u[17:p], u[p + 1 : p + 1 + 13 - (p - 17)]) + "/21/" + _pct(u[32:])
        ),
    ),
    _rule(
        rf"^urn:epc:id:sscc:{_split(17)}$",
        lambda u, p: _ID + "00/" + _with_check(u[p + 1 : p + 2] + u[16:p] + u[p + 2 :]),
    ),
    _rule(
        rf"^urn:epc:id:sgln:{_split(12, '')}\.{_C}{{1,20}}$".replace(r"\.\d{0})", r"\.)"),
        lambda u, p: (
            _ID
            + "414/"
            + _with_check(u[16:p] + u[p + 1 : p + 1 + 12 - (p - 16)])
            + ("" if u[30:] == "0" else "/254/" + _pct(u[30:]))
        ),
    ),
    _rule(
        rf"^urn:epc:id:grai:{_split(12, chr(92) + '.')}\.{_C}{{1,16}}$",
        lambda u, p: (
            _ID
            + "8003/"
            + _with_check("0" + u[16:p] + u[p + 1 : p + 1 + 12 - (p - 16)])
            + _pct(u[30:])
        ),
    ),
    _rule(
        rf"^urn:epc:id:giai:{_variable(_C, 30)}$",
        lambda u, p: _ID + "8004/" + u[16:p] + _pct(u[p + 1 :]),
    ),
    _rule(
        rf"^urn:epc:id:gsrn:{_split(17)}$",
        lambda u, p: _ID + "8018/" + _with_check(u[16:p] + u[p + 1 :]),
    ),
    _rule(
        rf"^urn:epc:id:gsrnp:{_split(17)}$",
        lambda u, p: _ID + "8017/" + _with_check(u[17:p] + u[p + 1 :]),
    ),
    _rule(
        rf"^urn:epc:id:gdti:{_split(12, chr(92) + '.')}{_C}{{1,20}}$",
        lambda u, p: (
            _ID + "253/" + _with_check(u[16:p] + u[p + 1 : p + 1 + 12 - (p - 16)]) + _pct(u[30:])
        ),
    ),
    _rule(
        rf"^urn:epc:id:cpi:{_variable(_CPI, 30)}\.[\d]{{1,12}}$",
        lambda u, p: (
            _ID
            + "8010/"
            + _pct(u[15:p] + u[p + 1 : u.rfind(".")])
            + "/8011/"
            + u[u.rfind(".") + 1 :]
        ),
    ),
    _rule(
        rf"^urn:epc:id:sgcn:{_split(12, '')}\.[\d]{{1,12}}$".replace(r"\.\d{0})", r"\.)"),
        lambda u, p: (
            _ID + "255/" + _with_check(u[16:p] + u[p + 1 : p + 1 + 12 - (p - 16)]) + u[30:]
        ),
    ),
    _rule(
        rf"^urn:epc:id:ginc:{_variable(_C, 30)}$",
        lambda u, p: _ID + "401/" + u[16:p] + _pct(u[p + 1 :]),
    ),
    _rule(
        rf"^urn:epc:id:gsin:{_split(16)}$",
        lambda u, p: _ID + "402/" + _with_check(u[16:p] + u[p + 1 :]),
    ),
    _rule(
        rf"^urn:epc:id:itip:{_split(13)}\.[\d]{{2}}\.[\d]{{2}}\.{_C}{{1,20}}$",
        lambda u, p: (
            _ID
            + "8006/"
            + _gtin(u[16:p], u[p + 1 : p + 1 + 13 - (p - 16)])
            + u[31:33]
            + u[34:36]
            + "/21/"
            + _pct(u[37:])
        ),
    ),
    _rule(
        rf"^urn:epc:id:upui:{_split(13)}\.{_C}{{1,28}}$",
        lambda u, p: (
            _ID + "01/" + _gtin(u[16:p], u[p + 1 : p + 1 + 13 - (p - 16)]) + "/235/" + _pct(u[31:])
        ),
    ),
    _rule(
        rf"^urn:epc:id:pgln:{_split(12, '')}$".replace(r"\.\d{0})", r"\.)"),
        lambda u, p: _ID + "417/" + _with_check(u[16:p] + u[p + 1 : p + 1 + 12 - (p - 16)]),
    ),
    _rule(
        rf"^urn:epc:class:lgtin:{_split(13)}\.{_C}{{1,20}}$",
        lambda u, p: (
            _ID + "01/" + _gtin(u[20:p], u[p + 1 : p + 1 + 13 - (p - 20)]) + "/10/" + _pct(u[35:])
        ),
    ),
    _rule(
        rf"^urn:epc:idpat:sgtin:{_split(13)}\.\*$",
        lambda u, p: _ID + "01/" + _gtin(u[20:p], u[p + 1 : p + 1 + 13 - (p - 20)]),
    ),
    _rule(
        rf"^urn:epc:idpat:grai:{_split(12, chr(92) + '.')}\.\*$",
        lambda u, p: _ID + "8003/" + _with_check("0" + u[19:p] + u[p + 1 : p + 1 + 12 - (p - 19)]),
    ),
    _rule(
        rf"^urn:epc:idpat:gdti:{_split(12, chr(92) + '.')}\.\*$",
        lambda u, p: _ID + "253/" + _with_check(u[19:p] + u[p + 1 : p + 1 + 12 - (p - 19)]),
    ),
    _rule(
        rf"^urn:epc:idpat:sgcn:{_split(12, chr(92) + '.')}\.\*$",
        lambda u, p: _ID + "255/" + _with_check(u[19:p] + u[p + 1 : p + 1 + 12 - (p - 19)]),
    ),
    _rule(
        rf"^urn:epc:idpat:cpi:{_variable(_CPI, 30)}\.\*$",
        lambda u, p: _ID + "8010/" + _pct(u[18:p] + u[p + 1 : u.rfind(".")]),
    ),
    _rule(
        rf"^urn:epc:idpat:itip:{_split(13)}\.[\d]{{2}}\.[\d]{{2}}\.\*$",
        lambda u, p: (
            _ID + "8006/" + _gtin(u[19:p], u[p + 1 : p + 1 + 13 - (p - 19)]) + u[34:36] + u[37:39]
        ),
    ),
    _rule(
        rf"^urn:epc:idpat:upui:{_split(13)}\.\*$",
        lambda u, p: _ID + "01/" + _gtin(u[19:p], u[p + 1 : p + 1 + 13 - (p - 19)]),
    ),
)

# The authority is an atomic group: letting it give characters back to the path, which
# can take them as well, made a failed match quadratic ("http://" and 16,000 dots: 19 s).
_DL_ANY = re.compile(
    r"^https?:(?>\/\/((([^\/?#]*)@)?([^\/?#:]*)(:([^\/?#]*))?))?((([^?#]*)(\/(01|gtin|8006|itip|8010|cpid|414|gln|417|party"
    r"|8017|gsrnp|8018|gsrn|255|gcn|00|sscc|253|gdti|401|ginc|402|gsin|8003|grai|8004|giai)\/)(\d{4}[^\/]+)"
    r"(\/[^/]+\/[^/]+)?[/]?(\?([^?\n]*))?(#([^\n]*))?)|(\/[A-Za-z_-]{10}$))"
)
_DL_CANONICAL_DOMAIN = re.compile(
    r"^https:\/\/id.gs1.org\/(01|8006|8010|414|417|8017|8018|255|00|253|401|402|8003|8004)\/(\d{4}[^\/]+)"
    r"(\/[^\/]+\/[^\/]+)?[\/]?(\?([^?\n]*))?(#([^\n]*))?|(\/[A-Za-z_-]{10}$)"
)
_SHORT_NAMES = (
    ("gtin", "01"), ("itip", "8006"), ("cpid", "8010"), ("gln", "414"), ("party", "417"),
    ("gsrnp", "8017"), ("gsrn", "8018"), ("gcn", "255"), ("sscc", "00"), ("gdti", "253"),
    ("ginc", "401"), ("gsin", "402"), ("grai", "8003"), ("giai", "8004"), ("cpv", "22"),
    ("lot", "10"), ("ser", "21"),
)  # fmt: skip
_PRIMARY_KEYS = (
    "00",
    "01",
    "253",
    "255",
    "401",
    "402",
    "414",
    "417",
    "8003",
    "8004",
    "8006",
    "8010",
    "8017",
    "8018",
)
_CPV_ONLY = (
    re.compile(rf"https:\/\/id.gs1.org\/8006\/\d{{18}}\/22\/({_DL}{{0,20}})$"),
    re.compile(rf"https:\/\/id.gs1.org\/01\/\d{{14}}\/22\/({_DL}{{0,20}})$"),
)
_DL_S = r"[\x2F\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]"
_CPV_THEN = (
    re.compile(rf"https:\/\/id.gs1.org\/8006\/\d{{18}}\/22\/({_DL_S}{{0,20}})$"),
    re.compile(rf"https:\/\/id.gs1.org\/01\/\d{{14}}\/22\/({_DL_S}{{0,20}})$"),
)
_LOT_AND_SERIAL = (
    re.compile(rf"https:\/\/id.gs1.org\/8006\/\d{{18}}\/10\/({_DL}{{0,20}})\/21\/({_DL}{{0,20}})$"),
    re.compile(rf"https:\/\/id.gs1.org\/01\/(\d{{14}})\/10\/({_DL}{{0,20}})\/21\/({_DL}{{0,20}})$"),
)
_VALID = tuple(
    re.compile("https:\\/\\/id.gs1.org\\/" + p)
    for p in (
        r"00\/(\d{18})$",
        rf"01\/(\d{{14}})\/21\/({_DL}{{0,20}})$",
        rf"01\/(\d{{14}})\/10\/({_DL}{{0,20}})$",
        r"01\/(\d{14})$",
        rf"01\/(\d{{14}})\/235\/({_DL}{{0,28}})$",
        rf"253\/(\d{{13}})({_DL}{{0,17}})$",
        r"255\/(\d{13})(\d{0,12})$",
        rf"401\/({_DL}{{0,30}})$",
        r"402\/(\d{17})$",
        r"414\/(\d{13})$",
        rf"414\/(\d{{13}})\/254\/({_DL}{{0,20}})$",
        r"417\/(\d{13})$",
        rf"8003\/(\d{{14}})({_DL}{{0,16}})$",
        rf"8004\/({_DL}{{0,30}})$",
        rf"8006\/(\d{{18}})\/21\/({_DL}{{0,20}})$",
        rf"8006\/(\d{{18}})\/10\/({_DL}{{0,20}})$",
        r"8006\/(\d{18})$",
        r"8010\/([\x23\x2D\x2F\x30-\x39\x41-\x5A]{0,30})\/8011/(\d{0,12})$",
        r"8010\/([\x23\x2D\x2F\x30-\x39\x41-\x5A]{0,30})$",
        r"8017\/(\d{18})$",
        r"8018\/(\d{18})$",
    )
)


@functools.lru_cache(maxsize=16_384)
def normalise(uri: str) -> str | None:
    """The constrained canonical Digital Link URI of ``uri``, or None if it carries no GS1 key.

    Memoised: capture normalises each EPC and location several times (event hash,
    custody step, read-model index), and a document repeats its locations."""
    partition = uri.find(".")
    if partition < 0:
        return None
    for pattern, build in _RULES:
        if pattern.match(uri):
            return build(uri, partition)
    if not _DL_ANY.match(uri):
        return None
    if "?" in uri:
        uri = uri[: uri.index("?")]
    for short, ai in _SHORT_NAMES:
        uri = uri.replace(f"/{short}/", f"/{ai}/")
    if not _DL_CANONICAL_DOMAIN.match(uri):
        for ai in _PRIMARY_KEYS:
            at = uri.find(f"/{ai}/")
            if at != -1:
                uri = "https://id.gs1.org" + uri[at:]
                break
    if not re.match(r"^https:\/\/id.gs1.org\/01\/\d{14}", uri):
        for digits, pad in ((13, "0"), (12, "00"), (8, "000000")):
            if re.match(rf"^https:\/\/id.gs1.org\/01\/\d{{{digits}}}", uri):
                uri = uri.replace("/01/", "/01/" + pad)
                break
    after_cpv = uri[uri.find("/22/") + 4 :]
    if any(p.match(uri) for p in _CPV_ONLY):
        uri = uri[: uri.find("/22/")] + after_cpv[after_cpv.find("/") : -1]
    if any(p.match(uri) for p in _CPV_THEN):
        uri = uri[: uri.find("/22/")] + after_cpv[after_cpv.find("/") :]
    if any(p.match(uri) for p in _LOT_AND_SERIAL):
        after_lot = uri[uri.find("/10/") + 4 :]
        uri = uri[: uri.find("/10/")] + after_lot[after_lot.find("/") :]
    if any(p.match(uri) for p in _VALID):
        return uri
    return None


# --- the Digital Link URI printed on a pack ------------------------------------------------

_PACK_PATH = re.compile(
    r"^/01/(?P<gtin>\d{14})/10/(?P<lot>[^/?#]{1,20})/21/(?P<serial>[^/?#]{1,20})/?$"
)
_AI_CHARS = re.compile(r"^[\x21\x22\x25-\x2F\x30-\x39\x3A-\x3F\x41-\x5A\x5F\x61-\x7A]{1,20}$")


class DigitalLinkError(ValueError, HealthledgerError):
    """Not a GS1 Digital Link URI of a serialised pack (malformed or foreign)."""


@dataclass(frozen=True)
class PackLink:
    """The identity printed on a pack: GTIN, lot, serial and expiry."""

    gtin: str
    lot: str
    serial: str
    expiry: str
    """``YYMMDD`` (GS1 AI 17)."""

    @property
    def unit(self) -> str:
        """The unit id of the ledger (``01/<gtin>/21/<serial>``)."""
        return f"01/{self.gtin}/21/{self.serial}"

    def uri(self) -> str:
        """``https://id.gs1.org/01/{gtin}/10/{lot}/21/{serial}?17={expiry}``."""
        lot, serial = quote(self.lot, safe=""), quote(self.serial, safe="")
        return f"{_ID}01/{self.gtin}/10/{lot}/21/{serial}?17={self.expiry}"

    def expiry_date(self) -> date:
        """The expiry as a date (day 00 is the month's last day; YY is 20YY: packs made
        this century)."""
        yy, mm, dd = int(self.expiry[:2]), int(self.expiry[2:4]), int(self.expiry[4:])
        year = 2000 + yy
        if dd == 0:
            following = date(year + mm // 12, mm % 12 + 1, 1)
            return following - timedelta(days=1)
        return date(year, mm, dd)


def pack_link(*, gtin: str, lot: str, serial: str, expiry: str) -> PackLink:
    """A validated PackLink; DigitalLinkError says what is wrong."""
    # ASCII digits only: str.isdigit and \d also take other scripts' digits (Arabic-Indic...).
    digits = gtin.isascii() and gtin.isdigit()
    if not (len(gtin) == 14 and digits and check_digit(gtin[:-1]) == int(gtin[-1])):
        raise DigitalLinkError(f"GTIN {gtin!r} is not 14 digits with a valid check digit")
    for name, value in (("lot", lot), ("serial", serial)):
        if not _AI_CHARS.match(value):
            raise DigitalLinkError(f"{name} {value!r} is not 1-20 GS1 AI characters")
    if not re.fullmatch(r"[0-9]{6}", expiry):
        raise DigitalLinkError(f"expiry {expiry!r} is not YYMMDD")
    link = PackLink(gtin, lot, serial, expiry)
    try:
        link.expiry_date()
    except ValueError as exc:
        raise DigitalLinkError(f"expiry {expiry!r} is not a date") from exc
    return link


def parse_pack_link(uri: str) -> PackLink:
    """Parse ``https://<resolver>/01/{gtin}/10/{lot}/21/{serial}?17={YYMMDD}``."""
    if len(uri) > 512:
        raise DigitalLinkError("URI too long")
    try:
        parts = urlsplit(uri.strip())
    except ValueError as exc:  # e.g. an unclosed "[" of an IPv6 host
        raise DigitalLinkError(f"not a URI: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DigitalLinkError("not an http(s) GS1 Digital Link URI")
    match = _PACK_PATH.match(parts.path)
    if match is None:
        raise DigitalLinkError("path is not /01/{gtin}/10/{lot}/21/{serial}")
    query = parse_qs(parts.query, keep_blank_values=True)
    expiry = query.get("17", [""])
    if len(expiry) != 1:
        raise DigitalLinkError("expiry (17) given more than once")
    gtin = match["gtin"]
    return pack_link(
        gtin=gtin, lot=unquote(match["lot"]), serial=unquote(match["serial"]), expiry=expiry[0]
    )


def qr_svg(link: PackLink) -> str:
    """The pack's QR code (error correction M) as SVG text."""
    return str(segno.make_qr(link.uri(), error="m").svg_inline(scale=4))


def qr_png(link: PackLink) -> bytes:
    """The pack's QR code (error correction M) as PNG bytes."""
    out = io.BytesIO()
    segno.make_qr(link.uri(), error="m").save(out, kind="png", scale=6, border=4)
    return out.getvalue()
