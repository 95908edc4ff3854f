"""Errors of the contract framework."""

from healthledger.errors import HealthledgerError


class ContractError(HealthledgerError):
    """Base class: a contract refused or could not run a call."""


class UnknownContract(ContractError):
    """No contract of that name is installed and deployed."""


class UnknownFunction(ContractError):
    """The contract has no such transaction or query function."""


class InvalidArguments(ContractError):
    """Arguments do not match the function's schema; ``errors`` lists each problem."""

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class AccessDenied(ContractError):
    """The caller's organisation or role may not make this call."""


class CallerNotAdmitted(AccessDenied):
    """The caller's role or organisation kind is not among those the function declares
    (refused by the framework before the function runs)."""


class PolicyError(ContractError):
    """An endorsement policy expression is malformed."""


class PolicyNotSatisfied(ContractError):
    """The endorsements gathered do not satisfy the policy."""


class StateError(ContractError):
    """A contract put something in state that state cannot hold (floats, bad keys)."""


class Rejected(ContractError):
    """A contract's business rule refused the call; the message says why."""
