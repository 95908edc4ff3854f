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

from healthledger.crypto.tls import TlsSettingError, client_context
from healthledger.ordering.orderer import OrderingError

ENV_CA = "HEALTHLEDGER_NATS_CA"
ENV_CERT = "HEALTHLEDGER_NATS_CERT"
ENV_KEY = "HEALTHLEDGER_NATS_KEY"


def client_tls(environ: Mapping[str, str] | None = None) -> ssl.SSLContext | None:
    """The client TLS context the environment asks for, or None if it asks for none.
    Raises OrderingError, in one line, for a half-given or unreadable setting."""
    try:
        return client_context(
            os.environ if environ is None else environ,
            ca=ENV_CA,
            cert=ENV_CERT,
            key=ENV_KEY,
            what="NATS",
        )
    except TlsSettingError as exc:
        raise OrderingError(str(exc)) from exc


def connect_options(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` carrying the client TLS, if any."""
    context = client_tls(environ)
    return {} if context is None else {"tls": context}
