"""What the client asks a node and how it reads the answers, free of any I/O.

Each operation is a generator that yields :class:`Call` requests and receives each
answer's parsed JSON body; the synchronous and the asynchronous client drive the same
generators, so both behave alike by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from healthledger.client.errors import (
    AccessDenied,
    ClientError,
    EndorsementMismatch,
    SignatureRequired,
    UnexpectedAnswer,
    problem_error,
)
from healthledger.client.identity import SignedCall
from healthledger.client.receipts import Committed, Evidence, Receipt
from healthledger.crypto.canonical import canonical_json
from healthledger.crypto.certs import load_certificate
from healthledger.crypto.errors import CryptoError
from healthledger.crypto.keys import verify_signature
from healthledger.ledger.errors import LedgerError
from healthledger.ledger.transaction import Transaction, endorsement_payload

T = TypeVar("T")

API = "/api/v1"


@dataclass(frozen=True)
class Call:
    """One HTTP request to a node: ``body`` is sent as JSON bytes exactly as given."""

    method: str
    path: str
    params: Mapping[str, str] | None = None
    body: bytes | None = None
    wait_s: float = 0.0
    """How long the node may take to answer beyond the usual (a commit it awaits)."""


Flow = Generator[Call, Any, T]
"""An operation: yields requests, receives each answer's JSON, returns its result. A
problem answer is thrown into the generator at its ``yield`` (a flow may catch it)."""

Signer = Callable[[str, str, Mapping[str, Any]], SignedCall]
"""Signs a query ``(contract, function, args)`` as the client's identity."""


def membership_read(
    call: Call, signer: Signer | None, function: str, args: Mapping[str, Any]
) -> Flow[Any]:
    """The answer of a public read route, or, where the node keeps that route for its
    consortium's members, of the same read as a signed membership query."""
    try:
        return (yield call)
    except (AccessDenied, SignatureRequired):
        if signer is None:
            raise
    return (yield from query(signer("membership", function, args)))


def post(
    path: str, body: Any, *, params: Mapping[str, str] | None = None, wait_s: float = 0.0
) -> Call:
    """A POST of ``body`` in canonical JSON, the form everything signed travels in."""
    try:
        content = canonical_json(body)
    except CryptoError as exc:
        raise UnexpectedAnswer(f"cannot send this request: {exc}") from exc
    return Call("POST", API + path, params, content, wait_s)


def get(path: str, params: Mapping[str, str] | None = None) -> Call:
    """A GET under ``/api/v1``."""
    return Call("GET", API + path, params)


def endorse(
    call: SignedCall, keys: MutableMapping[str, bytes], signer: Signer | None = None
) -> Flow[Transaction]:
    """Have the node endorse ``call`` (gathering other organisations' endorsements as
    their policies need); check that what comes back is the proposal signed and that
    every endorsement verifies against its endorser's registered certificate."""
    answer = yield post("/proposals/endorse", call.body())
    return (yield from _checked(call, answer, keys, signer))


def _checked(
    call: SignedCall, answer: Any, keys: MutableMapping[str, bytes], signer: Signer | None
) -> Flow[Transaction]:
    """The endorsed transaction ``answer`` of ``call``, once checked (see :func:`endorse`)."""
    try:
        tx = Transaction.from_json(answer)
    except (LedgerError, CryptoError) as exc:
        raise UnexpectedAnswer(f"the endorsed transaction is malformed: {exc}") from exc
    if tx.tx_id != call.tx_id:
        raise EndorsementMismatch(
            f"the node endorsed {tx.tx_id}, not the proposal signed ({call.tx_id})"
        )
    if not tx.endorsements:
        raise EndorsementMismatch(f"the node returned {tx.tx_id} with no endorsement")
    payload = endorsement_payload(tx.tx_id, tx.response)
    for endorsement in tx.endorsements:
        for attempt in range(2):
            org = endorsement.endorser.split("/", 1)[0]
            if endorsement.endorser not in keys or attempt == 1:
                keys.update((yield from endorser_keys(org, signer)))
            public = keys.get(endorsement.endorser)
            if public is None:
                raise EndorsementMismatch(f"{endorsement.endorser} is not a registered identity")
            try:
                verify_signature(public, endorsement.signature, payload)
                break
            except CryptoError as exc:
                # The endorser's key may have been rotated since it was cached: look again once.
                if attempt == 1:
                    raise EndorsementMismatch(
                        f"the endorsement of {endorsement.endorser} does not verify"
                    ) from exc
    return tx


