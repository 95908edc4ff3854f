"""Admitting a new organisation to a consortium run on this machine.

:func:`new_org` makes the new organisation's keys (its CA, first admin ``ORG/admin``
and first peer ``ORG/peer0``) in a new folder, by default ``DIR/peers/ORG``, and beside
them ``admission.json``: the public part of the proposal to admit it (no private key).

:func:`admit` has the member organisations' admins propose and approve it through
their own peers' APIs, each signing with the admin key in its own organisation's folder
(demo custody, as a network on one machine keeps every organisation's keys there; in a
real consortium each admin signs on its own machine). The approval that makes a
majority of the members admits the organisation with its first admin and peer; then a
join (:mod:`.join`) brings its peer in from a snapshot.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from healthledger.contracts.errors import Rejected
from healthledger.contracts.system.admission import ORGANISATION_KINDS
from healthledger.contracts.system.prefixes import checked_prefixes
from healthledger.ledger.transaction import NAME_RE
from healthledger.network.client import NetworkClient
from healthledger.network.errors import FAILED, UNUSABLE, NetworkError, ProblemAnswer
from healthledger.network.layout import REQUEST_FILE, Network
from healthledger.node.consortium import new_organisation
from healthledger.node.embedded import KEYSTORE_FILE
from healthledger.node.keystore import Keystore
from healthledger.ordering.solo import wall_clock_ms

WAIT_S = 60.0
"""How long a member's peer may take to commit a block another peer committed."""
REQUEST_FIELDS = (
    "org",
    "name",
    "kind",
    "roles",
    "attributes",
    "gs1_prefixes",
    "ca_cert",
    "admin_cert",
    "peer_cert",
)

Say = Callable[[str], None]


def new_org(
    data: Path,
    *,
    org: str,
    name: str,
    kind: str,
    roles: Sequence[str] = (),
    attributes: Sequence[str] = (),
    gs1_prefixes: Sequence[str] = (),
    out: Path | None = None,
) -> Path:
    """Make ``org``'s keys and admission request for the network in ``data``
    (``attributes`` as ``KEY=VALUE``); the folder that holds them."""
    network = Network.load(data)
    if not NAME_RE.match(org):
        raise NetworkError(
            f"bad organisation id {org!r}: lower-case letters, digits, - and _", UNUSABLE
        )
    if org in network.orgs:
        raise NetworkError(f"{org} is already an organisation of this network", UNUSABLE)
    if kind not in ORGANISATION_KINDS:
        raise NetworkError(f"kind {kind!r} is not one of {', '.join(ORGANISATION_KINDS)}", UNUSABLE)
    if not name.strip():
        raise NetworkError("--name must not be empty", UNUSABLE)
    for role in roles:
        if not NAME_RE.match(role) or role == "ca":
            raise NetworkError(f"bad role {role!r}", UNUSABLE)
    try:
        prefixes = checked_prefixes(list(gs1_prefixes))
    except Rejected as exc:
        raise NetworkError(f"--gs1-prefix: {exc}", UNUSABLE) from exc
    pairs = {}
    for item in attributes:
        key, sep, value = item.partition("=")
        if not sep or not NAME_RE.match(key):
            raise NetworkError(f"--attribute {item!r} is not KEY=VALUE", UNUSABLE)
        pairs[key] = value
    folder = out if out is not None else data / "peers" / org
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise NetworkError(f"{folder} exists and is not an empty folder", UNUSABLE)
    spec, keystore = new_organisation(
        org=org, name=name.strip(), kind=kind, now_ms=wall_clock_ms(), attributes=pairs
    )
    request = {
        "org": org,
        "name": spec.name,
        "kind": kind,
        "roles": sorted(set(roles)),
        "attributes": pairs,
        "gs1_prefixes": prefixes,
        "ca_cert": spec.ca_cert,
        "admin_cert": _cert(keystore, f"{org}/admin"),
        "peer_cert": _cert(keystore, f"{org}/peer0"),
    }
    folder.mkdir(parents=True, exist_ok=True)
    keystore.save(folder / KEYSTORE_FILE)
    (folder / REQUEST_FILE).write_text(json.dumps(request, indent=1))
    return folder


def _cert(keystore: Keystore, identity: str) -> str:
    entry = keystore.get(identity)
    if entry is None:
        raise NetworkError(f"no key of {identity} was made")
    return entry.cert.pem


