"""Credentials issued and their status: what the chain holds of each credential and how
a revocation reaches verifiers.

The chain holds a credential's commitment (SHA-256 of a random salt and the issued texts,
so it reveals nothing and proves the texts later), its issuer, kind, formats, document
signer, its index in the issuer's status list and the SHA-256 of its unique certificate
identifier. The holder's name and birth date arrive in transient ``credential`` and go
to the issuing organisation's vault (collection ``<org>/credentials``), never on chain.

Each issuer has one IETF Token Status List of ``LIST_SIZE`` entries, ``BITS`` bits each
(0 valid, 1 invalid, 2 suspended). The issuing service draws a credential's index at
random among the unused ones (a CSPRNG, not the order of issuance), so an index says
nothing about a person; the contract refuses an index already taken or out of range.

State keys::

    credential/<credential_id>       a credential's public record
    index/<org>/<idx>                an index taken (idx zero-padded to 6 digits)
    status/<org>/<idx>               a non-zero status entry (absent: valid)
    dcc-revoked/<uci_hash>           a revoked or suspended DCC, by hashed identifier
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Literal

from healthledger.apps.credentials.trustlist import active_signer
from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, InvalidArguments, Rejected
from healthledger.crypto.canonical import canonical_json

LIST_SIZE = 131_072
"""Entries of each issuer's status list (2^17: at least 131,072, as the issue asks)."""
BITS = 2
VALID, INVALID, SUSPENDED = 0, 1, 2
STATUS_VALUE = {"valid": VALID, "revoked": INVALID, "suspended": SUSPENDED}
FORMATS = ("dcc", "shc", "sd-jwt-vc")
CredentialKind = Literal["vaccination", "test", "recovery"]
SourceKind = Literal["vaccination", "lab", "case"]
StatusName = Literal["valid", "revoked", "suspended"]
HEX64 = re.compile(r"[0-9a-f]{64}")
RID = re.compile(r"[A-Za-z0-9_-]{16}")
MAX_TEXT = 8192
HOLDER_FIELDS = ("family_name", "given_name", "birth_date")
MAX_BATCH = 200
"""Credentials one ``issue_batch`` transaction records at most."""


def vault_collection(org: str) -> str:
    """The vault collection of ``org``'s issued credentials (holder and texts)."""
    return f"{org}/credentials"


def index_key(org: str, idx: int) -> str:
    """State key of a taken status-list index."""
    return f"index/{org}/{idx:06d}"


def status_key(org: str, idx: int) -> str:
    """State key of a non-zero status entry."""
    return f"status/{org}/{idx:06d}"


def commitment(salt: bytes, texts: dict[str, str]) -> str:
    """The hex SHA-256 of ``salt`` and the canonical JSON of the issued texts."""
    return hashlib.sha256(salt + canonical_json(texts)).hexdigest()


def _transient_credential(
    found: Any, formats: list[str], field: str = "transient.credential"
) -> tuple[dict[str, Any], bytes]:
    errors = []
    if not isinstance(found, dict):
        raise InvalidArguments(
            f"the credential comes in {field} (holder, salt, texts)",
            [{"field": field, "message": "missing"}],
        )
    holder, salt, texts = found.get("holder"), found.get("salt"), found.get("texts")
    if not isinstance(holder, dict) or not all(
        isinstance(holder.get(f), str) and holder[f] for f in HOLDER_FIELDS
    ):
        errors.append({"field": f"{field}.holder", "message": "names and birth date"})
    if not isinstance(salt, str) or not HEX64.fullmatch(salt):
        errors.append({"field": f"{field}.salt", "message": "64 hex digits"})
    if (
        not isinstance(texts, dict)
        or sorted(texts) != sorted(formats)
        or not all(isinstance(t, str) and 0 < len(t) <= MAX_TEXT for t in texts.values())
    ):
        errors.append({"field": f"{field}.texts", "message": "one text per format"})
    if errors:
        raise InvalidArguments("the transient credential is malformed", errors)
    assert isinstance(salt, str)
    return found, bytes.fromhex(salt)


def _problems(ctx: Context, args: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    """What is wrong with one credential's arguments, each field named ``prefix`` + name."""
    formats, status_index = args["formats"], args["status_index"]
    errors = []
    if not formats or len(set(formats)) != len(formats) or not set(formats) <= set(FORMATS):
        errors.append({"field": "formats", "message": f"some of {list(FORMATS)}, once each"})
    if not 0 <= status_index < LIST_SIZE:
        errors.append({"field": "status_index", "message": f"0 to {LIST_SIZE - 1}"})
    if not HEX64.fullmatch(args["uci_hash"]):
        errors.append({"field": "uci_hash", "message": "hex SHA-256 of the identifier"})
    if not RID.fullmatch(args["rid"]):
        errors.append({"field": "rid", "message": "16 base64url characters"})
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args["source_id"]):
        errors.append({"field": "source_id", "message": "the id of the recorded fact"})
    if args["expires_at"] * 1000 <= ctx.timestamp:
        errors.append({"field": "expires_at", "message": "is in the past"})
    return [{**e, "field": prefix + e["field"]} for e in errors]