def endorser_keys(org: str, signer: Signer | None = None) -> Flow[dict[str, bytes]]:
    """The public keys of ``org``'s active identities, from membership state."""
    answer = yield from membership_read(
        get("/consortium/identities", {"org": org}), signer, "identities", {"org": org}
    )
    if not isinstance(answer, list):
        raise UnexpectedAnswer("the identities answer is not a list")
    keys = {}
    for record in answer:
        if not isinstance(record, Mapping) or record.get("status") != "active":
            continue
        try:
            keys[str(record["id"])] = load_certificate(str(record["cert"])).public_key
        except (KeyError, CryptoError):
            continue
    return keys


def submit(tx: Transaction, *, timeout: float) -> Flow[Receipt]:
    """Order an endorsed transaction and await its receipt (at most ``timeout`` s)."""
    answer = yield Call(
        "POST",
        API + "/transactions",
        {"timeout": f"{timeout:g}"},
        tx.canonical,
        timeout,
    )
    return Receipt.from_json(answer)


def invoke(
    call: SignedCall,
    keys: MutableMapping[str, bytes],
    *,
    timeout: float,
    signer: Signer | None = None,
) -> Flow[Committed]:
    """Endorse, check, order and await ``call``."""
    tx = yield from endorse(call, keys, signer)
    receipt = yield from submit(tx, timeout=timeout)
    return Committed(receipt, tx.response.result)


BATCH_LIMIT = 200
"""Calls one batch request carries at most (the node's limit); more go in several."""


def invoke_many(
    calls: Sequence[SignedCall],
    keys: MutableMapping[str, bytes],
    *,
    timeout: float,
    signer: Signer | None = None,
) -> Flow[list[Committed | ClientError]]:
    """Endorse, check, order and await every one of ``calls`` with two requests per
    ``BATCH_LIMIT`` calls (``/proposals/endorse/batch``, then ``/transactions/batch``):
    per call, in order, what it committed or the typed error that refused it (the
    others go on). Each endorsement is checked as :func:`endorse` checks one, before
    anything is ordered."""
    outcomes: list[Committed | ClientError] = []
    for start in range(0, len(calls), BATCH_LIMIT):
        chunk = calls[start : start + BATCH_LIMIT]
        answer = yield post("/proposals/endorse/batch", {"proposals": [c.body() for c in chunk]})
        endorsed: list[Transaction | ClientError] = []
        for call, item in zip(chunk, _items(answer, len(chunk)), strict=True):
            try:
                if "problem" in item:
                    raise _refused(item["problem"])
                endorsed.append((yield from _checked(call, item.get("transaction"), keys, signer)))
            except ClientError as exc:
                endorsed.append(exc)
        txs = [tx for tx in endorsed if isinstance(tx, Transaction)]
        committed: Iterator[Mapping[str, Any]] = iter(())
        if txs:
            answer = yield Call(
                "POST",
                API + "/transactions/batch",
                {"timeout": f"{timeout:g}"},
                b'{"transactions":[' + b",".join(tx.canonical for tx in txs) + b"]}",
                timeout,
            )
            committed = iter(_items(answer, len(txs)))
        for tx in endorsed:
            outcomes.append(tx if isinstance(tx, ClientError) else _outcome(tx, next(committed)))
    return outcomes


