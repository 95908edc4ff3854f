"""HTTPS from a peer (or a traffic client, or ``network join``) to other peers,
configured by the environment, as NATS TLS is (``ordering.nats_tls``):

- ``HEALTHLEDGER_PEER_CA``: PEM file of the CA(s) that sign the peers' server
  certificates (without it, the default trust: certifi's bundle or ``SSL_CERT_FILE``);
- ``HEALTHLEDGER_PEER_CERT`` and ``HEALTHLEDGER_PEER_KEY``: this peer's client
  certificate and key, presented to a peer (or its TLS proxy) that requires one.

A peer serves HTTPS itself with ``healthledger node --tls-cert F --tls-key F``; the
peer directory then names it with an ``https://`` URL. Every answer is checked as
before (endorsement signatures, snapshots against signed checkpoints); TLS adds the
confidentiality of what travels between peers (transient data, private values) and the
authenticity of the peer answering.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping

import httpx

from healthledger.crypto.tls import TlsSettingError, client_context
from healthledger.node.errors import NodeError

ENV_CA = "HEALTHLEDGER_PEER_CA"
ENV_CERT = "HEALTHLEDGER_PEER_CERT"
ENV_KEY = "HEALTHLEDGER_PEER_KEY"


def peer_client(
    *,
    timeout: float | httpx.Timeout,
    transport: httpx.BaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
) -> httpx.Client:
    """An HTTP client for other peers' APIs with the TLS the environment asks for;
    NodeError, in one line, for a half-given or unreadable setting."""
    context = _peer_context(environ)
    if context is None:
        return httpx.Client(timeout=timeout, transport=transport)
    return httpx.Client(timeout=timeout, transport=transport, verify=context)


def peer_transport(*, environ: Mapping[str, str] | None = None) -> httpx.HTTPTransport | None:
    """A transport with the TLS the environment asks for (None: httpx's default), for
    clients that build their own ``httpx.Client`` (``healthledger.client.Client``)."""
    context = _peer_context(environ)
    return None if context is None else httpx.HTTPTransport(verify=context)


def _peer_context(environ: Mapping[str, str] | None) -> ssl.SSLContext | None:
    """The client TLS context the environment asks for (None: plain HTTP); NodeError,
    in one line, for a half-given or unreadable setting."""
    try:
        return client_context(
            os.environ if environ is None else environ,
            ca=ENV_CA,
            cert=ENV_CERT,
            key=ENV_KEY,
            what="peer",
        )
    except TlsSettingError as exc:
        raise NodeError(str(exc)) from exc
