"""GS1 company prefixes held by member organisations.

A GS1 company prefix (6 to 12 digits) is the part of every GTIN and GLN that names
the company that allocated it: whoever holds the prefix is the brand owner of its
products and the owner of its locations. The consortium records which member holds
which prefixes (at founding, at admission, and changed only by the members'
approval), and no two members' prefixes may overlap, so every GS1 key has at most
one holder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

from healthledger.contracts.errors import Rejected

PREFIX_RE = re.compile(r"[0-9]{6,12}")
MAX_PREFIXES = 32


def checked_prefixes(prefixes: Sequence[str]) -> list[str]:
    """``prefixes`` sorted, once each checked to be 6 to 12 digits and none the start
    of another; Rejected naming the first one wrong."""
    if len(prefixes) > MAX_PREFIXES:
        raise Rejected(f"at most {MAX_PREFIXES} GS1 company prefixes")
    for prefix in prefixes:
        if not isinstance(prefix, str) or not PREFIX_RE.fullmatch(prefix):
            raise Rejected(f"GS1 company prefix {prefix!r} is not 6 to 12 digits")
    ordered = sorted(set(prefixes))
    if len(ordered) != len(prefixes):
        raise Rejected("a GS1 company prefix is listed twice")
    for first, second in pairwise(ordered):
        if second.startswith(first):
            raise Rejected(f"GS1 company prefixes {first} and {second} overlap")
    return ordered


def overlapping(a: str, b: str) -> bool:
    """True if one prefix starts the other: some GS1 key would lie inside both."""
    return a.startswith(b) or b.startswith(a)


def first_clash(
    prefixes: Iterable[str], members: Iterable[Mapping[str, Any]], *, org: str
) -> str | None:
    """A sentence naming a prefix of ``prefixes`` that overlaps one held by a member
    other than ``org``, or None."""
    for member in members:
        if member.get("id") == org:
            continue
        for held in member.get("gs1_prefixes", ()):
            for prefix in prefixes:
                if overlapping(prefix, held):
                    return f"GS1 company prefix {prefix} overlaps {held}, held by {member['id']}"
    return None


def prefix_of(digits: str, prefixes: Iterable[str]) -> str | None:
    """The prefix among ``prefixes`` with which the GS1 key ``digits`` starts, or None."""
    return next((p for p in prefixes if digits.startswith(p)), None)


def company_digits(gtin14: str) -> str:
    """The digits of a GTIN-14 from the company prefix on (its indicator digit dropped)."""
    return gtin14[1:]
