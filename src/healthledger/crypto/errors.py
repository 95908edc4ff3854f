"""Errors raised by the crypto layer."""

from healthledger.errors import HealthledgerError


class CryptoError(HealthledgerError):
    """Base class for every error of the crypto layer."""


class CanonicalEncodingError(CryptoError):
    """A value cannot be put in the canonical JSON profile (floats, non-ASCII keys, ...)."""


class SignatureError(CryptoError):
    """A signature does not verify, or a key or signature is malformed."""


class CertificateError(CryptoError):
    """A certificate is malformed, not issued by the expected CA, or outside its validity."""


class DecryptionError(CryptoError):
    """Ciphertext cannot be decrypted: wrong key, tampered data or a shredded data key."""
