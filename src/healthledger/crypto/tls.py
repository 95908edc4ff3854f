"""Client TLS contexts from PEM files named by the environment: a CA to trust and,
optionally, a client certificate and key to present (mutual TLS). Shared by a peer's
connections to NATS (``ordering.nats_tls``) and to other peers (``node.peer_tls``)."""

from __future__ import annotations

import ssl
from collections.abc import Mapping

from healthledger.errors import HealthledgerError


class TlsSettingError(ValueError, HealthledgerError):
    """A half-given or unreadable TLS setting, said in one line."""


def client_context(
    env: Mapping[str, str], *, ca: str, cert: str, key: str, what: str
) -> ssl.SSLContext | None:
    """The client context the variables named ``ca``, ``cert`` and ``key`` ask for in
    ``env``, or None if none of them is set; ``what`` names the peer end in errors."""
    ca_file, cert_file, key_file = (env.get(name, "").strip() for name in (ca, cert, key))
    if not (ca_file or cert_file or key_file):
        return None
    if bool(cert_file) != bool(key_file):
        raise TlsSettingError(f"{what} client TLS needs both {cert} and {key} (only one is set)")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsSettingError(f"cannot read the {what} CA file {ca_file} ({ca}): {exc}") from exc
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsSettingError(
                f"cannot load the {what} client certificate {cert_file} with key {key_file}: {exc}"
            ) from exc
    return context
