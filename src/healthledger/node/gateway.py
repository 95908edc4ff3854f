"""The gateway: endorsement across organisations (ARCHITECTURE.md sections 3 and 5).

A consortium peer holds one organisation's keys, so it can endorse only as that
organisation's peer. When a transaction's policies name other organisations' peers
too, the gateway works out which ones are needed (the fewest, as
``choose_endorsers_indexed`` picks them), sends the signed proposal (and its transient
map, if any) to those peers' ``/api/v1/network/endorse`` over HTTP, and checks every
answer: it must be well-formed, over the same proposal, agree with the reference
response (same read/write set, events and result), and carry signatures by that
organisation's registered peer identities. An answer that fails any check is reported
with the peer named and never used; the gateway then tries other organisations the
policies allow, and fails with every fault listed if none satisfy them.

A peer that endorses may write privately to a collection of the proposal creator's
organisation although it does not hold that vault (ARCHITECTURE.md section 1;
Fabric's private-data dissemination): it answers the values in a ``private`` field
beside the transaction, never in it. The gateway, on the creator's organisation's
peer, checks each against the salted commitment in the read/write set (as the vault
computes it), refuses a mismatch naming the peer, and stages them durably in its own
vault before the transaction is ordered; they settle at commit as local ones do.

When every peer asked refuses for a business reason (a contract error), that error is
raised as it would be on a single node; real faults (bad signatures, malformed or
disagreeing answers, unreachable peers) are reported with the peer named.

Where each organisation's peer answers is the *peer directory*, ``directory.json`` in
the peer's data folder: ``{"format": 1, "peers": {"<org>": "<base URL>", ...}}``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from healthledger.contracts.errors import (
    AccessDenied,
    ContractError,
    UnknownContract,
)
from healthledger.contracts.policy import Policy, choose_endorsers_indexed, principals, satisfied
from healthledger.contracts.rules import MEMBERSHIP, requirement
from healthledger.crypto.canonical import canonical_json, parse_canonical
from healthledger.crypto.errors import CryptoError
from healthledger.ledger.state import StateView
from healthledger.ledger.transaction import (
    Endorsement,
    ProposalResponse,
    SignedProposal,
    Transaction,
)
from healthledger.node.consortium_peer import CONSORTIUM_MODE, peer_org
from healthledger.node.endorsement_answers import (
    PRIVATE_FIELD,
    BadEndorsement,
    PeerFault,
    check_disclosed,
    check_endorsed,
    contract_refusal,
    problem_detail,
    refusal_from_problem,
)
from healthledger.node.endorsers import PEER_ROLE as PEER_ROLE  # the role gateways check for
from healthledger.node.errors import EndorsementFailed, NodeUnavailable
from healthledger.node.parts import Node
from healthledger.node.peer import Endorsed, Peer
from healthledger.node.peer_directory import DIRECTORY_FILE, PeerDirectory
from healthledger.node.peer_tls import peer_client
from healthledger.node.vault import (
    Disclosure,
    VaultSet,
    collection_org,
)

ENDORSE_PATH = "/api/v1/network/endorse"
DEFAULT_TIMEOUT_S = 10.0
"""How long the gateway waits for one peer's endorsement."""
MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""A larger answer from a peer is reported as malformed without being parsed."""
MAX_REMEMBERED_CHOICES = 4096
"""Choices of endorsers a gateway remembers before it starts afresh."""

LocalEndorse = Callable[[SignedProposal, Mapping[str, Any] | None], Transaction]
"""Endorses a proposal as the local organisation only (see :meth:`Peer.endorse_own`)."""


class GatewayError(EndorsementFailed):
    """The policies cannot be satisfied with the endorsements the peers gave."""

    def __init__(self, message: str, faults: Sequence[PeerFault] = ()) -> None:
        detail = "; ".join(str(f) for f in faults)
        super().__init__(f"{message}: {detail}" if detail else message)
        self.faults = tuple(faults)


# --- the gateway -------------------------------------------------------------------


@dataclass(frozen=True)
class _Signer:
    org: str
    role: str
    identity: str


class Gateway:
    """Gathers the endorsements a proposal's policies need from the organisations'
    peers, checks them, keeps the private values they return for this organisation's
    collections, and assembles the transaction."""

    def __init__(
        self,
        *,
        state: StateView,
        directory: Callable[[], PeerDirectory],
        local_org: str | None = None,
        local: LocalEndorse | None = None,
        vaults: VaultSet | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """``state``: the ledger the policies and certificates are read from;
        ``directory``: reads the peer directory (called once per proposal, so an
        edited file takes effect without a restart); ``local``: endorses as
        ``local_org`` in process (a consortium peer's own gateway), asked first;
        ``vaults``: where the private values other peers return for this
        organisation's collections are kept (none: such proposals are refused)."""
        if (local is None) != (local_org is None):
            raise ValueError("local and local_org go together")
        self._state = state
        self._directory = directory
        self._local_org = local_org
        self._local = local
        self._vaults = vaults
        self._timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.Client | None = None
        self._client_lock = threading.Lock()
        self._choices: dict[_ChoiceKey, tuple[int, ...] | None] = {}
        """Endorsers chosen per policies and candidate signers' (org, role) in order:
        most proposals of a contract ask the same, and the exhaustive search was a
        few per cent of a busy endorsing peer's CPU (bench network --clients)."""

    def _http(self) -> httpx.Client:
        """The HTTP client, made on first use (most proposals need no other peer) and
        kept, so connections to the other peers are reused."""
        with self._client_lock:
            if self._client is None:
                self._client = peer_client(timeout=self._timeout_s, transport=self._transport)
            return self._client

    def close(self) -> None:
        """Close the connections to the other peers."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def endorse(
        self, signed: SignedProposal, transient: Mapping[str, Any] | None = None
    ) -> Transaction:
        """The transaction of ``signed`` endorsed as its policies need; GatewayError
        naming every peer whose answer was refused if they cannot be satisfied, or the
        contract's error if every peer asked refused for a business reason. Private
        values returned for this organisation's collections are durable in its vault
        before this returns."""
        directory = self._directory()
        faults: list[PeerFault] = []
        gathered: dict[str, Endorsed] = {}
        reference = self._first(signed, transient, directory, gathered, faults)
        proposal = signed.proposal
        need = requirement(
            self._state, proposal.contract, proposal.function, reference.rwset.writes
        )
        if need.failure is not None:
            raise EndorsementFailed(need.reason)
        while True:
            refused = {f.org for f in faults}
            orgs = [o for o in directory.peers if o not in refused]
            local = self._local_org
            if local is not None and local not in orgs and local not in refused:
                orgs.insert(0, local)
            plan = self._plan(need.policies, gathered, orgs)
            if plan is None:
                policies = " and ".join(str(p) for p in need.policies)
                raise GatewayError(
                    f"the endorsement policy {policies} cannot be satisfied by the "
                    "peers that answered",
                    faults,
                )
            missing = [org for org in plan if org not in gathered]
            if not missing:
                break
            for org, outcome in self._ask(directory, missing, signed, transient, reference):
                if isinstance(outcome, PeerFault):
                    faults.append(outcome)
                else:
                    gathered[org] = outcome
        endorsements: dict[str, Endorsement] = {}
        for org in plan:
            for endorsement in gathered[org].transaction.endorsements:
                endorsements.setdefault(endorsement.endorser, endorsement)
        used = {org: gathered[org] for org in plan}
        self._keep_private(signed, reference, used, set(gathered), directory)
        return Transaction(signed, reference, tuple(endorsements.values()))

    def _keep_private(
        self,
        signed: SignedProposal,
        reference: ProposalResponse,
        used: Mapping[str, Endorsed],
        simulated: set[str],
        directory: PeerDirectory,
    ) -> None:
        """Stage durably, in this organisation's vault, the private values the peers of
        ``used`` returned (each already checked against the commitment), but those of an
        organisation whose own peer ``simulated`` it (that peer staged them); refuses when
        they disagree, when this gateway holds no vault for them, or when a write to a
        collection it holds came back without its value."""
        chosen: dict[tuple[str, str], tuple[str, Disclosure]] = {}
        for org, endorsed in used.items():
            for disclosure in endorsed.private:
                place = (disclosure.collection, disclosure.key)
                seen = chosen.setdefault(place, (org, disclosure))
                if seen[1] != disclosure:
                    why = f"returned another value for collection {disclosure.collection!r}"
                    raise GatewayError(
                        "the endorsers disagree on a private value",
                        [
                            PeerFault(seen[0], self._url(seen[0], directory), why),
                            PeerFault(org, self._url(org, directory), why),
                        ],
                    )
        held = {d.commitment() for _, d in chosen.values()}
        # A collection whose own organisation's peer endorsed too was staged by that peer.
        disclosures = [
            d for _, d in chosen.values() if collection_org(d.collection) not in simulated
        ]
        for write in reference.rwset.private:
            org = collection_org(write.collection)
            if self._vaults is None or self._vaults.vault(org) is None or org in simulated:
                continue  # not ours to keep, or our own peer staged it while simulating
            if write not in held:
                raise GatewayError(
                    f"the endorsers wrote to collection {write.collection!r} without "
                    "returning its value",
                    [
                        PeerFault(o, self._url(o, directory), "kept a private value back")
                        for o in used
                    ],
                )
        if not disclosures:
            return
        if self._vaults is None:
            collection = disclosures[0].collection
            raise EndorsementFailed(
                f"the proposal writes private data to collection {collection!r}, which only "
                f"the peer of {collection_org(collection)} keeps: send it through that "
                "organisation's gateway"
            )
        try:
            self._vaults.stage_disclosed(signed.tx_id, disclosures)
        except AccessDenied as exc:
            raise EndorsementFailed(str(exc)) from exc
        except sqlite3.Error as exc:
            raise NodeUnavailable(f"private data could not be stored durably: {exc}") from exc

    def _url(self, org: str, directory: PeerDirectory) -> str:
        return "local" if org == self._local_org else directory.peers.get(org, "-")

    def _first(
        self,
        signed: SignedProposal,
        transient: Mapping[str, Any] | None,
        directory: PeerDirectory,
        gathered: dict[str, Endorsed],
        faults: list[PeerFault],
    ) -> ProposalResponse:
        """The reference response: the local peer's, or else the first remote peer's
        that answers with a well-formed, correctly signed endorsement. When the local
        peer's contract refuses, only the organisations the policies name are asked
        (one of them may hold what this peer lacks, such as a key in its vault); when
        every peer asked refuses for a business reason, that contract error is raised."""
        named = self._named_orgs(signed)
        local_refused = False
        if self._local is not None and self._local_org is not None:
            try:
                tx = self._local(signed, transient)
            except UnknownContract as exc:
                # Not installed here: the peers that have it simulate instead.
                faults.append(PeerFault(self._local_org, "local", f"cannot endorse: {exc}", exc))
            except ContractError as exc:
                faults.append(PeerFault(self._local_org, "local", f"refused: {exc}", exc))
                local_refused = True
            else:
                gathered[self._local_org] = Endorsed(tx)
                return tx.response
        for org in directory.peers:
            if org in {f.org for f in faults} or (local_refused and org not in named):
                continue
            outcome = self._ask_one(directory, org, signed, transient, None)
            if isinstance(outcome, PeerFault):
                faults.append(outcome)
                continue
            gathered[org] = outcome
            return outcome.transaction.response
        refusal = contract_refusal(faults, named)
        if refusal is not None:
            raise refusal
        raise GatewayError("no peer in the directory gave an endorsement", faults)

    def _named_orgs(self, signed: SignedProposal) -> list[str]:
        """The organisations the contract's (or function's) policies name."""
        proposal = signed.proposal
        need = requirement(self._state, proposal.contract, proposal.function, ())
        named = [p.org for policy in need.policies for p in principals(policy) if p.org != "*"]
        return list(dict.fromkeys(named))

    def _plan(
        self, policies: Sequence[Policy], gathered: Mapping[str, Endorsed], orgs: Sequence[str]
    ) -> list[str] | None:
        """The organisations whose peers' endorsements satisfy every policy, fewest
        first and those already gathered preferred; None if no choice does."""
        signers: list[_Signer] = []
        for org, endorsed in gathered.items():
            signers += [
                _Signer(org, PEER_ROLE, e.endorser) for e in endorsed.transaction.endorsements
            ]
        # Most proposals need no other peer: then membership state is not read at all.
        plan = self._choose(policies, signers)
        if plan is not None:
            return plan
        for org in orgs:
            if org not in gathered:
                signers += [_Signer(org, PEER_ROLE, i) for i in self._peer_identities(org)]
        return self._choose(policies, signers)

    def _choose(self, policies: Sequence[Policy], signers: Sequence[_Signer]) -> list[str] | None:
        """:func:`_choose_indexes` as organisations, remembered per policies and the
        signers' (org, role) in order (the choice depends on nothing else)."""
        key = (tuple(policies), tuple((s.org, s.role) for s in signers))
        # One lookup (threads share the memo and may clear it between two).
        picked = self._choices.get(key, _UNCHOSEN)
        if picked is _UNCHOSEN:
            picked = _choose_indexes(policies, signers)
            if len(self._choices) >= MAX_REMEMBERED_CHOICES:
                self._choices.clear()
            self._choices[key] = picked
        return None if picked is None else list(dict.fromkeys(signers[i].org for i in picked))

    def _peer_identities(self, org: str) -> list[str]:
        """Registered, unrevoked peer identities of ``org`` in membership state."""
        prefix = f"identity/{org}/"
        found = []
        for _, record in self._state.range_state(MEMBERSHIP, prefix, prefix[:-1] + "0", 1000):
            value = record.value
            if (
                isinstance(value, dict)
                and value.get("role") == PEER_ROLE
                and value.get("status") != "revoked"
            ):
                found.append(str(value.get("id")))
        return found

    def _ask(
        self,
        directory: PeerDirectory,
        orgs: Sequence[str],
        signed: SignedProposal,
        transient: Mapping[str, Any] | None,
        reference: ProposalResponse,
    ) -> list[tuple[str, Endorsed | PeerFault]]:
        """Ask the peers of ``orgs`` at once; each one's endorsement or fault."""
        if len(orgs) == 1:
            return [(orgs[0], self._ask_one(directory, orgs[0], signed, transient, reference))]
        with ThreadPoolExecutor(max_workers=len(orgs), thread_name_prefix="gateway") as pool:
            futures = [
                (
                    org,
                    pool.submit(self._ask_one, directory, org, signed, transient, reference),
                )
                for org in orgs
            ]
            return [(org, future.result()) for org, future in futures]

    def _ask_one(
        self,
        directory: PeerDirectory,
        org: str,
        signed: SignedProposal,
        transient: Mapping[str, Any] | None,
        reference: ProposalResponse | None,
    ) -> Endorsed | PeerFault:
        url = directory.peers.get(org)
        if url is None:
            return PeerFault(org, "-", "is not in the peer directory")
        body: dict[str, Any] = signed.to_json()
        if transient is not None:
            body["transient"] = dict(transient)
        try:
            answer = self._http().post(
                url + ENDORSE_PATH,
                params={"org": org},
                content=canonical_json(body),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            return PeerFault(org, url, f"is unreachable: {exc}")
        if answer.status_code != 200:
            return PeerFault(
                org,
                url,
                f"refused to endorse: {problem_detail(answer)}",
                refusal_from_problem(answer),
            )
        if len(answer.content) > MAX_ANSWER_BYTES:
            return PeerFault(org, url, "sent a malformed endorsement: the answer is too large")
        try:
            raw = parse_canonical(answer.content)
        except (CryptoError, ValueError) as exc:
            return PeerFault(org, url, f"sent a malformed endorsement: {exc}")
        private = raw.pop(PRIVATE_FIELD, None) if isinstance(raw, dict) else None
        try:
            tx = check_endorsed(raw, org=org, signed=signed, reference=reference, state=self._state)
            return Endorsed(tx, check_disclosed(private, tx))
        except BadEndorsement as exc:
            return PeerFault(org, url, str(exc))


_ChoiceKey = tuple[tuple[Policy, ...], tuple[tuple[str, str], ...]]
_UNCHOSEN: tuple[int, ...] = (-1,)
"""Not in the memo (no real choice is a negative index)."""


def _choose_indexes(
    policies: Sequence[Policy], signers: Sequence[_Signer]
) -> tuple[int, ...] | None:
    """The indexes of a smallest choice of ``signers`` that satisfies every policy
    (earlier signers preferred on ties), or None."""
    chosen: list[int] = []
    # Narrow per-key policies first, so a broad contract policy can reuse their endorsers.
    for policy in reversed(policies):
        if satisfied(policy, [(signers[i].org, signers[i].role) for i in chosen]):
            continue
        order = chosen + [i for i in range(len(signers)) if i not in chosen]
        picked = choose_endorsers_indexed(
            policy, [(signers[i].org, signers[i].role) for i in order]
        )
        if picked is None:
            return None
        chosen.extend(order[i] for i in picked if order[i] not in chosen)
    return tuple(chosen)


def peer_gateway(
    peer: Peer,
    *,
    org: str,
    directory_file: Path,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Gateway:
    """The gateway of a consortium peer of ``org``: endorses as ``org`` in process and
    asks the other organisations' peers listed in ``directory_file``."""

    def local(signed: SignedProposal, transient: Mapping[str, Any] | None) -> Transaction:
        return peer.endorse_own(signed, transient=transient)

    return Gateway(
        state=peer.store,
        directory=lambda: PeerDirectory.load(directory_file),
        local_org=org,
        local=local,
        vaults=peer.vaults,
        timeout_s=timeout_s,
    )


def consortium_gateway(node: Node) -> Gateway | None:
    """The gateway of a consortium peer's node (its peer directory beside its ledger);
    None for an embedded node, which holds every organisation's keys itself."""
    if node.mode != CONSORTIUM_MODE:
        return None
    org = peer_org(node.data_dir)
    if org is None:
        return None
    return peer_gateway(
        node.peer,
        org=org,
        directory_file=node.data_dir / DIRECTORY_FILE,
    )
