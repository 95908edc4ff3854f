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
import importlib.util
import inspect
import sys
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pydantic

from healthledger.contracts.context import Context
from healthledger.contracts.errors import CallerNotAdmitted, InvalidArguments, UnknownFunction
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
    kinds: tuple[str, ...] | None
    """Kinds of the caller's organisation allowed (None: any member)."""
    relation: str | None
    """Who else the function admits or refuses by the data it touches, in words (the
    function itself enforces it: e.g. "only the GTIN's brand owner")."""
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

    def check_caller(self, ctx: Context) -> None:
        """CallerNotAdmitted unless the caller's role and organisation kind are admitted."""
        if self.roles is not None and ctx.caller.role not in self.roles:
            raise CallerNotAdmitted(
                f"{self.name} may be called by roles {list(self.roles)}, not {ctx.caller.role!r}"
            )
        if self.kinds is not None:
            record = ctx.organisation(ctx.caller.org)
            kind = None if record is None else record.get("kind")
            if kind not in self.kinds:
                raise CallerNotAdmitted(
                    f"{self.name} may be called by organisations of kind "
                    f"{' or '.join(self.kinds)}; {ctx.caller.org} is {kind or 'no member'}"
                )

    def admits(self, *, role: str, kind: str) -> bool:
        """True if a caller of ``role`` in an organisation of ``kind`` passes the
        declared gate (the function may still refuse it by the data it touches)."""
        return (self.roles is None or role in self.roles) and (
            self.kinds is None or kind in self.kinds
        )

    def schema(self) -> dict[str, Any]:
        """JSON schema of the arguments."""
        return self.args_model.model_json_schema()


_MARK = "__healthledger_function__"


@dataclass(frozen=True)
class _Mark:
    kind: Kind
    policy: str | None
    roles: tuple[str, ...] | None
    kinds: tuple[str, ...] | None
    relation: str | None


def _mark(mark: _Mark) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    if mark.policy is not None:
        parse_policy(mark.policy)

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        setattr(fn, _MARK, mark)
        return fn

    return decorate


def transaction(
    *,
    policy: str | None = None,
    roles: tuple[str, ...] | None = None,
    kinds: tuple[str, ...] | None = None,
    relation: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function as a transaction (may change state; endorsed and ordered) that
    callers of ``roles`` in organisations of ``kinds`` may call (None: any)."""
    return _mark(_Mark("transaction", policy, roles, kinds, relation))


def query(
    *,
    roles: tuple[str, ...] | None = None,
    kinds: tuple[str, ...] | None = None,
    relation: str | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function as a query (reads state; never ordered) that callers of
    ``roles`` in organisations of ``kinds`` may call (None: any)."""
    return _mark(_Mark("query", None, roles, kinds, relation))


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


def _module_source(module: str) -> bytes:
    """The bytes of ``module``'s source file, read without parsing or importing it."""
    loaded = sys.modules.get(module)
    path = getattr(loaded, "__file__", None)
    if path is None:
        spec = importlib.util.find_spec(module)
        path = spec.origin if spec is not None else None
    if path is None or not path.endswith(".py"):
        raise TypeError(f"a contract's code must live in a .py file; {module} has none")
    with open(path, "rb") as source:
        return source.read()


def _source_hash(cls: type[Contract]) -> str:
    """Hex SHA-256 over the class's qualified name and the source files of its module
    and ``code_modules``, each length-prefixed.

    Computed once, when the class is created, from file bytes: never from parsing
    source at run time, which CPython 3.11 may fail when threads parse at once
    (gh-106905), and the same on every peer that runs the same files."""
    digest = hashlib.sha256()
    parts = [f"{cls.__module__}:{cls.__qualname__}".encode()]
    for module in (cls.__module__, *sorted(cls.code_modules)):
        parts += [module.encode(), _module_source(module)]
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class Contract:
    """Base class of every contract. Subclasses set ``name`` and ``policy``."""

    name: ClassVar[str]
    """Contract name; also its state namespace."""
    policy: ClassVar[str] = "OR('*.peer')"
    """Default endorsement policy of its transactions."""
    functions: ClassVar[dict[str, FunctionSpec]]
    code_modules: ClassVar[tuple[str, ...]] = ()
    """Modules besides the class's own whose code the contract runs (its rules kept
    in helper modules): their source is part of the code hash."""
    _code_hash: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        parse_policy(cls.policy)
        cls._code_hash = _source_hash(cls)
        specs: dict[str, FunctionSpec] = {}
        for attr, fn in inspect.getmembers(cls, predicate=inspect.isfunction):
            mark = getattr(fn, _MARK, None)
            if not isinstance(mark, _Mark) or attr.startswith("_"):
                continue
            specs[attr] = FunctionSpec(
                name=attr,
                kind=mark.kind,
                policy=mark.policy,
                roles=mark.roles,
                kinds=mark.kinds,
                relation=mark.relation,
                args_model=_args_model(cls, fn),
                doc=inspect.getdoc(fn) or "",
            )
        cls.functions = specs

    @classmethod
    def code_hash(cls) -> str:
        """Hex SHA-256 of the contract's code: what the lifecycle approves."""
        return cls._code_hash

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
        spec.check_caller(ctx)
        parsed = spec.parse_args(args)
        return getattr(self, function)(ctx, **parsed)
