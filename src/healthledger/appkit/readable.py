"""Values as people read them: local date-times with their zone, calendar days,
temperatures in °C with one decimal, names first and codes second.

One module for every page: the console registers each function as a Jinja filter
(``when``, ``day``, ``celsius``, ``named``, ``someone``, ``counted``) for the platform's
templates and every application's, so a time, a temperature, a person or a count reads
the same everywhere.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

CONSORTIUM_ZONE = ZoneInfo("Asia/Shanghai")
"""The demo consortium's members are in Guangdong: their local time (UTC+08:00, no
daylight saving). A console serving elsewhere is given its own zone."""
EPOCH = dt.date(1970, 1, 1)
MISSING = "—"


def _moment(value: object) -> dt.datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
    if isinstance(value, str) and value:
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    return None


def when(value: object, zone: dt.tzinfo = CONSORTIUM_ZONE, *, seconds: bool = False) -> str:
    """A moment (Unix milliseconds, or an ISO 8601 date-time) as a local date and time
    with the zone's abbreviation and offset: ``2026-12-07 20:05 CST (UTC+08:00)``."""
    moment = _moment(value)
    if moment is None:
        return MISSING if value in (None, "") else str(value)
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    stamp = local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    name = local.tzname() or ""
    shown_offset = f"UTC{offset[:3]}:{offset[3:]}"
    if not name or name.startswith(("+", "-")) or name == "UTC":
        return f"{stamp} {'UTC' if offset == '+0000' else shown_offset}"
    return f"{stamp} {name} ({shown_offset})"


def local_day(value: object, zone: dt.tzinfo = CONSORTIUM_ZONE) -> dt.date | None:
    """The calendar day in ``zone`` of a moment (Unix milliseconds, or an ISO 8601
    date-time): the day a page counts it under, by the same rule ``when`` shows it."""
    moment = _moment(value)
    return None if moment is None else moment.astimezone(zone).date()


def zone_name(at: object, zone: dt.tzinfo = CONSORTIUM_ZONE) -> str:
    """The zone as ``when`` names it after the time at moment ``at``: ``CST (UTC+08:00)``."""
    return when(at, zone).split(" ", 2)[-1]


def day(value: object) -> str:
    """A calendar day (days since 1970-01-01, or an ISO date) as ``7 Dec 2026``."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        date = EPOCH + dt.timedelta(days=value)
    elif isinstance(value, str):
        try:
            date = dt.date.fromisoformat(value[:10])
        except ValueError:
            return value or MISSING
    else:
        return MISSING
    return f"{date.day} {date.strftime('%b %Y')}"


def iso_day(value: object) -> str:
    """A day number as an ISO date (``2026-12-07``): the value of a date field."""
    if isinstance(value, bool) or not isinstance(value, int):
        return ""
    return (EPOCH + dt.timedelta(days=value)).isoformat()


def celsius(tenths: object) -> str:
    """A temperature recorded in tenths of a degree as ``4.1 °C`` (one decimal)."""
    if isinstance(tenths, bool) or not isinstance(tenths, int):
        return MISSING
    sign = "\N{MINUS SIGN}" if tenths < 0 else ""
    whole, tenth = divmod(abs(tenths), 10)
    return f"{sign}{whole}.{tenth} °C"


def named(code: object, names: object = None) -> str:
    """A coded value with its name first and the code second: ``Influenza (J10)``.
    ``names`` is a mapping of codes to names, or the name itself; a code without a
    name is shown as it is."""
    text = "" if code is None else str(code)
    name = names.get(text) if isinstance(names, dict) else names
    if not name or str(name) == text:
        return text or MISSING
    return f"{name} ({text})" if text else str(name)


def someone(identity: str, *, role: str | None = None, org_name: str | None = None) -> str:
    """A signer as the console names people: the organisation's name and the role
    (``Guangdong Provincial CDC · epidemiologist``), the organisation alone where the
    role is not known, and the identity (``org/name``) only where neither is."""
    if not org_name:
        return identity or MISSING
    return f"{org_name} · {role}" if role else org_name


def counted(n: int, one: str, many: str | None = None, *, none: str = "") -> str:
    """A count with its noun in the singular or the plural, never ``(s)``: ``1 lot``,
    ``3 lots``. ``many`` is the plural where adding an "s" is wrong (``1 case is``,
    ``2 cases are``); ``none``, where given, is said instead of a count of 0."""
    if n == 0 and none:
        return none
    return f"{n} {one if n == 1 else (many if many is not None else one + 's')}"


_COUNTED_S = re.compile(r"\b(\d+) ([A-Za-z]+)\(s\)")


def plural_words(text: str) -> str:
    """``text`` with each ``N noun(s)`` of a message written for machines (a contract's
    alert, kept on chain as it was recorded) said as ``counted`` says it: ``1 unit``,
    ``3 units``."""
    return _COUNTED_S.sub(lambda m: counted(int(m[1]), m[2]), text)


def sscc(code: object, prefix: str | None = None) -> str:
    """An SSCC (the 18 digits of a logistic unit: a case, a pallet) labelled and grouped
    as people read it: extension digit, GS1 company prefix, serial reference, check digit
    (``SSCC 1 6951234 000000000 5``). Where the company prefix is not known its digits
    stay with the serial reference; anything that is not 18 digits is shown as it is."""
    text = "" if code is None else str(code)
    if len(text) != 18 or not text.isascii() or not text.isdigit():
        return text or MISSING
    body = text[1:17]
    if prefix and body.startswith(prefix) and len(prefix) < len(body):
        body = f"{prefix} {body[len(prefix) :]}"
    return f"SSCC {text[0]} {body} {text[17]}"


def says_org(place: str | None, org: str | None) -> bool:
    """True where a place's name already says its organisation's name (``Guangzhou
    First People's Hospital vaccination clinic`` of Guangzhou First People's Hospital,
    a pharmacy's one shop named as the pharmacy is; a qualifier in brackets after the
    organisation's name, ``Lingnan Biologics (vaccine maker)``, need not be said): a
    page then names the place alone, not the organisation beside it again. The one rule
    for every "held by" and "ship to"."""
    if not place or not org:
        return False
    name = re.sub(r"\s*\([^()]*\)$", "", org.strip()) or org
    return " ".join(name.split()).casefold() in " ".join(place.split()).casefold()


FILTERS = {
    "when": when,
    "day": day,
    "day_iso": iso_day,
    "celsius": celsius,
    "named": named,
    "someone": someone,
    "counted": counted,
}
"""What the console registers for every template (``when`` bound to its zone)."""