def _items(answer: Any, count: int) -> list[Mapping[str, Any]]:
    """The per-call results of a batch answer, which must be ``count`` JSON objects."""
    results = answer.get("results") if isinstance(answer, Mapping) else None
    if not isinstance(results, list) or len(results) != count:
        raise UnexpectedAnswer(f"the batch answer does not hold {count} results")
    if not all(isinstance(r, Mapping) for r in results):
        raise UnexpectedAnswer("a result of the batch answer is not a JSON object")
    return results


def _refused(problem: Any) -> ClientError:
    if not isinstance(problem, Mapping):
        return UnexpectedAnswer("a refusal in the batch answer is not problem details")
    status = problem.get("status")
    return problem_error(problem, status=status if isinstance(status, int) else 500)


def _outcome(tx: Transaction, item: Mapping[str, Any]) -> Committed | ClientError:
    if "problem" in item:
        return _refused(item["problem"])
    try:
        receipt = Receipt.from_json(item.get("receipt"))
    except ClientError as exc:
        return exc
    if receipt.tx_id != tx.tx_id:
        return UnexpectedAnswer(f"the node answered the receipt of {receipt.tx_id} for {tx.tx_id}")
    return Committed(receipt, tx.response.result)


def query(call: SignedCall) -> Flow[Any]:
    """Run a signed query; its result."""
    answer = yield post("/query", call.body())
    if not isinstance(answer, Mapping) or "result" not in answer:
        raise UnexpectedAnswer("the query answer holds no result")
    return answer["result"]


def receipt(tx_id: str) -> Flow[Receipt]:
    """The receipt of a committed transaction."""
    return Receipt.from_json((yield get(f"/transactions/{tx_id}/receipt")))


def evidence(of: Receipt) -> Flow[Evidence]:
    """Fetch what proves ``of``: the transaction, its block's header and an inclusion
    proof at that block's log size (checked offline by :meth:`Evidence.verify`)."""
    stored = yield get(f"/transactions/{of.tx_id}")
    block = yield get(f"/blocks/{of.height}")
    try:
        transaction = stored["transaction"]
        header = block["block"]["header"]
        size = header["log_size"]
    except (KeyError, TypeError) as exc:
        raise UnexpectedAnswer(f"the node's transaction or block answer lacks {exc}") from exc
    proof = yield get(f"/proofs/inclusion/{of.tx_id}", {"tree_size": str(size)})
    if not isinstance(proof, Mapping):
        raise UnexpectedAnswer("the inclusion proof is not a JSON object")
    return Evidence(of, transaction, header, proof)


def verified(of: Receipt) -> Flow[Evidence]:
    """The evidence of ``of``, verified offline; ProofNotVerified if it does not hold."""
    found = yield from evidence(of)
    found.verify()
    return found


def status() -> Flow[dict[str, Any]]:
    """The node's chain head and global log."""
    answer = yield get("/status")
    if not isinstance(answer, dict):
        raise UnexpectedAnswer("the status answer is not a JSON object")
    return answer


def identity(identity_id: str, signer: Signer | None = None) -> Flow[dict[str, Any] | None]:
    """The membership record of ``identity_id`` (None: not registered)."""
    org = identity_id.split("/", 1)[0]
    answer = yield from membership_read(
        get("/consortium/identities", {"org": org}), signer, "identities", {"org": org}
    )
    if not isinstance(answer, list):
        raise UnexpectedAnswer("the identities answer is not a list")
    return next((r for r in answer if isinstance(r, dict) and r.get("id") == identity_id), None)


def organisation(org: str, signer: Signer | None = None) -> Flow[dict[str, Any] | None]:
    """The membership record of organisation ``org`` (None: not a member)."""
    answer = yield from membership_read(
        get("/consortium/organisations"), signer, "organisations", {}
    )
    if not isinstance(answer, list):
        raise UnexpectedAnswer("the organisations answer is not a list")
    return next((r for r in answer if isinstance(r, dict) and r.get("id") == org), None)
