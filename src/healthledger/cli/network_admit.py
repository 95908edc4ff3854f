"""``healthledger network new-org`` and ``healthledger network admit``: admitting a new
organisation to a consortium run by ``healthledger network up`` on this machine.

``new-org`` makes the new organisation's keys (its CA, first admin ``ORG/admin`` and
first peer ``ORG/peer0``) in a new folder, by default ``DIR/peers/ORG``, and beside
them ``admission.json``: the public part of the proposal to admit it (no private key).

``admit`` has the member organisations' admins propose and approve it through their
own peers' APIs, each signing with the admin key in its own organisation's folder
(demo custody, as ``network up`` keeps every organisation's keys on this machine;
in a real consortium each admin signs on its own machine). The approval that makes a
majority of the members admits the organisation with its first admin and peer; then
``healthledger network join --org ORG --data DIR/peers/ORG ...`` brings its peer in
from a snapshot, records it in the network and starts it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console

from healthledger.cli.network import Network, NetworkError
from healthledger.cli.network_join import EXIT_FAILED, EXIT_UNUSABLE, JoinError, _detail, _fail
from healthledger.contracts.errors import Rejected
from healthledger.contracts.system.admission import ORGANISATION_KINDS
from healthledger.contracts.system.prefixes import checked_prefixes
from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.errors import CryptoError
from healthledger.ledger.transaction import NAME_RE
from healthledger.node.consortium import new_organisation
from healthledger.node.embedded import KEYSTORE_FILE
from healthledger.node.keystore import Keystore
from healthledger.ordering.solo import wall_clock_ms

REQUEST_FILE = "admission.json"
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


def new_org(
    data: Path = typer.Option(..., "--data", help="Folder of the network."),
    org: str = typer.Option(..., "--org", help="Id of the new organisation, e.g. zhuhai-clinic."),
    name: str = typer.Option(..., "--name", help="Its full name."),
    kind: str = typer.Option(..., "--kind", help=f"One of {', '.join(ORGANISATION_KINDS)}."),
    roles: list[str] = typer.Option(
        [], "--role", help="A role its identities may hold, besides admin and peer (repeat)."
    ),
    attributes: list[str] = typer.Option(
        [], "--attribute", help="An attribute KEY=VALUE of the organisation (repeat)."
    ),
    gs1_prefixes: list[str] = typer.Option(
        [],
        "--gs1-prefix",
        help="A GS1 company prefix it holds, for a maker's products or its places (repeat).",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for its keys (new or empty; default DIR/peers/ORG)."
    ),
) -> None:
    """Make a new organisation's keys and its admission request."""
    console = Console(highlight=False, soft_wrap=True)
    try:
        folder = _new_org(data, org, name, kind, roles, attributes, gs1_prefixes, out)
    except (JoinError, NetworkError) as exc:
        _fail(str(exc), exc.code)
    except (OSError, ValueError, KeyError, TypeError, CryptoError) as exc:
        _fail(str(exc), EXIT_UNUSABLE)
    console.print(
        f"keys of {org} (CA, {org}/admin, {org}/peer0) in {folder / KEYSTORE_FILE}; "
        f"have it admitted with 'healthledger network admit --data {data} --org {org}'"
    )


def _new_org(
    data: Path,
    org: str,
    name: str,
    kind: str,
    roles: list[str],
    attributes: list[str],
    gs1_prefixes: list[str],
    out: Path | None,
) -> Path:
    network = Network.load(data)
    if not NAME_RE.match(org):
        raise JoinError(
            f"bad organisation id {org!r}: lower-case letters, digits, - and _", EXIT_UNUSABLE
        )
    if org in network.orgs:
        raise JoinError(f"{org} is already an organisation of this network", EXIT_UNUSABLE)
    if kind not in ORGANISATION_KINDS:
        raise JoinError(
            f"kind {kind!r} is not one of {', '.join(ORGANISATION_KINDS)}", EXIT_UNUSABLE
        )
    if not name.strip():
        raise JoinError("--name must not be empty", EXIT_UNUSABLE)
    for role in roles:
        if not NAME_RE.match(role) or role == "ca":
            raise JoinError(f"bad role {role!r}", EXIT_UNUSABLE)
    try:
        prefixes = checked_prefixes(gs1_prefixes)
    except Rejected as exc:
        raise JoinError(f"--gs1-prefix: {exc}", EXIT_UNUSABLE) from exc
    pairs = {}
    for item in attributes:
        key, sep, value = item.partition("=")
        if not sep or not NAME_RE.match(key):
            raise JoinError(f"--attribute {item!r} is not KEY=VALUE", EXIT_UNUSABLE)
        pairs[key] = value
    folder = out if out is not None else data / "peers" / org
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise JoinError(f"{folder} exists and is not an empty folder", EXIT_UNUSABLE)
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
        raise JoinError(f"no key of {identity} was made")
    return entry.cert.pem


def admit(
    data: Path = typer.Option(..., "--data", help="Folder of the network."),
    org: str = typer.Option(..., "--org", help="The organisation to admit."),
    request: Path | None = typer.Option(
        None, "--request", help=f"Its {REQUEST_FILE} (default DIR/peers/ORG/{REQUEST_FILE})."
    ),
    by: str = typer.Option(
        "",
        "--by",
        help="Comma-separated member organisations whose admins propose (the first) and "
        "approve, in order (default: every member, until a majority has approved).",
    ),
) -> None:
    """Have the members' admins propose and approve a new organisation."""
    console = Console(highlight=False, soft_wrap=True)
    try:
        record, join = _admit(data, org, request, by, say=console.print)
    except (JoinError, NetworkError) as exc:
        _fail(str(exc), exc.code)
    except (OSError, ValueError, KeyError, TypeError, CryptoError) as exc:
        _fail(str(exc), EXIT_UNUSABLE)
    if record["status"] == "admitted":
        console.print(
            f"admitted {org} with {org}/admin and its peer; bring the peer in with '{join}'"
        )
    else:
        console.print(
            f"{org} is {record['status']}: approved by {', '.join(record['approved_by'])} "
            f"({record['needed']} needed)"
        )


