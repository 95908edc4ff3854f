"""TLS from a peer to the NATS cluster, configured by the environment.

Every NATS connection a peer opens (ordering, checkpoint exchange, the stream check
of a snapshot join) uses the same client TLS settings:

- ``HEALTHLEDGER_NATS_CA``: PEM file of the CA(s) that sign the NATS servers'
  certificates (without it, the system trust store or ``SSL_CERT_FILE``);
- ``HEALTHLEDGER_NATS_CERT`` and ``HEALTHLEDGER_NATS_KEY``: PEM files of this peer's
  client certificate and its private key, presented to servers that require one
  (``verify: true`` in their ``tls`` block: mutual TLS).

With none of them set, connections use what the URL says (``nats://`` plain,
``tls://`` verified against the system trust store), as before. Variables suit a
systemd ``EnvironmentFile`` and keep key paths out of process listings' arguments.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

from healthledger.ordering.orderer import OrderingError

ENV_CA = "HEALTHLEDGER_NATS_CA"
ENV_CERT = "HEALTHLEDGER_NATS_CERT"
ENV_KEY = "HEALTHLEDGER_NATS_KEY"


def client_tls(environ: Mapping[str, str] | None = None) -> ssl.SSLContext | None:
    """The client TLS context the environment asks for, or None if it asks for none.
    Raises OrderingError, in one line, for a half-given or unreadable setting."""
    env = os.environ if environ is None else environ
    ca, cert, key = (env.get(name, "").strip() for name in (ENV_CA, ENV_CERT, ENV_KEY))
    if not (ca or cert or key):
        return None
    if bool(cert) != bool(key):
        raise OrderingError(
            f"NATS client TLS needs both {ENV_CERT} and {ENV_KEY} (only one is set)"
        )
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca or None)
    except (OSError, ssl.SSLError) as exc:
        raise OrderingError(f"cannot read the NATS CA file {ca} ({ENV_CA}): {exc}") from exc
    if cert:
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise OrderingError(
                f"cannot load the NATS client certificate {cert} with key {key}: {exc}"
            ) from exc
    return context


def connect_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` carrying the client TLS, if any."""
    context = client_tls(environ)
    return {} if context is None else {"tls": context}
