"""The client's reading of what a node answers: every problem type the API
documents becomes its own typed exception, and the event stream parses as SSE."""

from __future__ import annotations

import pytest

from healthledger.api.problems import PROBLEM_TYPES
from healthledger.client import errors
from healthledger.client.events import EventParser, cursor_before
from healthledger.errors import HealthledgerError


@pytest.mark.parametrize("slug", sorted(PROBLEM_TYPES))
def test_every_documented_problem_type_has_a_typed_exception(slug: str) -> None:
    kind = PROBLEM_TYPES[slug]
    body = {
        "type": kind.uri,
        "title": kind.title,
        "status": kind.status,
        "detail": f"what went wrong ({slug})",
        "instance": "/api/v1/x",
    }
    error = errors.problem_error(body, status=kind.status)
    assert slug in errors._BY_SLUG, f"no exception class for problem type {slug}"
    assert type(error) is errors._BY_SLUG[slug]
    assert isinstance(error, errors.ProblemError)
    assert isinstance(error, HealthledgerError)
    assert error.status == kind.status
    assert str(error) == f"what went wrong ({slug})"


def test_replays_and_revocations_are_told_apart() -> None:
    replay = errors.problem_error(
        {"type": "/api/v1/problems/duplicate-transaction", "detail": "already committed"},
        status=409,
    )
    denied = errors.problem_error(
        {"type": "/api/v1/problems/access-denied", "detail": "x has been revoked"}, status=403
    )
    assert isinstance(replay, errors.DuplicateTransaction)
    assert isinstance(replay, errors.Conflict)
    assert isinstance(denied, errors.AccessDenied)
    assert not isinstance(denied, errors.Conflict)


def test_field_errors_are_kept_and_told_in_the_one_line_message() -> None:
    error = errors.problem_error(
        {
            "type": "/api/v1/problems/invalid-arguments",
            "detail": "invalid arguments",
            "errors": [{"field": "region", "message": "unknown code"}],
        },
        status=422,
    )
    assert isinstance(error, errors.InvalidRequest)
    assert error.errors == [{"field": "region", "message": "unknown code"}]
    assert str(error) == "invalid arguments (region: unknown code)"
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(404, errors.NotFound), (502, errors.ServerError), (418, errors.ProblemError)],
)
def test_a_plain_http_status_falls_back_on_its_class(
    status: int, cls: type[errors.ProblemError]
) -> None:
    error = errors.problem_error({"type": "about:blank", "title": "Teapot"}, status=status)
    assert type(error) is cls
    assert str(error) == "Teapot"


def test_server_sent_events_parse_with_comments_and_multi_line_data() -> None:
    parser = EventParser()
    lines = [
        ": keep-alive",
        "id: 3:0:1",
        "event: contract",
        'data: {"name":',
        'data: "x"}',
        "",
        "id: 4",
        "event: block",
        'data: {"height": 4}',
        "retry: 100",
        "",
    ]
    events = [e for e in map(parser.feed, lines) if e is not None]
    assert [(e.id, e.kind, e.data) for e in events] == [
        ("3:0:1", "contract", {"name": "x"}),
        ("4", "block", {"height": 4}),
    ]
    assert [e.height for e in events] == [3, 4]


def test_an_event_without_json_is_an_unexpected_answer() -> None:
    parser = EventParser()
    parser.feed("id: 1")
    parser.feed("data: not json")
    with pytest.raises(errors.UnexpectedAnswer):
        parser.feed("")


def test_a_height_becomes_the_cursor_just_before_it() -> None:
    assert cursor_before(0) is None
    assert cursor_before(5) == "4:999999999999999:999999999999999"
    with pytest.raises(ValueError, match="0 or more"):
        cursor_before(-1)
