"""Pseudonymous patient ids: the same person gets the same id at every hospital.

Scheme (version ``p1``)
-----------------------

``pid = "p1-" + hex(HMAC-SHA256(K, "healthledger/epidemic/p1\\n" + type + ":" + number))``

* ``type`` is the HL7 v2 identifier type (table 0203): ``NI`` national identity
  number (the resident identity card), ``PPN`` passport (``PPN:<country>:<number>``).
  Any other type (``MR`` a medical record number, ``PI``, ``SS``, ...) is taken by the
  namespace that issued it and its value: ``SYS:<system>|<value>``, where ``system``
  is the identifier's system URI or, for a medical record number without one, its
  assigner (``assigner:<assigner>``). Such an id links one person's reports made
  under the same namespace (the same hospital's record numbers), never across.
* a person known by no identifier (a SMART Health Card names no identifier) is
  taken by name and birth date: ``DEM:<NAME>|<birth date>`` (the name's letters,
  upper case, whitespace collapsed); the record says so (``flags``), since two
  people of one name and birth date would share an id.
* ``number`` is normalised (spaces and hyphens removed, upper case), so the same
  card typed by two hospitals gives the same id; a resident-id number must pass its
  ISO 7064 MOD 11-2 check digit, so a typo is refused instead of splitting a person
  in two.
* ``K`` is the consortium pseudonymisation key: 32 random bytes held in the private
  vault of the key-holding organisation (the provincial CDC), collection
  ``<holder>/pseudonymisation``, and read by that organisation's endorsing peer when
  it simulates ``report_case``. The chain holds only the vault's salted commitment
  to it. In the embedded demo the key is derived on the node from the holder's vault
  secret (:func:`demo_key`) and installed by one transaction.

Threat model
------------

* **Anyone with a copy of the chain** (every consortium member, an auditor, a leaked
  backup) sees pseudonymous ids, disease, dates and region. Without ``K`` an id
  cannot be reversed or confirmed: the identifier space (about 10^9 plausible
  resident-id numbers) is small enough to enumerate against a plain hash, which is
  why the id is keyed. What remains is linkage: a rare disease in a small district
  with exact dates can single a person out; aggregates for the public are therefore
  released only with small counts suppressed.
* **A reporting hospital** sends personal data only in the transient map to the
  endorsing peer; the proposal on chain carries the transient map's salted hash.
  The hospital never holds ``K`` and so cannot test guesses for other hospitals'
  patients.
* **The key-holding peer** sees personal data of each report while endorsing (it
  must, to compute the id) and holds ``K``: it is trusted not to keep either. A
  compromise of ``K`` makes every id on chain reversible by enumeration; rotating
  ``K`` (a new version ``p2`` under a new key) stops new links but cannot hide
  ids already published. Splitting ``K`` across peers (threshold OPRF) would
  remove this single point of trust; that is future work.
* **Personal data at rest** sits in the reporting hospital's vault, encrypted
  under a per-value data key; shredding that key erases it while the chain
  (holding only a salted commitment) stays intact.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from healthledger.errors import HealthledgerError

SCHEME = "p1"
DOMAIN = b"healthledger/epidemic/p1\n"
KEY_COLLECTION = "pseudonymisation"
"""Collection name (under the holder org) of the key in the holder's vault."""
KEY_NAME = "hmac-key"
ID_TYPES = ("NI", "PPN")
"""Identifier types linked across organisations; any other is linked by its system."""
DEMOGRAPHIC = "DEM"
"""The prefix of an identifier made of a name and a birth date."""
MAX_NAMESPACE = 200
_TYPE = re.compile(r"^[A-Z]{1,8}$")
_BIRTH_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_STRIP = re.compile(r"[\s-]+")
_RESIDENT_ID = re.compile(r"^[0-9]{17}[0-9X]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


class IdentifierError(ValueError, HealthledgerError):
    """A patient identifier cannot be pseudonymised (unknown type, bad number)."""


def resident_id_check(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of a resident-id number (GB 11643)."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def normalise_identifier(
    id_type: str, number: str, *, country: str = "CHN", system: str | None = None
) -> str:
    """The canonical ``type:number`` string the id is computed over (``system``: the
    namespace of an identifier of another type than NI or PPN)."""
    if id_type not in ID_TYPES:
        return _namespaced(id_type, number, system)
    text = _STRIP.sub("", number).upper()
    if id_type == "NI":
        if not _RESIDENT_ID.match(text):
            raise IdentifierError("a resident-id number has 17 digits and a check character")
        if resident_id_check(text[:17]) != text[17]:
            raise IdentifierError("the resident-id number's check character is wrong")
        return f"NI:{text}"
    if id_type == "PPN":
        if not 5 <= len(text) <= 20 or not text.isalnum() or not text.isascii():
            raise IdentifierError("a passport number has 5 to 20 letters and digits")
        if not re.fullmatch(r"[A-Z]{3}", country):
            raise IdentifierError("a passport needs its ISO 3166 alpha-3 issuing country")
        return f"PPN:{country}:{text}"
    raise AssertionError(id_type)  # pragma: no cover (ID_TYPES are handled above)


def _namespaced(id_type: str, number: str, system: str | None) -> str:
    if not _TYPE.match(id_type):
        raise IdentifierError("an identifier type is an HL7 v2 table 0203 code (MR, PI, ...)")
    namespace = (system or "").strip()
    if not namespace:
        raise IdentifierError(
            f"an identifier of type {id_type} needs its system (or, for MR, its assigner): "
            f"only {' and '.join(ID_TYPES)} numbers are known without one"
        )
    value = number.strip()
    if len(namespace) > MAX_NAMESPACE or not value or len(value) > 64:
        raise IdentifierError("an identifier's system has at most 200 characters, its value 64")
    if not (namespace + value).isprintable():
        raise IdentifierError("an identifier's system and value are printable text")
    return f"SYS:{namespace}|{value}"


def demographic_identifier(name: str, birth_date: str) -> str:
    """The identifier of a person known by name and birth date only."""
    letters = " ".join("".join(c for c in name if c.isalnum() or c.isspace()).split()).upper()
    if not letters:
        raise IdentifierError("a person without an identifier needs a name")
    if not _BIRTH_DATE.match(birth_date.strip()):
        raise IdentifierError("a person without an identifier needs a birth date (YYYY-MM-DD)")
    return f"{DEMOGRAPHIC}:{letters}|{birth_date.strip()}"


def pseudonym(key: bytes, identifier: str) -> str:
    """The pseudonymous id of a normalised identifier under ``key``."""
    if len(key) < 32:
        raise ValueError("the pseudonymisation key must be at least 32 bytes")
    digest = hmac.new(key, DOMAIN + identifier.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{SCHEME}-{digest}"


DEMO_KEY_PURPOSE = b"healthledger/epidemic/pseudonymisation-key/v1"
"""What the embedded demo's pseudonymisation key is derived for from the holder's vault
secret (so it lives only where the holder's vault key lives, never on chain)."""


def demo_key(holder_secret: bytes) -> bytes:
    """The embedded demo's pseudonymisation key from the holder's vault secret."""
    return hmac.new(holder_secret, DEMO_KEY_PURPOSE, "sha256").digest()
