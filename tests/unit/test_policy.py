"""Endorsement policy expressions: parsing, printing and satisfaction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthledger.contracts.errors import PolicyError
from healthledger.contracts.policy import (
    OutOf,
    Principal,
    choose_endorsers_indexed,
    parse_policy,
    principals,
    satisfied,
)

EXAMPLE = "AND('cdc.admin', OR('hospital-a.doctor', 'hospital-b.doctor'))"


def test_parse_architecture_example() -> None:
    policy = parse_policy(EXAMPLE)
    assert policy == OutOf(
        2,
        (
            Principal("cdc", "admin"),
            OutOf(1, (Principal("hospital-a", "doctor"), Principal("hospital-b", "doctor"))),
        ),
    )
    assert str(policy) == EXAMPLE
    assert parse_policy(str(policy)) == policy


@pytest.mark.parametrize(
    ("signers", "expected"),
    [
        ([("cdc", "admin"), ("hospital-b", "doctor")], True),
        ([("cdc", "admin")], False),
        ([("hospital-a", "doctor"), ("hospital-b", "doctor")], False),
        ([("cdc", "doctor"), ("hospital-a", "doctor")], False),
    ],
)
def test_and_or(signers: list[tuple[str, str]], expected: bool) -> None:
    assert satisfied(parse_policy(EXAMPLE), signers) is expected


def test_out_of_counts_distinct_signers() -> None:
    policy = parse_policy("OutOf(2, 'org1.peer', 'org2.peer', 'org3.peer')")
    assert satisfied(policy, [("org1", "peer"), ("org2", "peer")])
    assert satisfied(policy, [("org1", "peer"), ("org3", "peer")])
    assert not satisfied(policy, [("org1", "peer")])
    same_twice = parse_policy("AND('org1.peer', 'org1.peer')")
    assert not satisfied(same_twice, [("org1", "peer")])
    assert satisfied(same_twice, [("org1", "peer"), ("org1", "peer")])


def test_wildcard_org() -> None:
    policy = parse_policy("OR('*.peer')")
    assert satisfied(policy, [("anyone", "peer")])
    assert not satisfied(policy, [("anyone", "admin")])


def test_backtracking_finds_an_assignment() -> None:
    # A greedy choice of the first signer for the wildcard would starve 'a.peer'.
    policy = parse_policy("AND('*.peer', 'a.peer')")
    assert satisfied(policy, [("a", "peer"), ("b", "peer")])


def test_choose_endorsers_is_minimal_for_or() -> None:
    policy = parse_policy("OR('b.peer', 'c.peer')")
    available = [("a", "peer"), ("b", "peer"), ("c", "peer")]
    assert choose_endorsers_indexed(policy, available) == [1]
    assert choose_endorsers_indexed(parse_policy("'z.peer'"), available) is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "AND(",
        "AND('a.peer'",
        "OR()",
        "OutOf(3, 'a.peer', 'b.peer')",
        "OutOf(0, 'a.peer')",
        "OutOf('a.peer')",
        "'a'",
        "'A.peer'",
        "'a.peer' 'b.peer'",
        "XOR('a.peer')",
        "AND('a.peer',)",
        "'a.peer' + 1",
        "x" * 5000,
    ],
)
def test_malformed_policies_are_named_errors(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_policy(text)


orgs = st.sampled_from(["a", "b", "c", "d"])
roles = st.sampled_from(["peer", "admin"])
principal = st.builds(Principal, orgs, roles)
policies = st.recursive(
    principal,
    lambda inner: st.lists(inner, min_size=1, max_size=4).flatmap(
        lambda rules: st.integers(1, len(rules)).map(lambda n: OutOf(n, tuple(rules)))
    ),
    max_leaves=8,
)


@given(policies)
def test_round_trip_through_text(policy: Principal | OutOf) -> None:
    assert parse_policy(str(policy)) == policy


@given(policies, st.lists(st.tuples(orgs, roles), max_size=6))
def test_chosen_endorsers_satisfy(
    policy: Principal | OutOf, signers: list[tuple[str, str]]
) -> None:
    chosen = choose_endorsers_indexed(policy, signers)
    assert (chosen is not None) == satisfied(policy, signers)
    if chosen is not None:
        assert satisfied(policy, [signers[i] for i in chosen])
        assert len(chosen) <= len(principals(policy))
