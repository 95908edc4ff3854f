"""The contract framework: a base class and functions marked as transactions or queries.

A contract function takes ``ctx`` and keyword arguments with type annotations::

    class Registry(Contract):
        name = "registry"
        policy = "OR('*.peer')"

        @transaction(roles=("admin",))
        def register(self, ctx: Context, *, item_id: str, count: int) -> dict[str, Any]:
            ...

Arguments are validated against a schema derived from the annotations (strict:
no coercion, no unknown fields) before the function runs.
"""

from __future__ import annotations

import hashlib
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pydantic

from healthledger.contracts.context import Context
from healthledger.contracts.errors import AccessDenied, InvalidArguments, UnknownFunction
from healthledger.contracts.policy import parse_policy

Kind = Literal["transaction", "query"]


@dataclass(frozen=True)
class FunctionSpec:
    """What the framework knows of one contract function."""

    name: str
    kind: Kind
    policy: str | None
    """Endorsement policy overriding the contract's (transactions only)."""
    roles: tuple[str, ...] | None
    """Caller roles allowed (None: any registered identity)."""
    args_model: type[pydantic.BaseModel]
    doc: str

    def parse_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """Validate ``args``; raise InvalidArguments listing each problem."""
        try:
            model = self.args_model.model_validate(args)
        except pydantic.ValidationError as exc:
            errors = [
                {
                    "field": ".".join(str(p) for p in err["loc"]) or "(args)",
                    "message": err["msg"],
                }
                for err in exc.errors()
            ]
            summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
            raise InvalidArguments(f"invalid arguments to {self.name}: {summary}", errors) from exc
        return {name: getattr(model, name) for name in type(model).model_fields}

    def schema(self) -> dict[str, Any]:
        """JSON schema of the arguments."""
        return self.args_model.model_json_schema()


_MARK = "__healthledger_function__"


def _mark(
    kind: Kind, policy: str | None, roles: tuple[str, ...] | None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if policy is not None:
        parse_policy(policy)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, _MARK, (kind, policy, roles))
        return fn

    return decorate


def transaction(
    *, policy: str | None = None, roles: tuple[str, ...] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function as a transaction (may change state; endorsed and ordered)."""
    return _mark("transaction", policy, roles)


def query(
    *, roles: tuple[str, ...] | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function as a query (reads state; never ordered)."""
    return _mark("query", None, roles)


def _contains_float(annotation: Any) -> bool:
    if annotation is float:
        return True
    return any(_contains_float(arg) for arg in typing.get_args(annotation))


def _args_model(cls: type, fn: Callable[..., Any]) -> type[pydantic.BaseModel]:
    hints = typing.get_type_hints(fn)
    fields: dict[str, Any] = {}
    params = list(inspect.signature(fn).parameters.values())
    if len(params) < 2 or params[1].name != "ctx":
        raise TypeError(f"{cls.__name__}.{fn.__name__} must take (self, ctx, *, ...)")
    for param in params[2:]:
        if param.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(
                f"{cls.__name__}.{fn.__name__}: argument {param.name} must be keyword-only"
            )
        if param.name not in hints:
            raise TypeError(f"{cls.__name__}.{fn.__name__}: argument {param.name} needs a type")
        if _contains_float(hints[param.name]):
            raise TypeError(f"{cls.__name__}.{fn.__name__}: float arguments are not allowed")
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (hints[param.name], default)
    config = pydantic.ConfigDict(strict=True, extra="forbid")
    return pydantic.create_model(f"{cls.__name__}_{fn.__name__}_args", __config__=config, **fields)


class Contract:
    """Base class of every contract. Subclasses set ``name`` and ``policy``."""

    name: ClassVar[str]
    """Contract name; also its state namespace."""
    policy: ClassVar[str] = "OR('*.peer')"
    """Default endorsement policy of its transactions."""
    functions: ClassVar[dict[str, FunctionSpec]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        parse_policy(cls.policy)
        specs: dict[str, FunctionSpec] = {}
        for attr, fn in inspect.getmembers(cls, predicate=inspect.isfunction):
            mark = getattr(fn, _MARK, None)
            if mark is None or attr.startswith("_"):
                continue
            kind, policy, roles = mark
            specs[attr] = FunctionSpec(
                name=attr,
                kind=kind,
                policy=policy,
                roles=roles,
                args_model=_args_model(cls, fn),
                doc=inspect.getdoc(fn) or "",
            )
        cls.functions = specs

    @classmethod
    def code_hash(cls) -> str:
        """Hex SHA-256 of the contract's source: what the lifecycle approves."""
        # Looked up on every endorsement; reading the source is slow, and the class's own
        # __dict__ keeps a subclass from inheriting its parent's hash.
        cached = cls.__dict__.get("_code_hash")
        if not isinstance(cached, str):
            cached = hashlib.sha256(inspect.getsource(cls).encode("utf-8")).hexdigest()
            type.__setattr__(cls, "_code_hash", cached)
        return cached

    @classmethod
    def spec(cls, function: str) -> FunctionSpec:
        """The spec of ``function``; UnknownFunction if there is none."""
        spec = cls.functions.get(function)
        if spec is None:
            raise UnknownFunction(f"contract {cls.name!r} has no function {function!r}")
        return spec

    def call(self, ctx: Context, function: str, args: dict[str, Any]) -> Any:
        """Validate ``args`` and run ``function``."""
        spec = self.spec(function)
        if spec.roles is not None and ctx.caller.role not in spec.roles:
            raise AccessDenied(
                f"{function} may be called by roles {list(spec.roles)}, not {ctx.caller.role!r}"
            )
        parsed = spec.parse_args(args)
        return getattr(self, function)(ctx, **parsed)
