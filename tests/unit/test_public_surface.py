"""The public surface: what healthledger and healthledger.verify export, and one root
that every error class of the package derives from."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import healthledger
from healthledger import verify
from healthledger.errors import HealthledgerError


def test_the_package_root_exports_its_root_error() -> None:
    assert healthledger.__all__ == ["HealthledgerError"]
    assert healthledger.HealthledgerError is HealthledgerError


def test_verify_exports_exactly_its_verifiers_and_one_error() -> None:
    assert sorted(verify.__all__) == [
        "VerificationError",
        "audit",
        "block",
        "checkpoint",
        "consistency",
        "credential",
        "inclusion",
        "receipt",
        "transaction",
    ]
    assert issubclass(verify.VerificationError, HealthledgerError)


@pytest.mark.parametrize("name", [n for n in verify.__all__ if n != "VerificationError"])
def test_every_verifier_takes_keyword_arguments_only(name: str) -> None:
    parameters = inspect.signature(getattr(verify, name)).parameters.values()
    assert parameters
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    with pytest.raises(TypeError):
        getattr(verify, name)(*[None] * len(parameters))


def _modules() -> list[str]:
    return sorted(
        info.name for info in pkgutil.walk_packages(healthledger.__path__, "healthledger.")
    )


def test_every_exception_class_under_src_derives_from_the_root() -> None:
    outside: list[str] = []
    found = 0
    for name in _modules():
        module = importlib.import_module(name)
        for value in vars(module).values():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
            ):
                found += 1
                if not issubclass(value, HealthledgerError):
                    outside.append(f"{value.__module__}.{value.__qualname__}")
    assert found > 50  # the walk reached the layers, the apps and the interfaces
    assert outside == []


def test_every_module_is_walked() -> None:
    # A module the walk missed would escape the test above.
    root = Path(healthledger.__file__).parent
    files = {
        ".".join(("healthledger", *path.relative_to(root).with_suffix("").parts))
        for path in root.rglob("*.py")
    }
    files = {name.removesuffix(".__init__") for name in files} - {"healthledger"}
    assert files <= set(_modules())
