"""The contract lifecycle contract: deploy and upgrade by approval.

Each organisation's admin approves a definition (contract name, version, code
hash, endorsement policies); once the approving organisations satisfy the
consortium's lifecycle policy, anyone commits it and peers run that version.
A peer runs a contract only if its installed code has the committed hash.
"""

from __future__ import annotations

from typing import Any

from healthledger.contracts.context import Context
from healthledger.contracts.contract import Contract, query, transaction
from healthledger.contracts.errors import PolicyError, Rejected
from healthledger.contracts.policy import parse_policy
from healthledger.contracts.rules import definition_key
from healthledger.contracts.system.approval import (
    agreeing_orgs,
    approved_body,
    record_approval,
    recorded_approvals,
    require_approved,
)
from healthledger.crypto.hashing import is_hex_hash
from healthledger.ledger.transaction import NAME_RE

CONFIG_KEY = "config"


class Lifecycle(Contract):
    """Contract definitions and their approvals."""

    name = "lifecycle"
    code_modules = (
        "healthledger.contracts.rules",
        "healthledger.contracts.system.approval",
    )
    policy = "OR('*.peer')"

    @transaction(roles=("admin",))
    def approve(
        self,
        ctx: Context,
        *,
        contract: str,
        version: str,
        code_hash: str,
        policy: str,
        functions: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Approve a definition on behalf of the caller's organisation."""
        definition = _definition(contract, version, code_hash, policy, functions or {})
        current = ctx.get(definition_key(contract))
        if isinstance(current, dict) and current.get("version") == version:
            raise Rejected(f"{contract} {version} is already committed")
        approval = record_approval(ctx, f"approval/{contract}/{version}/", definition)
        ctx.emit(
            "contract_approved", {"contract": contract, "version": version, "org": ctx.caller.org}
        )
        return approval

    @transaction()
    def commit(self, ctx: Context, *, contract: str, version: str) -> dict[str, Any]:
        """Commit ``contract`` at ``version`` once its approvals satisfy the lifecycle policy."""
        config = ctx.get(CONFIG_KEY)
        if not isinstance(config, dict):
            raise Rejected("the lifecycle has no policy")
        approvals = recorded_approvals(ctx, f"approval/{contract}/{version}/")
        if not approvals:
            raise Rejected(f"{contract} {version} has no approvals")
        wanted = approved_body(approvals[0])
        orgs = agreeing_orgs(approvals, wanted)
        require_approved(f"{contract} {version}", config["policy"], orgs)
        ctx.put(definition_key(contract), wanted)
        ctx.emit("contract_committed", wanted)
        return wanted

    @query()
    def definitions(self, ctx: Context) -> list[dict[str, Any]]:
        """Every committed contract definition."""
        return [value for _, value in ctx.range("contract/", "contract0")]

    @query()
    def approvals(self, ctx: Context, *, contract: str, version: str) -> list[dict[str, Any]]:
        """Approvals recorded for ``contract`` at ``version``."""
        return recorded_approvals(ctx, f"approval/{contract}/{version}/")


def _definition(
    contract: str, version: str, code_hash: str, policy: str, functions: dict[str, str]
) -> dict[str, Any]:
    if not NAME_RE.match(contract):
        raise Rejected(f"bad contract name {contract!r}")
    if not version or len(version) > 32:
        raise Rejected("version must be 1 to 32 characters")
    if not is_hex_hash(code_hash):
        raise Rejected("code_hash must be a hex SHA-256")
    try:
        parse_policy(policy)
        for text in functions.values():
            parse_policy(text)
    except PolicyError as exc:
        raise Rejected(f"policy: {exc}") from exc
    return {
        "name": contract,
        "version": version,
        "code_hash": code_hash,
        "policy": policy,
        "functions": dict(sorted(functions.items())),
    }


def definition_of(contract: type[Contract], version: str = "1") -> dict[str, Any]:
    """The definition that deploys an installed contract class as it is."""
    functions = {
        name: spec.policy
        for name, spec in contract.functions.items()
        if spec.kind == "transaction" and spec.policy is not None
    }
    return _definition(contract.name, version, contract.code_hash(), contract.policy, functions)
