"""The OpenAPI document tells the truth: schemathesis calls every operation of the demo's
app in process (ASGI, no sockets) on a demo-founded node with data, and checks that the
server never fails, and answers only documented statuses and content types with bodies
that match their documented schemas (problem details for every error)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.pytest.lazy import get_all_tests
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from healthledger.node.embedded import EmbeddedNode
from healthledger.web.console import create_console
from healthledger.web.session import COOKIE_NAME
from tests.support.members import member_reads
from tests.support.simulated import simulated_node

EPI = "gd-cdc/epi-wang"
"""The console session the calls carry: a CDC epidemiologist sees every download."""
UNBOUNDED = ("/api/v1/events",)
"""Server-sent events stream until the client leaves: called with a limit elsewhere."""
MAX_EXAMPLES = 10
"""Generated calls per operation and mode (valid and invalid input): bounded, so the
whole run takes a minute or two on two cores."""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNode]:
    """A node founded as the demo founds one, with every application's simulated traffic."""
    with simulated_node(tmp_path_factory, "openapi", seed=3) as node:
        yield node


@pytest.fixture(scope="module")
def console(demo: EmbeddedNode) -> FastAPI:
    """The app the demo serves: the API and the console."""
    return create_console(demo)


@pytest.fixture(scope="module")
def session(console: FastAPI) -> dict[str, str]:
    """A console session cookie of :data:`EPI`, logged in through the form."""
    with TestClient(console, follow_redirects=False) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        answer = client.post("/login", data={"identity": EPI, "csrf": token.group(1)})
        assert answer.status_code == 303
        return {COOKIE_NAME: client.cookies[COOKIE_NAME]}


@pytest.fixture(scope="module")
def api_schema(console: FastAPI) -> Any:
    """The app's own OpenAPI document, read from ``/openapi.json``."""
    loaded = schemathesis.openapi.from_asgi("/openapi.json", console)
    return loaded.exclude(path=list(UNBOUNDED))


def check_call(case: Any, session: dict[str, str]) -> None:
    """Call one generated case and run the checks on the answer."""
    case.call_and_validate(checks=CHECKS, cookies=session, allow_redirects=False)


def test_every_operation_answers_as_documented(api_schema: Any, session: dict[str, str]) -> None:
    # Each operation's Hypothesis test as schemathesis builds it for pytest: the
    # documented examples, the coverage phase (boundary and invalid values of every
    # parameter, deterministic) and MAX_EXAMPLES fuzzed cases. (Its own lazy pytest
    # wrapper does not run under this pytest; this is what the wrapper calls.)
    tests = list(
        get_all_tests(
            schema=api_schema,
            test_func=check_call,
            settings=settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
            given_kwargs={},
        )
    )
    assert len(tests) > 40, "the document lost its operations"
    failures: list[str] = []
    for built in tests:
        operation, test = built.ok()
        try:
            test(session=session)
        # The checks' failures (a FailureGroup), or the server's own exception (the ASGI
        # client re-raises it after the 500): each operation's, not only the first.
        except FailureGroup as group:
            found = "\n".join(f"  {failure}" for failure in group.exceptions)
            failures.append(f"{operation.label}: {group}\n{found}")
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{operation.label}: {exc!r}")
    assert not failures, "\n\n".join(failures)


def test_the_document_holds_no_fastapi_error_schema(console: FastAPI) -> None:
    spec = console.openapi()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    assert "Problem" in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"], (
                        method,
                        path,
                        status,
                    )
            assert "500" in op["responses"], (method, path)


def test_downloads_and_images_say_their_media_types(console: FastAPI) -> None:
    paths = console.openapi()["paths"]

    def media(path: str) -> list[str]:
        return list(paths[path]["get"]["responses"]["200"]["content"])

    assert media("/api/v1/supply/qr.png") == ["image/png"]
    assert media("/api/v1/supply/qr.svg") == ["image/svg+xml"]
    assert media("/api/v1/supply/events") == ["application/ld+json"]
    assert media("/epidemic/figures/{name}.png") == ["image/png"]
    assert media("/epidemic/linelist.csv") == ["text/csv"]
    assert media("/metrics") == ["text/plain"]
    assert not [p for p in paths if p in ("/supply/verify", "/epidemic", "/epidemic/public")]


def test_every_integer_parameter_is_bounded_to_what_sqlite_holds(console: FastAPI) -> None:
    unbounded = []
    for path, item in console.openapi()["paths"].items():
        for method, op in item.items():
            for parameter in op.get("parameters", []):
                schema = parameter["schema"]
                kinds = [schema, *schema.get("anyOf", [])]
                for kind in kinds:
                    if kind.get("type") == "integer" and kind.get("maximum", 2**63) > 2**63 - 1:
                        unbounded.append(f"{method.upper()} {path} {parameter['name']}")
    assert not unbounded


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/blocks/99999999999999999999",
        "/api/v1/blocks?from=99999999999999999999",
        "/api/v1/proofs/consistency?first=99999999999999999999",
        "/api/v1/proofs/consistency?first=1&second=99999999999999999999",
        "/api/v1/network/checkpoints/99999999999999999999",
    ],
)
def test_an_integer_past_sqlite_is_a_problem_not_a_crash(
    console: FastAPI, demo: EmbeddedNode, path: str
) -> None:
    with TestClient(console, raise_server_exceptions=False) as client:
        client.auth = member_reads(demo)
        answer = client.get(path)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "/api/v1/problems/validation-error"
