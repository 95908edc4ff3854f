"""Signing credentials in worker processes: the three encodings of each credential of a
batch (``issuance.issue_all``) are made on the machine's other cores while the issuing
process endorses, orders and commits the batches already signed
(``CredentialService.issue_many(signing=...)``). One interpreter signs at most one
credential at a time; with the signing moved out, the node's process keeps its core
for the ledger.

The document-signing key reaches a worker only through the pool's pipe, never a file:
each job carries it (PKCS#8 DER) and a worker parses it once per key. Workers are
started with ``spawn``, not ``fork``: a fork of a running node would copy its threads'
held locks and its open databases.
"""

from __future__ import annotations

import functools
import multiprocessing
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from healthledger.apps.credentials.issuance import Signer, issue_all
from healthledger.apps.credentials.records import Record
from healthledger.crypto.jose import Jwk


@dataclass(frozen=True)
class SigningJob:
    """One credential to sign: ``issue_all``'s arguments but the signer."""

    record: Record
    now: int
    valid_days: int
    holder: dict[str, Any] | None
    """The holder's public JWK (its members), to bind the SD-JWT VC to; None: unbound."""
    status: tuple[str, int] | None


class SigningPool:
    """Worker processes that sign credentials; closed (its workers stopped) on exit."""

    def __init__(self, *, processes: int = 1) -> None:
        if processes < 1:
            raise ValueError("a signing pool has at least one process")
        self.processes = processes
        self._cpu_s = 0.0
        self._cpu_lock = threading.Lock()
        self._pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("spawn")
        )

    def sign(self, signer: Signer, jobs: Sequence[SigningJob]) -> Future[list[dict[str, str]]]:
        """The texts of each job (as ``issue_all`` returns them), in order, when done."""
        key = signer.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        cert = signer.certificate.public_bytes(serialization.Encoding.DER)
        signed = self._pool.submit(_sign, key, cert, signer.issuer, signer.country, list(jobs))
        texts: Future[list[dict[str, str]]] = Future()

        def done(job: Future[tuple[list[dict[str, str]], float]]) -> None:
            error = job.exception()
            if error is not None:
                texts.set_exception(error)
                return
            found, cpu_s = job.result()
            with self._cpu_lock:
                self._cpu_s += cpu_s
            texts.set_result(found)

        signed.add_done_callback(done)
        return texts

    @property
    def cpu_s(self) -> float:
        """CPU seconds the workers spent on the jobs done so far."""
        with self._cpu_lock:
            return self._cpu_s

    def warm(self) -> None:
        """Start every worker and load its modules now, not in the first batch's time."""
        for done in [self._pool.submit(_loaded) for _ in range(self.processes)]:
            done.result()

    def close(self) -> None:
        """Stop the workers (jobs not started are cancelled)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> SigningPool:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _loaded() -> bool:
    return True


@functools.lru_cache(maxsize=8)
def _signer(key: bytes, cert: bytes, issuer: str, country: str) -> Signer:
    """The signer of a job, parsed once per worker (its JWK and kid cached with it)."""
    private = serialization.load_der_private_key(key, None)
    if not isinstance(private, ec.EllipticCurvePrivateKey):
        raise ValueError("a document-signing key is a P-256 key")
    return Signer(private, x509.load_der_x509_certificate(cert), issuer, country)


def _sign(
    key: bytes, cert: bytes, issuer: str, country: str, jobs: list[SigningJob]
) -> tuple[list[dict[str, str]], float]:
    started = time.process_time()
    signer = _signer(key, cert, issuer, country)
    texts = [
        issue_all(
            job.record, signer, now=job.now, valid_days=job.valid_days, status=job.status,
            holder=None if job.holder is None else Jwk.from_json(job.holder),
        )
        for job in jobs
    ]  # fmt: skip
    return texts, time.process_time() - started
