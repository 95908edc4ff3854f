"""Endorsement policies: expressions over organisation roles.

Grammar::

    policy    := principal | AND(policy, ...) | OR(policy, ...) | OutOf(n, policy, ...)
    principal := 'org.role'         (quoted; org may be * for any organisation)

A principal is satisfied by one signer of that organisation and role; each
signer satisfies at most one principal of an expression, so ``AND('a.peer',
'a.peer')`` needs two different peers of organisation ``a``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from healthledger.contracts.errors import PolicyError

_TOKEN = re.compile(r"\s*(?:(AND|OR|OutOf)\s*\(|('([^']*)')|(\d+)|(\))|(,))")
_PRINCIPAL = re.compile(r"^(\*|[a-z][a-z0-9_-]{0,62})\.([a-z][a-z0-9_-]{0,62})$")
MAX_POLICY_LENGTH = 4096


@dataclass(frozen=True)
class Principal:
    """One signer of organisation ``org`` (``*``: any) with role ``role``."""

    org: str
    role: str

    def matches(self, org: str, role: str) -> bool:
        """True if a signer of ``org`` and ``role`` satisfies this principal."""
        return (self.org == "*" or self.org == org) and self.role == role

    def __str__(self) -> str:
        return f"'{self.org}.{self.role}'"


@dataclass(frozen=True)
class OutOf:
    """At least ``n`` of the sub-policies; AND is OutOf(len), OR is OutOf(1)."""

    n: int
    rules: tuple[Policy, ...]

    def __str__(self) -> str:
        inner = ", ".join(str(r) for r in self.rules)
        if self.n == len(self.rules) and self.n > 1:
            return f"AND({inner})"
        if self.n == 1 and len(self.rules) > 1:
            return f"OR({inner})"
        return f"OutOf({self.n}, {inner})"


Policy = Principal | OutOf

Signer = tuple[str, str]
"""(org, role) of one signer."""


@lru_cache(maxsize=1024)
def parse_policy(text: str) -> Policy:
    """Parse a policy expression; raise PolicyError naming what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyError("policy must be a non-empty string")
    if len(text) > MAX_POLICY_LENGTH:
        raise PolicyError(f"policy longer than {MAX_POLICY_LENGTH} characters")
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None:
            raise PolicyError(f"unexpected text at position {pos}: {text[pos : pos + 12]!r}")
        if match.group(1):
            tokens.append(("op", match.group(1)))
        elif match.group(2):
            tokens.append(("principal", match.group(3)))
        elif match.group(4):
            tokens.append(("int", match.group(4)))
        elif match.group(5):
            tokens.append((")", ")"))
        else:
            tokens.append((",", ","))
        pos = match.end()
    policy, end = _parse(tokens, 0)
    if end != len(tokens):
        raise PolicyError("unexpected text after the policy")
    return policy


def _parse(tokens: list[tuple[str, str]], i: int) -> tuple[Policy, int]:
    if i >= len(tokens):
        raise PolicyError("policy ends too early")
    kind, value = tokens[i]
    if kind == "principal":
        match = _PRINCIPAL.match(value)
        if match is None:
            raise PolicyError(f"principal {value!r} is not 'org.role'")
        return Principal(match.group(1), match.group(2)), i + 1
    if kind != "op":
        raise PolicyError(f"expected a principal or AND/OR/OutOf, found {value!r}")
    i += 1
    n: int | None = None
    if value == "OutOf":
        if i >= len(tokens) or tokens[i][0] != "int":
            raise PolicyError("OutOf needs a count first")
        n = int(tokens[i][1])
        i += 1
        if i >= len(tokens) or tokens[i][0] != ",":
            raise PolicyError("OutOf needs at least one policy after the count")
        i += 1
    rules: list[Policy] = []
    while True:
        rule, i = _parse(tokens, i)
        rules.append(rule)
        if i >= len(tokens):
            raise PolicyError(f"{value}( is not closed")
        if tokens[i][0] == ")":
            i += 1
            break
        if tokens[i][0] != ",":
            raise PolicyError(f"expected ',' or ')' in {value}(")
        i += 1
    if value == "AND":
        n = len(rules)
    elif value == "OR":
        n = 1
    assert n is not None
    if not 1 <= n <= len(rules):
        raise PolicyError(f"OutOf({n}, ...) needs 1 <= n <= {len(rules)}")
    return OutOf(n, tuple(rules)), i


def satisfied(policy: Policy, signers: Sequence[Signer]) -> bool:
    """True if distinct ``signers`` satisfy ``policy`` (each used at most once)."""
    return bool(_remainders(policy, frozenset(range(len(signers))), signers, {}))


Memo = dict[tuple[int, frozenset[int]], frozenset[frozenset[int]]]


def _remainders(
    policy: Policy, free: frozenset[int], signers: Sequence[Signer], memo: Memo
) -> frozenset[frozenset[int]]:
    """Every set of signers that can be left over after satisfying ``policy`` from
    ``free`` (empty if it cannot be satisfied). Exhaustive, so no greedy choice of a
    signer for one principal can starve another; memoised per call."""
    key = (id(policy), free)
    if key in memo:
        return memo[key]
    if isinstance(policy, Principal):
        result = frozenset(free - {i} for i in free if policy.matches(*signers[i]))
    else:
        result = _remainders_n(policy.rules, policy.n, free, signers, memo)
    memo[key] = result
    return result


def _remainders_n(
    rules: tuple[Policy, ...], n: int, free: frozenset[int], signers: Sequence[Signer], memo: Memo
) -> frozenset[frozenset[int]]:
    if n == 0:
        return frozenset({free})
    if len(rules) < n:
        return frozenset()
    first, rest = rules[0], rules[1:]
    options: set[frozenset[int]] = set(_remainders_n(rest, n, free, signers, memo))
    for after in _remainders(first, free, signers, memo):
        options.update(_remainders_n(rest, n - 1, after, signers, memo))
    return frozenset(options)


def principals(policy: Policy) -> list[Principal]:
    """Every principal named in ``policy``, in order."""
    if isinstance(policy, Principal):
        return [policy]
    return [p for rule in policy.rules for p in principals(rule)]


def choose_endorsers_indexed(policy: Policy, available: Sequence[Signer]) -> list[int] | None:
    """Indexes of a smallest set of ``available`` signers that satisfies ``policy``
    (earlier ones preferred on ties), or None."""
    free = frozenset(range(len(available)))
    options = _remainders(policy, free, available, {})
    if not options:
        return None
    best = max(options, key=lambda left: (len(left), sorted(left, reverse=True)))
    return sorted(free - best)