def _record(
    ctx: Context, args: dict[str, Any], signer: dict[str, Any], found: dict[str, Any],
    salt: bytes, credential_id: str,
) -> dict[str, Any]:  # fmt: skip
    """Write one checked credential: its public record, its index, its vault entry."""
    org = ctx.caller.org
    record = {
        "credential_id": credential_id, "org": org, "kind": args["kind"],
        "formats": sorted(args["formats"]), "kid": args["kid"], "iss": signer["iss"],
        "status_index": args["status_index"], "commitment": commitment(salt, found["texts"]),
        "uci_hash": args["uci_hash"], "rid": args["rid"],
        "source": {"kind": args["source_kind"], "id": args["source_id"]},
        "expires_at": args["expires_at"], "issued_at": ctx.timestamp,
        "issued_by": ctx.caller.id, "status": "valid",
    }  # fmt: skip
    ctx.put(f"credential/{credential_id}", record)
    ctx.put(index_key(org, args["status_index"]), {"credential_id": credential_id})
    ctx.put_private(vault_collection(org), credential_id, found)
    ctx.emit("credential_issued", {k: record[k] for k in ("credential_id", "org", "kind")}
             | {"formats": record["formats"], "source": record["source"]})  # fmt: skip
    return record


def issue(ctx: Context, **args: Any) -> dict[str, Any]:
    """Record a credential the caller's organisation issued (see the module docstring)."""
    org = ctx.caller.org
    signer = active_signer(ctx, org, args["kid"])
    errors = _problems(ctx, args, "")
    if errors:
        raise InvalidArguments("the credential is malformed", errors)
    found, salt = _transient_credential(ctx.transient.get("credential"), args["formats"])
    if ctx.get(index_key(org, args["status_index"])) is not None:
        raise Rejected(f"status index {args['status_index']} of {org} is taken: draw another")
    return _record(ctx, args, signer, found, salt, f"c-{ctx.tx_id[:24]}")


def issue_batch(ctx: Context, credentials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Record up to ``MAX_BATCH`` credentials in one transaction, all or nothing: each
    checked as ``issue`` checks one (problems named ``credentials[i].field``), their
    holders and texts in transient ``credentials``, one per credential, in order; the
    i-th is ``c-<tx>-<i>``."""
    if not 1 <= len(credentials) <= MAX_BATCH:
        wrong = [{"field": "credentials", "message": f"1 to {MAX_BATCH}"}]
        raise InvalidArguments(f"between 1 and {MAX_BATCH} credentials per call", wrong)
    kept = ctx.transient.get("credentials")
    if not isinstance(kept, list) or len(kept) != len(credentials):
        raise InvalidArguments(
            "transient 'credentials' must hold one credential per entry",
            [{"field": "transient.credentials", "message": "one per credential"}],
        )
    org = ctx.caller.org
    kids = dict.fromkeys(c["kid"] for c in credentials)
    signers = {kid: active_signer(ctx, org, kid) for kid in kids}
    errors = [e for i, c in enumerate(credentials) for e in _problems(ctx, c, f"credentials[{i}].")]
    indices = [c["status_index"] for c in credentials]
    if len(set(indices)) != len(indices):
        errors.append({"field": "credentials", "message": "a status index is used twice"})
    if errors:
        raise InvalidArguments("a credential of the batch is malformed", errors)
    checked = [
        _transient_credential(kept[i], c["formats"], f"transient.credentials[{i}]")
        for i, c in enumerate(credentials)
    ]
    for idx in indices:
        if ctx.get(index_key(org, idx)) is not None:
            raise Rejected(f"status index {idx} of {org} is taken: draw another")
    return [
        _record(ctx, c, signers[c["kid"]], found, salt, f"c-{ctx.tx_id[:24]}-{i}")
        for i, (c, (found, salt)) in enumerate(zip(credentials, checked, strict=True))
    ]


def set_status(ctx: Context, *, credential_id: str, status: str, reason: str) -> dict[str, Any]:
    """Revoke, suspend or reinstate (from suspended) a credential of the caller's org."""
    record = ctx.get(f"credential/{credential_id}")
    if not isinstance(record, dict):
        raise Rejected(f"no credential {credential_id}")
    if record["org"] != ctx.caller.org:
        raise AccessDenied(f"credential {credential_id} was issued by {record['org']}")
    if record["status"] == "revoked":
        raise Rejected(f"credential {credential_id} is revoked for good")
    if record["status"] == status:
        raise Rejected(f"credential {credential_id} is {status} already")
    if not 1 <= len(reason.strip()) <= 200:
        raise InvalidArguments("reason", [{"field": "reason", "message": "1 to 200 characters"}])
    org, idx = record["org"], record["status_index"]
    if status == "valid":
        ctx.delete(status_key(org, idx))
        ctx.delete(f"dcc-revoked/{record['uci_hash']}")
    else:
        ctx.put(status_key(org, idx), {"value": STATUS_VALUE[status]})
        ctx.put(f"dcc-revoked/{record['uci_hash']}", {"rid": record["rid"], "kid": record["kid"]})
    record = {**record, "status": status, "status_changed_at": ctx.timestamp,
              "status_reason": reason.strip()}  # fmt: skip
    ctx.put(f"credential/{credential_id}", record)
    ctx.emit("credential_status", {"credential_id": credential_id, "org": org, "status": status})
    return record


def status_entries(ctx: Context, org: str) -> list[list[int]]:
    """``[index, value]`` of every non-zero entry of ``org``'s status list."""
    prefix = f"status/{org}/"
    return [
        [int(key.rsplit("/", 1)[1]), int(value["value"])]
        for key, value in ctx.range(prefix, prefix[:-1] + "0", limit=10_000)
    ]
