"""The checkpoint format: (log size, log root, height, block hash, state root) as a
C2SP signed note in the tlog-checkpoint format, which anyone holding a signer's public
key can check offline (node.checkpoint signs them every K blocks and compares peers').

Checkpoint body (https://c2sp.org/tlog-checkpoint)::

    <origin>                      healthledger/<genesis block hash>
    <tree size>                   size of the global log (decimal)
    <root hash>                   RFC 9162 root of the global log (standard base64)
    height <n>                    extension lines: the block the checkpoint is at,
    block <hex>                   its hash
    state <hex>                   and its state root

Signed note (https://c2sp.org/signed-note): the body, an empty line, then one line
per signature: an em dash, a space, the key name (the peer's identity id), a space, and
base64 of the 4-byte key id followed by the 64-byte Ed25519 signature of the body.
The key id is the first 4 bytes of SHA-256(name, "\\n", 0x01, public key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Annotated

import msgspec

from healthledger.crypto.errors import SignatureError
from healthledger.crypto.keys import SigningKey, verify_signature
from healthledger.errors import HealthledgerError
from healthledger.ledger.block import BlockHeader
from healthledger.ledger.wire import Count, Hash, Height, Record

ED25519_ALG = 0x01
"""Signature type byte of Ed25519 in C2SP signed-note key ids."""
DASH = "\u2014"
MAX_NOTE_BYTES = 8192


class CheckpointError(HealthledgerError):
    """A checkpoint or signed note is malformed, for another chain, or wrongly signed."""

    def __init__(self, message: str, *, reason: str = "malformed") -> None:
        """``reason``: malformed, other-chain, unknown-key, bad-signature or tampered
        (the label of the rejection in metrics)."""
        super().__init__(message)
        self.reason = reason


class Checkpoint(Record, frozen=True):
    """One peer's view of the ledger at a block; its wire form is the note :meth:`body`."""

    what = "checkpoint"

    origin: str
    """Names the chain: ``healthledger/<genesis block hash>``."""
    log_size: Count
    """Size of the global log after the block."""
    log_root: Annotated[bytes, msgspec.Meta(min_length=32, max_length=32)]
    """RFC 9162 root of the global log at ``log_size``."""
    height: Height
    """The block the checkpoint is at."""
    block_hash: Hash
    """Hex hash of the block at ``height``."""
    state_root: Hash
    """Hex state root after the block."""

    @classmethod
    def of(cls, header: BlockHeader, *, origin: str) -> Checkpoint:
        """The checkpoint at ``header``."""
        return cls(
            origin=origin,
            log_size=header.log_size,
            log_root=bytes.fromhex(header.log_root),
            height=header.height,
            block_hash=header.hash,
            state_root=header.state_root,
        )

    def body(self) -> bytes:
        """The checkpoint text that is signed (ends with a newline)."""
        lines = [
            self.origin,
            str(self.log_size),
            base64.b64encode(self.log_root).decode("ascii"),
            f"height {self.height}",
            f"block {self.block_hash}",
            f"state {self.state_root}",
        ]
        return ("\n".join(lines) + "\n").encode("utf-8")

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        """The checkpoint of a body; CheckpointError if it is not one."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError("checkpoint is not UTF-8") from exc
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint does not end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 6:
            raise CheckpointError(f"checkpoint has {len(lines)} lines, not 6")
        origin, size, root, *extensions = lines
        fields = {}
        for line in extensions:
            name, _, value = line.partition(" ")
            fields[name] = value
        try:
            checkpoint = cls(
                origin=origin,
                log_size=_decimal(size),
                log_root=base64.b64decode(root, validate=True),
                height=_decimal(fields["height"]),
                block_hash=_hex32(fields["block"]),
                state_root=_hex32(fields["state"]),
            )
        except (KeyError, ValueError, binascii.Error) as exc:
            raise CheckpointError(f"malformed checkpoint: {exc}") from exc
        if len(checkpoint.log_root) != 32 or not origin or " " in origin:
            raise CheckpointError("malformed checkpoint origin or root")
        if checkpoint.body() != body:
            raise CheckpointError("checkpoint is not in canonical form")
        return checkpoint


def _decimal(text: str) -> int:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise ValueError(f"{text!r} is not a decimal number")
    return int(text)


def _hex32(text: str) -> str:
    if len(text) != 64 or text != text.lower() or bytes.fromhex(text).hex() != text:
        raise ValueError(f"{text!r} is not 64 lowercase hex digits")
    return text


def origin_of(genesis: BlockHeader) -> str:
    """The checkpoint origin of the chain that starts with ``genesis``."""
    return f"healthledger/{genesis.hash}"


def key_id(name: str, public_key: bytes) -> bytes:
    """The C2SP signed-note key id of an Ed25519 key named ``name``."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ED25519_ALG]) + public_key
    ).digest()[:4]


def sign_note(checkpoint: Checkpoint, *, name: str, key: SigningKey) -> str:
    """The checkpoint as a signed note, signed by ``key`` under the key name ``name``."""
    if not name or " " in name or "+" in name:
        raise ValueError(f"{name!r} cannot be a key name")
    body = checkpoint.body()
    signature = key_id(name, key.public_bytes()) + key.sign(body)
    line = f"{DASH} {name} {base64.b64encode(signature).decode('ascii')}\n"
    return body.decode("utf-8") + "\n" + line


def open_note(note: str, *, name: str, public_key: bytes, origin: str) -> Checkpoint:
    """The checkpoint of a note signed by ``name`` with ``public_key`` for the chain
    ``origin``; CheckpointError if it is malformed, for another chain, or not signed so."""
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise CheckpointError("signed note is too large")
    body, sep, signatures = note.partition("\n\n")
    if not sep or not signatures.endswith("\n"):
        raise CheckpointError("not a signed note")
    checkpoint = Checkpoint.parse((body + "\n").encode("utf-8"))
    if checkpoint.origin != origin:
        raise CheckpointError(
            f"checkpoint for another chain ({checkpoint.origin})", reason="other-chain"
        )
    wanted = key_id(name, public_key)
    # Every line is read before any is trusted: a malformed line anywhere, even after
    # the signature that verifies, refuses the note (as C2SP's Go note.Open does).
    lines = []
    for line in signatures[:-1].split("\n"):
        dash, _, rest = line.partition(" ")
        signer, _, encoded = rest.partition(" ")
        if dash != DASH or not signer or not encoded:
            raise CheckpointError("malformed signature line")
        lines.append((signer, encoded))
    for signer, encoded in lines:
        if signer != name:
            continue
        try:
            raw = base64.b64decode(encoded, validate=True)
        except ValueError as exc:  # binascii.Error, or text that is not ASCII at all
            raise CheckpointError("malformed signature") from exc
        if len(raw) != 68 or raw[:4] != wanted:
            continue
        try:
            verify_signature(public_key, raw[4:], checkpoint.body())
        except SignatureError as exc:
            raise CheckpointError(
                f"bad signature by {name}: {exc}", reason="bad-signature"
            ) from exc
        return checkpoint
    raise CheckpointError(f"the note carries no signature by {name}", reason="unknown-key")


def note_signers(note: str) -> list[str]:
    """Key names on the signature lines of a note (unverified)."""
    _, _, signatures = note.partition("\n\n")
    names = []
    for line in signatures.splitlines():
        dash, _, rest = line.partition(" ")
        if dash == DASH and rest:
            names.append(rest.partition(" ")[0])
    return names
