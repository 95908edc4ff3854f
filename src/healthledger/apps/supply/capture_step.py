"""What the ``supply`` contract takes from one EPCIS event: its custody step and identifiers.

The capture service reduces each EPCIS event to a :class:`CaptureStep` off chain;
the contract checks and applies it.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import pydantic

from healthledger.apps.supply.digital_link import check_digit

Operation = Literal[
    "commission", "pack", "unpack", "ship", "receive", "observe", "dispense", "decommission",
    "destroy", "transform", "associate", "dissociate",
]  # fmt: skip
EVENT_HASH = re.compile(r"^ni:///sha-256;[0-9a-f]{64}\?ver=CBV2\.0$")
UNIT_ID = re.compile(r"^(01/\d{14}/21/[\x21-\x7e]{1,20}|00/\d{18})$")
"""A serialised unit (GTIN + serial) or a logistic unit (SSCC), as Digital Link path."""
ASSET_ID = re.compile(r"^(8004/\d{6,12}[\x21-\x7e]{0,24}|8003/\d{14}[\x21-\x7e]{0,16})$")
"""A sensor or other asset (GIAI or GRAI), as Digital Link path: what association links."""
GLN = re.compile(r"^\d{13}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
REGULATOR_ROLES = ("inspector",)
MAKER_ROLES = ("admin", "quality")
MAKER_KINDS = ("manufacturer",)
"""Kinds of organisation that make products (and so register GTINs)."""
PLACE_KINDS = (
    "manufacturer",
    "distributor",
    "pharmacy",
    "hospital",
    "cdc",
    "commission",
    "charity",
)
"""Kinds of organisation that hold places where goods are made, stored or handed out
(commissions keep emergency reserves, charities store donated supplies)."""
MAX_DEPTH = 4
"""Pallet > case > pack > unit: deeper aggregation is refused."""


class CaptureStep(pydantic.BaseModel):
    """One EPCIS event reduced to its custody effect (built off chain from the event)."""

    model_config = pydantic.ConfigDict(strict=True, extra="forbid", frozen=True)

    event_hash: str
    op: Operation
    units: list[str] = pydantic.Field(min_length=0, max_length=1000)
    """Unit ids (Digital Link paths ``01/<gtin>/21/<serial>`` or ``00/<sscc>``)."""
    parent: str | None = None
    """The aggregating unit (pack / unpack), or the unit or asset sensors are associated with."""
    outputs: list[str] = pydantic.Field(default_factory=list, max_length=1000)
    """A transformation's outputs (its ``units`` are the inputs it consumes)."""
    location: str | None = None
    """GLN where it happened (readPoint or bizLocation)."""
    destination: str | None = None
    """GLN a shipment is bound for."""
    lot: str | None = None
    expiry: str | None = None
    """``YYYY-MM-DD`` (commission)."""
    temperatures_dc: list[int] = pydantic.Field(default_factory=list, max_length=10_000)
    """Temperature readings of the event's sensors, tenths of a degree Celsius."""


def valid_gs1_key(digits: str, length: int) -> bool:
    """``digits`` is ``length`` digits whose last is the GS1 check digit."""
    return (
        len(digits) == length and digits.isdigit() and check_digit(digits[:-1]) == int(digits[-1])
    )


def day_of(timestamp_ms: int) -> date:
    """The UTC calendar day of a ledger timestamp (ms since the epoch)."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=timestamp_ms)).date()
