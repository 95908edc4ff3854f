"""A verifier's policy: the tolerances and strictness it applies to every credential."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Policy:
    """How strictly to verify."""

    clock_skew: int = 0
    """Seconds by which a credential's not-before may lie in the future."""
    max_status_age: int = 86_400
    """Seconds after which a cached status list is stale."""
    refuse_stale_status: bool = True
    """A stale status list refuses (``STATUS_STALE``); False: it only warns."""
    strict_chunks: bool = False
    """Refuse SMART Health Cards split over several QR codes (deprecated since December
    2022) instead of accepting them with a ``QR_CHUNKED`` warning."""
    require_key_binding: bool = False
    """Refuse an SD-JWT VC presented without a Key Binding JWT."""
    audience: str | None = None
    """The verifier's identifier a Key Binding JWT must name in ``aud``."""
    nonce: str | None = None
    """The nonce the verifier asked the holder to sign."""
    key_binding_max_age: int = 300
    """Seconds a Key Binding JWT's ``iat`` may lie before (or after) the check time."""
