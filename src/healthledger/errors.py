"""The one root of every error healthledger raises.

Each layer keeps its own small hierarchy (``CryptoError``, ``LedgerError``,
``ContractError``, ``NodeError``, ...); every one of them derives from
:class:`HealthledgerError`, so a caller that embeds the package can tell its errors
from everything else with one ``except``.
"""


class HealthledgerError(Exception):
    """Base class of every error the healthledger package raises."""
