"""Running contracts: simulate a proposal into a response, or evaluate a query."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from healthledger.contracts.context import Caller, Context, PrivateData
from healthledger.contracts.contract import Contract
from healthledger.contracts.errors import (
    AccessDenied,
    ContractError,
    InvalidArguments,
    StateError,
    UnknownContract,
    UnknownFunction,
)
from healthledger.contracts.rules import HeightMemo, MembershipResolver, contract_definition
from healthledger.crypto.canonical import check_canonical
from healthledger.crypto.errors import CanonicalEncodingError
from healthledger.ledger.errors import StorageError
from healthledger.ledger.state import StateView
from healthledger.ledger.transaction import Proposal, ProposalResponse, transient_digest
from healthledger.ledger.validation import Identity


class ContractFailure(ContractError):
    """Contract code raised something other than a ContractError (a bug in the contract)."""


class ContractRuntime:
    """The contracts installed on one peer, and how to run them."""

    def __init__(self, contracts: Iterable[type[Contract]]) -> None:
        self._installed: dict[str, Contract] = {}
        for cls in contracts:
            if cls.name in self._installed:
                raise ValueError(f"contract {cls.name} installed twice")
            self._installed[cls.name] = cls()
        self._resolver = MembershipResolver()

    def installed(self) -> list[type[Contract]]:
        """The installed contract classes."""
        return [type(c) for c in self._installed.values()]

    def contract(self, name: str, state: StateView, memo: HeightMemo | None = None) -> Contract:
        """The deployed contract ``name``; UnknownContract if not installed or not
        committed, or if the installed code differs from the approved hash."""
        contract = self._installed.get(name)
        if contract is None:
            raise UnknownContract(f"no contract named {name!r} is installed")
        definition = contract_definition(state, name, memo)
        if definition is None:
            raise UnknownContract(f"contract {name!r} is not deployed on the ledger")
        if definition.get("code_hash") != type(contract).code_hash():
            raise UnknownContract(
                f"installed code of {name!r} does not match the approved version "
                f"{definition.get('version')}"
            )
        return contract

    def caller(
        self,
        identity_id: str,
        state: StateView,
        *,
        at_ms: int,
        resolver: MembershipResolver | None = None,
    ) -> Caller:
        """The registered, unrevoked, currently valid identity ``identity_id``
        (looked up through ``resolver``, e.g. a peer's memoised one, if given)."""
        identity = (resolver or self._resolver).resolve(identity_id, state)
        if identity is None:
            raise AccessDenied(f"{identity_id} is not a registered identity")
        if identity.revoked:
            raise AccessDenied(f"{identity_id} has been revoked")
        if not identity.not_before_ms <= at_ms <= identity.not_after_ms:
            raise AccessDenied(f"the certificate of {identity_id} is not valid now")
        return caller_of(identity)

    def simulate(
        self,
        proposal: Proposal,
        *,
        tx_id: str,
        caller: Caller,
        state: StateView,
        private: PrivateData | None,
        transient: Mapping[str, Any] | None = None,
        memo: HeightMemo | None = None,
    ) -> ProposalResponse:
        """Run a transaction function against ``state`` and return what it read and wrote.

        ``transient`` is private input bound to the proposal by its transient_hash;
        the contract sees it as ``ctx.transient`` and it never reaches the chain."""
        if (transient is None) != (proposal.transient_hash is None) or (
            transient is not None and transient_digest(transient) != proposal.transient_hash
        ):
            raise InvalidArguments("transient data does not match the proposal's transient_hash")
        contract = self.contract(proposal.contract, state, memo)
        if contract.spec(proposal.function).kind != "transaction":
            raise UnknownFunction(f"{proposal.contract}.{proposal.function} is a query")
        ctx = Context(
            namespace=proposal.contract,
            state=state,
            caller=caller,
            tx_id=tx_id,
            timestamp=proposal.timestamp,
            readonly=False,
            private=private,
            transient=transient,
            queries=lambda name, function, args, outer: self._ask(
                name, function, args, outer, state, memo
            ),
        )
        result = _run(contract, ctx, proposal.function, dict(proposal.args))
        return ProposalResponse(ctx.rwset(), ctx.events(), result)

    def evaluate(
        self,
        *,
        contract: str,
        function: str,
        args: dict[str, Any],
        caller: Caller,
        state: StateView,
        timestamp: int,
        private: PrivateData | None = None,
        memo: HeightMemo | None = None,
    ) -> Any:
        """Run a query function; it may read but not change state."""
        target = self.contract(contract, state, memo)
        if target.spec(function).kind != "query":
            raise UnknownFunction(f"{contract}.{function} is a transaction, not a query")
        ctx = Context(
            namespace=contract,
            state=state,
            caller=caller,
            tx_id="",
            timestamp=timestamp,
            readonly=True,
            private=private,
            queries=lambda name, asked, given, outer: self._ask(
                name, asked, given, outer, state, memo
            ),
        )
        return _run(target, ctx, function, args)

    def _ask(
        self,
        contract: str,
        function: str,
        args: dict[str, Any],
        outer: Context,
        state: StateView,
        memo: HeightMemo | None,
    ) -> Any:
        """Run ``contract``'s query for ``outer`` (one level deep, no private data, so
        that every endorser computes the same), its reads counted as ``outer``'s."""
        target = self.contract(contract, state, memo)
        if target.spec(function).kind != "query":
            raise UnknownFunction(f"{contract}.{function} is a transaction, not a query")
        inner = Context(
            namespace=contract,
            state=state,
            caller=outer.caller,
            tx_id=outer.tx_id,
            timestamp=outer.timestamp,
            readonly=True,
        )
        result = _run(target, inner, function, args)
        outer.absorb_reads(inner.rwset().reads)
        return result


def caller_of(identity: Identity) -> Caller:
    """The contract-facing view of an identity."""
    return Caller(identity.id, identity.org, identity.role, identity.attributes)


def _run(contract: Contract, ctx: Context, function: str, args: dict[str, Any]) -> Any:
    try:
        result = contract.call(ctx, function, args)
    except (ContractError, StorageError):
        # A store that cannot be read (a database server gone) is the peer's trouble,
        # reported as such, not a failure of the contract.
        raise
    except Exception as exc:
        raise ContractFailure(
            f"{contract.name}.{function} failed: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        check_canonical(result)
    except CanonicalEncodingError as exc:
        raise StateError(f"{contract.name}.{function} returned {exc}") from exc
    return result
