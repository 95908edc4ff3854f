"""A cached attribute for the ledger's immutable records, free of lock contention.

``functools.cached_property`` on Python 3.11 takes one lock per attribute for every
instance of the class, so threads computing a transaction's id, a response's
canonical bytes and a block's hash wait for each other (the lock was dropped in
Python 3.12). The records are immutable, so two threads that race on a first
access compute the same value; the later one simply stores it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


class cached_value(Generic[T]):  # noqa: N801 - named like the decorator it replaces
    """Compute an attribute on first access and keep it in the instance's ``__dict__``."""

    def __init__(self, compute: Callable[[Any], T]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> cached_value[T]: ...

    @overload
    def __get__(self, instance: object, owner: type | None = None) -> T: ...

    def __get__(self, instance: object | None, owner: type | None = None) -> T | cached_value[T]:
        if instance is None:
            return self
        # The value then shadows this (non-data) descriptor: later reads are plain.
        value = self._compute(instance)
        instance.__dict__[self._name] = value
        return value