class AdminCalls:
    """Calls to one member's peer, signed by that organisation's admin key."""

    def __init__(self, client: NetworkClient, url: str, keystore: Keystore, org: str) -> None:
        admin = keystore.get(f"{org}/admin")
        if admin is None:
            raise NetworkError(f"the keystore of {org} holds no {org}/admin key", UNUSABLE)
        self.client, self.url, self.keystore, self.admin = client, url, keystore, admin.id

    def invoke(self, function: str, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Run a membership transaction; its committed result and block height."""
        signed = self.keystore.propose(
            self.admin, "membership", function, args, timestamp=wall_clock_ms()
        )
        try:
            committed = self.client.invoke(self.url, signed)
        except ProblemAnswer as exc:
            raise NetworkError(f"{self.admin}: {function} refused: {exc.detail}") from exc
        except NetworkError as exc:
            raise NetworkError(f"cannot reach the peer at {self.url}: {exc}") from exc
        if not committed.valid:
            raise NetworkError(
                f"{self.admin}: {function} did not commit ({committed.code}); run admit again"
            )
        result: dict[str, Any] = committed.result
        return result, committed.height

    def wait_for(self, block: int, timeout_s: float = WAIT_S) -> None:
        """Wait until this peer has committed block ``block`` (another peer's commit),
        so what it endorses next reads it."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.client.status(self.url).height > block:
                    return
            except NetworkError:
                pass
            if time.monotonic() > deadline:
                raise NetworkError(f"the peer at {self.url} has not reached block {block}")
            time.sleep(0.2)

    def admission(self, org: str) -> dict[str, Any] | None:
        """The latest proposal to admit ``org``, or None if there is none."""
        signed = self.keystore.propose(
            self.admin, "membership", "admissions", {"status": ""}, timestamp=wall_clock_ms()
        )
        try:
            found = self.client.query(self.url, signed)
        except ProblemAnswer as exc:
            raise NetworkError(f"{self.admin}: cannot read admissions: {exc.detail}") from exc
        except NetworkError as exc:
            raise NetworkError(f"cannot reach the peer at {self.url}: {exc}") from exc
        records = [r for r in found if isinstance(r, dict) and r.get("org") == org]
        return records[0] if records else None


@dataclass(frozen=True)
class Admission:
    """Where a proposal to admit an organisation stands after :func:`admit`."""

    record: dict[str, Any]
    """The proposal's record (``status``, ``approved_by``, ``needed``, ...)."""
    source: str
    """The member peer that took the last step: the one to join from."""
    request_file: Path
    servers: list[str]
    """The network's NATS URLs."""


def admit(
    data: Path, org: str, *, request_file: Path | None = None, by: Sequence[str] = (), say: Say
) -> Admission:
    """Propose (if need be) and approve admitting ``org`` to the network in ``data`` by
    the admins of ``by`` in order (default: every member, until a majority approved)."""
    network = Network.load(data)
    request_file = request_file or data / "peers" / org / REQUEST_FILE
    request = _request(request_file, org)
    urls = network.urls
    orgs = list(by) or list(network.orgs)
    unknown = [o for o in orgs if o not in urls]
    if unknown:
        raise NetworkError(
            f"--by names organisations not in this network: {', '.join(unknown)}", UNUSABLE
        )
    if len(set(orgs)) != len(orgs):
        raise NetworkError("--by names an organisation twice", UNUSABLE)
    with NetworkClient(timeout=60.0) as client:
        calls = [
            AdminCalls(client, urls[o], Keystore.load(data / "peers" / o / KEYSTORE_FILE), o)
            for o in orgs
        ]
        record = calls[0].admission(org)
        if record is not None and record["status"] == "admitted":
            raise NetworkError(f"{org} is already admitted", FAILED)
        last, block = calls[0], -1
        if record is None or record["status"] != "pending":
            record, block = last.invoke("propose_organisation", request)
            say(f"{last.admin} proposed admitting {org}")
        elif any(record[f] != request[f] for f in REQUEST_FIELDS):
            raise NetworkError(
                f"a different proposal to admit {org} is pending (proposed by "
                f"{record['proposed_by']}); withdraw it first"
            )
        for call in calls:
            if record["status"] != "pending":
                break
            if call.admin.split("/", 1)[0] in record["approved_by"]:
                continue
            call.wait_for(block)
            last = call
            record, block = call.invoke(
                "approve_organisation", {"org": org, "digest": record["digest"]}
            )
            say(f"{call.admin} approved admitting {org} (block {block})")
        current = last.admission(org)
    return Admission(current or record, last.url, request_file, network.servers)


def _request(path: Path, org: str) -> dict[str, Any]:
    """The admission request in ``path``, checked for shape (the contract checks the rest)."""
    if not path.is_file():
        raise NetworkError(
            f"{path} does not exist: make the organisation's keys with "
            "'healthledger network new-org' first",
            UNUSABLE,
        )
    try:
        request = json.loads(path.read_text())
    except ValueError as exc:
        raise NetworkError(f"{path} is not JSON: {exc}", UNUSABLE) from exc
    if not isinstance(request, dict) or set(request) != set(REQUEST_FIELDS):
        raise NetworkError(
            f"{path} must hold exactly the fields {', '.join(REQUEST_FIELDS)}", UNUSABLE
        )
    if request["org"] != org:
        raise NetworkError(f"{path} asks to admit {request['org']}, not {org}", UNUSABLE)
    return request
