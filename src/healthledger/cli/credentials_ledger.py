"""Trust and status from a running node (``healthledger credentials verify --url``), kept
in a cache so that verification goes on offline with the last lists fetched (their age
stated), and ``healthledger credentials trust export``."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from healthledger.apps.credentials.trustdoc import TrustListRefused
from healthledger.apps.credentials.trustdoc import verify as verify_trust_document
from healthledger.cli.reporting import EXIT_UNUSABLE, CliError
from healthledger.crypto.credentials.status import StatusSource, load_status
from healthledger.crypto.credentials.trust import TrustStore, load_trust
from healthledger.crypto.errors import CryptoError

TRUST_PATH = "/api/v1/credentials/trust-list"
STATUS_PATH = "/api/v1/credentials/status"
TIMEOUT_S = 10.0
MAX_BYTES = 16 * 1024 * 1024


def default_cache() -> Path:
    """``$XDG_CACHE_HOME/healthledger/credentials`` (``~/.cache/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "healthledger" / "credentials"


@dataclass(frozen=True)
class LedgerSources:
    """Trust and status from a node, and where they came from."""

    trust: TrustStore
    status: StatusSource
    trust_list: dict[str, Any]
    fresh: bool
    """True if fetched now; False if read from the cache (the node was unreachable)."""
    fetched_at: int


def _get(url: str) -> Any:
    response = httpx.get(url, headers={"Accept": "application/json"}, timeout=TIMEOUT_S)
    if response.status_code != 200:
        problem = response.headers.get("content-type", "").startswith("application/problem")
        detail = response.json().get("detail") if problem else response.reason_phrase
        raise CliError(f"{url} answered {response.status_code}: {detail}", EXIT_UNUSABLE)
    if len(response.content) > MAX_BYTES:
        raise CliError(f"{url} answered more than {MAX_BYTES // 2**20} MB", EXIT_UNUSABLE)
    return response.json()


def _cache_folder(cache: Path, url: str) -> Path:
    parts = urllib.parse.urlsplit(url)
    return cache / (parts.netloc.replace(":", "_") or "node")


def fetch(url: str, *, cache: Path) -> LedgerSources:
    """The node's signed trust list (its signature and inclusion proofs checked) and its
    status document, saved in ``cache``; when the node cannot be reached, the cached
    ones, whose age the verdict states."""
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--url {url!r} is not an http(s) URL", EXIT_UNUSABLE)
    base = url.rstrip("/")
    folder = _cache_folder(cache, base)
    fresh = True
    try:
        signed = _get(base + TRUST_PATH)
        status_document = _get(base + STATUS_PATH)
        now = int(time.time())
        status_document["fetched_at"] = min(int(status_document.get("fetched_at", now)), now)
    except (OSError, httpx.HTTPError, ValueError) as exc:
        fresh = False
        try:
            signed = json.loads((folder / "trust-list.json").read_text(encoding="utf-8"))
            status_document = json.loads((folder / "status.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise CliError(f"cannot reach {base} ({exc}) and nothing is cached from it",
                           EXIT_UNUSABLE) from None  # fmt: skip
    try:
        trust_list = verify_trust_document(signed)
        trust = load_trust(json.dumps(trust_list).encode())
        status = load_status(json.dumps(status_document).encode(), fetched_at=int(time.time()))
    except TrustListRefused as exc:
        raise CliError(f"the trust list from {base} is refused: {exc}", EXIT_UNUSABLE) from None
    except CryptoError as exc:
        raise CliError(f"unusable trust list or status from {base}: {exc}", EXIT_UNUSABLE) from None
    if fresh:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "trust-list.json").write_text(json.dumps(signed), encoding="utf-8")
        (folder / "status.json").write_text(json.dumps(status_document), encoding="utf-8")
    fetched_at = status.fetched_at if status.fetched_at is not None else int(time.time())
    return LedgerSources(trust, status, trust_list, fresh, fetched_at)
