"""healthledger: a consortium ledger for public health and medical governance.

What an integrating system imports: :mod:`healthledger.verify` (offline verification,
one ``VerificationError``) and :class:`HealthledgerError`, the root of every error the
package raises.
"""

from healthledger.errors import HealthledgerError

__all__ = ["HealthledgerError"]
