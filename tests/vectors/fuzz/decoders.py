"""The decoders under fuzzing, each as bytes in, a value or its own named error out.

``benchmarks/fuzz.py`` fuzzes each of these; ``test_fuzz_regressions.py`` feeds them the
inputs that once broke them (``tests/vectors/fuzz/<decoder>/``). A decoder reads its bytes
the way the platform receives them (a request body, a NATS message, a query string or an
upload) and then uses what it decoded as the platform does next (re-encodes it, hashes
it), so a value that decodes but cannot be used counts against it too.

Anything a decoder raises other than its ``refusals`` is a crash.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthledger.apps.epidemic.intake import (
    from_fhir_bundle,
    from_immunization_bundle,
    from_lab_bundle,
)
from healthledger.apps.supply.digital_link import DigitalLinkError, normalise, parse_pack_link
from healthledger.apps.supply.photo import UnreadablePhoto, qr_text
from healthledger.apps.supply.service import CaptureService
from healthledger.contracts.errors import InvalidArguments
from healthledger.crypto.canonical import canonical_json, parse_canonical
from healthledger.crypto.errors import CanonicalEncodingError
from healthledger.ledger.block import Block, tx_root_of
from healthledger.ledger.errors import InvalidBlock, InvalidTransaction
from healthledger.ledger.transaction import SignedProposal, Transaction
from healthledger.node.checkpoint import Checkpoint, CheckpointError, verify_peer_note
from healthledger.node.embedded import EmbeddedNode
from tests.support.seam import supply_seam
from tests.vectors.fuzz import credentials

HERE = Path(__file__).resolve().parent
"""``tests/vectors/fuzz``: one folder of assets per decoder."""


class NotAJsonObject(ValueError):
    """The body is not a JSON object: the API answers 422 before any decoder runs."""


@dataclass(frozen=True)
class Decoder:
    """One decoder: how it reads bytes and the errors it documents for bad input."""

    name: str
    decode: Callable[[bytes], object]
    refusals: tuple[type[Exception], ...]
    """What the decoder raises for bad input (the API maps each to problem details)."""
    max_len: int
    """The largest input the fuzzer makes for it."""


def json_object(data: bytes) -> dict[str, Any]:
    """A request body as the API reads it for a ``dict`` parameter (``json.loads``)."""
    try:
        value = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise NotAJsonObject(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise NotAJsonObject("not a JSON object")
    return value


def _canonical(data: bytes) -> object:
    value = parse_canonical(data)
    return canonical_json(value)


def _proposal(data: bytes) -> object:
    return SignedProposal.from_json(parse_canonical(data)).tx_id


def _transaction(data: bytes) -> object:
    return Transaction.from_json(parse_canonical(data)).tx_hash


def _block(data: bytes) -> object:
    block = Block.from_json(parse_canonical(data))
    return block.hash, block.canonical, tx_root_of(block.transactions)


def _checkpoint(data: bytes) -> object:
    return Checkpoint.parse(data).body()


def _digital_link(data: bytes) -> object:
    # A query parameter: Starlette percent-decodes it as UTF-8 with replacement.
    text = data.decode("utf-8", "replace")
    canonical = normalise(text)
    link = parse_pack_link(text)
    return canonical, link.uri(), link.unit, link.expiry_date()


def _fhir(data: bytes) -> object:
    # One route per kind of report; the fuzzer picks the reader by what the Bundle holds.
    bundle = json_object(data)
    kinds = set()
    entries = bundle.get("entry")
    for entry in entries if isinstance(entries, list) else []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            kinds.add(resource["resourceType"])
    if "Observation" in kinds:
        return from_lab_bundle(bundle)
    if "Immunization" in kinds:
        return from_immunization_bundle(bundle)
    return from_fhir_bundle(bundle)


class LedgerDecoders:
    """The decoders that need a ledger: checkpoint notes checked against its membership,
    EPCIS capture against its node (only ``prepare``: nothing is submitted)."""

    def __init__(self, node: EmbeddedNode) -> None:
        store = node.peer.store
        self.state = store
        self.org = node.keystore.peers()[0][0].split("/", 1)[0]
        """The organisation whose peer signs the node's checkpoints."""
        self.capture = CaptureService(supply_seam(node))

    def note(self, data: bytes) -> object:
        """A checkpoint note as the exchange receives it (undecodable bytes become ""),
        checked as if for the chain its first line names: one string comparison less, so
        inputs get past it and an asset is portable between ledgers."""
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        origin = text.partition("\n")[0]
        return verify_peer_note(text, org=self.org, state=self.state, origin=origin)

    def epcis_json(self, data: bytes) -> object:
        """An EPCIS 2.0 JSON-LD document to capture, as ``POST /supply/capture`` takes it."""
        return self.capture.prepare(json_object(data))

    def epcis_xml(self, data: bytes) -> object:
        """An EPCIS 2.0 XML document to capture, as ``POST /supply/capture/xml`` takes it."""
        return self.capture.prepare_xml(data)


def decoders(node: EmbeddedNode) -> dict[str, Decoder]:
    """Every decoder under fuzzing, by name (the asset folder's name)."""
    ledger = LedgerDecoders(node)
    json_errors = (CanonicalEncodingError,)
    found = (
        Decoder("canonical", _canonical, json_errors, 4096),
        Decoder("proposal", _proposal, (*json_errors, InvalidTransaction), 4096),
        Decoder("transaction", _transaction, (*json_errors, InvalidTransaction), 8192),
        Decoder("block", _block, (*json_errors, InvalidBlock), 16384),
        Decoder("checkpoint", _checkpoint, (CheckpointError,), 1024),
        Decoder("checkpoint_note", ledger.note, (CheckpointError,), 2048),
        Decoder("epcis_json", ledger.epcis_json, (NotAJsonObject, InvalidArguments), 16384),
        Decoder("epcis_xml", ledger.epcis_xml, (InvalidArguments,), 16384),
        Decoder("fhir", _fhir, (NotAJsonObject, InvalidArguments), 8192),
        Decoder("digital_link", _digital_link, (DigitalLinkError,), 1024),
        Decoder("qr", qr_text, (UnreadablePhoto,), 8192),
        Decoder(
            "credential", credentials.CredentialDecoders().credential, (credentials.Refused,), 8192
        ),
        Decoder("base45", credentials.base45, (credentials.MalformedEncoding,), 2048),
        Decoder("cose", credentials.cose, (credentials.MalformedEncoding,), 2048),
        Decoder("sd_jwt", credentials.sd_jwt, (credentials.MalformedEncoding,), 4096),
    )
    return {d.name: d for d in found}


def assets() -> list[tuple[str, Path]]:
    """Every checked-in input that once broke a decoder: (decoder name, file)."""
    return sorted(
        (folder.name, path)
        for folder in HERE.iterdir()
        if folder.is_dir() and not folder.name.startswith(("_", "."))
        for path in folder.iterdir()
        if path.is_file()
    )