class AdminCalls:
    """Calls to one member's peer API, signed by that organisation's admin key."""

    def __init__(self, client: httpx.Client, url: str, keystore: Keystore, org: str) -> None:
        admin = keystore.get(f"{org}/admin")
        if admin is None:
            raise JoinError(f"the keystore of {org} holds no {org}/admin key", EXIT_UNUSABLE)
        self.client, self.url, self.keystore, self.admin = client, url, keystore, admin.id

    def _post(self, path: str, function: str, args: dict[str, Any]) -> Any:
        signed = self.keystore.propose(
            self.admin, "membership", function, args, timestamp=wall_clock_ms()
        )
        try:
            answer = self.client.post(
                f"{self.url}{path}",
                content=canonical_json(signed.to_json()),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise JoinError(f"cannot reach the peer at {self.url}: {exc}") from exc
        if answer.status_code != 200:
            raise JoinError(f"{self.admin}: {function} refused: {_detail(answer)}")
        return answer.json()

    def invoke(self, function: str, args: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Run a membership transaction; its committed result and block height."""
        body = self._post("/api/v1/invoke", function, args)
        receipt = body["receipt"]
        if not receipt["valid"]:
            raise JoinError(
                f"{self.admin}: {function} did not commit ({receipt['code']}); run admit again"
            )
        result: dict[str, Any] = body["result"]
        return result, int(receipt["height"])

    def wait_for(self, block: int, timeout_s: float = WAIT_S) -> None:
        """Wait until this peer has committed block ``block`` (another peer's commit),
        so what it endorses next reads it."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                answer = self.client.get(f"{self.url}/api/v1/status")
                if answer.status_code == 200 and int(answer.json()["height"]) > block:
                    return
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise JoinError(f"the peer at {self.url} has not reached block {block}")
            time.sleep(0.2)

    def admission(self, org: str) -> dict[str, Any] | None:
        """The latest proposal to admit ``org``, or None if there is none."""
        signed = self.keystore.propose(
            self.admin, "membership", "admissions", {"status": ""}, timestamp=wall_clock_ms()
        )
        try:
            answer = self.client.post(
                f"{self.url}/api/v1/query",
                content=canonical_json(signed.to_json()),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise JoinError(f"cannot reach the peer at {self.url}: {exc}") from exc
        if answer.status_code != 200:
            raise JoinError(f"{self.admin}: cannot read admissions: {_detail(answer)}")
        found = [r for r in answer.json()["result"] if r.get("org") == org]
        return found[0] if found else None


def _admit(
    data: Path, org: str, request_file: Path | None, by: str, *, say: Any
) -> tuple[dict[str, Any], str]:
    """The proposal to admit ``org`` after proposing and approving it as asked, and
    the command that brings its peer in."""
    network = Network.load(data)
    request_file = request_file or data / "peers" / org / REQUEST_FILE
    request = _request(request_file, org)
    urls = {p.org: f"http://127.0.0.1:{p.port}" for p in network.peers}
    orgs = [o.strip() for o in by.split(",") if o.strip()] or list(network.orgs)
    unknown = [o for o in orgs if o not in urls]
    if unknown:
        raise JoinError(f"--by names organisations not in this network: {', '.join(unknown)}", 2)
    if len(set(orgs)) != len(orgs):
        raise JoinError("--by names an organisation twice", EXIT_UNUSABLE)
    with httpx.Client(timeout=60.0) as client:
        calls = [
            AdminCalls(client, urls[o], Keystore.load(data / "peers" / o / KEYSTORE_FILE), o)
            for o in orgs
        ]
        record = calls[0].admission(org)
        if record is not None and record["status"] == "admitted":
            raise JoinError(f"{org} is already admitted", EXIT_FAILED)
        last, block = calls[0], -1
        if record is None or record["status"] != "pending":
            record, block = last.invoke("propose_organisation", request)
            say(f"{last.admin} proposed admitting {org}")
        elif any(record[f] != request[f] for f in REQUEST_FIELDS):
            raise JoinError(
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
    join = (
        f"healthledger network join --org {org} --from {last.url} --data {request_file.parent} "
        f"--jetstream {','.join(network.servers)}"
    )
    return current or record, join


def _request(path: Path, org: str) -> dict[str, Any]:
    """The admission request in ``path``, checked for shape (the contract checks the rest)."""
    if not path.is_file():
        raise JoinError(
            f"{path} does not exist: make the organisation's keys with "
            "'healthledger network new-org' first",
            EXIT_UNUSABLE,
        )
    try:
        request = json.loads(path.read_text())
    except ValueError as exc:
        raise JoinError(f"{path} is not JSON: {exc}", EXIT_UNUSABLE) from exc
    if not isinstance(request, dict) or set(request) != set(REQUEST_FIELDS):
        raise JoinError(
            f"{path} must hold exactly the fields {', '.join(REQUEST_FIELDS)}", EXIT_UNUSABLE
        )
    if request["org"] != org:
        raise JoinError(f"{path} asks to admit {request['org']}, not {org}", EXIT_UNUSABLE)
    return request
